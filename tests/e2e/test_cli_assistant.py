"""`medbridge oof`, `rules`, `mailtips` and `search` against the lab, as the assistant and as
a clerk without rights on the boss's mailbox."""

from __future__ import annotations

import json

from exlab.core.mailbox_rights import add_mailbox_permission
from tests.e2e.conftest import ASSISTENZ, CHEF, POSTSTELLE, SACHBEARBEITUNG, LabServer
from tests.e2e.test_cli_mailbox import as_user, cli, ok

__all__ = ["as_user"]  # the fixture, used by name


def test_assistant_sets_reads_and_switches_off_automatic_replies(as_user) -> None:
    as_user(ASSISTENZ)
    out = json.loads(
        ok(
            "oof",
            "set",
            "scheduled",
            "--mailbox",
            POSTSTELLE,
            "--start",
            "2026-12-21T08:00",
            "--end",
            "2027-01-04",
            "--internal",
            "Zwischen den Jahren geschlossen.",
            "--external",
            "Closed.",
            "--audience",
            "known",
            "--json",
        )
    )
    replies = out["auto_replies"]
    assert replies["state"] == "scheduled" and replies["audience"] == "known"
    assert replies["internal_reply"] == "Zwischen den Jahren geschlossen."
    shown = json.loads(ok("oof", "show", "--mailbox", POSTSTELLE, "--json"))
    assert shown["auto_replies"] == replies
    assert "State:    disabled" in ok("oof", "set", "off", "--mailbox", POSTSTELLE)


def test_bad_state_and_a_window_ending_before_it_starts_are_refused(as_user) -> None:
    as_user(ASSISTENZ)
    bad = cli("oof", "set", "maybe", "--mailbox", POSTSTELLE)
    assert bad.returncode == 2 and "no state" in bad.stderr
    backwards = cli(
        "oof",
        "set",
        "scheduled",
        "--mailbox",
        POSTSTELLE,
        "--start",
        "2027-01-04",
        "--end",
        "2026-12-21",
        "--internal",
        "Weg.",
        "--external",
        "Away.",
    )
    assert backwards.returncode == 2 and "end after" in backwards.stderr


def test_assistant_manages_the_bosss_rules_with_full_access(as_user, lab: LabServer) -> None:
    add_mailbox_permission(lab.lab.store, CHEF, ASSISTENZ, "FullAccess")
    as_user(ASSISTENZ)
    made = json.loads(ok("rules", "add", "--mailbox", CHEF, "--flag-keyword", "Eilt", "--json"))
    moved = json.loads(
        ok(
            "rules",
            "add",
            "--mailbox",
            CHEF,
            "--move-from",
            "kreistag@extern.example",
            "--to-folder",
            "inbox/Kreistag",
            "--json",
        )
    )
    listed = json.loads(ok("rules", "list", "--mailbox", CHEF, "--json"))["rules"]
    assert {r["id"] for r in listed} >= {made["id"], moved["id"]}
    assert (
        json.loads(ok("rules", "disable", made["id"], "--mailbox", CHEF, "--json"))["enabled"]
        is False
    )
    ok("rules", "delete", moved["id"], "--mailbox", CHEF)
    left = json.loads(ok("rules", "list", "--mailbox", CHEF, "--json"))["rules"]
    assert moved["id"] not in {r["id"] for r in left}


def test_clerk_is_refused_the_bosss_settings_with_a_sentence(as_user) -> None:
    as_user(SACHBEARBEITUNG)
    for args in (
        ("oof", "show", "--mailbox", CHEF),
        ("rules", "list", "--mailbox", CHEF),
        ("mailtips", "check", ASSISTENZ, "--from", CHEF),
        ("search", "mailboxes", "Haushalt", "--in", CHEF),
    ):
        result = cli(*args)
        assert result.returncode == 4, (args, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.strip()


def test_mail_tips_and_search_across_mailboxes(as_user) -> None:
    as_user(ASSISTENZ)
    tips = json.loads(ok("mailtips", "check", "buerger@extern.example", "--from", CHEF, "--json"))
    assert tips[0]["tip"]["external"] is True
    assert "outside the organisation" in tips[0]["warnings"][0]
    found = json.loads(
        ok("search", "mailboxes", "a", "--in", CHEF, "--in", SACHBEARBEITUNG, "--json")
    )
    groups = {g["mailbox"]: g for g in found["groups"]}
    assert groups[CHEF]["error"] is None and groups[CHEF]["items"]
    assert groups[SACHBEARBEITUNG]["error"]
    human = ok("search", "mailboxes", "a", "--in", CHEF, "--in", SACHBEARBEITUNG)
    assert f"== {SACHBEARBEITUNG}: not searched" in human
