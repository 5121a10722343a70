"""The dates and times people type into the TUI's prompts and forms, read in one way.

A day is `2026-12-24` or `24.12.2026`, a time `14:30`; a bad entry raises ValueError with the
sentence the form shows.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

DAY_FORMATS = ("%Y-%m-%d", "%d.%m.%Y")
#: When a follow-up or task due on a day falls due (local time).
DUE_TIME = time(17, 0)


def parse_day(text: str) -> date:
    text = text.strip()
    for fmt in DAY_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError("Write dates as 2026-12-24 or 24.12.2026.")


def parse_clock(text: str) -> time:
    try:
        hour, _, minute = text.strip().partition(":")
        return time(int(hour), int(minute or 0))
    except ValueError:
        raise ValueError("Write times as 14:30.") from None


def parse_due(text: str) -> datetime | None:
    """A due or follow-up day at `DUE_TIME` local time; empty clears it (None)."""
    if not text.strip():
        return None
    return datetime.combine(parse_day(text), DUE_TIME).astimezone()


def parse_span(text: str) -> tuple[datetime, datetime]:
    """`2026-12-09 14:00 15:00` (day, start, end; local time) as aware datetimes; an end
    before the start is on the next day."""
    parts = text.split()
    if len(parts) != 3:
        raise ValueError("Write a day, a start and an end: 2026-12-09 14:00 15:00.")
    day = parse_day(parts[0])
    start = datetime.combine(day, parse_clock(parts[1])).astimezone()
    end = datetime.combine(day, parse_clock(parts[2])).astimezone()
    if end == start:
        raise ValueError("The end must differ from the start.")
    return start, end if end > start else end + timedelta(days=1)
