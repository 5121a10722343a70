"""Mailbox commands against the lab: behaviour found wanting in use and fixed since."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import ASSISTENZ, CHEF, SACHBEARBEITUNG
from tests.e2e.test_cli_mailbox import as_user, cli, ok

__all__ = ["as_user"]


def test_mailbox_public_never_falls_back_to_the_own_mailbox(as_user) -> None:
    as_user(ASSISTENZ)
    own = json.loads(ok("folders", "tree", "--json"))
    public = json.loads(ok("folders", "tree", "--mailbox", "public", "--json"))
    assert public["mailbox"] == "public"
    assert public["tree"]["distinguished"] == "publicfoldersroot"
    assert public["tree"]["id"] != own["tree"]["id"]
    for args in (
        ("mail", "ls", "--mailbox", "public"),
        ("notes", "ls", "--mailbox", "public"),
        ("calendar", "day", "2026-11-23", "--mailbox", "public"),
        ("mail", "send", "--mailbox", "public", "--to", CHEF, "--subject", "x", "--body", "y"),
    ):
        refused = cli(*args)
        assert refused.returncode == 2, (args, refused.stdout)
        assert refused.stderr.count("\n") == 1 and "public folders" in refused.stderr
    listed = json.loads(ok("mail", "ls", "--mailbox", "public", "-f", "Verwaltung", "--json"))
    assert listed["folder"]["mailbox"] == "public"


def test_folder_path_may_start_with_a_well_known_name(as_user) -> None:
    as_user(ASSISTENZ)
    german = json.loads(ok("mail", "ls", "-m", CHEF, "-f", "Posteingang/Kreistag", "--json"))
    english = json.loads(ok("mail", "ls", "-m", CHEF, "-f", "inbox/Kreistag", "--json"))
    assert english["folder"]["id"] == german["folder"]["id"]
    assert english["folder"]["name"] == "Kreistag"
    missing = cli("mail", "ls", "-m", CHEF, "-f", "inbox/Gibtsnicht")
    assert missing.returncode == 5


def test_a_mailbox_that_is_no_address_gets_our_sentence(as_user) -> None:
    as_user(ASSISTENZ)
    bad = cli("mail", "ls", "--mailbox", "foo")
    assert bad.returncode == 2
    assert "primary_smtp_address" not in bad.stderr and "not an e-mail address" in bad.stderr


def test_categorize_without_categories_refuses_and_keeps_them(as_user) -> None:
    as_user(ASSISTENZ)
    first = json.loads(ok("mail", "ls", "-m", CHEF, "--limit", "1", "--json"))["items"][0]
    ok("mail", "categorize", first["id"], "Kreistag")
    for args in ((), ("--json",), ("--add",)):
        refused = cli("mail", "categorize", first["id"], *args)
        assert refused.returncode == 2 and "--clear" in refused.stderr
    shown = json.loads(ok("mail", "show", first["id"], "--json"))
    assert shown["item"]["categories"] == ["Kreistag"]
    cleared = json.loads(ok("mail", "categorize", first["id"], "--clear", "--json"))
    assert cleared["categories"] == []


def test_day_ranges_are_bounded_with_one_line(as_user) -> None:
    as_user(ASSISTENZ)
    for args in (
        ("calendar", "agenda", "--days", "100000", "-m", CHEF),
        ("calendar", "agenda", "--days", "-3", "-m", CHEF),
        ("calendar", "agenda", "--days", "0"),
        ("calendar", "export", "-", "--days", "5000"),
        ("calendar", "freebusy", CHEF, "--days", "400"),
    ):
        refused = cli(*args)
        assert refused.returncode == 2, args
        assert refused.stderr.startswith("medbridge: --days must be 1 to ")
        assert refused.stdout == ""
    year = json.loads(ok("calendar", "agenda", "--from", "2026-11-23", "--days", "366", "--json"))
    assert year["end"].startswith("2027-11-24")


def test_freebusy_for_an_unknown_address_exits_non_zero(as_user) -> None:
    as_user(ASSISTENZ)
    result = cli("calendar", "freebusy", CHEF, "nobody@musterstadt.example", "--from", "2026-11-23")
    assert result.returncode == 5
    assert "nobody@musterstadt.example" in result.stderr
    assert CHEF in result.stdout  # the known one is still shown


def test_occurrences_name_their_series_and_create_answers_what_the_server_stored(
    as_user,
) -> None:
    as_user(ASSISTENZ)
    created = json.loads(
        ok(
            "calendar",
            "create",
            "-m",
            CHEF,
            "--subject",
            "Serie zum Nachlesen",
            "--start",
            "2026-12-01T08:00",
            "--end",
            "2026-12-01T08:30",
            "--repeat",
            "weekly",
            "--count",
            "4",
            "--json",
        )
    )
    assert created["event_kind"] == "series"
    assert created["created"] and created["item_class"] == "IPM.Appointment"
    assert created["mailbox"] == CHEF
    week = json.loads(ok("calendar", "week", "2026-12-08", "-m", CHEF, "--json"))
    (occurrence,) = [e for e in week["events"] if e["subject"] == "Serie zum Nachlesen"]
    assert occurrence["event_kind"] == "occurrence"
    assert occurrence["series_id"] == created["id"]
    shown = json.loads(ok("mail", "show", occurrence["id"], "--json"))["item"]
    assert shown["series_id"] == created["id"]


ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Test//EN
BEGIN:VEVENT
UID:import-twice-1@example
DTSTART:20261203T090000Z
DTEND:20261203T100000Z
SUMMARY:{subject}
END:VEVENT
END:VCALENDAR
"""


def test_importing_the_same_uid_again_updates_instead_of_duplicating(
    as_user, tmp_path: Path
) -> None:
    as_user(ASSISTENZ)
    source = tmp_path / "in.ics"
    source.write_text(ICS.format(subject="Importiert"))
    first = ok("calendar", "import", str(source), "-m", CHEF)
    assert first.startswith("1 event imported into ")
    source.write_text(ICS.format(subject="Importiert, verschoben"))
    second = ok("calendar", "import", str(source), "-m", CHEF)
    assert second.startswith("0 events imported") and "1 event already there, updated" in second
    day = json.loads(ok("calendar", "day", "2026-12-03", "-m", CHEF, "--json"))
    same = [e for e in day["events"] if e["uid"] == "import-twice-1@example"]
    assert [e["subject"] for e in same] == ["Importiert, verschoben"]


def test_importing_an_exported_series_again_skips_it(as_user, tmp_path: Path) -> None:
    as_user(ASSISTENZ)
    week = json.loads(ok("calendar", "week", "2026-11-23", "-m", CHEF, "--json"))
    occurrence = next(e for e in week["events"] if e["event_kind"] == "occurrence")
    exported = tmp_path / "series.ics"
    ok("calendar", "export", str(exported), "--id", occurrence["series_id"])
    again = ok("calendar", "import", str(exported), "-m", CHEF)
    assert again.startswith("0 events imported") and "1 series already there, skipped" in again
    after = json.loads(ok("calendar", "week", "2026-11-23", "-m", CHEF, "--json"))
    assert len(after["events"]) == len(week["events"])


def test_contacts_tasks_notes_show_readable_blocks(as_user) -> None:
    as_user(ASSISTENZ)
    listed = ok("contacts", "ls", "-m", CHEF, "-n", "3")
    first = listed.splitlines()[0].split()
    assert "@" in first[-1]  # the address column
    contact = ok("contacts", "show", first[0])
    assert "E-mail:" in contact and "@" in contact
    task_id = ok("tasks", "create", "subject=Ablage", "due=2026-12-04").strip()
    assert ok("tasks", "update", task_id, "status=completed").startswith("updated")
    task = ok("tasks", "show", task_id)
    assert "Status:      completed, 100% complete" in task
    assert json.loads(ok("tasks", "show", task_id, "--json"))["percent_complete"] == 100
    note_id = ok("notes", "create", "subject=Merkzettel", "body=Akten holen").strip()
    note = ok("notes", "show", note_id)
    assert note.startswith("Subject:     Merkzettel") and note.rstrip().endswith("Akten holen")
    for text in (contact, task, note):
        assert "{" not in text and "[" not in text and "body_is_html" not in text


def test_permission_set_keeps_the_delegates_grant(as_user) -> None:
    as_user(CHEF)
    before = json.loads(ok("permissions", "show", "inbox", "--json"))["permissions"]
    granted = {p["principal"]: p["role"] for p in before}
    assert granted[ASSISTENZ] == "Editor"
    ok("permissions", "set", "inbox", SACHBEARBEITUNG, "Reviewer")
    after = json.loads(ok("permissions", "show", "inbox", "--json"))["permissions"]
    roles = {p["principal"]: p["role"] for p in after}
    assert roles[SACHBEARBEITUNG] == "Reviewer" and roles[ASSISTENZ] == "Editor"
    delegates = json.loads(ok("delegates", "show", "--json"))["delegates"]
    tom = next(d for d in delegates if d["address"] == ASSISTENZ)
    assert tom["levels"]["inbox"] == "Editor"


def test_mail_move_says_where_to(as_user) -> None:
    as_user(ASSISTENZ)
    first = json.loads(ok("mail", "ls", "-m", CHEF, "--limit", "1", "--json"))["items"][0]
    said = ok("mail", "move", first["id"], "inbox/Kreistag", "-m", CHEF)
    assert said.startswith(f"moved to Kreistag ({CHEF}), new id: ")
    new_id = said.rsplit(" ", 1)[1].strip()
    shown = json.loads(ok("mail", "show", new_id, "--json"))["item"]
    assert shown["subject"] == first["subject"]
