"""The Graph face's mailboxSettings, messageRules and getMailTips, and that both faces answer
the same core: a rule written over Graph reads back over EWS (schema-valid) and applies to
mail, automatic replies set over EWS read back over Graph."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from exchangelib import Message, OofSettings

from exlab.core.mailbox_rights import add_mailbox_permission
from exlab.demo import ASSISTENZ, CHEF, SACHBEARBEITUNG
from exlab.ews import soap
from exlab.graph.serve import GraphLab
from tests.lab.conftest import LabServer
from tests.lab.items_soap import envelope
from tests.lab.schema import assert_valid_ews
from tests.lab.test_graph_api import Graph

SETTINGS_SCOPES = frozenset({"Mail.ReadWrite.Shared", "MailboxSettings.ReadWrite", "User.Read"})


@pytest.fixture
def graph(lab: LabServer, tmp_path: Path) -> Iterator[GraphLab]:
    with GraphLab(lab.lab, tmp_path / "tls") as served:
        yield served


def test_a_rule_written_over_graph_reads_back_over_ews_and_applies(
    lab: LabServer, graph: GraphLab
) -> None:
    chef = Graph(graph, CHEF, SETTINGS_SCOPES)
    folder = chef.get("/me/mailFolders/inbox/childFolders").json()["value"]
    kreistag = next(f for f in folder if f["displayName"] == "Kreistag")
    made = chef.post(
        "/me/mailFolders/inbox/messageRules",
        {
            "displayName": "Kreistag sortieren",
            "sequence": 1,
            "isEnabled": True,
            "conditions": {"subjectContains": ["Ausschuss"]},
            "actions": {
                "moveToFolder": kreistag["id"],
                "markImportance": "high",
                "forwardTo": [{"emailAddress": {"address": ASSISTENZ}}],
            },
        },
    )
    assert made.status_code == 201, made.text
    assert made.json()["actions"]["markImportance"] == "high"
    [rule] = lab.account("chef").rules
    assert rule.display_name == "Kreistag sortieren"
    assert rule.conditions.contains_subject_strings == ["Ausschuss"]
    assert rule.actions.mark_importance == "High"
    assert [a.email_address for a in rule.actions.forward_to_recipients] == [ASSISTENZ]
    answer = soap.handle(
        lab.lab,
        CHEF,
        envelope(
            f"<m:GetInboxRules><m:MailboxSmtpAddress>{CHEF}</m:MailboxSmtpAddress>"
            "</m:GetInboxRules>"
        ),
    )
    assert_valid_ews(answer.body)

    sender = lab.account("sachbearbeitung")
    Message(account=sender, subject="Ausschuss Soziales", body="x", to_recipients=[CHEF]).send(
        save_copy=False
    )
    moved = lab.account("chef").inbox / "Kreistag"
    arrived = moved.get(subject="Ausschuss Soziales")
    assert arrived.importance == "High"
    assert lab.account("assistenz").inbox.filter(subject="FW: Ausschuss Soziales").exists()

    off = chef.patch(
        f"/me/mailFolders/inbox/messageRules/{made.json()['id']}", {"isEnabled": False}
    )
    assert off.status_code == 200 and off.json()["isEnabled"] is False
    assert chef.delete(f"/me/mailFolders/inbox/messageRules/{made.json()['id']}").status_code == 204
    assert lab.account("chef").rules == []


def test_automatic_replies_set_over_ews_read_over_graph_and_the_rights(
    lab: LabServer, graph: GraphLab
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    lab.account("chef").oof_settings = OofSettings(
        state=OofSettings.SCHEDULED,
        external_audience="Known",
        start=start,
        end=start + timedelta(days=2),
        internal_reply="Im Urlaub.",
        external_reply="Away.",
    )
    assistant = Graph(graph, ASSISTENZ, SETTINGS_SCOPES)
    refused = assistant.get(f"/users/{CHEF}/mailboxSettings/automaticRepliesSetting")
    assert refused.status_code == 403  # folder grants are not FullAccess
    add_mailbox_permission(lab.lab.store, CHEF, ASSISTENZ, "FullAccess")
    got = assistant.get(f"/users/{CHEF}/mailboxSettings/automaticRepliesSetting").json()
    assert got["status"] == "scheduled" and got["externalAudience"] == "contactsOnly"
    assert got["internalReplyMessage"] == "Im Urlaub."
    assert got["scheduledStartDateTime"]["dateTime"].startswith(start.strftime("%Y-%m-%dT%H:%M"))
    bad = assistant.patch(
        f"/users/{CHEF}/mailboxSettings",
        {"automaticRepliesSetting": {"status": "sometimes"}},
    )
    assert bad.status_code == 400
    tips = assistant.post(
        f"/users/{CHEF}/getMailTips",
        {"EmailAddresses": [CHEF, "x@extern.example"], "MailTipsOptions": "automaticReplies"},
    ).json()["value"]
    assert tips[0]["automaticReplies"]["message"] == "Im Urlaub."
    assert tips[1]["recipientScope"] == "external"
    for bad_rule in (
        {"displayName": "x", "actions": {"forwardTo": ["x@y.example"]}},
        {"displayName": "x", "conditions": {"subjectContains": "Eilt"}},
        {"displayName": "", "actions": {"markAsRead": True}},
    ):
        answer = assistant.post(f"/users/{CHEF}/mailFolders/inbox/messageRules", bad_rule)
        assert answer.status_code == 400, answer.text
    clerk = Graph(graph, SACHBEARBEITUNG, SETTINGS_SCOPES)
    assert clerk.post(f"/users/{CHEF}/getMailTips", {"EmailAddresses": [CHEF]}).status_code == 403
    assert clerk.get(f"/users/{CHEF}/mailFolders/inbox/messageRules").status_code == 403
