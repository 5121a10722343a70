"""Item commands against the lab: categories, readable contact/task/note blocks, read state."""

from __future__ import annotations

import json

from tests.e2e.conftest import ASSISTENZ, CHEF, SACHBEARBEITUNG
from tests.e2e.test_cli_mailbox import as_user, cli, ok

__all__ = ["as_user"]


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


def test_contacts_tasks_notes_show_readable_blocks(as_user) -> None:
    as_user(ASSISTENZ)
    listed = ok("contacts", "ls", "-m", CHEF, "-n", "3")
    first = listed.splitlines()[0].split()
    assert "@" in first[-1]  # the address column
    contact = ok("contacts", "show", first[0])
    assert "E-mail:" in contact and "@" in contact
    task_id = ok(
        "tasks", "create", "subject=Ablage", "due=2026-12-04", "reminder_at=2026-12-04T08:30"
    ).strip()
    assert "Reminder:    2026-12-04 08:30" in ok("tasks", "show", task_id)
    assert ok("tasks", "update", task_id, "status=completed").startswith("updated")
    task = ok("tasks", "show", task_id)
    assert "Status:      completed, 100% complete" in task
    assert json.loads(ok("tasks", "show", task_id, "--json"))["percent_complete"] == 100
    assert ok("tasks", "update", task_id, "reminder_at=none").startswith("updated")
    assert json.loads(ok("tasks", "show", task_id, "--json"))["reminder_at"] is None
    note_id = ok("notes", "create", "subject=Merkzettel", "body=Akten holen").strip()
    note = ok("notes", "show", note_id)
    assert note.startswith("Subject:     Merkzettel") and note.rstrip().endswith("Akten holen")
    for text in (contact, task, note):
        assert "{" not in text and "[" not in text and "body_is_html" not in text


def test_the_senders_copy_is_read_and_the_recipients_is_not(as_user) -> None:
    as_user(ASSISTENZ)
    subject = "Kopie gelesen?"
    ok("mail", "send", "-m", CHEF, "--to", SACHBEARBEITUNG, "--subject", subject, "--body", "x")
    sent = json.loads(ok("mail", "ls", "-f", "sentitems", "--search", subject, "--json"))
    assert [m["is_read"] for m in sent["items"]] == [True]
    ok("mail", "send", "--to", SACHBEARBEITUNG, "--subject", subject + " 2", "--body", "y")
    as_user(SACHBEARBEITUNG)
    inbox = json.loads(ok("mail", "ls", "--search", subject, "--json"))
    assert sorted(m["is_read"] for m in inbox["items"]) == [False, False]
