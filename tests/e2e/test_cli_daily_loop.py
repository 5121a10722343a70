"""The CLI in an assistant's daily loop against the lab: series in iCalendar, moves between
mailboxes, errors and exit codes as documented."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import icalendar

from tests.e2e.conftest import ASSISTENZ, CHEF
from tests.e2e.test_cli_mailbox import as_user, cli, ok

__all__ = ["as_user"]


def _vevents(path: Path) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(path.read_bytes()).walk("VEVENT"))


def _series_with_a_moved_and_a_deleted_occurrence(subject: str) -> str:
    created = json.loads(
        ok(
            *("calendar", "create", "-m", CHEF, "--subject", subject),
            *("--start", "2026-12-01T08:00", "--end", "2026-12-01T08:30"),
            *("--repeat", "weekly", "--count", "4", "--json"),
        )
    )
    month = json.loads(
        ok("calendar", "agenda", "--from", "2026-12-01", "--days", "28", "-m", CHEF, "--json")
    )
    occurrences = [e for e in month["events"] if e["series_id"] == created["id"]]
    assert len(occurrences) == 4
    ok("calendar", "delete", occurrences[1]["id"])
    ok(
        "calendar",
        "update",
        occurrences[2]["id"],
        "--subject",
        "Verschoben",
        "--start",
        "2026-12-15T10:00",
    )
    return str(created["id"])


def _assert_one_series(vevents: list[icalendar.Event], subject: str) -> None:
    master = [v for v in vevents if v.get("rrule") is not None]
    assert [str(v["summary"]) for v in master] == [subject]
    (rule,) = master
    uid = str(rule["uid"])
    assert [str(v["uid"]) for v in vevents] == [uid, uid]  # one UID, not one per occurrence
    exdates = [d.dt for d in rule["exdate"].dts]
    assert [d.isoformat() for d in exdates] == ["2026-12-08T08:00:00+00:00"]
    (moved,) = [v for v in vevents if v.get("recurrence-id") is not None]
    assert moved.decoded("recurrence-id").isoformat() == "2026-12-15T08:00:00+00:00"
    assert moved.decoded("dtstart").isoformat() == "2026-12-15T10:00:00+00:00"
    assert str(moved["summary"]) == "Verschoben"


def test_a_series_exports_as_one_rule_with_exdate_and_override_and_imports_back(
    as_user, tmp_path: Path
) -> None:
    as_user(ASSISTENZ)
    subject = "Serie rund"
    master_id = _series_with_a_moved_and_a_deleted_occurrence(subject)
    by_id = tmp_path / "by-id.ics"
    ok("calendar", "export", str(by_id), "--id", master_id)
    _assert_one_series(_vevents(by_id), subject)
    by_range = tmp_path / "range.ics"
    said = ok(
        "calendar", "export", str(by_range), "-m", CHEF, "--from", "2026-12-01", "--days", "28"
    )
    assert said.endswith(f"series written to {by_range}\n")
    ours = [v for v in _vevents(by_range) if str(v["summary"]) in (subject, "Verschoben")]
    _assert_one_series(ours, subject)

    # Into the assistant's own calendar: the same three occurrences come back.
    imported = json.loads(ok("calendar", "import", str(by_id), "--json"))
    assert len(imported["created"]) == 1
    assert imported["unmatched_exdates"] == 0 and imported["unmatched_overrides"] == 0
    month = json.loads(ok("calendar", "agenda", "--from", "2026-12-01", "--days", "28", "--json"))
    mine = [
        (e["start"][:16], e["subject"])
        for e in month["events"]
        if e["series_id"] == imported["created"][0]["id"]
    ]
    assert mine == [
        ("2026-12-01T08:00", subject),
        ("2026-12-15T10:00", "Verschoben"),
        ("2026-12-22T08:00", subject),
    ]
    again = tmp_path / "again.ics"
    ok("calendar", "export", str(again), "--id", imported["created"][0]["id"])
    _assert_one_series(_vevents(again), subject)
    # Importing the same file again keeps the series as it is.
    twice = ok("calendar", "import", str(by_id))
    assert twice.startswith("0 events imported") and "1 series already there" in twice


def test_export_of_an_occurrence_writes_its_whole_series(as_user, tmp_path: Path) -> None:
    as_user(ASSISTENZ)
    _series_with_a_moved_and_a_deleted_occurrence("Serie ab Vorkommen")
    week = json.loads(ok("calendar", "week", "2026-12-22", "-m", CHEF, "--json"))
    (occurrence,) = [e for e in week["events"] if e["subject"] == "Serie ab Vorkommen"]
    target = tmp_path / "occ.ics"
    ok("calendar", "export", str(target), "--id", occurrence["id"])
    _assert_one_series(_vevents(target), "Serie ab Vorkommen")
    assert cli("calendar", "export", str(target), "--id", "nonsense").returncode != 0


def test_mail_move_resolves_the_target_in_the_items_mailbox(as_user) -> None:
    as_user(ASSISTENZ)
    first, second = json.loads(ok("mail", "ls", "-m", CHEF, "--limit", "2", "--json"))["items"]
    own_deleted = json.loads(ok("mail", "ls", "-f", "deleteditems", "--json"))["items"]
    # The boss's folder, found without -m: the item's own mailbox.
    said = ok("mail", "move", first["id"], "inbox/Kreistag")
    assert said.startswith(f"moved to Kreistag ({CHEF}), new id: ")
    # Her Deleted Items are not the assistant's, and the assistant may not put items there.
    refused = cli("mail", "move", second["id"], "deleteditems")
    assert refused.returncode == 4 and refused.stderr.count("\n") == 1
    assert CHEF in refused.stderr and "mail delete" in refused.stderr
    assert json.loads(ok("mail", "ls", "-f", "deleteditems", "--json"))["items"] == own_deleted
    assert json.loads(ok("mail", "show", second["id"], "--json"))["item"]["mailbox"] == CHEF
    # Across mailboxes only with -m, and the answer says so.
    crossed = ok("mail", "move", second["id"], "deleteditems", "-m", ASSISTENZ)
    assert crossed.startswith(f"moved from {CHEF} to ")
    assert f"({ASSISTENZ}), new id: " in crossed


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stderr.startswith("medbridge: "), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr and "╭" not in result.stderr
    return result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_usage_errors_and_bad_ports_are_one_line_with_exit_2(tmp_path: Path) -> None:
    for args in (
        ("mail", "ls", "--limit", "abc"),
        ("nosuch",),
        ("mail", "show"),
        ("mail", "ls", "--bogus"),
        ("lab", "serve", "--port", "99999"),
        ("demo", "--port", "-1"),
    ):
        result = cli(*args)
        assert result.returncode == 2, args
        assert "--help" in _one_line(result)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        store = str(tmp_path / "lab.sqlite")
        serve = cli("lab", "serve", "--demo", "--port", port, "--store", store)
        assert serve.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in _one_line(serve)
        demo = cli("demo", "--port", port, "--store", store)
        assert demo.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in _one_line(demo)


def test_exit_codes_as_documented(as_user, lab) -> None:
    as_user(ASSISTENZ)
    unknown = cli("permissions", "set", "inbox", "niemand@musterstadt.example", "Reviewer")
    assert unknown.returncode == 5 and "niemand@musterstadt.example" in _one_line(unknown)
    item = json.loads(ok("mail", "ls", "--limit", "1", "--json"))["items"][0]
    ok("mail", "delete", item["id"], "--hard")
    gone = cli("mail", "show", item["id"])
    assert gone.returncode == 5
    _one_line(gone)
    empty = cli("mail", "ls", password="")
    assert empty.returncode == 3 and "password" in _one_line(empty)
    url = f"http://127.0.0.1:{_closed_port()}/EWS/Exchange.asmx"
    ok("profile", "add", "weg", "--server", url, "--user", ASSISTENZ, "--auth", "basic")
    down = cli("mail", "ls", "-p", "weg")
    assert down.returncode == 9 and url in _one_line(down)
    task = ok("tasks", "create", "subject=Prozent").strip()
    over = cli("tasks", "update", task, "percent_complete=150")
    assert over.returncode == 2 and "150" in _one_line(over) and "Decimal" not in over.stderr


def test_json_names_the_mailbox_and_never_null_counts(as_user) -> None:
    as_user(ASSISTENZ)
    first = json.loads(ok("mail", "ls", "-m", CHEF, "--limit", "1", "--json"))["items"][0]
    shown = json.loads(ok("mail", "show", first["id"], "--json"))["item"]
    assert shown["mailbox"] == CHEF
    week = json.loads(ok("calendar", "week", "2026-11-23", "-m", CHEF, "--json"))
    event = json.loads(ok("mail", "show", week["events"][0]["id"], "--json"))["item"]
    assert event["mailbox"] == CHEF

    def folders(node: dict[str, object]) -> list[dict[str, object]]:
        children = node["children"]
        assert isinstance(children, list)
        return [node, *(f for c in children for f in folders(c))]

    for args in ((), ("-m", CHEF)):
        tree = json.loads(ok("folders", "tree", *args, "--json"))["tree"]
        for folder in folders(tree):
            counts = [folder[k] for k in ("total_count", "unread_count", "child_folder_count")]
            assert all(isinstance(c, int) for c in counts), folder["name"]
            assert folder["mailbox"]


def test_the_owner_has_full_rights_in_her_own_archive(as_user) -> None:
    as_user(CHEF)
    tree = json.loads(ok("folders", "tree", "--archive", "--json"))["tree"]
    for folder in [tree, *tree["children"]]:
        rights = folder["rights"]
        assert (rights["edit"], rights["delete"]) == ("all", "all"), folder["name"]
    archived = json.loads(ok("mail", "ls", "-f", "archiveinbox", "--limit", "1", "--json"))
    item = archived["items"][0]
    assert ok("mail", "flag", item["id"], "--json")
    ok("mail", "delete", item["id"])
