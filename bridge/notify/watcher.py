"""Watching one mailbox: baseline, catch-up from the saved sync state, streaming or polling.

Every change is read with `DelegateSession.sync` from the folder's saved state; notifications
(streaming) or a timer (pull) only say *when* to sync. So after any gap (restart, outage, lost
subscription, throttling) the next sync picks up everything since the last saved state, and a
batch is recorded together with the state that follows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from bridge.commands._med import find_folder
from bridge.notify import rules as rules_mod
from bridge.notify.config import RuleSpec, Watch
from bridge.notify.health import HealthBoard, MailboxState
from bridge.notify.reminders import ReminderScanner, wants_reminders
from bridge.notify.render import payload_for
from bridge.notify.store import BridgeStore, NewNotification
from bridge.notify.transient import MAX_DELAY, retry_delay
from med import (
    AuthError,
    DelegateSession,
    Folder,
    FolderKind,
    InvalidInput,
    Item,
    MailboxEventKind,
    MedError,
    NotFound,
    SyncChange,
    SyncChangeKind,
    Throttled,
    Unsupported,
)

__all__ = ["MailboxWatcher", "folder_key"]

log = logging.getLogger("bridge.notify.watcher")

#: Events that mean "something changed in the folder: sync now".
_CHANGES = {
    MailboxEventKind.NEW_MAIL,
    MailboxEventKind.CREATED,
    MailboxEventKind.MODIFIED,
    MailboxEventKind.MOVED,
    MailboxEventKind.COPIED,
    MailboxEventKind.RESUBSCRIBED,
}


def folder_key(mailbox: str, folder: str) -> str:
    return f"{mailbox}/{folder.lower()}"


class MailboxWatcher:
    """Turns one mailbox's new items into outbox rows, exactly once per item and recipient.

    Args:
        session: the identity's session for syncing and reading items.
        stream_session: a second session of the same identity for the subscription (a waiting
            subscription holds one of its worker threads for as long as it waits).
        on_recorded: called when new rows are in the outbox (wakes the sender).
    """

    def __init__(
        self,
        watch: Watch,
        session: DelegateSession,
        stream_session: DelegateSession | None,
        store: BridgeStore,
        rules: Sequence[RuleSpec],
        board: HealthBoard,
        on_recorded: Callable[[], None],
        *,
        poll_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now().astimezone(),
    ) -> None:
        self.watch = watch
        self.session = session
        self.stream_session = stream_session
        self.store = store
        self.rules = [r for r in rules if r.mailbox is None or r.mailbox == watch.mailbox]
        self.board = board
        self.on_recorded = on_recorded
        self.poll_s = poll_s
        self.clock = clock
        self.folders: dict[str, Folder] = {}
        self.reminders = (
            ReminderScanner(self.mailbox, session, store, self.rules, clock)
            if wants_reminders(self.rules)
            else None
        )
        #: Calendars and task folders the backend cannot sync (`Unsupported`, e.g. another
        #: user's To Do list over a delegated Graph sign-in): their new items are not
        #: notified, their reminders still are (scanned, not synced).
        self.reminders_only: set[str] = set()
        self._dirty = asyncio.Event()
        self.streaming = False
        self.synced_at = 0.0

    @property
    def mailbox(self) -> str:
        return self.watch.mailbox

    async def run(self) -> None:
        """Watch until cancelled; failures are reported on the board and retried."""
        self.board.set(self.mailbox, MailboxState.STARTING)
        failures = 0
        subscription: asyncio.Task[None] | None = None
        try:
            while True:
                try:
                    if not self.folders:
                        await self._resolve()
                    if subscription is None or subscription.done():
                        subscription = self._subscribe()
                    await self.catch_up()
                    failures = 0
                    self.board.set(self.mailbox, MailboxState.RUNNING, self._running_detail())
                    await self._wait()
                except MedError as exc:
                    failures += 1
                    await self._pause(exc, failures)
        finally:
            if subscription is not None:
                subscription.cancel()
                with contextlib.suppress(asyncio.CancelledError, MedError):
                    await subscription

    def _running_detail(self) -> str:
        detail = "streaming" if self.streaming else "polling"
        if self.reminders_only:
            detail += f"; reminders only: {', '.join(sorted(self.reminders_only))}"
        return detail

    async def _pause(self, exc: MedError, failures: int) -> None:
        delay = retry_delay(exc, failures)
        if isinstance(exc, Throttled):
            state = MailboxState.THROTTLED
        elif isinstance(exc, AuthError):
            state = MailboxState.AUTH_FAILED
        else:
            state = MailboxState.DEGRADED
        # A folder that does not exist (a mistyped path) is named; else the error's kind.
        detail = str(exc) if isinstance(exc, NotFound | Unsupported) else exc.title
        self.board.set(self.mailbox, state, detail)
        log.warning(
            "mailbox %s: %s (%s); next try in %.1f s",
            self.mailbox,
            state.value,
            type(exc).__name__,
            delay if delay is not None else MAX_DELAY,
        )
        await asyncio.sleep(delay if delay is not None else MAX_DELAY)

    async def _resolve(self) -> None:
        """The watched folders by well-known name or path (public folders by path).

        Raises:
            NotFound: no such folder (the board says which).
            Unsupported: public folders on a backend without them.
        """
        resolved = {}
        for name in self.watch.folders:
            resolved[name] = await find_folder(self.session, self.mailbox, name)
        self.folders = resolved

    def _subscribe(self) -> asyncio.Task[None] | None:
        if self.stream_session is None:
            return None
        return asyncio.create_task(self._listen(self.stream_session), name=f"stream {self.mailbox}")

    async def _listen(self, session: DelegateSession) -> None:
        """Mark the mailbox dirty on every change event; on failure fall back to polling."""
        try:
            stream = session.subscribe(list(self.folders.values()))
            self.streaming = True
            established = False
            async for event in stream:
                if event.kind in _CHANGES or not established:
                    # The first event says the watch is in place: sync once more for what
                    # changed between the last sync and then (no event reports it).
                    established = True
                    self._dirty.set()
        except MedError as exc:
            log.warning(
                "mailbox %s: streaming failed (%s), polling", self.mailbox, type(exc).__name__
            )
        finally:
            self.streaming = False
            self._dirty.set()  # sync once now: events may have been lost

    async def _wait(self) -> None:
        timeout = self.poll_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._dirty.wait()
        self._dirty.clear()

    async def catch_up(self) -> int:
        """Sync every watched folder from its saved state; returns new outbox rows."""
        added = 0
        for name, folder in self.folders.items():
            if name not in self.reminders_only:
                added += await self._sync_folder(name, folder)
        calendars = {n: f for n, f in self.folders.items() if f.kind is FolderKind.CALENDAR}
        task_folders = {n: f for n, f in self.folders.items() if f.kind is FolderKind.TASKS}
        if self.reminders is not None and (calendars or task_folders):
            if await self.reminders.scan(calendars, task_folders):
                self.on_recorded()
            self.board.count("reminder_scans")
        self.synced_at = time.time()
        return added

    async def _sync_folder(self, name: str, folder: Folder) -> int:
        key = folder_key(self.mailbox, name)
        known, state = await self.store.sync_state(key)
        baseline = not known
        if baseline:
            self.board.set(self.mailbox, MailboxState.CATCHING_UP, "first sync")
        created: list[SyncChange] = []
        added = 0
        try:
            events = self.session.sync(folder, state)
            async for event in events:
                if isinstance(event, SyncChange):
                    if event.kind is SyncChangeKind.CREATED:
                        created.append(event)
                    continue
                notes = [] if baseline else await self._notifications(name, folder, created)
                added += await self.store.save_batch(
                    key, self.mailbox, folder.id, event.state, notes
                )
                self.board.count("sync_batches")
                created = []
        except Unsupported:
            if folder.kind not in (FolderKind.CALENDAR, FolderKind.TASKS):
                raise
            log.warning(
                "mailbox %s: %s cannot be synced on this backend; its reminders only",
                self.mailbox,
                name,
            )
            self.reminders_only.add(name)
            return added
        except InvalidInput:
            # The saved state no longer fits the folder (recreated): start a new baseline.
            log.warning("mailbox %s: sync state of %s rejected, new baseline", self.mailbox, name)
            await self.store.reset_folder(key)
            return added
        if added:
            self.on_recorded()
        return added

    async def _notifications(
        self, name: str, folder: Folder, changes: Sequence[SyncChange]
    ) -> list[NewNotification]:
        if not changes:
            return []
        items = await self._full_items(changes)
        now = self.clock()
        notes: list[NewNotification] = []
        for item in items:
            payload = payload_for(item, self.mailbox, folder.name)
            for found in rules_mod.match(self.rules, item, self.mailbox, name):
                notes.append(
                    NewNotification(
                        dedup_key=f"item:{self.mailbox}:{item.id}:{found.recipient.key}",
                        mailbox=self.mailbox,
                        route=found.recipient.key,
                        rule=found.rule.name,
                        payload=payload,
                        not_before=rules_mod.not_before(found.rule, now).timestamp(),
                        item_id=item.id,
                        change_key=item.change_key,
                        digest=found.rule.digest_minutes is not None,
                    )
                )
        return notes

    async def _full_items(self, changes: Sequence[SyncChange]) -> list[Item]:
        """The changed items with bodies (for previews and keywords); an item deleted in the
        meantime keeps the summary the sync gave."""
        ids = [c.item_id for c in changes]
        try:
            return await self.session.get_many(ids)
        except NotFound:
            items = []
            for change in changes:
                try:
                    items.append(await self.session.get(change.item_id))
                except NotFound:
                    if change.item is not None:
                        items.append(change.item)
            return items
