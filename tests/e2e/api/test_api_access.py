"""Each group of endpoints over real HTTP: the delegate (assistenz) works in the boss's
mailbox, the colleague without rights (sachbearbeitung) is refused with the missing right,
and both also sign in with Kerberos from a real KDC and with the lab authority's tokens."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests

from med.auth.negotiate import NegotiateAuth
from tests.e2e.api.conftest import ASSISTENZ, CHEF, SACHBEARBEITUNG, TEAMKALENDER, World
from tests.e2e.api.helpers import assert_problem, folder_id, items, wait_for
from tests.lab.kdcrealm import use_tickets


def test_mailboxes_and_folders_of_the_boss_for_the_delegate(world: World) -> None:
    with world.client() as http:
        listed = http.get("/v1/mailboxes").json()
        assert listed["backend"] == "ews" and "public_folders" in listed["capabilities"]
        boxes = listed["mailboxes"]
        kinds = {b["address"]: b["kind"] for b in boxes}
        assert kinds[ASSISTENZ] == "own" and kinds[CHEF] == "delegated"
        tree = http.get(f"/v1/mailboxes/{CHEF}/folders")
        assert tree.status_code == 200
        names = _names(tree.json())
        assert {"Vorgänge", "Kreistag"} <= names
        inbox = http.get(f"/v1/mailboxes/{CHEF}/folders/inbox").json()
        assert inbox["rights"]["read"] == "full" and not inbox["rights"]["folder_owner"]
        public = http.get("/v1/mailboxes/public/folders")
        assert public.status_code == 200 and "Verwaltung" in _names(public.json())
    with world.client("chef") as http:
        archive = http.get(f"/v1/mailboxes/archive:{CHEF}/folders")
        assert archive.status_code == 200, archive.text
        assert {"2024", "2025"} <= _names(archive.json())


def _names(node: dict[str, object]) -> set[str]:
    folder = node["folder"]
    assert isinstance(folder, dict)
    children = node["children"]
    assert isinstance(children, list)
    return {str(folder["name"])}.union(*(_names(c) for c in children))


def test_colleague_without_rights_is_refused_the_boss_inbox(world: World) -> None:
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
    with world.client("sachbearbeitung") as http:
        body = assert_problem(http.get(f"/v1/mailboxes/{CHEF}/folders/inbox"), 403)
        assert body["missing_right"] == "FolderVisible" and body["mailbox"] == CHEF
        body = assert_problem(http.get(f"/v1/folders/{inbox}/items"), 403)
        assert body["missing_right"] == "ReadItems"


def test_items_page_by_cursor_and_item_with_etag(world: World) -> None:
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
        first = http.get(f"/v1/folders/{inbox}/items", params={"limit": 3})
        page = first.json()
        assert len(page["items"]) == 3 and page["next_cursor"]
        assert 'rel="next"' in first.headers["link"]
        second = http.get(
            f"/v1/folders/{inbox}/items", params={"limit": 3, "cursor": page["next_cursor"]}
        ).json()
        assert not {i["id"] for i in page["items"]} & {i["id"] for i in second["items"]}
        other_filter = http.get(
            f"/v1/folders/{inbox}/items",
            params={"limit": 3, "cursor": page["next_cursor"], "unread": True},
        )
        assert_problem(other_filter, 400)
        one = http.get(f"/v1/items/{page['items'][0]['id']}")
        assert one.status_code == 200 and one.json()["body"] is not None
        assert one.headers["etag"] == f'"{one.json()["change_key"]}"'
        again = http.get(
            f"/v1/items/{one.json()['id']}", headers={"If-None-Match": one.headers["etag"]}
        )
        assert again.status_code == 304


def test_search_filters_the_list(world: World) -> None:
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
        subject = items(http, inbox, limit=1)[0]["subject"]
        found = items(http, inbox, search=subject, limit=50)
        assert found and all(subject in i["subject"] for i in found)


def test_delegate_creates_updates_moves_and_deletes_in_the_boss_tasks(world: World) -> None:
    with world.client() as http:
        tasks = folder_id(http, CHEF, "tasks")
        created = http.post(
            f"/v1/folders/{tasks}/items",
            json={"type": "task", "subject": "Haushaltsrede vorbereiten", "importance": "high"},
        )
        assert created.status_code == 201, created.text
        task = created.json()["item"]
        assert task["mailbox"] == CHEF and created.headers["etag"]
        changed = http.patch(
            f"/v1/items/{task['id']}",
            json={"percent_complete": 50, "status": "in_progress"},
            headers={"If-Match": created.headers["etag"]},
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["percent_complete"] == 50
        copy = http.post(f"/v1/items/{task['id']}/copy", json={"folder_id": tasks})
        assert copy.status_code == 201
        gone = http.delete(f"/v1/items/{copy.json()['id']}", params={"hard": True})
        assert gone.status_code == 204
        assert http.get(f"/v1/items/{copy.json()['id']}").status_code == 404


def test_colleague_cannot_create_in_the_boss_tasks(world: World) -> None:
    with world.client() as http:
        tasks = folder_id(http, CHEF, "tasks")
    with world.client("sachbearbeitung") as http:
        refused = http.post(f"/v1/folders/{tasks}/items", json={"subject": "Fremd"})
        assert assert_problem(refused, 403)["missing_right"] == "CreateItems"


def test_send_on_behalf_of_the_boss_arrives_from_the_boss(world: World) -> None:
    subject = f"Einladung Kreistag {uuid.uuid4().hex[:8]}"
    with world.client() as http:
        sent = http.post(
            "/v1/send",
            json={
                "from_mailbox": CHEF,
                "message": {
                    "to": [{"email": SACHBEARBEITUNG}],
                    "subject": subject,
                    "body": "Bitte vormerken.",
                },
            },
        )
        assert sent.status_code == 202, sent.text
    with world.client("sachbearbeitung") as http:
        inbox = folder_id(http, SACHBEARBEITUNG, "inbox")
        (mail,) = wait_for(lambda: items(http, inbox, search=subject))
        assert mail["from"]["email"] == CHEF and mail["sender"]["email"] == ASSISTENZ
        refused = http.post(
            "/v1/send",
            json={"from_mailbox": CHEF, "message": {"to": [{"email": ASSISTENZ}], "subject": "x"}},
        )
        assert refused.status_code == 403, refused.text


def test_calendar_view_and_free_busy(world: World) -> None:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=14)
    with world.client() as http:
        calendar = folder_id(http, CHEF, "calendar")
        view = http.get(
            "/v1/calendar-view",
            params={"calendar": [calendar], "start": start.isoformat(), "end": end.isoformat()},
        )
        assert view.status_code == 200, view.text
        events = view.json()["events"]
        assert events and all(e["type"] == "event" for e in events)
        starts = [e["start"] for e in events]
        assert starts == sorted(starts)
        busy = http.post(
            "/v1/free-busy",
            json={"addresses": [CHEF], "start": start.isoformat(), "end": end.isoformat()},
        )
        assert busy.status_code == 200 and busy.json()["people"][0]["slots"]
        ical = http.get(f"/v1/items/{events[0]['id']}/ical")
        assert ical.status_code == 200 and b"BEGIN:VEVENT" in ical.content


def test_permissions_only_for_the_folder_owner(world: World) -> None:
    with world.client() as http:
        boss_inbox = folder_id(http, CHEF, "inbox")
        refused = http.get(f"/v1/folders/{boss_inbox}/permissions")
        assert assert_problem(refused, 403)["missing_right"] == "FolderOwner"
        own = folder_id(http, ASSISTENZ, "calendar")
        changed = http.put(
            f"/v1/folders/{own}/permissions/{SACHBEARBEITUNG}", json={"role": "Reviewer"}
        )
        assert changed.status_code == 200, changed.text
        roles = {p["principal"]: p["role"] for p in changed.json()["permissions"]}
        assert roles[SACHBEARBEITUNG] == "Reviewer"
    with world.client("chef") as http:
        delegates = http.get(f"/v1/mailboxes/{CHEF}/delegates")
        assert delegates.status_code == 200
        assert ASSISTENZ in {d["address"] for d in delegates.json()["delegates"]}


def test_api_key_without_the_scope_is_refused(world: World) -> None:
    with world.client("reader") as http:
        assert http.get("/v1/mailboxes").status_code == 200
        refused = http.post("/v1/send", json={"message": {"to": [{"email": CHEF}]}})
        assert assert_problem(refused, 403)["missing_scope"] == "send"


def test_no_or_wrong_credentials_get_401_with_the_schemes(world: World) -> None:
    bare = httpx.get(f"{world.api.url}/v1/mailboxes")
    assert_problem(bare, 401)
    offered = bare.headers["www-authenticate"]
    assert "Bearer" in offered and "ApiKey" in offered
    assert_problem(
        httpx.get(f"{world.api.url}/v1/mailboxes", headers={"X-API-Key": "mbk_0000_wrong"}), 401
    )
    assert_problem(
        httpx.get(f"{world.api.url}/v1/mailboxes", headers={"Authorization": "Bearer not.a.jwt"}),
        401,
    )


# ----------------------------------------------------------------------------- Kerberos


@pytest.mark.kerberos
def test_kerberos_caller_works_in_the_boss_mailbox(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if world.kdc is None:
        pytest.skip("krb5kdc is not installed")
    tickets = use_tickets(world.kdc, tmp_path, monkeypatch)
    assert tickets.kinit(ASSISTENZ).returncode == 0
    with requests.Session() as http:
        http.auth = NegotiateAuth(require_mutual=True)
        answer = http.get(f"{world.api.url}/v1/mailboxes/{CHEF}/folders/inbox", timeout=30)
        assert answer.status_code == 200, answer.text
        inbox = answer.json()["id"]
        listed = http.get(f"{world.api.url}/v1/folders/{inbox}/items?limit=2", timeout=30)
        assert listed.status_code == 200 and len(listed.json()["items"]) == 2


@pytest.mark.kerberos
def test_kerberos_colleague_is_refused_and_a_bad_token_is_401(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if world.kdc is None:
        pytest.skip("krb5kdc is not installed")
    tickets = use_tickets(world.kdc, tmp_path, monkeypatch)
    assert tickets.kinit(SACHBEARBEITUNG).returncode == 0
    with requests.Session() as http:
        http.auth = NegotiateAuth()
        refused = http.get(f"{world.api.url}/v1/mailboxes/{CHEF}/folders/inbox", timeout=30)
        assert refused.status_code == 403
        assert refused.json()["missing_right"] == "FolderVisible"
    forged = httpx.get(
        f"{world.api.url}/v1/mailboxes",
        headers={"Authorization": "Negotiate YIIBkwYGKwYBBQUCoIIBhzCCAYM="},
    )
    assert_problem(forged, 401)
    assert "Negotiate" in forged.headers["www-authenticate"]


# ----------------------------------------------------------------------------- OAuth bearer


def test_bearer_token_of_the_lab_authority_goes_on_to_graph(world: World) -> None:
    token = world.bearer_token(ASSISTENZ)
    with httpx.Client(
        base_url=world.api.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        answer = http.get("/v1/mailboxes")
        assert answer.status_code == 200, answer.text
        listed = answer.json()
        assert listed["backend"] == "graph" and "delegates" not in listed["capabilities"]
        inbox = folder_id(http, CHEF, "inbox")
        found = items(http, inbox, limit=2)
        assert len(found) == 2 and all(i["mailbox"] == CHEF for i in found)
        delegates = http.get(f"/v1/mailboxes/{CHEF}/delegates")
        body = assert_problem(delegates, 501)
        assert body["backend"] == "graph" and body["feature"] == "delegates"


def test_bearer_colleague_is_refused_the_boss_inbox(world: World) -> None:
    token = world.bearer_token(SACHBEARBEITUNG)
    answer = httpx.get(
        f"{world.api.url}/v1/mailboxes/{CHEF}/folders/inbox",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert assert_problem(answer, 403)["missing_right"] == "FolderVisible"


# ----------------------------------------------------------------------------- more of each group


def test_attachments_up_and_down_and_move_between_the_boss_folders(world: World) -> None:
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
        drafts_like = http.get(f"/v1/mailboxes/{CHEF}/folders").json()
        vorgaenge = next(
            c["folder"]["id"] for c in _children(drafts_like) if c["folder"]["name"] == "Vorgänge"
        )
        created = http.post(
            f"/v1/folders/{inbox}/items",
            json={
                "subject": "Bescheid Müller",
                "body": "Anbei.",
                "to": [{"email": SACHBEARBEITUNG}],
            },
        )
        assert created.status_code == 201, created.text
        item = created.json()["item"]
        pdf = b"%PDF-1.4 Bescheid" + bytes(range(256))
        uploaded = http.post(
            f"/v1/items/{item['id']}/attachments",
            params={"name": "Bescheid.pdf"},
            content=pdf,
            headers={"Content-Type": "application/pdf"},
        )
        assert uploaded.status_code == 201, uploaded.text
        full = http.get(f"/v1/items/{item['id']}").json()
        (attachment,) = full["attachments"]
        down = http.get(f"/v1/items/{item['id']}/attachments/{attachment['id']}")
        assert down.status_code == 200 and down.content == pdf
        assert 'filename="Bescheid.pdf"' in down.headers["content-disposition"]
        moved = http.post(f"/v1/items/{item['id']}/move", json={"folder_id": vorgaenge})
        assert moved.status_code == 200, moved.text
        assert http.get(f"/v1/items/{moved.json()['id']}").json()["folder_id"] == vorgaenge


def _children(node: dict[str, object]) -> list[dict[str, object]]:
    children = node["children"]
    assert isinstance(children, list)
    out: list[dict[str, object]] = []
    for child in children:
        out.append(child)
        out.extend(_children(child))
    return out


def test_reply_and_forward_on_behalf_and_accept_a_meeting_for_the_boss(world: World) -> None:
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
        mails = items(http, inbox, limit=100)
        request = next(m for m in mails if m.get("is_meeting_request"))
        accepted = http.post(f"/v1/items/{request['id']}/respond", json={"response": "accept"})
        assert accepted.status_code == 202, accepted.text
        plain = next(m for m in mails if not m.get("is_meeting_request") and m.get("from"))
        replied = http.post(
            f"/v1/items/{plain['id']}/reply",
            json={"body": "Danke, erledigt.", "from_mailbox": CHEF},
        )
        assert replied.status_code == 202, replied.text
        subject = plain["subject"]
        forwarded = http.post(
            f"/v1/items/{plain['id']}/forward",
            json={"to": [{"email": SACHBEARBEITUNG}], "body": "Zur Kenntnis", "from_mailbox": CHEF},
        )
        assert forwarded.status_code == 202, forwarded.text
    with world.client("sachbearbeitung") as http:
        own = folder_id(http, SACHBEARBEITUNG, "inbox")
        found = wait_for(
            lambda: [
                m for m in items(http, own, search=subject, limit=50) if m["from"]["email"] == CHEF
            ]
        )
        assert found[0]["sender"]["email"] == ASSISTENZ
        refused = http.post(f"/v1/items/{request['id']}/respond", json={"response": "decline"})
        assert refused.status_code in (403, 404)


def test_calendar_view_overlays_two_calendars_and_imports_icalendar(world: World) -> None:
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    end = start + timedelta(days=14)
    with world.client() as http:
        boss = folder_id(http, CHEF, "calendar")
        team = folder_id(http, TEAMKALENDER, "calendar")
        ics = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uuid.uuid4()}\r\nDTSTAMP:20261201T080000Z\r\n"
            f"DTSTART:{(start + timedelta(days=2, hours=9)).strftime('%Y%m%dT%H%M%SZ')}\r\n"
            f"DTEND:{(start + timedelta(days=2, hours=10)).strftime('%Y%m%dT%H%M%SZ')}\r\n"
            "SUMMARY:Teamrunde Import\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        imported = http.post(
            f"/v1/folders/{team}/ical", content=ics, headers={"Content-Type": "text/calendar"}
        )
        assert imported.status_code == 201, imported.text
        assert imported.json()["created"][0]["subject"] == "Teamrunde Import"
        view = http.get(
            "/v1/calendar-view",
            params={"calendar": [boss, team], "start": start.isoformat(), "end": end.isoformat()},
        )
        assert view.status_code == 200, view.text
        mailboxes = {e["mailbox"] for e in view.json()["events"]}
        assert {CHEF, TEAMKALENDER} <= mailboxes


def test_voicemail_recording_for_the_owner_and_refused_to_the_colleague(world: World) -> None:
    with world.client("chef") as http:
        voicemail = folder_id(http, CHEF, "voicemail")
        (message,) = items(http, voicemail, limit=1)
        audio = http.get(f"/v1/items/{message['id']}/voicemail-audio")
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    with world.client("sachbearbeitung") as http:
        refused = http.get(f"/v1/items/{message['id']}/voicemail-audio")
        assert refused.status_code in (403, 404)


# ----------------------------------------------------------------- every group, each sign-in

Call = Callable[..., Any]


def _tour_as_the_delegate(call: Call) -> tuple[str, str]:
    """One request of each endpoint group in the boss's mailbox; each must work. Returns the
    ids of the boss's inbox and calendar as this sign-in's backend names them."""
    status, body = call("GET", "/v1/mailboxes")
    assert status == 200 and CHEF in {b["address"] for b in body["mailboxes"]}
    status, inbox = call("GET", f"/v1/mailboxes/{CHEF}/folders/inbox")
    assert status == 200, inbox
    status, page = call("GET", f"/v1/folders/{inbox['id']}/items", params={"limit": 2})
    assert status == 200 and len(page["items"]) == 2
    status, calendar = call("GET", f"/v1/mailboxes/{CHEF}/folders/calendar")
    assert status == 200, calendar
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    status, created = call(
        "POST",
        f"/v1/folders/{calendar['id']}/items",
        json={
            "type": "event",
            "subject": "Tour",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        },
    )
    assert status == 201, created
    status, sent = call(
        "POST",
        "/v1/send",
        json={
            "from_mailbox": CHEF,
            "message": {"to": [{"email": SACHBEARBEITUNG}], "subject": "Tour"},
        },
    )
    assert status == 202, sent
    status, view = call(
        "GET",
        "/v1/calendar-view",
        params={
            "calendar": [calendar["id"]],
            "start": start.isoformat(),
            "end": (start + timedelta(days=1)).isoformat(),
        },
    )
    assert status == 200 and "Tour" in {e["subject"] for e in view["events"]}
    status, hooks = call("GET", "/v1/webhooks")
    assert status == 200 and hooks == {"webhooks": []}
    return inbox["id"], calendar["id"]


def _tour_as_the_colleague(call: Call, inbox: str, calendar: str) -> None:
    """The same groups in the boss's mailbox; each is refused."""
    status, body = call("GET", f"/v1/folders/{inbox}/items")
    assert status == 403 and body["missing_right"] == "ReadItems"
    start = datetime.now(UTC).replace(microsecond=0)
    status, body = call(
        "POST",
        f"/v1/folders/{calendar}/items",
        json={
            "type": "event",
            "subject": "Fremd",
            "start": start.isoformat(),
            "end": (start + timedelta(hours=1)).isoformat(),
        },
    )
    assert status == 403, body
    status, body = call(
        "POST",
        "/v1/send",
        json={"from_mailbox": CHEF, "message": {"to": [{"email": ASSISTENZ}], "subject": "x"}},
    )
    assert status == 403, body


def _httpx_call(http: httpx.Client) -> Call:
    def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        answer = http.request(method, path, **kwargs)
        return answer.status_code, answer.json()

    return call


def _requests_call(http: requests.Session, base: str) -> Call:
    def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        answer = http.request(method, base + path, timeout=30, **kwargs)
        return answer.status_code, answer.json()

    return call


@pytest.mark.kerberos
def test_every_group_with_kerberos_for_delegate_and_colleague(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if world.kdc is None:
        pytest.skip("krb5kdc is not installed")
    tickets = use_tickets(world.kdc, tmp_path, monkeypatch)
    assert tickets.kinit(ASSISTENZ).returncode == 0
    with requests.Session() as http:
        http.auth = NegotiateAuth()
        folders = _tour_as_the_delegate(_requests_call(http, world.api.url))
    assert tickets.kinit(SACHBEARBEITUNG).returncode == 0
    with requests.Session() as http:
        http.auth = NegotiateAuth()
        _tour_as_the_colleague(_requests_call(http, world.api.url), *folders)


def test_every_group_with_bearer_tokens_for_delegate_and_colleague(world: World) -> None:
    def bearer(user: str) -> httpx.Client:
        token = world.bearer_token(user)
        return httpx.Client(
            base_url=world.api.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        )

    with bearer(ASSISTENZ) as http:
        folders = _tour_as_the_delegate(_httpx_call(http))
    with bearer(SACHBEARBEITUNG) as http:
        _tour_as_the_colleague(_httpx_call(http), *folders)
