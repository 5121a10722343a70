"""The scheduling part of `DelegateSession`: the scheduling assistant (free slots across
attendees and rooms, then booking one on behalf of the organiser), rooms, and the day sheet.

Mixed into `DelegateSession`; the types are in `med.scheduling` and `med.daysheet`.
Scheduling for someone else needs the right to create items in their calendar (a delegate with
Author or more), the day sheet the right to read their calendar, inbox and tasks: without them
the calls raise `AccessDenied` before anything is sent or written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, cast

from med.backends.scheduling import SchedulingBackend
from med.daysheet import DaySheet
from med.errors import Conflict, InvalidInput, MedError, Unsupported
from med.model import (
    Address,
    Attendee,
    AttendeeKind,
    BusyStatus,
    Event,
    FlagStatus,
    Folder,
    ItemQuery,
    Message,
    Task,
    TaskStatus,
)
from med.scheduling import (
    MAX_RANGE,
    Availability,
    MeetingSearch,
    MeetingTimes,
    Room,
    RoomAvailability,
    RoomList,
    SlotSuggestion,
    zone,
)

if TYPE_CHECKING:
    from med.service import DelegateSession

__all__ = ["SchedulingMixin"]


def _scheduler(session: DelegateSession) -> SchedulingBackend:
    backend = session._backend
    if not isinstance(backend, SchedulingBackend):
        raise Unsupported("scheduling", backend.name)
    return backend


def _check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput("Give the range with a time zone.")
    if end <= start:
        raise InvalidInput("The end of the range must be after its start.")
    if end - start > MAX_RANGE:
        raise InvalidInput("Ask for at most 62 days at once.")


def _me(mixin: SchedulingMixin) -> DelegateSession:
    return cast("DelegateSession", mixin)


class SchedulingMixin:
    """Methods of `DelegateSession` (see there for the session itself)."""

    # ------------------------------------------------------------------ rooms

    async def room_lists(self) -> list[RoomList]:
        """The organisation's room lists (directory information every user may read)."""
        me = _me(self)
        return list(await me._run(_scheduler(me).room_lists))

    async def rooms(self, room_list: str | None = None) -> list[Room]:
        """The rooms of a room list, or every room the directory knows; with capacity and
        equipment where the directory has them (Graph's places; EWS tells names only).

        Raises:
            NotFound: no such room list.
        """
        me = _me(self)
        return list(await me._run(_scheduler(me).rooms, room_list))

    async def room_availability(
        self, start: datetime, end: datetime, room_list: str | None = None
    ) -> list[RoomAvailability]:
        """Which rooms (of a list, or all) are free for the whole of [start, end).

        Raises:
            InvalidInput: a naive or empty range, or one longer than 62 days.
            NotFound: no such room list.
        """
        me = _me(self)
        _check_range(start, end)
        rooms = await me.rooms(room_list)
        if not rooms:
            return []
        found = await me.availability([r.address for r in rooms], start, end)
        return [
            RoomAvailability(room, a, a.status(start, end) is BusyStatus.FREE)
            for room, a in zip(rooms, found, strict=True)
        ]

    # ------------------------------------------------------------------ availability

    async def availability(
        self, addresses: Sequence[str], start: datetime, end: datetime
    ) -> list[Availability]:
        """Busy times and working hours of people and rooms over [start, end), in the order
        asked; someone whose data is unavailable comes back with `error` set.

        Raises:
            InvalidInput: no address, or a naive, empty or too long range.
        """
        me = _me(self)
        if not addresses:
            raise InvalidInput("Name at least one person or room.")
        _check_range(start, end)
        return list(await me._run(_scheduler(me).availability, list(addresses), start, end))

    # ------------------------------------------------------------------ scheduling assistant

    async def _organiser_calendar(self, organizer: str) -> Folder:
        me = _me(self)
        calendar = await me.default_folder(organizer, "calendar")
        me._gate_folder(
            calendar, "organise meetings in it", lambda r: r.create_items, "CreateItems"
        )
        return calendar

    async def find_meeting_times(self, search: MeetingSearch) -> MeetingTimes:
        """Free slots for a meeting `search.organizer` organises, and everyone's availability
        over the range (people, then rooms) for a grid.

        Raises:
            InvalidInput: the search cannot be run (see `MeetingSearch.check`).
            AccessDenied: the user may not create items in the organiser's calendar.
        """
        me = _me(self)
        search.check()
        await me._organiser_calendar(search.organizer)
        backend = _scheduler(me)
        everyone = [*search.people, *(r.lower() for r in search.rooms)]
        (suggestions, reason), grid = await asyncio.gather(
            me._run(backend.suggest_times, search),
            me._run(backend.availability, everyone, search.start, search.end),
        )
        return MeetingTimes(search, tuple(suggestions), tuple(grid), reason)

    async def book_meeting(
        self,
        search: MeetingSearch,
        slot: SlotSuggestion | tuple[datetime, datetime],
        *,
        subject: str,
        room: str | None = None,
        body: str = "",
    ) -> Event:
        """Book the slot in the organiser's calendar with the search's attendees and `room`,
        and send the invitations on the organiser's behalf.

        Raises:
            InvalidInput: no subject, or a slot without a time zone or ending before it starts.
            AccessDenied: the user may not create items in the organiser's calendar.
            Conflict: the room is no longer free at that time.
        """
        me = _me(self)
        start, end = (slot.start, slot.end) if isinstance(slot, SlotSuggestion) else slot
        if not subject.strip():
            raise InvalidInput("A meeting needs a subject.")
        _check_range(start, end)
        calendar = await me._organiser_calendar(search.organizer)
        attendees = [
            Attendee(Address(a.lower()), AttendeeKind.REQUIRED) for a in search.attendees
        ] + [Attendee(Address(a.lower()), AttendeeKind.OPTIONAL) for a in search.optional]
        location = ""
        if room:
            (state,) = await me.availability([room], start, end)
            if state.error is None and state.status(start, end) is not BusyStatus.FREE:
                raise Conflict(
                    f"{room} is no longer free from {start:%H:%M} to {end:%H:%M}; search again.",
                    mailbox=room,
                )
            known = {r.address: r.name for r in await me.rooms()}
            location = known.get(room.lower(), room)
            attendees.append(Attendee(Address(room.lower(), location), AttendeeKind.RESOURCE))
        event = Event(
            subject=subject.strip(),
            body=body or None,
            start=start,
            end=end,
            location=location,
            attendees=tuple(attendees),
            is_meeting=True,
            timezone=search.time_zone if search.time_zone != "UTC" else None,
        )
        created = await me.create(calendar, event, send_invitations=True)
        assert isinstance(created, Event)
        return created

    # ------------------------------------------------------------------ day sheet

    async def day_sheet(self, mailbox: str, day: date, time_zone: str = "UTC") -> DaySheet:
        """`mailbox`'s day: appointments, flagged mail and the tasks due.

        Raises:
            InvalidInput: an unknown time zone.
            AccessDenied: the user may not read the mailbox's calendar, inbox or tasks.
            NotFound: no such mailbox.
        """
        me = _me(self)
        tz = zone(time_zone)
        start = datetime.combine(day, time(0), tz)
        end = start + timedelta(days=1)
        calendar = await me.default_folder(mailbox, "calendar")
        me._gate_folder(calendar, "read its appointments", lambda r: r.can_read_items, "ReadItems")
        inbox = await me.default_folder(mailbox, "inbox")
        events = await me.calendar_view([calendar], start, end)
        flagged = [
            item
            async for item in me.iter_items(inbox, ItemQuery(flagged_only=True, limit=100))
            if isinstance(item, Message) and item.flag.status is FlagStatus.FLAGGED
        ]
        far = datetime.max.replace(tzinfo=UTC)
        flagged.sort(key=lambda m: (m.flag.due or far, m.subject))
        notes: list[str] = []
        try:
            tasks_folder = await me.default_folder(mailbox, "tasks")
            tasks = [
                item
                async for item in me.iter_items(tasks_folder, ItemQuery(limit=200))
                if isinstance(item, Task)
                and item.status is not TaskStatus.COMPLETED
                and item.due is not None
                and item.due < end
            ]
        except Unsupported as exc:
            tasks, notes = [], [str(exc)]
        tasks.sort(key=lambda t: (t.due or far, t.subject))
        names = {m.address.lower(): m.display_name for m in await me.mailboxes()}
        if mailbox.lower() not in names:
            with contextlib.suppress(MedError):
                names.update(
                    (m.address.lower(), m.display_name) for m in await me.resolve_names(mailbox)
                )
        return DaySheet(
            mailbox=mailbox.lower(),
            owner=names.get(mailbox.lower(), mailbox),
            day=day,
            time_zone=time_zone,
            events=tuple(events),
            flagged=tuple(flagged),
            tasks=tuple(tasks),
            made=datetime.now(UTC),
            notes=tuple(notes),
        )
