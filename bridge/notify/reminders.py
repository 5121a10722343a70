"""Reminders coming due: each occurrence's and each task's reminder posted once, at its time.

The reminder times of events are computed from the watched calendars (start minus the
reminder's minutes, occurrences of series expanded by the server's calendar view); those of
tasks are the reminder moments the watched task folders hold (open tasks only), the same way
over EWS and Graph. Every scan schedules the reminders of the coming days as outbox rows whose
`not_before` is the reminder time, keyed by mailbox, item and start (events) or reminder time
(tasks); the outbox sender posts each when it comes due, exactly once like any notification,
also across restarts and between workers. A scan also withdraws scheduled reminders whose
event or task moved, lost its reminder, was completed or deleted. Reminders that came due
before the mailbox was first watched are not posted; those that came due while the bridge was
down are posted late, once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from bridge.notify import rules as rules_mod
from bridge.notify.config import RuleSpec
from bridge.notify.render import payload_for
from bridge.notify.store import BridgeStore, NewNotification
from med import DelegateSession, Event, Folder, Item, Task, TaskStatus

__all__ = ["LOOKAHEAD", "ReminderScanner", "wants_reminders"]

#: Occurrences starting within this time from now get their reminders scheduled.
LOOKAHEAD = timedelta(days=8)
#: Occurrences that started this long ago still get a reminder that was missed (bridge down).
LOOKBACK = timedelta(days=1)


def wants_reminders(rules: Sequence[RuleSpec]) -> bool:
    """Some rule may send reminders: it names kind "reminder" or no kinds at all."""
    return any(not r.kinds or "reminder" in r.kinds for r in rules)


class ReminderScanner:
    """Schedules the reminders of one mailbox's watched calendars and task folders."""

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

    async def scan(
        self, calendars: Mapping[str, Folder], task_folders: Mapping[str, Folder] | None = None
    ) -> int:
        """Schedule what is due in the coming days; returns rows added or brought back.

        Calendars and task folders are scanned together: the schedule of the mailbox is
        replaced as a whole, so a reminder left out is withdrawn."""
        now = self.clock()
        since = await self._baseline(now)
        start = max(since, now - LOOKBACK)
        due_items: list[tuple[Item, str, datetime, str]] = []
        if calendars:
            names = {folder.id: name for name, folder in calendars.items()}
            events = await self.session.calendar_view(
                list(calendars.values()), start, now + LOOKAHEAD
            )
            for event in events:
                due = reminder_due(event)
                if due is not None and due >= since:
                    name = names.get(str(event.folder_id), next(iter(calendars)))
                    due_items.append((event, name, due, event.start.isoformat()))
        for name, folder in (task_folders or {}).items():
            async for item in self.session.iter_items(folder):
                due = task_reminder_due(item)
                if due is not None and start <= due < now + LOOKAHEAD:
                    due_items.append((item, name, due, due.isoformat()))
        folders = {**calendars, **(task_folders or {})}
        notes: list[NewNotification] = []
        for item, name, due, moment in due_items:
            due = due.astimezone(now.tzinfo)  # quiet hours are the bridge's local time
            payload = payload_for(item, self.mailbox, folders[name].name, "reminder")
            payload["due"] = due.isoformat()
            for found in rules_mod.match(self.rules, item, self.mailbox, name, "reminder"):
                key = f"{self.prefix}{item.id}:{moment}:{found.recipient.key}"
                notes.append(
                    NewNotification(
                        dedup_key=key,
                        mailbox=self.mailbox,
                        route=found.recipient.key,
                        rule=found.rule.name,
                        payload=payload,
                        not_before=rules_mod.not_before(found.rule, due).timestamp(),
                        item_id=item.id,
                        change_key=item.change_key,
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


def task_reminder_due(item: Item) -> datetime | None:
    """When a task's reminder fires; None for other items, without a reminder or once done."""
    if not isinstance(item, Task) or item.reminder_at is None:
        return None
    if item.status is TaskStatus.COMPLETED or item.completed is not None:
        return None
    return item.reminder_at
