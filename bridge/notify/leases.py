"""Mailbox leases: each watched mailbox is held by exactly one live worker.

A worker renews its leases every third of the lease period; a lease not renewed in time may be
taken by any other worker. Workers announce themselves with a heartbeat and each takes at most
its share of the mailboxes, so they spread over the workers; one above its share hands the
surplus back. So a killed worker's mailboxes move within one lease period, and a
worker that loses a lease (paused, cut off from the database) stops watching that mailbox at its
next renewal. Even while two workers overlap, nothing is posted twice: outbox keys and
messenger transaction ids are the same on every worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy.exc import SQLAlchemyError

from bridge.notify.store import BridgeStore

__all__ = ["LeaseKeeper"]

log = logging.getLogger("bridge.notify.leases")


class LeaseKeeper:
    """Acquires and renews leases; calls `on_gain`/`on_loss` when a mailbox changes hands."""

    def __init__(
        self,
        store: BridgeStore,
        worker: str,
        mailboxes: Sequence[str],
        seconds: float,
        on_gain: Callable[[str], Awaitable[None]],
        on_loss: Callable[[str], Awaitable[None]],
    ) -> None:
        self.store = store
        self.worker = worker
        self.mailboxes = list(mailboxes)
        self.seconds = seconds
        self.on_gain = on_gain
        self.on_loss = on_loss
        self.held: set[str] = set()

    async def tick(self) -> None:
        """One round: renew what we hold, give back what is above our share, take free ones up
        to our share (the mailboxes divided by the live workers, rounded up)."""
        try:
            await self.store.heartbeat(self.worker)
            live = max(1, len(await self.store.live_workers(self.seconds)))
        except SQLAlchemyError as exc:
            log.warning("no heartbeat: %s", type(exc).__name__)
            live = 1
        share = -(-len(self.mailboxes) // live)
        held_first = sorted(self.mailboxes, key=lambda m: (m not in self.held, m))
        for mailbox in held_first:
            if mailbox in self.held and len(self.held) > share:
                # Another worker is idle while we hold more than our share: hand one over.
                self.held.discard(mailbox)
                await self.on_loss(mailbox)
                await self.store.release(mailbox, self.worker)
                continue
            if mailbox not in self.held and len(self.held) >= share:
                continue
            try:
                ours = await self.store.acquire(mailbox, self.worker, self.seconds)
            except SQLAlchemyError as exc:
                # Without the database we cannot prove the lease is ours: let it go.
                log.warning("lease on %s not renewed: %s", mailbox, type(exc).__name__)
                ours = False
            if ours and mailbox not in self.held:
                self.held.add(mailbox)
                await self.on_gain(mailbox)
            elif not ours and mailbox in self.held:
                self.held.discard(mailbox)
                await self.on_loss(mailbox)

    async def run(self) -> None:
        try:
            while True:
                await self.tick()
                await asyncio.sleep(self.seconds / 3)
        finally:
            for mailbox in sorted(self.held):
                await self.on_loss(mailbox)
            self.held.clear()

    async def release_all(self) -> None:
        """Hand every mailbox back at once (clean shutdown), so others need not wait."""
        for mailbox in self.mailboxes:
            await self.store.release(mailbox, self.worker)
