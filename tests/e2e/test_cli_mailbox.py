"""The medbridge mailbox commands against the lab, as a script would use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exlab.demo import DEMO_PASSWORD
from tests.e2e.conftest import ASSISTENZ, CHEF, SACHBEARBEITUNG, TEAMKALENDER, LabServer

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, password: str = DEMO_PASSWORD) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
        env={**os.environ, "MEDBRIDGE_PASSWORD": password, "TZ": "UTC"},
        stdin=subprocess.DEVNULL,
    )


def ok(*args: str) -> str:
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def as_user(lab: LabServer):
    def login(user: str) -> None:
        ok(
            "profile",
            "add",
            "lab",
            "--server",
            lab.url,
            "--user",
            user,
            "--auth",
            "basic",
            "--version",
            "Exchange2016",
            "--default",
        )

    return login


def test_mail_ls_json_of_the_boss_inbox_then_show_and_flag(as_user) -> None:
    as_user(ASSISTENZ)
    data = json.loads(ok("mail", "ls", "--mailbox", CHEF, "--limit", "5", "--json"))
    assert data["folder"]["distinguished"] == "inbox" and data["more"] is True
    assert len(data["items"]) == 5
    first = data["items"][0]
    assert {"id", "subject", "from", "received", "is_read", "flag", "type"} <= set(first)
    assert first["type"] == "message"
    shown = json.loads(ok("mail", "show", first["id"], "--json"))
    assert shown["item"]["id"] == first["id"]
    assert {"body", "to", "attachments", "categories"} <= set(shown["item"])
    flagged = json.loads(ok("mail", "flag", first["id"], "--due", "2026-12-01", "--json"))
    assert flagged["flag"]["status"] == "flagged"
    assert flagged["flag"]["due"].startswith("2026-12-01")


def test_send_on_behalf_from_the_command_line(as_user) -> None:
    as_user(ASSISTENZ)
    out = ok(
        "mail",
        "send",
        "--mailbox",
        CHEF,
        "--to",
        SACHBEARBEITUNG,
        "--subject",
        "Rückruf erbeten",
        "--body",
        "Bitte melden.",
    )
    assert out.strip() == "sent"
    as_user(SACHBEARBEITUNG)
    data = json.loads(ok("mail", "ls", "--json", "--limit", "5"))
    got = next(m for m in data["items"] if m["subject"] == "Rückruf erbeten")
    assert got["from"]["email"] == CHEF and got["sender"]["email"] == ASSISTENZ


def test_calendar_create_week_export_import(as_user, tmp_path: Path) -> None:
    as_user(ASSISTENZ)
    created = json.loads(
        ok(
            "calendar",
            "create",
            "--mailbox",
            CHEF,
            "--subject",
            "Haushaltsrede",
            "--start",
            "2026-12-02T10:00",
            "--end",
            "2026-12-02T11:30",
            "--location",
            "Kreistagssaal",
            "--json",
        )
    )
    week = json.loads(ok("calendar", "week", "2026-12-02", "--mailbox", CHEF, "--json"))
    assert created["id"] in {e["id"] for e in week["events"]}
    ics = tmp_path / "rede.ics"
    ok("calendar", "export", str(ics), "--id", created["id"])
    assert b"SUMMARY:Haushaltsrede" in ics.read_bytes()
    imported = json.loads(ok("calendar", "import", str(ics), "--json"))  # into own calendar
    (copy,) = imported["created"]
    day = json.loads(ok("calendar", "day", "2026-12-02", "--json"))
    assert copy["id"] in {e["id"] for e in day["events"]}


def test_folders_tree_and_delegates_and_permissions(as_user) -> None:
    as_user(CHEF)
    tree = json.loads(ok("folders", "tree", "--json"))
    names = [c["distinguished"] for c in tree["tree"]["children"]]
    assert "inbox" in names and "calendar" in names
    delegates = json.loads(ok("delegates", "show", "--json"))
    assert ASSISTENZ in {d["address"] for d in delegates["delegates"]}
    perms = json.loads(ok("permissions", "show", "calendar", "--json"))
    assert {"principal": ASSISTENZ, "role": "Editor"}.items() <= next(
        p for p in perms["permissions"] if p["principal"] == ASSISTENZ
    ).items()


def test_user_without_rights_gets_one_line_and_exit_code_4(as_user) -> None:
    as_user(SACHBEARBEITUNG)
    result = cli("mail", "ls", "--mailbox", CHEF)
    assert result.returncode == 4
    assert result.stderr.startswith("medbridge: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_wrong_password_is_exit_code_3(as_user) -> None:
    as_user(ASSISTENZ)
    result = cli("folders", "tree", password="falsch")
    assert result.returncode == 3 and "password" in result.stderr


def test_contacts_tasks_notes_groups(as_user) -> None:
    as_user(ASSISTENZ)
    created = json.loads(
        ok(
            "contacts",
            "create",
            "display_name=Erika Muster",
            "emails=erika@klinikum.example",
            "phones=business:+49 1",
            "--json",
        )
    )
    shown = json.loads(ok("contacts", "show", created["id"], "--json"))
    assert shown["emails"] == ["erika@klinikum.example"]
    assert shown["phones"] == {"BusinessPhone": "+49 1"}
    ok("contacts", "update", created["id"], "job_title=Leitung")
    assert json.loads(ok("contacts", "show", created["id"], "--json"))["job_title"] == "Leitung"
    task = json.loads(
        ok(
            "tasks",
            "create",
            "subject=Akte holen",
            "due=2026-12-04",
            "status=in_progress",
            "--mailbox",
            CHEF,
            "--json",
        )
    )
    listed = json.loads(ok("tasks", "ls", "--mailbox", CHEF, "--json", "--limit", "100"))
    assert task["id"] in {t["id"] for t in listed["items"]}
    note = json.loads(ok("notes", "create", "subject=Rückruf", "body=Tel 123", "--json"))
    ok("notes", "delete", note["id"])
    bad = cli("tasks", "create", "colour=blue")
    assert bad.returncode == 2 and "field=value" in bad.stderr


def test_respond_freebusy_and_permission_set(as_user) -> None:
    as_user(ASSISTENZ)
    inbox = json.loads(ok("mail", "ls", "--mailbox", CHEF, "--limit", "200", "--json"))
    request = next(
        m
        for m in inbox["items"]
        if (m["item_class"] or "").startswith("IPM.Schedule.Meeting.Request")
    )
    assert ok("calendar", "respond", request["id"], "accept", "--message", "Gern").strip()
    busy = json.loads(
        ok("calendar", "freebusy", CHEF, "--from", "2026-11-23", "--days", "7", "--json")
    )
    assert busy[0]["address"] == CHEF and busy[0]["slots"]
    ok("permissions", "set", "calendar", SACHBEARBEITUNG, "Reviewer")
    perms = json.loads(ok("permissions", "show", "calendar", "--json"))
    assert {"principal": SACHBEARBEITUNG, "role": "Reviewer"}.items() <= next(
        p for p in perms["permissions"] if p["principal"] == SACHBEARBEITUNG
    ).items()
    denied = cli("permissions", "set", "calendar", SACHBEARBEITUNG, "Owner", "--mailbox", CHEF)
    assert denied.returncode == 4


def test_sorting_search_public_tree_and_agenda(as_user) -> None:
    as_user(ASSISTENZ)
    by_subject = json.loads(
        ok(
            "mail",
            "ls",
            "--mailbox",
            CHEF,
            "--sort",
            "subject",
            "--ascending",
            "--limit",
            "20",
            "--json",
        )
    )
    subjects = [m["subject"] for m in by_subject["items"]]
    assert subjects == sorted(subjects)
    found = json.loads(
        ok("mail", "ls", "--mailbox", CHEF, "--search", "Haushalt", "--json", "--limit", "200")
    )
    assert found["items"] and not found["more"]
    assert all("haushalt" in m["subject"].lower() for m in found["items"])  # demo: in subjects
    public = json.loads(ok("folders", "tree", "--public", "--json"))
    kinds = set()

    def walk(node: dict) -> None:
        kinds.add(node["kind"])
        for child in node["children"]:
            walk(child)

    walk(public["tree"])
    assert {"mail", "calendar", "contacts", "tasks", "notes"} <= kinds
    agenda = json.loads(
        ok(
            "calendar",
            "agenda",
            "--from",
            "2026-11-23",
            "--days",
            "7",
            "--mailbox",
            CHEF,
            "--calendar",
            TEAMKALENDER,
            "--json",
        )
    )
    assert {c["mailbox"] for c in agenda["calendars"]} == {CHEF, TEAMKALENDER}
    starts = [e["start"] for e in agenda["events"]]
    assert starts == sorted(starts)
    bad = cli("mail", "ls", "--sort", "colour")
    assert bad.returncode == 2 and "Sort by one of" in bad.stderr


def test_respond_proposing_a_new_time(as_user) -> None:
    as_user(ASSISTENZ)
    ok(
        "calendar",
        "create",
        "--mailbox",
        CHEF,
        "--subject",
        "Ortstermin Kita",
        "--start",
        "2030-03-04T10:00",
        "--attendee",
        SACHBEARBEITUNG,
    )
    as_user(SACHBEARBEITUNG)
    inbox = json.loads(ok("mail", "ls", "--limit", "50", "--json"))
    request = next(m for m in inbox["items"] if m["subject"] == "Ortstermin Kita")
    accept = cli(
        "calendar",
        "respond",
        request["id"],
        "accept",
        "--propose",
        "2030-03-05T10:00",
        "2030-03-05T11:00",
    )
    assert accept.returncode == 2 and "tentative or decline" in accept.stderr
    out = ok(
        "calendar",
        "respond",
        request["id"],
        "decline",
        "--propose",
        "2030-03-05T10:00",
        "2030-03-05T11:00",
    )
    assert out.strip() == "declined, proposed 2030-03-05 10:00 to 2030-03-05 11:00"
    as_user(ASSISTENZ)
    boss = json.loads(ok("mail", "ls", "--mailbox", CHEF, "--limit", "50", "--json"))
    answer = next(m for m in boss["items"] if m["subject"] == "Abgelehnt: Ortstermin Kita")
    shown = json.loads(ok("mail", "show", answer["id"], "--json"))
    assert shown["item"]["proposed_time"][0].startswith("2030-03-05T")


def test_public_folder_items_name_their_mailbox_in_json(as_user) -> None:
    as_user(ASSISTENZ)
    listed = json.loads(ok("mail", "ls", "--mailbox", "public", "--folder", "Verwaltung", "--json"))
    assert listed["items"], "the demo's public folder Verwaltung holds mail"
    assert {m["mailbox"] for m in listed["items"]} == {"public"}
    shown = json.loads(ok("mail", "show", listed["items"][0]["id"], "--json"))
    assert shown["item"]["mailbox"] == "public"
