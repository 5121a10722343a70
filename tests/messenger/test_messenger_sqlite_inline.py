"""SQLite on the event loop's thread (messenger.store._sqlite_inline): another process's write
lock is waited out without freezing the server, and a lock held too long still fails clearly."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from messenger.store import _sqlite_inline
from messenger.store.engine import make_engine


def _hold_write_lock(path: Path, seconds: float, taken: threading.Event) -> None:
    """Another writer (as another process would be): BEGIN IMMEDIATE, hold, commit."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO notes (body) VALUES ('other writer')")
    taken.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


async def _other_writer_holding(path: Path, seconds: float) -> threading.Thread:
    """A notes table, and another writer holding its write lock for `seconds` from now."""
    engine = make_engine(f"sqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    await engine.dispose()
    taken = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, seconds, taken))
    holder.start()
    await asyncio.to_thread(taken.wait, 5)
    return holder


async def _bodies(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT body FROM notes ORDER BY id"))
        return list(rows.scalars())


def test_a_locked_database_is_waited_out_while_the_loop_keeps_running(tmp_path: Path) -> None:
    path = tmp_path / "m.db"

    async def scenario() -> tuple[int, list[str]]:
        holder = await _other_writer_holding(path, 0.4)
        engine = make_engine(f"sqlite:///{path}")
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO notes (body) VALUES ('ours')"))
        ticking.cancel()
        await asyncio.to_thread(holder.join)
        bodies = await _bodies(engine)
        await engine.dispose()
        return ticks, bodies

    ticks, bodies = asyncio.run(scenario())
    assert bodies == ["other writer", "ours"]
    # The insert waited about 0.4 s for the lock; the loop ran other tasks meanwhile.
    assert ticks >= 10


def test_a_lock_held_past_the_limit_fails_with_database_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    monkeypatch.setattr(_sqlite_inline, "BUSY_SECONDS", 0.2)

    async def scenario() -> list[str]:
        holder = await _other_writer_holding(path, 1.0)
        engine = make_engine(f"sqlite:///{path}")
        with pytest.raises(OperationalError, match="database is locked"):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO notes (body) VALUES ('ours')"))
        await asyncio.to_thread(holder.join)
        bodies = await _bodies(engine)
        await engine.dispose()
        return bodies

    assert asyncio.run(scenario()) == ["other writer"]  # nothing half-written of ours
