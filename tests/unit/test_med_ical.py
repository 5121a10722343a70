"""iCalendar export against golden files, and import of what Outlook and others write."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from med import (
    Address,
    Attendee,
    AttendeeKind,
    BusyStatus,
    Daily,
    Event,
    EventKind,
    Importance,
    InvalidInput,
    MonthlyByDate,
    MonthlyByWeekday,
    Recurrence,
    ResponseType,
    Sensitivity,
    Weekday,
    Weekly,
    YearlyByDate,
    YearlyByWeekday,
)
from med.ical import events_to_ical, ical_to_events

GOLDEN = Path(__file__).parent / "golden"
BERLIN = ZoneInfo("Europe/Berlin")
STAMP = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
CHEF = Address("chef@musterstadt.example", "Dr. Anna Berg")


def golden(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("MED_UPDATE_GOLDEN"):
        path.write_bytes(data)
    assert data == path.read_bytes(), f"{name} differs; MED_UPDATE_GOLDEN=1 rewrites it"


def meeting() -> Event:
    return Event(
        id="AAMk1",
        uid="kreistag-2026-11-24@musterstadt.example",
        subject="Kreistag: Haushalt 2027",
        body="Tagesordnung folgt.\nBitte Unterlagen mitbringen.",
        start=datetime(2026, 11, 24, 14, 0, tzinfo=BERLIN),
        end=datetime(2026, 11, 24, 16, 30, tzinfo=BERLIN),
        timezone="Europe/Berlin",
        location="Sitzungssaal 1",
        organizer=CHEF,
        attendees=(
            Attendee(
                Address("assistenz@musterstadt.example", "Tom Weber"),
                AttendeeKind.REQUIRED,
                ResponseType.ACCEPT,
            ),
            Attendee(
                Address("leitstelle@musterstadt.example"),
                AttendeeKind.OPTIONAL,
                ResponseType.NO_RESPONSE,
            ),
        ),
        is_meeting=True,
        importance=Importance.HIGH,
        categories=("Kreistag", "Haushalt"),
        reminder_minutes=15,
    )


def series() -> Event:
    return Event(
        id="AAMk2",
        uid="jourfixe@musterstadt.example",
        subject="Jour fixe",
        start=datetime(2026, 11, 23, 9, 0, tzinfo=BERLIN),
        end=datetime(2026, 11, 23, 9, 30, tzinfo=BERLIN),
        timezone="Europe/Berlin",
        event_kind=EventKind.SERIES,
        recurrence=Recurrence(
            Weekly((Weekday.MONDAY, Weekday.THURSDAY)), date(2026, 11, 23), end=date(2027, 3, 31)
        ),
    )


def private_all_day() -> Event:
    return Event(
        id="AAMk3",
        uid="urlaub@musterstadt.example",
        subject="Urlaub",
        start=datetime(2026, 12, 28, tzinfo=UTC),
        end=datetime(2026, 12, 31, tzinfo=UTC),
        is_all_day=True,
        sensitivity=Sensitivity.PRIVATE,
        show_as=BusyStatus.OOF,
    )


def test_meeting_export_matches_golden() -> None:
    golden("meeting.ics", events_to_ical([meeting()], stamp=STAMP))


def test_range_export_with_series_and_all_day_matches_golden() -> None:
    golden("range.ics", events_to_ical([series(), private_all_day()], stamp=STAMP))


def test_export_is_repeatable_byte_for_byte() -> None:
    assert events_to_ical([meeting()], stamp=STAMP) == events_to_ical([meeting()], stamp=STAMP)


def test_meeting_survives_export_and_import() -> None:
    (back,) = ical_to_events(events_to_ical([meeting()], stamp=STAMP)).events
    m = meeting()
    assert (back.subject, back.start, back.end, back.location) == (
        m.subject,
        m.start,
        m.end,
        m.location,
    )
    assert back.body == m.body and back.categories == m.categories
    assert back.organizer == CHEF and back.attendees == m.attendees and back.is_meeting
    assert back.importance is Importance.HIGH and back.reminder_minutes == 15
    assert back.timezone == "Europe/Berlin" and back.uid == m.uid


@pytest.mark.parametrize(
    "recurrence",
    [
        Recurrence(Daily(2), date(2026, 11, 23), count=10),
        Recurrence(
            Weekly((Weekday.MONDAY, Weekday.THURSDAY), 2, Weekday.SUNDAY),
            date(2026, 11, 23),
            end=date(2027, 3, 31),
        ),
        Recurrence(MonthlyByDate(23, 3), date(2026, 11, 23)),
        Recurrence(MonthlyByWeekday(Weekday.MONDAY, "last"), date(2026, 11, 23), count=12),
        Recurrence(YearlyByDate(11, 23), date(2026, 11, 23)),
        Recurrence(YearlyByWeekday(11, Weekday.MONDAY, "fourth"), date(2026, 11, 23), count=5),
    ],
    ids=[
        "daily-count",
        "weekly-until",
        "monthly-date-noend",
        "monthly-last-monday",
        "yearly-date",
        "yearly-weekday",
    ],
)
def test_every_recurrence_pattern_round_trips(recurrence: Recurrence) -> None:
    ev = Event(
        subject="Serie",
        start=datetime(2026, 11, 23, 9, tzinfo=BERLIN),
        end=datetime(2026, 11, 23, 10, tzinfo=BERLIN),
        timezone="Europe/Berlin",
        event_kind=EventKind.SERIES,
        recurrence=recurrence,
    )
    (back,) = ical_to_events(events_to_ical([ev], stamp=STAMP)).events
    assert back.recurrence == recurrence
    assert back.event_kind is EventKind.SERIES


def test_private_all_day_event_round_trips() -> None:
    (back,) = ical_to_events(events_to_ical([private_all_day()], stamp=STAMP)).events
    assert back.is_all_day and back.sensitivity is Sensitivity.PRIVATE
    assert back.start.date() == date(2026, 12, 28) and back.end.date() == date(2026, 12, 31)


OUTLOOK_ICS = b"""BEGIN:VCALENDAR\r
PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\r
VERSION:2.0\r
METHOD:PUBLISH\r
BEGIN:VEVENT\r
UID:040000008200E00074C5B7101A82E008\r
DTSTART:20261201T080000Z\r
DURATION:PT45M\r
SUMMARY:Abstimmung Bauhof\r
RRULE:FREQ=MONTHLY;BYDAY=2TU;COUNT=6\r
EXDATE:20270112T080000Z\r
PRIORITY:9\r
TRANSP:TRANSPARENT\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:floating-1\r
DTSTART:20261205T100000\r
DTEND:20261205T110000\r
SUMMARY:Floating\r
END:VEVENT\r
END:VCALENDAR\r
"""


def test_import_reads_duration_positional_byday_and_floating_times() -> None:
    result = ical_to_events(OUTLOOK_ICS, default_zone="Europe/Berlin")
    bauhof, floating = result.events
    assert bauhof.end - bauhof.start == timedelta(minutes=45)
    assert bauhof.recurrence == Recurrence(
        MonthlyByWeekday(Weekday.TUESDAY, "second"), date(2026, 12, 1), count=6
    )
    assert bauhof.importance is Importance.LOW and bauhof.show_as is BusyStatus.FREE
    assert bauhof.deleted_occurrences == (datetime(2027, 1, 12, 8, tzinfo=UTC),)
    assert floating.start == datetime(2026, 12, 5, 10, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("rrule", "why"),
    [
        ("FREQ=HOURLY", "HOURLY"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,15", "BYMONTHDAY"),
        ("FREQ=YEARLY;INTERVAL=2", "every year"),
    ],
)
def test_import_refuses_rules_exchange_cannot_keep(rrule: str, why: str) -> None:
    data = (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\n"
        f"DTSTART:20261201T080000Z\r\nRRULE:{rrule}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    with pytest.raises(InvalidInput, match=why):
        ical_to_events(data.encode())


def test_import_of_garbage_or_empty_calendar_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        ical_to_events(b"this is not a calendar")
    with pytest.raises(InvalidInput, match="no events"):
        ical_to_events(b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n")
