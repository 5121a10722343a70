"""The outbox sender: posts recorded notifications, each exactly once.

A row is sent with a transaction id derived from its unique key, then marked sent and linked
to the message in one transaction. If the worker dies in between, the next attempt (by it or
another worker) sends the same transaction id, the server answers with the first message, and
the link is recorded then: the chat shows one message either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

from bridge.notify.chat import ChatLink, RouteError, txn_id_for
from bridge.notify.health import HealthBoard
from bridge.notify.render import actions_for, render, render_digest
from bridge.notify.store import BridgeStore, OutboxRow
from bridge.notify.transient import backoff, retry_delay
from messenger.client import Forbidden, MessengerError, NotFound

__all__ = ["OutboxSender", "batch_rows"]

log = logging.getLogger("bridge.notify.outbox")

#: How long a route that cannot be reached waits before the next attempt.
ROUTE_RETRY_S = 60.0


class OutboxSender:
    """Drains the due outbox rows of the mailboxes this worker holds."""

    def __init__(
        self,
        store: BridgeStore,
        chat: ChatLink,
        board: HealthBoard,
        mailboxes: Callable[[], Sequence[str]],
        *,
        idle_s: float = 1.0,
    ) -> None:
        self.store = store
        self.chat = chat
        self.board = board
        self.mailboxes = mailboxes
        self.wake = asyncio.Event()
        self.idle_s = idle_s

    async def run(self) -> None:
        while True:
            self.wake.clear()
            sent = await self.drain()
            if not sent:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.idle_s):
                        await self.wake.wait()

    async def drain(self) -> int:
        """Send what is due now; returns how many messages went out."""
        rows = await self.store.due(list(self.mailboxes()))
        sent = 0
        for batch in batch_rows(rows):
            if await self._send(batch):
                sent += 1
        return sent

    async def _send(self, batch: list[OutboxRow]) -> bool:
        first = batch[0]
        try:
            conversation = await self.chat.conversation_for(first.route)
        except RouteError as exc:
            log.warning("route %s unreachable: %s", first.route, exc)
            for row in batch:
                await self.store.mark_failed(
                    row, str(exc), retry_at=self.store.now() + ROUTE_RETRY_S
                )
            return False
        except MessengerError as exc:
            await self._failed(batch, exc)
            return False
        if len(batch) > 1 or first.digest:
            text = render_digest([(r.id, r.payload) for r in batch])
            key = "digest:" + ",".join(str(r.id) for r in batch)
            actions: list[dict[str, str]] = []
            reply_to = None
        else:
            text = render(first.payload, first.id)
            key = first.dedup_key
            actions = (
                []
                if "text" in first.payload
                else actions_for(str(first.payload.get("kind", "mail")), first.id)
            )
            reply_to = first.payload.get("reply_to")  # an action's answer: the command's seq
        try:
            seq = await self.chat.post(
                conversation,
                text,
                txn_id=txn_id_for(key),
                actions=actions,
                reply_to=int(reply_to) if reply_to is not None else None,
            )
        except (NotFound, Forbidden) as exc:
            # The conversation is gone or the bridge was removed: find the route afresh.
            await self.chat.forget(first.route)
            await self._failed(batch, exc, retry=True)
            return False
        except MessengerError as exc:
            await self._failed(batch, exc)
            return False
        await self.store.mark_sent(batch, conversation, seq)
        self.board.count("notifications_sent", len(batch))
        return True

    async def _failed(
        self, batch: Sequence[OutboxRow], exc: BaseException, *, retry: bool = False
    ) -> None:
        for row in batch:
            delay = retry_delay(exc, row.attempts + 1)
            if delay is None and retry:
                delay = backoff(row.attempts + 1)
            retry_at = self.store.now() + delay if delay is not None else None
            log.warning(
                "sending outbox %s failed (%s); %s",
                row.id,
                type(exc).__name__,
                f"retry in {delay:.1f} s" if delay is not None else "giving up",
            )
            await self.store.mark_failed(row, f"{type(exc).__name__}: {exc}", retry_at=retry_at)


def batch_rows(rows: Sequence[OutboxRow]) -> list[list[OutboxRow]]:
    """Single rows on their own; digest rows of one route and slot together."""
    batches: list[list[OutboxRow]] = []
    digests: dict[tuple[str, float], list[OutboxRow]] = {}
    for row in rows:
        if row.digest:
            group = digests.setdefault((row.route, row.not_before), [])
            if not group:
                batches.append(group)
            group.append(row)
        else:
            batches.append([row])
    return batches
