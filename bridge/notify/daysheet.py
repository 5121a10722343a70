"""The morning day sheet: at a set local time the bridge posts a watched mailbox's day sheet
(appointments, flagged mail, due tasks) to each recipient, exactly once per day and recipient.

Configured as `[[day_sheet]]` tables::

    [[day_sheet]]
    mailbox = "chef@musterstadt.example"    # a watched mailbox
    to = ["user:assistenz@musterstadt.example"]
    at = "07:00"                            # local time in time_zone
    time_zone = "Europe/Berlin"
    weekdays_only = true                    # default

The sheet goes through the outbox under the key `daysheet:MAILBOX:DATE:RECIPIENT`, which the
store keeps unique: a restart, a second worker or a second look the same day adds nothing. Only
the worker holding the mailbox's lease posts it, as for the mailbox's mail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.daysheet import render_text
from bridge.notify.store import BridgeStore, NewNotification
from med import DelegateSession, MedError

__all__ = ["DaySheetJob", "DaySheetSpec", "parse_day_sheets"]

log = logging.getLogger("bridge.notify")
RULE = "day-sheet"


class DaySheetConfigError(ValueError):
    pass


@dataclass(frozen=True)
class DaySheetSpec:
    mailbox: str
    to: tuple[str, ...]  # recipient keys (user:…, group:…, managed:…)
    at: time
    time_zone: str
    weekdays_only: bool = True

    def due(self, now: datetime) -> date | None:
        """The day whose sheet is due at `now` (None: not yet today, or a weekend)."""
        local = now.astimezone(ZoneInfo(self.time_zone))
        if self.weekdays_only and local.weekday() >= 5:
            return None
        return local.date() if local.time() >= self.at else None

    def key(self, day: date, recipient: str) -> str:
        return f"daysheet:{self.mailbox}:{day.isoformat()}:{recipient}"


def parse_day_sheets(
    entries: Sequence[Any],
    watched: Collection[str],
    recipient: Callable[[str, str], str],
    error: type[Exception] = DaySheetConfigError,
) -> tuple[DaySheetSpec, ...]:
    """`[[day_sheet]]` tables; `recipient(text, where)` checks a recipient and returns its key."""
    out = []
    for i, values in enumerate(entries):
        where = f"day_sheet[{i}]"
        if not isinstance(values, Mapping):
            raise error(f"{where} must be a table")
        unknown = set(values) - {"mailbox", "to", "at", "time_zone", "weekdays_only"}
        if unknown:
            raise error(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}")
        mailbox = str(values.get("mailbox", "")).lower()
        if mailbox not in watched:
            raise error(f"{where}.mailbox {mailbox!r} must be one of the watched mailboxes")
        to = values.get("to")
        if not isinstance(to, list) or not to:
            raise error(f"{where}.to: name at least one recipient")
        try:
            at = time.fromisoformat(str(values.get("at", "07:00")))
        except ValueError:
            raise error(f"{where}.at must be a time of day like 07:00") from None
        zone = str(values.get("time_zone", "UTC"))
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise error(f"{where}.time_zone {zone!r} is no time zone (Europe/Berlin)") from None
        out.append(
            DaySheetSpec(
                mailbox,
                tuple(recipient(str(r), f"{where}.to") for r in to),
                at,
                zone,
                bool(values.get("weekdays_only", True)),
            )
        )
    return tuple(out)


class DaySheetJob:
    """Checks every `interval` seconds which sheets are due for held mailboxes and records
    them in the outbox; `wake` tells the sender."""

    def __init__(
        self,
        specs: Sequence[DaySheetSpec],
        store: BridgeStore,
        session_for: Callable[[str], Awaitable[DelegateSession]],
        held: Callable[[], Collection[str]],
        wake: Callable[[], None],
        clock: Callable[[], datetime],
        interval: float = 30.0,
    ) -> None:
        self.specs = specs
        self.store = store
        self.session_for = session_for
        self.held = held
        self.wake = wake
        self.clock = clock
        self.interval = interval
        self._done: set[tuple[str, date]] = set()

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.interval)

    async def tick(self) -> int:
        """Record what is due now; returns how many notifications were new."""
        added = 0
        now = self.clock()
        held = set(self.held())
        for spec in self.specs:
            day = spec.due(now)
            if day is None or spec.mailbox not in held or (spec.mailbox, day) in self._done:
                continue
            try:
                session = await self.session_for(spec.mailbox)
                sheet = await session.day_sheet(spec.mailbox, day, spec.time_zone)
            except MedError as exc:
                log.warning("day sheet of %s: %s", spec.mailbox, exc)
                continue
            text = render_text(sheet)
            added += await self.store.enqueue(
                [
                    NewNotification(
                        dedup_key=spec.key(day, recipient),
                        mailbox=spec.mailbox,
                        route=recipient,
                        rule=RULE,
                        payload={"text": text, "kind": "day_sheet"},
                        not_before=self.store.now(),
                    )
                    for recipient in spec.to
                ]
            )
            self._done.add((spec.mailbox, day))
        if added:
            self.wake()
        return added
