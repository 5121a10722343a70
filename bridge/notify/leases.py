"""Mailbox leases: each watched mailbox is held by exactly one live worker.

A worker renews its leases every third of the lease period; a lease not renewed in time may be
taken by any other worker. So a killed worker's mailboxes move within one lease period, and a
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
        """One round: renew what we hold, take what is free."""
        for mailbox in self.mailboxes:
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
