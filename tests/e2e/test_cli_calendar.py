"""Calendar commands against the lab: day ranges, free/busy, series and iCalendar import."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.conftest import ASSISTENZ, CHEF
from tests.e2e.test_cli_mailbox import as_user, cli, ok

__all__ = ["as_user"]


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
