"""Inbox rules over HTTP with exchangelib: created, read back, changed and deleted, and applied
by the server when mail arrives; the raw answers checked against the Exchange schemas."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from exchangelib import Message
from exchangelib.errors import ErrorAccessDenied
from exchangelib.properties import Actions, Conditions, Rule

from exlab import Lab
from exlab.demo import CHEF
from exlab.ews import soap
from tests.lab.conftest import LabServer
from tests.lab.items_soap import demo_lab, envelope
from tests.lab.schema import assert_valid_ews


@pytest.fixture(scope="module")
def memory_lab() -> Iterator[Lab]:
    yield from demo_lab()


def _send(lab: LabServer, subject: str) -> None:
    account = lab.account("sachbearbeitung")
    Message(account=account, subject=subject, body="x", to_recipients=[CHEF]).send(save_copy=False)


def test_a_rule_moves_and_marks_matching_mail_as_it_arrives(lab: LabServer) -> None:
    account = lab.account("chef")
    target = account.inbox / "Kreistag"
    rule = Rule(
        display_name="Presse nach Kreistag",
        priority=1,
        is_enabled=True,
        conditions=Conditions(contains_subject_strings=["Presse"]),
        actions=Actions(move_to_folder=target, mark_as_read=True),
    )
    account.create_rule(rule)
    assert rule.id
    [stored] = account.rules
    assert stored.display_name == "Presse nach Kreistag" and stored.is_enabled
    assert stored.conditions.contains_subject_strings == ["Presse"]
    _send(lab, "Presseanfrage Rettungswache")
    _send(lab, "Haushalt 2027")
    moved = target.get(subject="Presseanfrage Rettungswache")
    assert moved.is_read
    assert not account.inbox.filter(subject="Presseanfrage Rettungswache").exists()
    assert account.inbox.get(subject="Haushalt 2027").is_read is False
    stored.is_enabled = False
    account.set_rule(stored)
    _send(lab, "Pressespiegel")
    assert account.inbox.filter(subject="Pressespiegel").exists()
    account.delete_rule(stored)
    assert account.rules == []


def test_a_delegate_with_folder_grants_cannot_read_the_bosss_rules(lab: LabServer) -> None:
    from exchangelib.services import GetInboxRules

    with pytest.raises(ErrorAccessDenied):
        list(GetInboxRules(account=lab.account("assistenz", "chef")).call(mailbox=CHEF))


def test_rule_answers_are_schema_valid(memory_lab: Lab) -> None:
    create = (
        "<m:UpdateInboxRules><m:RemoveOutlookRuleBlob>true</m:RemoveOutlookRuleBlob>"
        "<m:Operations><t:CreateRuleOperation><t:Rule><t:DisplayName>Alles lesen</t:DisplayName>"
        "<t:Priority>1</t:Priority><t:IsEnabled>true</t:IsEnabled><t:Conditions>"
        "<t:ContainsSenderStrings><t:String>koch</t:String></t:ContainsSenderStrings>"
        "</t:Conditions><t:Actions><t:MarkAsRead>true</t:MarkAsRead></t:Actions></t:Rule>"
        "</t:CreateRuleOperation></m:Operations></m:UpdateInboxRules>"
    )
    for body in (create, "<m:GetInboxRules/>"):
        result = soap.handle(memory_lab, CHEF, envelope(body))
        assert result.status == 200 and b'ResponseClass="Success"' in result.body
        assert_valid_ews(result.body)
    missing = (
        "<m:UpdateInboxRules><m:Operations><t:DeleteRuleOperation><t:RuleId>nope</t:RuleId>"
        "</t:DeleteRuleOperation></m:Operations></m:UpdateInboxRules>"
    )
    refused = soap.handle(memory_lab, CHEF, envelope(missing))
    assert b"ErrorInboxRulesValidationError" in refused.body
    assert_valid_ews(refused.body)
