"""The change feed of a folder, shared by the SSE stream and webhooks.

It rides on med's incremental sync (`DelegateSession.sync`): every batch of changes ends in a
checkpoint whose sync state is the feed's position. The SSE event id and a webhook's position
are that state, so a client resuming with `Last-Event-ID` gets every change after the last
checkpoint it saw: at least once, nothing lost (a batch cut off by a disconnect comes again;
changes carry item ids to de-duplicate). Without a position the feed starts at "now".
Exchange is asked every `poll_s` seconds.

Positions are signed (HMAC-SHA256 with the API's position key, bound to the folder), so a
caller can only resume from a position the API handed out for that folder; with no key
configured a random one per process is used and positions do not survive a restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bridge.api import ids
from med import DelegateSession, InvalidInput, SyncChange, SyncCheckpoint, to_jsonable

__all__ = ["ChangeBatch", "Positions", "follow"]


@dataclass(frozen=True)
class ChangeBatch:
    """Changes (JSON-ready) up to `position`; empty when the folder had none."""

    changes: tuple[dict[str, Any], ...]
    position: str


@dataclass(frozen=True)
class Positions:
    """Signs sync states into positions and checks positions callers bring back."""

    key: bytes

    def _mac(self, folder_id: str, encoded: str) -> str:
        message = f"{folder_id}.{encoded}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()[:32]

    def position_of(self, folder_id: str, state: str) -> str:
        encoded = ids.outward_id(state)
        return f"{encoded}.{self._mac(folder_id, encoded)}"

    def state_of(self, folder_id: str, position: str) -> str:
        """The sync state of a position.

        Raises:
            InvalidInput: the position was not handed out for this folder.
        """
        encoded, _, mac = position.rpartition(".")
        if not encoded or not hmac.compare_digest(mac, self._mac(folder_id, encoded)):
            raise InvalidInput("That Last-Event-ID is not a position of this folder's changes.")
        return ids.inward(encoded)


async def _one_round(
    session: DelegateSession, positions: Positions, folder_id: str, state: str | None
) -> AsyncIterator[ChangeBatch]:
    folder = await session.folder(ids.inward(folder_id))
    pending: list[dict[str, Any]] = []
    async for event in session.sync(folder, state):
        if isinstance(event, SyncChange):
            pending.append(ids.outward(to_jsonable(event)))
        elif isinstance(event, SyncCheckpoint):
            yield ChangeBatch(tuple(pending), positions.position_of(folder_id, event.state))
            pending = []


async def follow(
    session_for: Callable[[], Awaitable[DelegateSession]],
    positions: Positions,
    folder_id: str,
    position: str | None,
    poll_s: float,
) -> AsyncIterator[ChangeBatch]:
    """Batches of a folder's changes from `position` (None: from now) until cancelled.

    Every round yields at least one batch (maybe empty), so a consumer can send heartbeats.

    Raises:
        InvalidInput: the position is not one of this folder's.
        as `DelegateSession.sync`.
    """
    state = positions.state_of(folder_id, position) if position is not None else None
    if state is None:  # from now: run through the folder once, keep only the position
        last: ChangeBatch | None = None
        async for batch in _one_round(await session_for(), positions, folder_id, None):
            last = batch
        assert last is not None
        yield ChangeBatch((), last.position)
        state = positions.state_of(folder_id, last.position)
    else:
        async for batch in _one_round(await session_for(), positions, folder_id, state):
            yield batch
            state = positions.state_of(folder_id, batch.position)
    while True:
        await asyncio.sleep(poll_s)
        async for batch in _one_round(await session_for(), positions, folder_id, state):
            yield batch
            state = positions.state_of(folder_id, batch.position)
