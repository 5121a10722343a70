"""Retention runs: delete expired rows in one transaction, then their blobs."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from messenger.server.blobs import BlobStore
from messenger.store import repo

log = logging.getLogger("messenger.server.retention")


async def run_purge(
    sessions: async_sessionmaker[AsyncSession], blobs: BlobStore, now: dt.datetime
) -> repo.PurgeResult:
    async with sessions() as db:
        result = await repo.purge(db, now)
        await db.commit()
    for blob_id in result.attachment_ids:
        blobs.delete(blob_id)
    log.info("retention purge %s", result.as_dict())
    return result


async def scheduler(
    sessions: async_sessionmaker[AsyncSession],
    blobs: BlobStore,
    clock: Callable[[], dt.datetime],
    interval: float,
    on_result: Callable[[repo.PurgeResult], None],
) -> None:
    """Purge now and then every `interval` seconds until cancelled.

    A failed run (database unreachable, a conflict with another node's run) is logged and
    retried at the next interval; it must not end the scheduler.
    """
    while True:
        try:
            on_result(await run_purge(sessions, blobs, clock()))
        except (SQLAlchemyError, OSError):
            log.exception("retention purge failed; next attempt in %.0f s", interval)
        await asyncio.sleep(interval)
