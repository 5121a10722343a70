"""Scheduling: working hours, what the directory knows of rooms, and meeting-time suggestions.

Graph's `findMeetingTimes` and `places` answer from here, and both faces' free/busy report the
working hours. Exchange's default working hours (Monday to Friday, 08:00 to 17:00 in the
mailbox's time zone) are every mailbox's here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exlab.core import directory
from exlab.core.caller import Caller
from exlab.core.freebusy import RANK, Busy, busy_times, granted_view
from exlab.core.store import Mailbox, Store
from exlab.core.targets import rights
from exlab.core.timezones import zone_info

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
STEP = timedelta(minutes=30)
"""Suggestions start on the half hour, as Outlook's scheduling assistant offers them."""
MAX_SUGGESTIONS = 50


@dataclass(frozen=True)
class WorkingHours:
    days: tuple[str, ...]
    start_minutes: int
    end_minutes: int
    time_zone: str
    """The Windows time-zone id the hours are in (the mailbox's zone)."""

    def contains(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) lies within one working day's hours, in this zone."""
        tz = zone_info(self.time_zone)
        first, last = start.astimezone(tz), end.astimezone(tz)
        if first.date() != (last - timedelta(microseconds=1)).date():
            return False
        if WEEKDAYS[first.weekday()] not in self.days:
            return False
        begin = first.hour * 60 + first.minute
        finish = begin + int((end - start).total_seconds() // 60)
        return begin >= self.start_minutes and finish <= self.end_minutes


def working_hours(mailbox: Mailbox) -> WorkingHours:
    return WorkingHours(WEEKDAYS[:5], 480, 1020, mailbox.time_zone)


# -- rooms ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Room:
    address: str
    display_name: str
    capacity: int | None = None
    building: str | None = None
    floor: str | None = None
    equipment: tuple[str, ...] = ()
    wheelchair: bool = False


def set_room_details(
    store: Store,
    address: str,
    *,
    capacity: int | None = None,
    building: str | None = None,
    floor: str | None = None,
    equipment: Sequence[str] = (),
    wheelchair: bool = False,
) -> None:
    """What the directory tells of a room mailbox (Set-Place in Exchange)."""
    mailbox = store.mailbox(address)
    if mailbox is None or mailbox.kind != "room":
        raise ValueError(f"{address} is no room mailbox")
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO room_details"
            " (address, capacity, building, floor, equipment, wheelchair)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (mailbox.address, capacity, building, floor, "\n".join(equipment), int(wheelchair)),
        )


def room(store: Store, address: str) -> Room | None:
    mailbox = store.mailbox(address)
    if mailbox is None or mailbox.kind != "room":
        return None
    row = store.query_one("SELECT * FROM room_details WHERE address = ?", (mailbox.address,))
    if row is None:
        return Room(mailbox.address, mailbox.display_name)
    return Room(
        mailbox.address,
        mailbox.display_name,
        row["capacity"],
        row["building"],
        row["floor"],
        tuple(e for e in str(row["equipment"]).split("\n") if e),
        bool(row["wheelchair"]),
    )


def rooms(store: Store, room_list: str | None = None) -> list[Room]:
    """The rooms of a room list (all room mailboxes when None), by name."""
    if room_list is None:
        addresses = [m.address for m in store.mailboxes() if m.kind == "room"]
    else:
        addresses = directory.expanded_members(store, room_list)
    found = [r for a in addresses if (r := room(store, a)) is not None]
    return sorted(found, key=lambda r: r.display_name)


# -- suggestions ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suggestion:
    start: datetime
    end: datetime
    availability: dict[str, str]
    """Every attendee's status in the slot (free, tentative, busy, oof, unknown)."""
    rooms: tuple[Room, ...]
    """The rooms asked for that are free for the whole slot."""


@dataclass
class _Person:
    address: str
    required: bool
    hours: WorkingHours | None
    busy: list[Busy] | None  # None: unknown (no mailbox or no free/busy right)


def _person(
    caller: Caller, address: str, required: bool, start: datetime, end: datetime
) -> _Person:
    store = caller.lab.store
    mailbox = store.mailbox(address)
    calendar = store.distinguished_folder(address, "calendar") if mailbox else None
    if mailbox is None or calendar is None:
        return _Person(address, required, None, None)
    if granted_view("FreeBusy", rights(caller, calendar)) is None:
        return _Person(address, required, working_hours(mailbox), None)
    return _Person(
        address, required, working_hours(mailbox), busy_times(caller, calendar.id, start, end)
    )


def status(busy: list[Busy] | None, start: datetime, end: datetime) -> str:
    """The strongest free/busy status of [start, end): Free, Tentative, Busy, OOF or Unknown."""
    if busy is None:
        return "Unknown"
    statuses = [b.status for b in busy if b.start < end and b.end > start]
    top = max(statuses, key=lambda s: RANK.get(s, 2), default="Free")
    return "Free" if RANK.get(top, 2) == 0 else top


def suggest(
    caller: Caller,
    organizer: str,
    attendees: Sequence[tuple[str, bool]],
    room_addresses: Sequence[str],
    windows: Sequence[tuple[datetime, datetime]],
    duration: timedelta,
    *,
    working_hours_only: bool = True,
    organizer_optional: bool = False,
    room_required: bool = False,
    max_candidates: int = MAX_SUGGESTIONS,
) -> tuple[list[Suggestion], str]:
    """Slots of `duration` inside `windows` where the organizer (unless optional) and every
    required attendee (address, required) is free, within their working hours when asked; with
    `room_required` at least one of the rooms must be free too.

    Returns the suggestions and, when there are none, Graph's emptySuggestionsReason.
    """
    if not windows or duration <= timedelta(0):
        return [], "unknown"
    first = min(w[0] for w in windows).astimezone(UTC)
    last = max(w[1] for w in windows).astimezone(UTC)
    people = [_person(caller, organizer, not organizer_optional, first, last)]
    people += [
        _person(caller, a.lower(), req, first, last)
        for a, req in attendees
        if a.lower() != organizer.lower()
    ]
    places = [
        (found, _person(caller, found.address, True, first, last).busy)
        for a in room_addresses
        if (found := room(caller.lab.store, a)) is not None
    ]
    out: list[Suggestion] = []
    reasons: set[str] = set()
    for window_start, window_end in sorted(windows):
        slot = _ceil(window_start.astimezone(UTC))
        while slot + duration <= window_end and len(out) < max_candidates:
            slot_end = slot + duration
            availability = {p.address: status(p.busy, slot, slot_end).lower() for p in people}
            blocked = [
                p
                for p in people
                if p.required
                and (
                    availability[p.address] != "free"
                    or (working_hours_only and p.hours and not p.hours.contains(slot, slot_end))
                )
            ]
            free_rooms = tuple(r for r, busy in places if status(busy, slot, slot_end) == "Free")
            if blocked:
                reasons.add(
                    "organizerUnavailable"
                    if blocked[0].address == organizer.lower()
                    else "attendeesUnavailable"
                )
            elif room_required and not free_rooms:
                reasons.add("locationsUnavailable")
            else:
                out.append(Suggestion(slot, slot_end, availability, free_rooms))
            slot += STEP
    if out:
        return out, ""
    for reason in ("locationsUnavailable", "attendeesUnavailable", "organizerUnavailable"):
        if reason in reasons:
            return [], reason
    return [], "unknown"


def _ceil(moment: datetime) -> datetime:
    floor = moment.replace(minute=0, second=0, microsecond=0)
    while floor < moment:
        floor += STEP
    return floor
