"""Messenger fixtures: a real server on SQLite, and on PostgreSQL when MEDBRIDGE_TEST_PG is set.

On PostgreSQL each test gets a fresh schema, dropped afterwards, so parallel runs never collide.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from messenger_harness import (
    Clock,
    Database,
    Harness,
    Inbox,
    ServerThread,
    free_port,
    make_settings,
    pg_schema,
)


@pytest.fixture(params=["sqlite", "pg"])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        yield Database(f"sqlite:///{tmp_path / 'messenger.db'}")
        return
    pg = os.environ.get("MEDBRIDGE_TEST_PG")
    if not pg:
        pytest.skip("MEDBRIDGE_TEST_PG is not set")
    async with pg_schema(pg) as schema:
        yield Database(pg, schema)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server_options() -> dict[str, Any]:
    """Override in a test module to change ServerSettings fields."""
    return {}


@pytest.fixture
async def msg(
    database: Database, tmp_path: Path, clock: Clock, server_options: dict[str, Any]
) -> AsyncIterator[Harness]:
    settings = make_settings(database, tmp_path, clock, **server_options)
    server = ServerThread(settings)
    await server.start()
    harness = Harness(database, settings, clock, server)
    try:
        yield harness
    finally:
        await harness.close()
        await server.stop()


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[Inbox, int]]:
    """An SMTP server (aiosmtpd) on loopback keeping the mails it receives, and its port."""
    from aiosmtpd.controller import Controller

    handler = Inbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(items: Iterator[pytest.Item]) -> None:
    for item in items:
        if "[pg]" in item.nodeid or "-pg]" in item.nodeid or "[pg-" in item.nodeid:
            item.add_marker(pytest.mark.pg)
