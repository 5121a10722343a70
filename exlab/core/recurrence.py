"""Recurring series as Exchange expands them.

A series is a pattern (daily, weekly, absolute/relative monthly, absolute/relative yearly)
plus a range (no end, end date, number of occurrences), evaluated in the series' local
time, so that a 09:00 meeting stays at 09:00 across daylight-saving changes. Occurrences
carry their 1-based instance index (Exchange's ``InstanceIndex``); a numbered range counts
deleted occurrences too, as Exchange does.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
INDEXES = ("First", "Second", "Third", "Fourth", "Last")
# Day-of-week values a relative pattern may name besides the seven days.
DAY_GROUPS = {
    "Day": frozenset(range(7)),
    "Weekday": frozenset(range(5)),
    "WeekendDay": frozenset({5, 6}),
}

PatternKind = Literal[
    "daily", "weekly", "absolute_monthly", "relative_monthly", "absolute_yearly", "relative_yearly"
]
RangeKind = Literal["no_end", "end_date", "numbered"]

# Safety net for series without an end: no walk over a series looks at more dates than this
# (a view starts its walk near its window, so a series that began decades ago still shows).
MAX_OCCURRENCES = 10_000


class RecurrenceError(ValueError):
    """The pattern or range is not one Exchange would accept."""


@dataclass(frozen=True)
class Recurrence:
    """One series definition; field names follow the EWS elements."""

    kind: PatternKind
    start_date: date
    range_kind: RangeKind = "no_end"
    interval: int = 1
    days_of_week: tuple[str, ...] = ()
    first_day_of_week: str = "Monday"
    day_of_month: int = 1
    day_of_week_index: str = "First"
    month: str = "January"
    end_date: date | None = None
    count: int | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.interval < 1:
            raise RecurrenceError("Interval must be at least 1")
        for d in self.days_of_week:
            if d not in DAYS and d not in DAY_GROUPS:
                raise RecurrenceError(f"unknown day of week {d!r}")
        if self.kind == "weekly" and not self.days_of_week:
            raise RecurrenceError("a weekly pattern needs DaysOfWeek")
        if self.kind in ("relative_monthly", "relative_yearly"):
            if len(self.days_of_week) != 1:
                raise RecurrenceError("a relative pattern names exactly one DaysOfWeek value")
            if self.day_of_week_index not in INDEXES:
                raise RecurrenceError(f"unknown DayOfWeekIndex {self.day_of_week_index!r}")
        absolute = self.kind in ("absolute_monthly", "absolute_yearly")
        if absolute and not 1 <= self.day_of_month <= 31:
            raise RecurrenceError("DayOfMonth must be 1..31")
        if self.kind in ("absolute_yearly", "relative_yearly") and self.month not in MONTHS:
            raise RecurrenceError(f"unknown month {self.month!r}")
        if self.first_day_of_week not in DAYS:
            raise RecurrenceError(f"unknown FirstDayOfWeek {self.first_day_of_week!r}")
        bad_end = self.end_date is None or self.end_date < self.start_date
        if self.range_kind == "end_date" and bad_end:
            raise RecurrenceError("an end-date range needs an EndDate on or after StartDate")
        if self.range_kind == "numbered" and (self.count is None or self.count < 1):
            raise RecurrenceError("a numbered range needs NumberOfOccurrences >= 1")

    def to_json(self) -> dict[str, Any]:
        """The form stored in an item's props (``calendar:Recurrence``)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "interval": self.interval,
            "start_date": self.start_date.isoformat(),
            "range_kind": self.range_kind,
        }
        if self.kind == "weekly":
            out["days_of_week"] = list(self.days_of_week)
            out["first_day_of_week"] = self.first_day_of_week
        if self.kind in ("relative_monthly", "relative_yearly"):
            out["days_of_week"] = list(self.days_of_week)
            out["day_of_week_index"] = self.day_of_week_index
        if self.kind in ("absolute_monthly", "absolute_yearly"):
            out["day_of_month"] = self.day_of_month
        if self.kind in ("absolute_yearly", "relative_yearly"):
            out["month"] = self.month
        if self.end_date is not None:
            out["end_date"] = self.end_date.isoformat()
        if self.count is not None:
            out["count"] = self.count
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recurrence:
        end = data.get("end_date")
        return cls(
            kind=data["kind"],
            start_date=date.fromisoformat(data["start_date"]),
            range_kind=data.get("range_kind", "no_end"),
            interval=int(data.get("interval", 1)),
            days_of_week=tuple(data.get("days_of_week", ())),
            first_day_of_week=data.get("first_day_of_week", "Monday"),
            day_of_month=int(data.get("day_of_month", 1)),
            day_of_week_index=data.get("day_of_week_index", "First"),
            month=data.get("month", "January"),
            end_date=date.fromisoformat(end) if end else None,
            count=int(data["count"]) if data.get("count") is not None else None,
        )


def _day_set(names: tuple[str, ...]) -> frozenset[int]:
    out: set[int] = set()
    for n in names:
        out |= DAY_GROUPS.get(n, frozenset({DAYS.index(n)}) if n in DAYS else frozenset())
    return frozenset(out)


def _relative_day(year: int, month: int, days: frozenset[int], index: str) -> date:
    """The First..Fourth or Last day of ``month`` whose weekday is in ``days``."""
    last = calendar.monthrange(year, month)[1]
    matching = [d for d in range(1, last + 1) if date(year, month, d).weekday() in days]
    pos = -1 if index == "Last" else INDEXES.index(index)
    return date(year, month, matching[pos])


def _clamped(year: int, month: int, day: int) -> date:
    """Day ``day`` of the month, or its last day when the month is shorter (as Outlook does)."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _candidates(rec: Recurrence, near: date | None = None) -> Iterator[tuple[int, date]]:
    """(index, date) matching the pattern from the range start on, ascending, without end.

    ``near``: daily and weekly series jump straight to the cycle before that date (their
    indexes are plain arithmetic), so a view of 2026 does not walk a daily series from 1990.
    """
    try:
        yield from _walk(rec, near)
    except (OverflowError, ValueError):  # past date.max: the calendar ends there
        return


def _walk(rec: Recurrence, near: date | None) -> Iterator[tuple[int, date]]:
    start = rec.start_date
    if rec.kind == "daily":
        skipped = max(0, (near - start).days // rec.interval - 1) if near else 0
        d = start + timedelta(days=skipped * rec.interval)
        index = skipped + 1
        while True:
            yield index, d
            index += 1
            d += timedelta(days=rec.interval)
    elif rec.kind == "weekly":
        days = _day_set(rec.days_of_week)
        first = DAYS.index(rec.first_day_of_week)
        week_start = start - timedelta(days=(start.weekday() - first) % 7)
        index = 1
        if near is not None and days:
            cycles = max(0, (near - week_start).days // (7 * rec.interval) - 1)
            if cycles:
                in_first = sum(
                    1
                    for offset in range(7)
                    if week_start + timedelta(days=offset) >= start
                    and (week_start + timedelta(days=offset)).weekday() in days
                )
                index += in_first + (cycles - 1) * len(days)
                week_start += timedelta(weeks=cycles * rec.interval)
        while True:
            for offset in range(7):
                d = week_start + timedelta(days=offset)
                if d >= start and d.weekday() in days:
                    yield index, d
                    index += 1
            week_start += timedelta(weeks=rec.interval)
    elif rec.kind in ("absolute_monthly", "relative_monthly"):
        y, m = start.year, start.month
        days = _day_set(rec.days_of_week)
        index = 1
        while True:
            if rec.kind == "absolute_monthly":
                d = _clamped(y, m, rec.day_of_month)
            else:
                d = _relative_day(y, m, days, rec.day_of_week_index)
            if d >= start:
                yield index, d
                index += 1
            m += rec.interval
            y, m = y + (m - 1) // 12, (m - 1) % 12 + 1
    else:
        month = MONTHS.index(rec.month) + 1
        days = _day_set(rec.days_of_week)
        y = start.year
        index = 1
        while True:
            if rec.kind == "absolute_yearly":
                d = _clamped(y, month, rec.day_of_month)
            else:
                d = _relative_day(y, month, days, rec.day_of_week_index)
            if d >= start:
                yield index, d
                index += 1
            y += 1
            if y > 9999:
                return


def occurrence_dates(
    rec: Recurrence, *, until: date | None = None, near: date | None = None
) -> Iterator[tuple[int, date]]:
    """(instance index, date) of every occurrence in the range, stopping after ``until``.

    ``near`` lets the walk start shortly before that date (some earlier occurrences may still
    come first). No walk looks at more than ``MAX_OCCURRENCES`` dates, which bounds the work a
    series without end (or with a huge count) can cause.
    """
    for steps, (index, d) in enumerate(_candidates(rec, near), start=1):
        if steps > MAX_OCCURRENCES:
            return
        if rec.range_kind == "numbered" and rec.count is not None and index > rec.count:
            return
        if rec.range_kind == "end_date" and rec.end_date is not None and d > rec.end_date:
            return
        if until is not None and d > until:
            return
        yield index, d


@dataclass(frozen=True)
class Occurrence:
    """One expanded occurrence in local time of the series."""

    index: int
    start: datetime
    end: datetime


def expand(
    rec: Recurrence,
    first_start: datetime,
    duration: timedelta,
    *,
    window_start: datetime,
    window_end: datetime,
    deleted: frozenset[int] = frozenset(),
    modified: frozenset[int] = frozenset(),
) -> list[Occurrence]:
    """Occurrences overlapping [window_start, window_end) in the series' local time.

    ``first_start`` gives the local time of day (and tzinfo, if any) of every occurrence;
    indexes in ``deleted`` and ``modified`` are left out (the caller adds modified ones from
    their own items). Window bounds must have the same awareness as ``first_start``.
    """
    out: list[Occurrence] = []
    try:
        near: date | None = (window_start - duration).date() - timedelta(days=1)
    except OverflowError:
        near = None
    for index, d in occurrence_dates(rec, until=window_end.date(), near=near):
        if index in deleted or index in modified:
            continue
        start = datetime.combine(d, first_start.timetz())
        end = start + duration
        if (end > window_start and start < window_end) or start == end == window_start:
            out.append(Occurrence(index, start, end))
    return out


def index_of(rec: Recurrence, day: date) -> int | None:
    """The instance index of the occurrence on ``day``, or None if the series has none then."""
    for index, d in occurrence_dates(rec, until=day, near=day):
        if d == day:
            return index
    return None


def date_of(rec: Recurrence, index: int) -> date | None:
    """The date of instance ``index`` (1-based), or None past the end of the range."""
    if index < 1:
        return None
    for i, d in occurrence_dates(rec):
        if i == index:
            return d
        if i > index:
            break
    return None


def last_date(rec: Recurrence) -> date | None:
    """The date of the last occurrence, or None for a series without end."""
    if rec.range_kind == "no_end":
        return None
    last: date | None = None
    for _, d in occurrence_dates(rec):
        last = d
    return last
