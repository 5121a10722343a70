"""Scheduling types: rooms, working hours, availability, and the search for meeting times.

A `MeetingSearch` describes a meeting someone (usually the boss) organises: who must come, who
may come, which rooms would do, how long, in which range and at which preferred times of day.
`DelegateSession.find_meeting_times` answers with `MeetingTimes`: suggested slots and everyone's
availability over the range, for a grid of attendees × time.

The slot rule is the same on both backends: a slot starts on the half hour, lies inside one of
the search's windows, inside the working hours of the organiser and of every required attendee
(in each one's own time zone) when `working_hours_only`, the organiser and every required
attendee are free, and with `room_required` at least one of the rooms is free too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from med.errors import InvalidInput
from med.model import BusySlot, BusyStatus, Weekday

__all__ = [
    "Availability",
    "MeetingSearch",
    "MeetingTimes",
    "Room",
    "RoomAvailability",
    "RoomList",
    "SlotSuggestion",
    "WorkingHours",
]

STEP = timedelta(minutes=30)
"""Suggested slots start on the half hour, as Outlook's scheduling assistant offers them."""
MAX_RANGE = timedelta(days=62)
"""Exchange answers free/busy for at most 62 days."""
_WEEKDAYS = tuple(Weekday)
_FREE = (BusyStatus.FREE, BusyStatus.WORKING_ELSEWHERE)
_RANK = {
    BusyStatus.FREE: 0,
    BusyStatus.WORKING_ELSEWHERE: 0,
    BusyStatus.TENTATIVE: 1,
    BusyStatus.BUSY: 2,
    BusyStatus.OOF: 3,
    BusyStatus.NO_DATA: 2,
}


def zone(name: str) -> ZoneInfo:
    """An IANA zone by name.

    Raises:
        InvalidInput: no such zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"{name!r} is not a time zone (use names like Europe/Berlin).") from None


@dataclass(frozen=True, slots=True)
class RoomList:
    address: str
    name: str


@dataclass(frozen=True, slots=True)
class Room:
    """A room mailbox; capacity and the rest only where the directory tells them (Graph's
    places do, EWS's GetRooms does not)."""

    address: str
    name: str
    capacity: int | None = None
    building: str | None = None
    floor: str | None = None
    equipment: tuple[str, ...] = ()
    wheelchair: bool | None = None


@dataclass(frozen=True, slots=True)
class WorkingHours:
    """A person's working hours: the same hours on each of `weekdays`, in `time_zone` (IANA)."""

    weekdays: tuple[Weekday, ...]
    start: time
    end: time
    time_zone: str

    def contains(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) lies within one working day's hours."""
        tz = zone(self.time_zone)
        first, last = start.astimezone(tz), (end - timedelta(microseconds=1)).astimezone(tz)
        if first.date() != last.date() or _WEEKDAYS[first.weekday()] not in self.weekdays:
            return False
        begin = first.hour * 60 + first.minute
        finish = begin + (end - start).total_seconds() / 60
        close = self.end.hour * 60 + self.end.minute or 24 * 60
        return begin >= self.start.hour * 60 + self.start.minute and finish <= close


@dataclass(frozen=True, slots=True)
class Availability:
    """Someone's busy times over a range, with their working hours when the server tells them.

    `error` is the server's sentence when this person's (or room's) data is unavailable.
    """

    address: str
    slots: tuple[BusySlot, ...] = ()
    working_hours: WorkingHours | None = None
    error: str | None = None

    def status(self, start: datetime, end: datetime) -> BusyStatus:
        """The strongest status in [start, end); NO_DATA when the data is unavailable."""
        if self.error is not None:
            return BusyStatus.NO_DATA
        found = [s.status for s in self.slots if s.start < end and s.end > start]
        top = max(found, key=lambda s: _RANK.get(s, 2), default=BusyStatus.FREE)
        return BusyStatus.FREE if top in _FREE else top


@dataclass(frozen=True, slots=True)
class RoomAvailability:
    """A room and its busy times over the range asked; `free` for the whole range."""

    room: Room
    availability: Availability
    free: bool


@dataclass(frozen=True, slots=True)
class MeetingSearch:
    """A meeting to find a time for.

    Args:
        organizer: whose meeting it is (the boss); the user needs the right to create items in
            the organiser's calendar.
        attendees: who must come; `optional`: who may.
        rooms: room addresses that would do (empty: no room).
        start, end: the range to search (aware datetimes, at most 62 days).
        duration: the meeting's length (the minimum length of a free slot).
        preferred: preferred times of day, (from, to) in `time_zone`; empty: the whole day.
        time_zone: IANA zone of `preferred` (and of how a UI shows the slots).
        working_hours_only: slots only inside everyone's working hours.
        room_required: only slots where one of `rooms` is free.
    """

    organizer: str
    attendees: tuple[str, ...]
    start: datetime
    end: datetime
    duration: timedelta
    optional: tuple[str, ...] = ()
    rooms: tuple[str, ...] = ()
    preferred: tuple[tuple[time, time], ...] = ()
    time_zone: str = "UTC"
    working_hours_only: bool = True
    room_required: bool = False
    max_suggestions: int = 20

    def check(self) -> None:
        """Raises InvalidInput when the search cannot be run."""
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise InvalidInput("Give the range with a time zone.")
        if self.end <= self.start:
            raise InvalidInput("The end of the range must be after its start.")
        if self.end - self.start > MAX_RANGE:
            raise InvalidInput("Search at most 62 days at once.")
        if self.duration < timedelta(minutes=5) or self.duration > timedelta(days=1):
            raise InvalidInput("A meeting lasts between 5 minutes and one day.")
        if self.max_suggestions < 1:
            raise InvalidInput("Ask for at least one suggestion.")
        for first, last in self.preferred:
            if last <= first and last != time(0):
                raise InvalidInput(f"The preferred time {first:%H:%M}–{last:%H:%M} is empty.")
        zone(self.time_zone)
        for address in (self.organizer, *self.attendees, *self.optional, *self.rooms):
            if "@" not in address:
                raise InvalidInput(f"{address!r} is not an e-mail address.")

    @property
    def people(self) -> tuple[str, ...]:
        """Organiser, required and optional attendees, each once, in that order."""
        seen: list[str] = []
        for address in (self.organizer, *self.attendees, *self.optional):
            if address.lower() not in seen:
                seen.append(address.lower())
        return tuple(seen)

    def windows(self) -> list[tuple[datetime, datetime]]:
        """The search's range cut down to the preferred times of day (in UTC)."""
        if not self.preferred:
            return [(self.start.astimezone(UTC), self.end.astimezone(UTC))]
        tz = zone(self.time_zone)
        out: list[tuple[datetime, datetime]] = []
        day: date = self.start.astimezone(tz).date()
        while day <= self.end.astimezone(tz).date():
            for first, last in self.preferred:
                begin = datetime.combine(day, first, tz)
                finish = datetime.combine(day + timedelta(days=last == time(0)), last, tz)
                begin, finish = max(begin, self.start), min(finish, self.end)
                if finish > begin:
                    out.append((begin.astimezone(UTC), finish.astimezone(UTC)))
            day += timedelta(days=1)
        return sorted(out)


@dataclass(frozen=True, slots=True)
class SlotSuggestion:
    start: datetime
    end: datetime
    availability: Mapping[str, BusyStatus] = field(default_factory=dict)
    """Each person's status in the slot (organiser and attendees)."""
    rooms: tuple[str, ...] = ()
    """The rooms of the search that are free for the whole slot."""


@dataclass(frozen=True, slots=True)
class MeetingTimes:
    """The answer to a `MeetingSearch`: suggestions, and everyone's availability (people, then
    rooms) over the range for a grid. `empty_reason` says why there is no suggestion."""

    search: MeetingSearch
    suggestions: tuple[SlotSuggestion, ...]
    availability: tuple[Availability, ...]
    empty_reason: str = ""


def suggest(
    search: MeetingSearch, availability: Mapping[str, Availability]
) -> tuple[list[SlotSuggestion], str]:
    """The slots of `search` by the rule in this module's docstring, from everyone's
    availability (keyed by lower-case address). Returns the slots and, when there are none,
    why: attendeesUnavailable, organizerUnavailable or locationsUnavailable."""
    required = {search.organizer.lower(), *(a.lower() for a in search.attendees)}
    empty = Availability("")
    out: list[SlotSuggestion] = []
    reasons: set[str] = set()
    for window_start, window_end in search.windows():
        slot = _ceil(window_start)
        while slot + search.duration <= window_end and len(out) < search.max_suggestions:
            end = slot + search.duration
            statuses = {p: availability.get(p, empty).status(slot, end) for p in search.people}
            blocked = [
                p
                for p in search.people
                if p in required
                and (
                    statuses[p] not in _FREE
                    or (
                        search.working_hours_only
                        and (hours := availability.get(p, empty).working_hours) is not None
                        and not hours.contains(slot, end)
                    )
                )
            ]
            rooms = tuple(
                r
                for r in search.rooms
                if availability.get(r.lower(), empty).status(slot, end) in _FREE
            )
            if blocked:
                organizer = blocked[0] == search.organizer.lower()
                reasons.add("organizerUnavailable" if organizer else "attendeesUnavailable")
            elif search.room_required and search.rooms and not rooms:
                reasons.add("locationsUnavailable")
            else:
                out.append(SlotSuggestion(slot, end, statuses, rooms))
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


def weekday_names(days: Sequence[str]) -> tuple[Weekday, ...]:
    """Weekdays from names in any case (Monday, monday)."""
    names = {w.value for w in Weekday}
    return tuple(Weekday(d.lower()) for d in days if d.lower() in names)
