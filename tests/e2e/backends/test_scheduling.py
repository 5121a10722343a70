"""Scheduling assistant, rooms and the day sheet, written once and run over EWS and over Graph
against one lab, as the boss's assistant and as a clerk without rights on the boss's calendar.

The day searched is a Wednesday more than a year ahead, clear of the demo's series; busy times
are put straight into the lab's store, so both faces answer from the same calendars.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from exlab.core import items as store_items
from exlab.demo import RAEUME, SITZUNGSSAAL
from exlab.lab import Lab
from med import (
    AccessDenied,
    AttendeeKind,
    BusyStatus,
    Conflict,
    Event,
    InvalidInput,
    MeetingSearch,
    NotFound,
)
from tests.e2e.backends.conftest import Backend
from tests.e2e.conftest import ASSISTENZ, CHEF, SACHBEARBEITUNG

BERLIN = ZoneInfo("Europe/Berlin")


def _wednesday() -> date:
    day = datetime.now(UTC).date() + timedelta(days=400)
    return day + timedelta(days=(2 - day.weekday()) % 7)


DAY = _wednesday()


def at(hour: int, minute: int = 0) -> datetime:
    return datetime.combine(DAY, time(hour, minute), BERLIN)


def busy(lab: Lab, owner: str, start: datetime, end: datetime, subject: str) -> None:
    folder = lab.store.distinguished_folder(owner, "calendar")
    assert folder is not None
    store_items.create_item(
        lab.store,
        folder,
        "IPM.Appointment",
        {
            "item:Subject": subject,
            "calendar:Start": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "calendar:End": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "calendar:LegacyFreeBusyStatus": "Busy",
        },
        created_by=owner,
        now=datetime.now(UTC),
    )


@pytest.fixture
def day(backend: Backend) -> Backend:
    """The boss busy 8–10, the clerk (working in London time) 10–11, the room 11–12 (Berlin)."""
    lab = backend.lab.lab
    lab.store.update_mailbox(SACHBEARBEITUNG, time_zone="GMT Standard Time")
    busy(lab, CHEF, at(8), at(10), "Haushaltsklausur")
    busy(lab, SACHBEARBEITUNG, at(10), at(11), "Bürgersprechstunde")
    busy(lab, SITZUNGSSAAL, at(11), at(12), "Ausschuss Soziales")
    return backend


def search(**changes: object) -> MeetingSearch:
    base = MeetingSearch(
        organizer=CHEF,
        attendees=(SACHBEARBEITUNG,),
        rooms=(SITZUNGSSAAL,),
        start=at(7),
        end=at(19),
        duration=timedelta(hours=1),
        time_zone="Europe/Berlin",
    )
    import dataclasses

    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- scheduling assistant


async def test_free_slots_follow_free_busy_working_hours_zones_and_rooms(day: Backend) -> None:
    found = await day.assistenz.find_meeting_times(search(room_required=True))
    starts = [s.start.astimezone(BERLIN).time() for s in found.suggestions]
    # 11:00 would suit both people, but the room is taken until 12:00; the boss's working day
    # ends at 17:00 Berlin time (the clerk's, in London, at 18:00 Berlin time).
    assert starts == [time(h, m) for h in range(12, 17) for m in (0, 30)][:-1]
    first = found.suggestions[0]
    assert first.rooms == (SITZUNGSSAAL,)
    assert first.availability[CHEF] is BusyStatus.FREE
    assert first.availability[SACHBEARBEITUNG] is BusyStatus.FREE
    # The grid: everyone's busy times over the range, with their working hours.
    grid = {a.address.lower(): a for a in found.availability}
    assert set(grid) == {CHEF, SACHBEARBEITUNG, SITZUNGSSAAL}
    assert grid[CHEF].status(at(8), at(9)) is BusyStatus.BUSY
    assert grid[SACHBEARBEITUNG].status(at(10), at(11)) is BusyStatus.BUSY
    assert grid[SITZUNGSSAAL].status(at(11), at(12)) is BusyStatus.BUSY
    hours = grid[SACHBEARBEITUNG].working_hours
    assert hours is not None
    assert ZoneInfo(hours.time_zone).utcoffset(datetime.combine(DAY, time(12))) == timedelta(0)
    assert hours.start == time(8) and hours.end == time(17)


async def test_without_a_required_room_the_earliest_slot_comes_without_one(day: Backend) -> None:
    found = await day.assistenz.find_meeting_times(search())
    first = found.suggestions[0]
    assert first.start == at(11) and first.rooms == ()
    assert found.suggestions[2].start == at(12) and found.suggestions[2].rooms == (SITZUNGSSAAL,)


async def test_preferred_times_and_minimum_length_narrow_the_slots(day: Backend) -> None:
    found = await day.assistenz.find_meeting_times(
        search(preferred=((time(14), time(16)),), duration=timedelta(minutes=90))
    )
    assert [s.start for s in found.suggestions] == [at(14), at(14, 30)]
    assert all(s.end - s.start == timedelta(minutes=90) for s in found.suggestions)


async def test_no_slot_says_why(day: Backend) -> None:
    found = await day.assistenz.find_meeting_times(
        search(start=at(11), end=at(12), room_required=True)
    )
    assert found.suggestions == ()
    assert found.empty_reason == "locationsUnavailable"


async def test_booking_a_slot_with_a_room_on_behalf_of_the_boss(day: Backend) -> None:
    session = day.assistenz
    wanted = search(room_required=True)
    found = await session.find_meeting_times(wanted)
    event = await session.book_meeting(
        wanted, found.suggestions[0], subject="Abstimmung Haushalt", room=SITZUNGSSAAL
    )
    assert isinstance(event, Event) and event.mailbox == CHEF
    calendar = await session.default_folder(CHEF, "calendar")
    [booked] = [
        e
        for e in await session.calendar_view([calendar], at(12), at(13))
        if e.subject == "Abstimmung Haushalt"
    ]
    assert booked.start == at(12) and booked.location == "Sitzungssaal 1"
    full = await session.get(booked.id)
    assert isinstance(full, Event)
    kinds = {a.address.email.lower(): a.kind for a in full.attendees}
    assert kinds[SACHBEARBEITUNG] is AttendeeKind.REQUIRED
    assert kinds[SITZUNGSSAAL] is AttendeeKind.RESOURCE
    # The room booked itself: it is busy now, and a second booking is refused.
    again = await session.find_meeting_times(wanted)
    assert again.suggestions[0].start == at(13)
    with pytest.raises(Conflict, match="no longer free"):
        await session.book_meeting(wanted, (at(12), at(13)), subject="Doppelt", room=SITZUNGSSAAL)


async def test_a_clerk_may_not_schedule_for_the_boss(day: Backend) -> None:
    session = day.sachbearbeitung
    with pytest.raises(AccessDenied):
        await session.find_meeting_times(search())
    with pytest.raises(AccessDenied):
        await session.book_meeting(search(), (at(12), at(13)), subject="Nein", room=SITZUNGSSAAL)
    calendar = day.lab.lab.store.distinguished_folder(CHEF, "calendar")
    assert calendar is not None
    assert not [
        i
        for i in store_items.items_in(day.lab.lab.store, calendar.id)
        if i.props.get("item:Subject") == "Nein"
    ]


async def test_a_search_that_cannot_run_is_refused_before_asking(backend: Backend) -> None:
    with pytest.raises(InvalidInput, match="62 days"):
        await backend.assistenz.find_meeting_times(search(end=at(7) + timedelta(days=70)))
    with pytest.raises(InvalidInput, match="time zone"):
        await backend.assistenz.find_meeting_times(search(time_zone="Mars/Olympus"))


# --------------------------------------------------------------------------- rooms


async def test_room_lists_rooms_and_their_details(backend: Backend) -> None:
    session = backend.assistenz
    [room_list] = await session.room_lists()
    assert room_list.address == RAEUME and room_list.name == "Räume Kreishaus"
    [room] = await session.rooms(RAEUME)
    assert room.address == SITZUNGSSAAL and room.name == "Sitzungssaal 1"
    if backend.name == "graph":  # Graph's places carry what the directory knows
        assert room.capacity == 40 and "Beamer" in room.equipment and room.wheelchair
    else:  # EWS's GetRooms has names and addresses only
        assert room.capacity is None and room.equipment == ()
    with pytest.raises(NotFound):
        await session.rooms("niemand@musterstadt.example")


async def test_which_rooms_are_free_at_a_time(day: Backend) -> None:
    session = day.assistenz
    [taken] = await session.room_availability(at(11), at(12), RAEUME)
    assert taken.room.address == SITZUNGSSAAL and not taken.free
    [free] = await session.room_availability(at(12), at(13), RAEUME)
    assert free.free


async def test_a_clerk_reads_the_room_directory_but_may_not_book_for_the_boss(
    day: Backend,
) -> None:
    # Room lists are directory information every member of staff may read, as in Exchange.
    assert [r.address for r in await day.sachbearbeitung.rooms(RAEUME)] == [SITZUNGSSAAL]
    with pytest.raises(AccessDenied):
        await day.sachbearbeitung.book_meeting(
            search(), (at(12), at(13)), subject="Raum", room=SITZUNGSSAAL
        )


# --------------------------------------------------------------------------- day sheet


async def test_the_bosss_day_sheet(day: Backend) -> None:
    sheet = await day.assistenz.day_sheet(CHEF, DAY, "Europe/Berlin")
    assert sheet.owner == "Dr. Anna Berg" and sheet.day == DAY
    assert [e.subject for e in sheet.events] == ["Haushaltsklausur"]
    assert sheet.flagged and all(m.flag.status.value == "flagged" for m in sheet.flagged)
    if backend_is_graph := day.name == "graph":
        # Graph reaches To Do lists of their owner only: the sheet says so instead.
        assert sheet.tasks == () and sheet.notes
    assert backend_is_graph or sheet.tasks
    end = at(0) + timedelta(days=1)
    assert all(t.due is not None and t.due < end for t in sheet.tasks)
    assert all(t.status.value != "completed" for t in sheet.tasks)


async def test_a_clerk_gets_no_day_sheet_of_the_boss(backend: Backend) -> None:
    with pytest.raises(AccessDenied):
        await backend.sachbearbeitung.day_sheet(CHEF, DAY, "Europe/Berlin")


async def test_own_day_sheet_needs_no_delegation(backend: Backend) -> None:
    sheet = await backend.sachbearbeitung.day_sheet(SACHBEARBEITUNG, DAY, "Europe/Berlin")
    assert sheet.mailbox == SACHBEARBEITUNG
    assert ASSISTENZ not in sheet.owner
