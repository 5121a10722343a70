"""What the request handlers share: settings, database, fan-out hub, blob store, metrics."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from argon2 import PasswordHasher
from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import HTTPConnection

from messenger.server.blobs import BlobStore
from messenger.server.clientip import Network
from messenger.server.config import ServerSettings
from messenger.server.hub import Hub
from messenger.server.metrics import Metrics
from messenger.server.sending import GroupCommit
from messenger.server.throttle import HashGate, LoginThrottle


@dataclass
class AppState:
    settings: ServerSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    hub: Hub
    blobs: BlobStore
    metrics: Metrics
    hasher: PasswordHasher
    logins: LoginThrottle
    hashing: HashGate
    proxies: list[Network]
    preauth: int = 0  # streams of this node waiting for their hello
    sends: GroupCommit = field(init=False)
    # For single reads outside a transaction: on PostgreSQL in autocommit, so giving the
    # connection back costs no ROLLBACK round trip (SQLite shares one connection: as is).
    reads: AsyncEngine = field(init=False)
    replay_slots: asyncio.Semaphore = field(init=False)  # settings.stream_replays_at_once

    def __post_init__(self) -> None:
        from messenger.server.auth import ended_sessions  # auth needs this module first

        self.sends = GroupCommit(
            self.engine,
            self.publish,
            lambda conn, ids: ended_sessions(conn, ids, self),
            lambda: self.now() - self.settings.session_ttl,
        )
        self.replay_slots = asyncio.Semaphore(self.settings.stream_replays_at_once)
        self.reads = (
            self.engine
            if self.engine.dialect.name == "sqlite"
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    def now(self) -> dt.datetime:
        return self.settings.clock()

    async def publish(self, items: list[dict[str, Any]]) -> None:
        await self.hub.publish(items)


def get_state(conn: HTTPConnection) -> AppState:
    state: AppState = conn.app.state.messenger
    return state


async def state_of(conn: HTTPConnection) -> AppState:
    """`get_state` as a dependency: async, so FastAPI does not hand it to a thread pool."""
    return get_state(conn)


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with get_state(request).sessions() as db:
        yield db


State = Annotated[AppState, Depends(state_of)]
DB = Annotated[AsyncSession, Depends(get_db)]
