"""Calendar rules: series and their occurrences in the organizer's zone, views, exceptions.

Times are stored in UTC; a series expands in its start time zone (or the mailbox's), so an
occurrence keeps its wall-clock time across daylight saving changes, as in Exchange.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from exlab.core import items as store_items
from exlab.core.caller import Caller
from exlab.core.delivery import CreateArgs, display, owner_kind
from exlab.core.errors import NOT_FOUND, ExchangeError
from exlab.core.items import Item
from exlab.core.recurrence import (
    Recurrence,
    date_of,
    expand,
    index_of,
    last_date,
    occurrence_dates,
)
from exlab.core.store import Folder, new_key, parse_utc, utc_text
from exlab.core.targets import Target, item_ews_id, occurrence_ews_id
from exlab.core.timezones import zone_info

VIEW_MAX_YEARS = 2
"""A calendar view spans at most two years, as on Exchange."""


VIEW_COUNT_LIMIT = 1000
"""Entries one calendar view may answer (Exchange's EWSFindCountLimit default)."""


def zone_name_of(caller: Caller, item: Item) -> str:
    """The zone an item's times are kept in, as named: its own, else its mailbox's."""
    tz = item.props.get("calendar:StartTimeZone") or {}
    name = tz.get("id") if isinstance(tz, dict) else None
    if not name:
        mb = caller.lab.store.mailbox(item.mailbox)
        name = mb.time_zone if mb is not None else "UTC"
    return str(name)


def zone_of(caller: Caller, item: Item) -> ZoneInfo:
    return zone_info(zone_name_of(caller, item))


def duration_of(item: Item) -> timedelta:
    start = item.props.get("calendar:Start")
    end = item.props.get("calendar:End")
    if not start or not end:
        return timedelta(0)
    return parse_utc(end) - parse_utc(start)


def occurrences_of(
    caller: Caller, master: Item, window_start: datetime, window_end: datetime
) -> list[tuple[int, datetime, datetime]]:
    """(index, start, end) in UTC of the master's unmodified, undeleted occurrences."""
    rec = Recurrence.from_json(master.props["calendar:Recurrence"])
    zone = zone_of(caller, master)
    first = parse_utc(master.props["calendar:Start"]).astimezone(zone)
    modified = frozenset(
        int(e.props["lab:index"]) for e in store_items.exceptions_of(caller.lab.store, master.id)
    )
    occ = expand(
        rec,
        first,
        duration_of(master),
        window_start=window_start.astimezone(zone),
        window_end=window_end.astimezone(zone),
        deleted=frozenset(master.props.get("lab:deleted", [])),
        modified=modified,
    )
    return [(o.index, o.start, o.end) for o in occ]


def original_start(caller: Caller, master: Item, index: int) -> datetime:
    rec = Recurrence.from_json(master.props["calendar:Recurrence"])
    zone = zone_of(caller, master)
    first = parse_utc(master.props["calendar:Start"]).astimezone(zone)
    day = date_of(rec, index)
    if day is None:
        raise ExchangeError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange", NOT_FOUND)
    return datetime.combine(day, first.timetz())


def master_extras(caller: Caller, master: Item, p: dict[str, Any]) -> None:
    """FirstOccurrence/LastOccurrence/ModifiedOccurrences/DeletedOccurrences of a master."""
    rec = Recurrence.from_json(master.props["calendar:Recurrence"])
    duration = duration_of(master)
    p["calendar:CalendarItemType"] = "RecurringMaster"

    def info(index: int) -> dict[str, Any]:
        start = original_start(caller, master, index)
        return {
            "id": occurrence_ews_id(master, index),
            "start": utc_text(start),
            "end": utc_text(start + duration),
            "original_start": utc_text(start),
        }

    first = next(iter(occurrence_dates(rec)), None)
    if first is not None:
        p["calendar:FirstOccurrence"] = info(first[0])
    last = last_date(rec)
    if last is not None:
        idx = index_of(rec, last)
        if idx is not None:
            p["calendar:LastOccurrence"] = info(idx)
    exceptions = store_items.exceptions_of(caller.lab.store, master.id)
    if exceptions:
        p["calendar:ModifiedOccurrences"] = [
            {
                "id": item_ews_id(e),
                "change_key": e.change_key,
                "start": e.props.get("calendar:Start"),
                "end": e.props.get("calendar:End"),
                "original_start": e.props.get("calendar:OriginalStart"),
            }
            for e in exceptions
        ]
    deleted = master.props.get("lab:deleted", [])
    if deleted:
        p["calendar:DeletedOccurrences"] = [
            utc_text(original_start(caller, master, i)) for i in sorted(deleted)
        ]


def with_zone_offsets(recurrence: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    """A recurrence with the UTC offsets of its zone on its start and end dates, which Exchange
    writes after those dates (`2026-12-04+01:00`); `Z` for UTC."""

    def offset(day: str | None) -> str | None:
        if not day:
            return None
        delta = datetime.combine(date.fromisoformat(day), time(0), zone).utcoffset()
        minutes = int(delta.total_seconds()) // 60 if delta is not None else 0
        if minutes == 0:
            return "Z"
        sign = "-" if minutes < 0 else "+"
        hours, rest = divmod(abs(minutes), 60)
        return f"{sign}{hours:02d}:{rest:02d}"

    out = dict(recurrence)
    out["start_offset"] = offset(recurrence.get("start_date"))
    end_offset = offset(recurrence.get("end_date"))
    if end_offset is not None:
        out["end_offset"] = end_offset
    return out


def view_range_too_big(start: datetime, end: datetime) -> bool:
    """True when [start, end) spans more than ``VIEW_MAX_YEARS`` years."""
    try:
        limit = start.replace(year=start.year + VIEW_MAX_YEARS)
    except ValueError:  # 29 February, or past year 9999
        if start.year + VIEW_MAX_YEARS > 9999:
            return False
        limit = start.replace(year=start.year + VIEW_MAX_YEARS, day=28)
    return end > limit


def overlaps(item: Item, start: datetime, end: datetime) -> bool:
    s = item.props.get("calendar:Start")
    if not s:
        return False
    e = item.props.get("calendar:End") or s
    s_dt, e_dt = parse_utc(str(s)), parse_utc(str(e))
    return (e_dt > start and s_dt < end) or (s_dt == e_dt == start)


def owner_zone(caller: Caller, mailbox: str) -> str:
    """The time zone a mailbox's owner set (W. Europe Standard Time in the demo)."""
    mb = caller.lab.store.mailbox(mailbox)
    return mb.time_zone if mb is not None else "UTC"


def item_zone_name(props: dict[str, Any], fallback: str) -> str:
    """The zone an item's times are read in: its StartTimeZone, else `fallback`."""
    tz = props.get("calendar:StartTimeZone")
    name = tz.get("id") if isinstance(tz, dict) else None
    return str(name) if name else fallback


def normalise_all_day(props: dict[str, Any], zone_name: str) -> None:
    """An all-day event spans whole days in its zone, as Exchange stores it: a start that is
    not midnight moves to the midnight before it, an end to the midnight after it."""
    if not props.get("calendar:IsAllDayEvent") or not props.get("calendar:Start"):
        return
    zone = zone_info(zone_name)
    start = parse_utc(props["calendar:Start"]).astimezone(zone)
    end = parse_utc(props.get("calendar:End") or props["calendar:Start"]).astimezone(zone)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    last = end.replace(hour=0, minute=0, second=0, microsecond=0)
    if last < end or last <= first:
        last = datetime.combine(last.date() + timedelta(days=1), time(0), zone)
    props["calendar:Start"] = utc_text(datetime.combine(first.date(), time(0), zone))
    props["calendar:End"] = utc_text(datetime.combine(last.date(), time(0), zone))


def prepare_calendar(
    caller: Caller,
    props: dict[str, Any],
    folder: Folder,
    args: CreateArgs,
    *,
    zone_name: str | None = None,
) -> None:
    """A new calendar item as Exchange stores it: start and end zones set (from the request's
    zone, else the owner's), all-day spans whole days, a master starts at its first occurrence,
    a meeting has its organizer."""
    if not props.get("calendar:Start"):
        raise ExchangeError("ErrorInvalidPropertySet", "A calendar item needs a Start.")
    props.setdefault("calendar:End", props["calendar:Start"])
    if props["calendar:End"] < props["calendar:Start"]:
        raise ExchangeError(
            "ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate."
        )
    attendees = props.get("calendar:RequiredAttendees", []) + props.get(
        "calendar:OptionalAttendees", []
    )
    owner = folder.mailbox if owner_kind(caller, folder.mailbox) != "public" else caller.user
    zone = item_zone_name(props, zone_name or owner_zone(caller, owner))
    props.setdefault("calendar:StartTimeZone", {"id": zone})
    props.setdefault("calendar:EndTimeZone", dict(props["calendar:StartTimeZone"]))
    normalise_all_day(props, zone)
    props.setdefault("calendar:UID", new_key())
    if attendees:
        props["calendar:IsMeeting"] = True
        props["calendar:Organizer"] = display(caller, owner)
        props["calendar:MyResponseType"] = "Organizer"
        props["calendar:MeetingRequestWasSent"] = args.invitations != "SendToNone"
    props["calendar:CalendarItemType"] = (
        "RecurringMaster" if "calendar:Recurrence" in props else "Single"
    )
    if "calendar:Recurrence" in props:
        align_master_start(caller, props, owner)


def align_master_start(caller: Caller, props: dict[str, Any], owner: str) -> None:
    """A master starts at its first occurrence, as Exchange moves it there."""
    rec = Recurrence.from_json(props["calendar:Recurrence"])
    tzname = (props.get("calendar:StartTimeZone") or {}).get("id")
    if not tzname:
        mb = caller.lab.store.mailbox(owner)
        tzname = mb.time_zone if mb else "UTC"
        props["calendar:StartTimeZone"] = {"id": tzname}
        props.setdefault("calendar:EndTimeZone", {"id": tzname})
    zone = zone_info(tzname)
    start = parse_utc(props["calendar:Start"]).astimezone(zone)
    duration = parse_utc(props["calendar:End"]) - parse_utc(props["calendar:Start"])
    first = next(iter(occurrence_dates(rec)), None)
    if first is None:
        raise ExchangeError("ErrorCalendarInvalidRecurrence", "The recurrence has no occurrences.")
    new_start = datetime.combine(first[1], start.timetz())
    props["calendar:Start"] = utc_text(new_start)
    props["calendar:End"] = utc_text(new_start + duration)


def materialize(caller: Caller, target: Target, now: datetime) -> Item:
    """Turn an occurrence into an exception item of its master (first change to it)."""
    assert target.index is not None
    master = target.item
    start = original_start(caller, master, target.index)
    props = {k: v for k, v in master.props.items() if not k.startswith("lab:")}
    props.pop("calendar:Recurrence", None)
    props.update(
        {
            "calendar:Start": utc_text(start),
            "calendar:End": utc_text(start + duration_of(master)),
            "calendar:OriginalStart": utc_text(start),
            "calendar:RecurrenceId": utc_text(start),
            "calendar:CalendarItemType": "Exception",
            "lab:index": target.index,
        }
    )
    exc = store_items.create_item(
        caller.lab.store,
        target.folder,
        master.item_class,
        props,
        created_by=master.created_by,
        now=now,
        master_id=master.id,
    )
    return exc
