"""iCalendar (RFC 5545) export and import of med events, on the icalendar library.

Export writes one VEVENT per single event and per series master (with its RRULE and an
EXDATE per deleted occurrence); a modified occurrence (an exception) is a VEVENT with the
master's UID and a RECURRENCE-ID naming the occurrence it replaces, as RFC 5545 asks. VTIMEZONE
blocks are added for the zones used. Import reads the same shapes back: masters carry their
EXDATEs as `Event.deleted_occurrences`, overrides come apart in `ImportResult.overrides`, so the
caller creates the series, then deletes and changes its occurrences. Recurrence rules that
Exchange cannot represent (hourly, several BYMONTHDAY values, ...) are refused with
`InvalidInput` rather than silently changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from med.errors import InvalidInput
from med.model import (
    Address,
    Attendee,
    AttendeeKind,
    BusyStatus,
    Daily,
    Event,
    EventKind,
    Importance,
    MonthlyByDate,
    MonthlyByWeekday,
    Recurrence,
    RecurrencePattern,
    ResponseType,
    Sensitivity,
    Weekday,
    Weekly,
    YearlyByDate,
    YearlyByWeekday,
)

__all__ = ["PRODID", "ImportResult", "events_to_ical", "ical_to_events"]

PRODID = "-//medbridge//med.ical//EN"

_DAYS = {
    Weekday.MONDAY: "MO",
    Weekday.TUESDAY: "TU",
    Weekday.WEDNESDAY: "WE",
    Weekday.THURSDAY: "TH",
    Weekday.FRIDAY: "FR",
    Weekday.SATURDAY: "SA",
    Weekday.SUNDAY: "SU",
}
_DAYS_BACK = {v: k for k, v in _DAYS.items()}
_WEEKS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": -1}
_WEEKS_BACK = {v: k for k, v in _WEEKS.items()}
_CLASS = {
    Sensitivity.NORMAL: "PUBLIC",
    Sensitivity.PERSONAL: "PRIVATE",
    Sensitivity.PRIVATE: "PRIVATE",
    Sensitivity.CONFIDENTIAL: "CONFIDENTIAL",
}
_PARTSTAT = {
    ResponseType.ACCEPT: "ACCEPTED",
    ResponseType.DECLINE: "DECLINED",
    ResponseType.TENTATIVE: "TENTATIVE",
    ResponseType.NO_RESPONSE: "NEEDS-ACTION",
    ResponseType.UNKNOWN: "NEEDS-ACTION",
    ResponseType.ORGANIZER: "ACCEPTED",
}
_PARTSTAT_BACK = {
    "ACCEPTED": ResponseType.ACCEPT,
    "DECLINED": ResponseType.DECLINE,
    "TENTATIVE": ResponseType.TENTATIVE,
    "NEEDS-ACTION": ResponseType.NO_RESPONSE,
}
_ROLE = {
    AttendeeKind.REQUIRED: "REQ-PARTICIPANT",
    AttendeeKind.OPTIONAL: "OPT-PARTICIPANT",
    AttendeeKind.RESOURCE: "NON-PARTICIPANT",
}
_ROLE_BACK = {v: k for k, v in _ROLE.items()}


# --------------------------------------------------------------------------- export


def events_to_ical(events: Sequence[Event], *, stamp: datetime | None = None) -> bytes:
    """An iCalendar document with the events, in the order given.

    `stamp` is the DTSTAMP written (default: each event's last modification, else now), so
    repeated exports of unchanged events are byte-identical.
    """
    import icalendar

    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    for event in events:
        cal.add_component(_vevent(event, stamp))
    cal.add_missing_timezones()
    data: bytes = cal.to_ical()
    return data


def _zone(event: Event) -> tzinfo:
    if event.timezone:
        try:
            return ZoneInfo(event.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return UTC


def _vevent(event: Event, stamp: datetime | None) -> Any:
    import icalendar

    vevent = icalendar.Event()
    vevent.add("uid", event.uid or _uid_for(event))
    zone = _zone(event)
    if event.event_kind is EventKind.EXCEPTION and event.original_start is not None:
        vevent.add("recurrence-id", _moment(event.original_start, zone, event.is_all_day))
    vevent.add("dtstamp", (stamp or event.last_modified or datetime.now(UTC)).astimezone(UTC))
    if event.is_all_day:
        first = event.start.astimezone(zone).date()
        last = event.end.astimezone(zone).date()
        vevent.add("dtstart", first)
        vevent.add("dtend", max(last, first + timedelta(days=1)))
    else:
        vevent.add("dtstart", event.start.astimezone(zone))
        vevent.add("dtend", event.end.astimezone(zone))
    vevent.add("summary", event.subject)
    if event.location:
        vevent.add("location", event.location)
    if event.body and not event.body_is_html:
        vevent.add("description", event.body)
    vevent.add("class", _CLASS[event.sensitivity])
    if event.importance is Importance.HIGH:
        vevent.add("priority", 1)
    elif event.importance is Importance.LOW:
        vevent.add("priority", 9)
    if event.categories:
        vevent.add("categories", list(event.categories))
    vevent.add("transp", "TRANSPARENT" if event.show_as is BusyStatus.FREE else "OPAQUE")
    if event.is_cancelled:
        vevent.add("status", "CANCELLED")
    elif event.show_as is BusyStatus.TENTATIVE:
        vevent.add("status", "TENTATIVE")
    if event.organizer is not None:
        params = {"CN": event.organizer.name} if event.organizer.name else {}
        vevent.add("organizer", f"mailto:{event.organizer.email}", parameters=params)
    for att in event.attendees:
        params = {"ROLE": _ROLE[att.kind], "PARTSTAT": _PARTSTAT[att.response]}
        if att.kind is AttendeeKind.RESOURCE:
            params["CUTYPE"] = "RESOURCE"
        if att.address.name:
            params["CN"] = att.address.name
        vevent.add("attendee", f"mailto:{att.address.email}", parameters=params)
    if event.recurrence is not None and event.event_kind in (EventKind.SERIES, EventKind.SINGLE):
        vevent.add("rrule", _rrule(event.recurrence, event, zone))
        if event.deleted_occurrences:
            vevent.add(
                "exdate",
                [_moment(m, zone, event.is_all_day) for m in sorted(event.deleted_occurrences)],
            )
    if event.reminder_minutes is not None:
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", event.subject or "Reminder")
        alarm.add("trigger", timedelta(minutes=-event.reminder_minutes))
        vevent.add_component(alarm)
    return vevent


def _moment(moment: datetime, zone: tzinfo, all_day: bool) -> date | datetime:
    """A start as DTSTART would write it: a date for all-day events, else local time."""
    local = moment.astimezone(zone)
    return local.date() if all_day else local


def _uid_for(event: Event) -> str:
    basis = event.series_id if event.event_kind is EventKind.SERIES else None
    digest = hashlib.sha256((basis or event.id or event.subject).encode()).hexdigest()[:32]
    return f"{digest}@medbridge"


def _rrule(rec: Recurrence, event: Event, zone: tzinfo) -> dict[str, Any]:
    pattern = rec.pattern
    rule: dict[str, Any]
    if isinstance(pattern, Daily):
        rule = {"FREQ": "DAILY", "INTERVAL": pattern.interval}
    elif isinstance(pattern, Weekly):
        rule = {
            "FREQ": "WEEKLY",
            "INTERVAL": pattern.interval,
            "BYDAY": [_DAYS[d] for d in pattern.weekdays],
            "WKST": _DAYS[pattern.first_day_of_week],
        }
    elif isinstance(pattern, MonthlyByDate):
        rule = {"FREQ": "MONTHLY", "INTERVAL": pattern.interval, "BYMONTHDAY": pattern.day_of_month}
    elif isinstance(pattern, MonthlyByWeekday):
        rule = {
            "FREQ": "MONTHLY",
            "INTERVAL": pattern.interval,
            "BYDAY": _DAYS[pattern.weekday],
            "BYSETPOS": _WEEKS[pattern.week],
        }
    elif isinstance(pattern, YearlyByDate):
        rule = {"FREQ": "YEARLY", "BYMONTH": pattern.month, "BYMONTHDAY": pattern.day_of_month}
    else:
        rule = {
            "FREQ": "YEARLY",
            "BYMONTH": pattern.month,
            "BYDAY": _DAYS[pattern.weekday],
            "BYSETPOS": _WEEKS[pattern.week],
        }
    if rule.get("INTERVAL") == 1:
        del rule["INTERVAL"]
    if rec.count is not None:
        rule["COUNT"] = rec.count
    elif rec.end is not None:
        if event.is_all_day:
            rule["UNTIL"] = rec.end
        else:
            local_start = event.start.astimezone(zone)
            until = datetime.combine(rec.end, local_start.timetz().replace(tzinfo=None))
            rule["UNTIL"] = until.replace(tzinfo=zone).astimezone(UTC)
    return rule


# --------------------------------------------------------------------------- import


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Events read from a document.

    `events` are single events and series masters (EXDATEs in `deleted_occurrences`);
    `overrides` are the modified occurrences of those series, each with the master's `uid`
    and the `original_start` it replaces.
    """

    events: tuple[Event, ...]
    overrides: tuple[Event, ...] = ()

    def overrides_of(self, master: Event) -> list[Event]:
        """The modified occurrences of one series of this document, by original start."""
        found = [o for o in self.overrides if master.uid and o.uid == master.uid]
        return sorted(found, key=lambda o: o.original_start or o.start)


def ical_to_events(data: bytes, *, default_zone: str = "UTC") -> ImportResult:
    """Parse an iCalendar document into events ready to create (no ids).

    Floating times (no zone) are read in `default_zone`.

    Raises:
        InvalidInput: the data is no iCalendar document, has no events, or uses a recurrence
            rule Exchange cannot represent.
    """
    import icalendar

    try:
        cal = icalendar.Calendar.from_ical(data)
    except ValueError as exc:
        raise InvalidInput(f"This is not a valid iCalendar file: {exc}") from exc
    zone = ZoneInfo(default_zone)
    events: list[Event] = []
    overrides: list[Event] = []
    for vevent in cal.walk("VEVENT"):
        event = _event_from(vevent, zone)
        (overrides if event.original_start is not None else events).append(event)
    series = {e.uid for e in events if e.recurrence is not None and e.uid}
    # An override without its series in the file (an invitation's update) stands alone.
    lone = [o for o in overrides if o.uid not in series]
    events.extend(
        dataclasses.replace(o, original_start=None, event_kind=EventKind.SINGLE) for o in lone
    )
    if not events:
        raise InvalidInput("The iCalendar file holds no events.")
    return ImportResult(tuple(events), tuple(o for o in overrides if o.uid in series))


def _as_datetime(value: date | datetime, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)
    return datetime.combine(value, time(0), tzinfo=zone)


def _text(component: Any, name: str) -> str:
    value = component.get(name)
    return str(value) if value is not None else ""


def _address(value: Any) -> Address:
    email = str(value)
    if email.lower().startswith("mailto:"):
        email = email[7:]
    name = value.params.get("CN", "") if hasattr(value, "params") else ""
    return Address(email, str(name))


def _moments(vevent: Any, name: str, zone: tzinfo) -> tuple[datetime, ...]:
    """All date-times of a property that may repeat and hold several values (EXDATE)."""
    raw = vevent.get(name)
    out: list[datetime] = []
    for prop in raw if isinstance(raw, list) else [raw] if raw is not None else []:
        out.extend(_as_datetime(v.dt, zone) for v in prop.dts)
    return tuple(out)


def _event_from(vevent: Any, zone: tzinfo) -> Event:
    if vevent.get("dtstart") is None:
        raise InvalidInput("An event in the iCalendar file has no start (DTSTART).")
    raw_start = vevent.decoded("dtstart")
    all_day = not isinstance(raw_start, datetime)
    start = _as_datetime(raw_start, zone)
    if vevent.get("dtend") is not None:
        end = _as_datetime(vevent.decoded("dtend"), zone)
    elif vevent.get("duration") is not None:
        end = start + vevent.decoded("duration")
    else:
        end = start + (timedelta(days=1) if all_day else timedelta(0))
    if end < start:
        raise InvalidInput(f"The event {_text(vevent, 'summary')!r} ends before it starts.")
    tzname = getattr(start.tzinfo, "key", None)
    klass = _text(vevent, "class").upper()
    sensitivity = {"PRIVATE": Sensitivity.PRIVATE, "CONFIDENTIAL": Sensitivity.CONFIDENTIAL}.get(
        klass, Sensitivity.NORMAL
    )
    priority = int(vevent.get("priority", 0) or 0)
    importance = (
        Importance.HIGH
        if 1 <= priority <= 4
        else Importance.LOW
        if priority >= 6
        else Importance.NORMAL
    )
    categories: list[str] = []
    raw_cats = vevent.get("categories")
    for entry in raw_cats if isinstance(raw_cats, list) else [raw_cats] if raw_cats else []:
        categories.extend(str(c) for c in entry.cats)
    attendees = []
    raw_att = vevent.get("attendee")
    for att in raw_att if isinstance(raw_att, list) else [raw_att] if raw_att else []:
        params = att.params
        kind = (
            AttendeeKind.RESOURCE
            if params.get("CUTYPE", "").upper() in ("RESOURCE", "ROOM")
            else _ROLE_BACK.get(params.get("ROLE", "").upper(), AttendeeKind.REQUIRED)
        )
        response = _PARTSTAT_BACK.get(params.get("PARTSTAT", "").upper(), ResponseType.UNKNOWN)
        attendees.append(Attendee(_address(att), kind, response))
    organizer = _address(vevent["organizer"]) if vevent.get("organizer") else None
    transp = _text(vevent, "transp").upper()
    status = _text(vevent, "status").upper()
    show_as = (
        BusyStatus.FREE
        if transp == "TRANSPARENT"
        else BusyStatus.TENTATIVE
        if status == "TENTATIVE"
        else BusyStatus.BUSY
    )
    recurrence = None
    if vevent.get("rrule") is not None and vevent.get("recurrence-id") is None:
        recurrence = _recurrence(dict(vevent["rrule"]), start, zone)
    reminder = None
    for alarm in vevent.walk("VALARM"):
        trigger = alarm.decoded("trigger") if alarm.get("trigger") is not None else None
        if isinstance(trigger, timedelta) and trigger <= timedelta(0):
            reminder = int(-trigger.total_seconds() // 60)
            break
    original_start = None
    if vevent.get("recurrence-id") is not None:
        original_start = _as_datetime(vevent.decoded("recurrence-id"), zone)
    description = _text(vevent, "description")
    event = Event(
        subject=_text(vevent, "summary"),
        body=description or None,
        start=start,
        end=end,
        is_all_day=all_day,
        location=_text(vevent, "location"),
        organizer=organizer,
        attendees=tuple(attendees),
        is_meeting=bool(attendees),
        sensitivity=sensitivity,
        importance=importance,
        categories=tuple(categories),
        show_as=show_as,
        is_cancelled=status == "CANCELLED",
        recurrence=recurrence,
        event_kind=(
            EventKind.SERIES
            if recurrence
            else EventKind.EXCEPTION
            if original_start is not None
            else EventKind.SINGLE
        ),
        reminder_minutes=reminder,
        timezone=tzname,
        uid=_text(vevent, "uid") or None,
        original_start=original_start,
        deleted_occurrences=_moments(vevent, "exdate", zone) if recurrence else (),
    )
    return event


def _one(rule: dict[str, list[Any]], key: str) -> Any:
    values = rule.get(key) or []
    if len(values) > 1:
        raise InvalidInput(f"Recurrence with several {key} values cannot be kept in Exchange.")
    return values[0] if values else None


def _weekday_and_pos(rule: dict[str, list[Any]]) -> tuple[Weekday, str]:
    day = str(_one(rule, "BYDAY"))
    pos = _one(rule, "BYSETPOS")
    if len(day) > 2:  # "2TU", "-1FR"
        pos, day = int(day[:-2]), day[-2:]
    if pos is None or int(pos) not in _WEEKS_BACK or day not in _DAYS_BACK:
        raise InvalidInput(f"Recurrence on {day} position {pos} cannot be kept in Exchange.")
    return _DAYS_BACK[day], _WEEKS_BACK[int(pos)]


def _recurrence(rule: dict[str, list[Any]], start: datetime, zone: tzinfo) -> Recurrence:
    freq = str(_one(rule, "FREQ") or "")
    interval = int(_one(rule, "INTERVAL") or 1)
    pattern: RecurrencePattern
    if freq == "DAILY":
        pattern = Daily(interval)
    elif freq == "WEEKLY":
        days = [str(d) for d in rule.get("BYDAY", [])] or [_DAYS[_weekday_of(start)]]
        if any(d not in _DAYS_BACK for d in days):
            raise InvalidInput("Weekly recurrence with positions cannot be kept in Exchange.")
        wkst = str(_one(rule, "WKST") or "MO")
        pattern = Weekly(tuple(_DAYS_BACK[d] for d in days), interval, _DAYS_BACK[wkst])
    elif freq == "MONTHLY":
        if rule.get("BYDAY"):
            weekday, week = _weekday_and_pos(rule)
            pattern = MonthlyByWeekday(weekday, week, interval)  # type: ignore[arg-type]
        else:
            pattern = MonthlyByDate(int(_one(rule, "BYMONTHDAY") or start.day), interval)
    elif freq == "YEARLY":
        if interval != 1:
            raise InvalidInput("Exchange repeats yearly series every year only.")
        month = int(_one(rule, "BYMONTH") or start.month)
        if rule.get("BYDAY"):
            weekday, week = _weekday_and_pos(rule)
            pattern = YearlyByWeekday(month, weekday, week)  # type: ignore[arg-type]
        else:
            pattern = YearlyByDate(month, int(_one(rule, "BYMONTHDAY") or start.day))
    else:
        raise InvalidInput(f"Recurrence FREQ={freq or '?'} cannot be kept in Exchange.")
    count = _one(rule, "COUNT")
    until = _one(rule, "UNTIL")
    end: date | None = None
    if until is not None:
        end = until.astimezone(zone).date() if isinstance(until, datetime) else until
    return Recurrence(
        pattern=pattern,
        start=start.date(),
        end=end,
        count=int(count) if count is not None else None,
    )


def _weekday_of(moment: datetime) -> Weekday:
    return list(Weekday)[moment.weekday()]
