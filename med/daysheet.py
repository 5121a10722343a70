"""The day sheet: one person's day on a page — appointments with locations and attendees,
flagged mail and the tasks due — as `DelegateSession.day_sheet` collects it. Rendering (HTML,
a messenger message) is the caller's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from med.model import Event, Message, Task

__all__ = ["DaySheet"]


@dataclass(frozen=True, slots=True)
class DaySheet:
    """`events` are the day's appointments by start (occurrences expanded, private ones shown
    as busy blocks without details when the user may not see them); `flagged` the mailbox's
    flagged, not completed mail in its inbox, earliest due first; `tasks` the open tasks due
    by the end of the day, earliest first (overdue ones included)."""

    mailbox: str
    owner: str
    day: date
    time_zone: str
    events: tuple[Event, ...]
    flagged: tuple[Message, ...]
    tasks: tuple[Task, ...]
    made: datetime
    notes: tuple[str, ...] = ()
    """Sentences on what the sheet could not include (another person's tasks over Graph)."""
