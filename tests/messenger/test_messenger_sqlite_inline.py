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


async def _setup(path: Path) -> None:
    engine = make_engine(f"sqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"))
    await engine.dispose()


def test_a_locked_database_is_waited_out_while_the_loop_keeps_running(tmp_path: Path) -> None:
    path = tmp_path / "m.db"

    async def scenario() -> tuple[int, list[str], int]:
        await _setup(path)
        engine = make_engine(f"sqlite:///{path}")
        taken = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 0.4, taken))
        holder.start()
        await asyncio.to_thread(taken.wait, 5)
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
        holder.join()
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT body FROM notes ORDER BY id"))
            bodies = list(rows.scalars())
        await engine.dispose()
        return ticks, bodies, len(bodies)

    ticks, bodies, _ = asyncio.run(scenario())
    assert bodies == ["other writer", "ours"]
    # The insert waited about 0.4 s for the lock; the loop ran other tasks meanwhile.
    assert ticks >= 10


def test_a_lock_held_past_the_limit_fails_with_database_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    monkeypatch.setattr(_sqlite_inline, "BUSY_SECONDS", 0.2)

    async def scenario() -> list[str]:
        await _setup(path)
        engine = make_engine(f"sqlite:///{path}")
        taken = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(path, 1.0, taken))
        holder.start()
        await asyncio.to_thread(taken.wait, 5)
        with pytest.raises(OperationalError, match="database is locked"):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO notes (body) VALUES ('ours')"))
        await asyncio.to_thread(holder.join)
        async with engine.connect() as conn:
            bodies = list((await conn.execute(text("SELECT body FROM notes"))).scalars())
        await engine.dispose()
        return bodies

    assert asyncio.run(scenario()) == ["other writer"]  # nothing half-written of ours
