"""Reminders coming due: each occurrence's reminder posted once, at its time.

The reminder times are computed from the watched calendars (start minus the reminder's minutes,
occurrences of series expanded by the server's calendar view), the same way over EWS and
Graph. Every scan schedules the reminders of the coming days as outbox rows whose `not_before`
is the reminder time, keyed by mailbox, occurrence and start; the outbox sender posts each when
it comes due, exactly once like any notification, also across restarts and between workers. A
scan also withdraws scheduled reminders whose event moved, lost its reminder or was deleted.
Reminders that came due before the mailbox was first watched are not posted; those that came
due while the bridge was down are posted late, once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from bridge.notify import rules as rules_mod
from bridge.notify.config import RuleSpec
from bridge.notify.render import payload_for
from bridge.notify.store import BridgeStore, NewNotification
from med import DelegateSession, Event, Folder

__all__ = ["LOOKAHEAD", "ReminderScanner", "wants_reminders"]

#: Occurrences starting within this time from now get their reminders scheduled.
LOOKAHEAD = timedelta(days=8)
#: Occurrences that started this long ago still get a reminder that was missed (bridge down).
LOOKBACK = timedelta(days=1)


def wants_reminders(rules: Sequence[RuleSpec]) -> bool:
    """Some rule may send reminders: it names kind "reminder" or no kinds at all."""
    return any(not r.kinds or "reminder" in r.kinds for r in rules)


class ReminderScanner:
    """Schedules the reminders of one mailbox's watched calendars."""

    def __init__(
        self,
        mailbox: str,
        session: DelegateSession,
        store: BridgeStore,
        rules: Sequence[RuleSpec],
        clock: Callable[[], datetime],
    ) -> None:
        self.mailbox = mailbox
        self.session = session
        self.store = store
        self.rules = rules
        self.clock = clock
        self.prefix = f"reminder:{mailbox}:"

    async def scan(self, calendars: Mapping[str, Folder]) -> int:
        """Schedule what is due in the coming days; returns rows added or brought back."""
        now = self.clock()
        since = await self._baseline(now)
        names = {folder.id: name for name, folder in calendars.items()}
        start = max(since, now - LOOKBACK)
        events = await self.session.calendar_view(list(calendars.values()), start, now + LOOKAHEAD)
        notes: list[NewNotification] = []
        for event in events:
            due = reminder_due(event)
            if due is None or due < since:
                continue
            due = due.astimezone(now.tzinfo)  # quiet hours are the bridge's local time
            name = names.get(str(event.folder_id), next(iter(calendars)))
            payload = payload_for(event, self.mailbox, calendars[name].name, "reminder")
            payload["due"] = due.isoformat()
            for found in rules_mod.match(self.rules, event, self.mailbox, name, "reminder"):
                key = f"{self.prefix}{event.id}:{event.start.isoformat()}:{found.recipient.key}"
                notes.append(
                    NewNotification(
                        dedup_key=key,
                        mailbox=self.mailbox,
                        route=found.recipient.key,
                        rule=found.rule.name,
                        payload=payload,
                        not_before=rules_mod.not_before(found.rule, due).timestamp(),
                        item_id=event.id,
                        change_key=event.change_key,
                        digest=found.rule.digest_minutes is not None,
                    )
                )
        return await self.store.save_schedule(self.mailbox, self.prefix, notes)

    async def _baseline(self, now: datetime) -> datetime:
        """When reminders of this mailbox were first looked at (saved on the first scan)."""
        key = f"{self.mailbox}/#reminders"
        known, state = await self.store.sync_state(key)
        if known and state:
            return datetime.fromtimestamp(float(state), tz=now.tzinfo)
        await self.store.save_batch(key, self.mailbox, "", str(now.timestamp()), [])
        return now


def reminder_due(event: Event) -> datetime | None:
    """When the event's reminder fires; None without a reminder or for a cancelled event."""
    if event.reminder_minutes is None or event.is_cancelled:
        return None
    return event.start - timedelta(minutes=event.reminder_minutes)
