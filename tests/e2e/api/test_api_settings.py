"""Automatic replies, inbox rules, mail tips and search over the REST API against the lab:
the assistant with FullAccess works, the colleague without rights gets a 403 problem."""

from __future__ import annotations

from exlab.core.mailbox_rights import add_mailbox_permission
from tests.e2e.api.conftest import ASSISTENZ, CHEF, POSTSTELLE, SACHBEARBEITUNG, World
from tests.e2e.api.helpers import assert_problem, folder_id


def test_assistant_sets_and_reads_a_mailboxs_automatic_replies(world: World) -> None:
    body = {
        "state": "scheduled",
        "audience": "known",
        "start": "2026-12-21T08:00:00+01:00",
        "end": "2027-01-04T08:00:00+01:00",
        "internal_reply": "Zwischen den Jahren geschlossen.",
        "external_reply": "Closed.",
    }
    with world.client() as http:
        put = http.put(f"/v1/mailboxes/{POSTSTELLE}/auto-replies", json=body)
        assert put.status_code == 200, put.text
        got = http.get(f"/v1/mailboxes/{POSTSTELLE}/auto-replies").json()["auto_replies"]
        assert got["state"] == "scheduled" and got["audience"] == "known"
        assert got["internal_reply"] == body["internal_reply"]
        backwards = {**body, "end": "2026-12-20T08:00:00+01:00"}
        assert_problem(http.put(f"/v1/mailboxes/{POSTSTELLE}/auto-replies", json=backwards), 422)


def test_assistant_manages_the_bosss_rules(world: World) -> None:
    add_mailbox_permission(world.lab.lab.store, CHEF, ASSISTENZ, "FullAccess")
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
        made = http.post(
            f"/v1/mailboxes/{CHEF}/rules",
            json={
                "kind": "move_by_sender",
                "sender": "kreistag@extern.example",
                "folder_id": inbox,
            },
        )
        assert made.status_code == 201, made.text
        rule = made.json()
        flag = http.post(
            f"/v1/mailboxes/{CHEF}/rules", json={"kind": "flag_by_keyword", "keyword": "Eilt"}
        ).json()
        listed = http.get(f"/v1/mailboxes/{CHEF}/rules").json()["rules"]
        assert {r["id"] for r in listed} >= {rule["id"], flag["id"]}
        off = http.patch(f"/v1/mailboxes/{CHEF}/rules/{flag['id']}", json={"enabled": False})
        assert off.status_code == 200 and off.json()["enabled"] is False
        assert http.delete(f"/v1/mailboxes/{CHEF}/rules/{rule['id']}").status_code == 204
        left = http.get(f"/v1/mailboxes/{CHEF}/rules").json()["rules"]
        assert rule["id"] not in {r["id"] for r in left}


def test_colleague_without_rights_gets_403_problems(world: World) -> None:
    with world.client("sachbearbeitung") as http:
        for answer in (
            http.get(f"/v1/mailboxes/{CHEF}/auto-replies"),
            http.put(
                f"/v1/mailboxes/{CHEF}/auto-replies",
                json={"state": "enabled", "internal_reply": "x", "external_reply": "y"},
            ),
            http.get(f"/v1/mailboxes/{CHEF}/rules"),
            http.post(
                f"/v1/mailboxes/{CHEF}/rules", json={"kind": "flag_by_keyword", "keyword": "x"}
            ),
            http.post("/v1/mail-tips", json={"recipients": [ASSISTENZ], "from_mailbox": CHEF}),
            http.post("/v1/search", json={"text": "Haushalt", "mailboxes": [CHEF]}),
        ):
            body = assert_problem(answer, 403)
            assert body["detail"]
            if "/auto-replies" in str(answer.url) or "/rules" in str(answer.url):
                assert body["missing_right"] == "FullAccess"


def test_mail_tips_and_search_with_a_partial_failure(world: World) -> None:
    with world.client() as http:
        tips = http.post(
            "/v1/mail-tips",
            json={"recipients": ["buerger@extern.example", ASSISTENZ], "from_mailbox": CHEF},
        )
        assert tips.status_code == 200, tips.text
        outside, inside = tips.json()["tips"]
        assert outside["external"] and "outside the organisation" in outside["warnings"][0]
        assert not inside["external"]
        found = http.post("/v1/search", json={"text": "a", "mailboxes": [CHEF, SACHBEARBEITUNG]})
        assert found.status_code == 200, found.text
        groups = {g["mailbox"]: g for g in found.json()["groups"]}
        assert groups[CHEF]["error"] is None and groups[CHEF]["items"]
        assert groups[SACHBEARBEITUNG]["error_kind"] == "AccessDenied"
