"""`medbridge schedule` against the lab over EWS: free slots, booking with a room, rooms and
the day sheet (printable HTML checked for content), as the assistant and as a clerk."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

from exlab.demo import RAEUME, SITZUNGSSAAL
from tests.e2e.backends.test_scheduling import DAY, at, busy
from tests.e2e.conftest import ASSISTENZ, CHEF, SACHBEARBEITUNG, LabServer
from tests.e2e.test_cli_mailbox import as_user, cli, ok

__all__ = ["as_user"]  # the fixture, used by name

ZONE = ("--zone", "Europe/Berlin")


def _day(lab: LabServer) -> None:
    busy(lab.lab, CHEF, at(8), at(10), "Haushaltsklausur")
    busy(lab.lab, SACHBEARBEITUNG, at(10), at(11), "Bürgersprechstunde")
    busy(lab.lab, SITZUNGSSAAL, at(11), at(12), "Ausschuss Soziales")


def test_assistant_finds_and_books_a_slot_for_the_boss(as_user, lab: LabServer) -> None:
    _day(lab)
    as_user(ASSISTENZ)
    search = ("--organizer", CHEF, "--attendee", SACHBEARBEITUNG, "--room", SITZUNGSSAAL)
    found = json.loads(
        ok(
            "schedule",
            "find",
            *search,
            "--from",
            f"{DAY}T07:00",
            "--until",
            f"{DAY}T19:00",
            "--need-room",
            *ZONE,
            "--json",
        )
    )
    first = found["suggestions"][0]
    assert first["start"] == at(12).astimezone(UTC).isoformat()  # med answers in UTC
    assert first["rooms"] == [SITZUNGSSAAL]
    assert {a["address"] for a in found["availability"]} == {CHEF, SACHBEARBEITUNG, SITZUNGSSAAL}
    text = ok("schedule", "find", *search, "--from", f"{DAY}T07:00", "--need-room", *ZONE)
    assert "12:00–13:00  " + SITZUNGSSAAL in text
    booked = json.loads(
        ok(
            "schedule",
            "book",
            f"{DAY}T12:00",
            "--subject",
            "Abstimmung",
            "--organizer",
            CHEF,
            "--attendee",
            SACHBEARBEITUNG,
            "--room",
            SITZUNGSSAAL,
            *ZONE,
            "--json",
        )
    )
    assert booked["location"] == "Sitzungssaal 1" and booked["mailbox"] == CHEF
    again = cli(
        "schedule",
        "book",
        f"{DAY}T12:00",
        "--subject",
        "Doppelt",
        "--organizer",
        CHEF,
        "--room",
        SITZUNGSSAAL,
        *ZONE,
    )
    assert again.returncode != 0 and "no longer free" in again.stderr
    assert "Traceback" not in again.stderr


def test_rooms_and_free_rooms(as_user, lab: LabServer) -> None:
    _day(lab)
    as_user(ASSISTENZ)
    assert json.loads(ok("schedule", "room-lists", "--json")) == [
        {"address": RAEUME, "name": "Räume Kreishaus"}
    ]
    [room] = json.loads(ok("schedule", "rooms", RAEUME, "--json"))
    assert room["address"] == SITZUNGSSAAL
    taken = json.loads(ok("schedule", "free-rooms", at(11).isoformat(), "--json"))
    assert [r["free"] for r in taken] == [False]
    assert "free  " + SITZUNGSSAAL in ok("schedule", "free-rooms", at(12).isoformat())


def test_day_sheet_as_text_json_and_printable_html(as_user, lab: LabServer, tmp_path: Path) -> None:
    _day(lab)
    as_user(ASSISTENZ)
    page = tmp_path / "tag.html"
    text = ok(
        "schedule", "daysheet", "--mailbox", CHEF, "--date", str(DAY), *ZONE, "--html", str(page)
    )
    assert "Tagesübersicht Dr. Anna Berg" in text and "08:00–10:00 Haushaltsklausur" in text
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "@media print" in html
    assert "Haushaltsklausur" in html and "<h2>Termine (1)</h2>" in html
    sheet = json.loads(
        ok("schedule", "daysheet", "--mailbox", CHEF, "--date", str(DAY), *ZONE, "--json")
    )
    assert [e["subject"] for e in sheet["events"]] == ["Haushaltsklausur"]
    assert sheet["flagged"] and sheet["tasks"]
    for message in sheet["flagged"]:
        assert message["subject"] in html
    for task in sheet["tasks"]:
        assert task["subject"] in html


def test_a_clerk_is_refused_in_one_line(as_user, lab: LabServer) -> None:
    as_user(SACHBEARBEITUNG)
    for args in (
        ("schedule", "find", "--organizer", CHEF, "--from", f"{DAY}T07:00", *ZONE),
        ("schedule", "book", f"{DAY}T12:00", "--subject", "x", "--organizer", CHEF, *ZONE),
        ("schedule", "daysheet", "--mailbox", CHEF, "--date", str(DAY), *ZONE),
    ):
        refused = cli(*args)
        assert refused.returncode == 4, refused.stderr
        assert "Traceback" not in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
