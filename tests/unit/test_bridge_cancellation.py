"""A bridge worker's loops end when cancelled, also when what they wait for arrives at the
same moment.

On Python 3.11, `asyncio.wait_for` returns the awaited result instead of raising when the
cancellation and the result arrive in the same turn of the loop: a `while True` around it then
never ends, and a stopping worker waits on that loop for ever (a restart hangs). These tests
wake each loop in the very turn it is cancelled. Likewise, a CancelledError suppressed around
`await task` swallows the caller's own cancellation.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from bridge.notify.config import Watch
from bridge.notify.health import HealthBoard
from bridge.notify.outbox import OutboxSender
from bridge.notify.runner import BridgeWorker
from bridge.notify.watcher import MailboxWatcher

CHEF = "chef@example.org"


class _NothingDue:
    """A bridge store with an empty outbox."""

    async def due(self, mailboxes: list[str]) -> list[object]:
        return []


async def _ends_on_cancel(task: asyncio.Task[None], wake: asyncio.Event) -> bool:
    await asyncio.sleep(0.05)  # idle: waiting to be woken or for its poll interval
    wake.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=2)
    if not done:  # do not leave it running after the test
        task.cancel()
    return task in done and task.cancelled()


async def test_the_outbox_sender_stops_when_woken_as_it_is_cancelled() -> None:
    sender = OutboxSender(
        cast(Any, _NothingDue()), cast(Any, None), HealthBoard("w1"), list, idle_s=30
    )
    task = asyncio.create_task(sender.run())
    assert await _ends_on_cancel(task, sender.wake)


async def test_a_mailbox_watcher_stops_when_woken_as_it_is_cancelled() -> None:
    watch = Watch(mailbox=CHEF, folders=(), identity="assistenz", rights_identity="chef")
    watcher = MailboxWatcher(
        watch,
        cast(Any, None),
        None,
        cast(Any, None),
        [],
        HealthBoard("w1"),
        lambda: None,
        poll_s=30,
    )
    task = asyncio.create_task(watcher.run())
    assert await _ends_on_cancel(task, watcher._dirty)


async def test_a_worker_cancelled_while_it_stops_a_watcher_is_cancelled_too() -> None:
    # The supervisor and the lease loop stop watchers (`_lose`); cancelled meanwhile, they must
    # end, not run on.
    worker = BridgeWorker(cast(Any, SimpleNamespace(worker_id="w1")))

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            await asyncio.sleep(0.2)  # unsubscribing from the server, say
            raise

    worker.watchers[CHEF] = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    losing = asyncio.create_task(worker._lose(CHEF))
    await asyncio.sleep(0.05)
    losing.cancel()
    done, _ = await asyncio.wait({losing}, timeout=2)
    assert losing in done and losing.cancelled()
