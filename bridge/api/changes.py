"""The change feed of a folder, shared by the SSE stream and webhooks.

It rides on med's incremental sync (`DelegateSession.sync`): every batch of changes ends in a
checkpoint whose sync state is the feed's position. The SSE event id and a webhook's position
are that state, so a client resuming with `Last-Event-ID` gets every change after the last
checkpoint it saw: at least once, nothing lost (a batch cut off by a disconnect comes again;
changes carry item ids to de-duplicate). Without a position the feed starts at "now".
Exchange is asked every `poll_s` seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bridge.api import ids
from med import DelegateSession, SyncChange, SyncCheckpoint, to_jsonable

__all__ = ["ChangeBatch", "follow"]


@dataclass(frozen=True)
class ChangeBatch:
    """Changes (JSON-ready) up to `position`; empty when the folder had none."""

    changes: tuple[dict[str, Any], ...]
    position: str


def position_of(state: str) -> str:
    return ids.outward_id(state)


def state_of(position: str) -> str:
    return ids.inward(position)


async def _one_round(
    session: DelegateSession, folder_id: str, state: str | None
) -> AsyncIterator[ChangeBatch]:
    folder = await session.folder(folder_id)
    pending: list[dict[str, Any]] = []
    async for event in session.sync(folder, state):
        if isinstance(event, SyncChange):
            pending.append(ids.outward(to_jsonable(event)))
        elif isinstance(event, SyncCheckpoint):
            yield ChangeBatch(tuple(pending), position_of(event.state))
            pending = []


async def follow(
    session_for: Callable[[], Awaitable[DelegateSession]],
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
    state = state_of(position) if position is not None else None
    if state is None:  # from now: run through the folder once, keep only the position
        last: ChangeBatch | None = None
        async for batch in _one_round(await session_for(), folder_id, None):
            last = batch
        assert last is not None
        yield ChangeBatch((), last.position)
        state = state_of(last.position)
    else:
        async for batch in _one_round(await session_for(), folder_id, state):
            yield batch
            state = state_of(batch.position)
    while True:
        await asyncio.sleep(poll_s)
        async for batch in _one_round(await session_for(), folder_id, state):
            yield batch
            state = state_of(batch.position)
