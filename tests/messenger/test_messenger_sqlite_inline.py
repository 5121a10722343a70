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


async def _notes_engine(path: Path) -> AsyncEngine:
    engine = make_engine(f"sqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, body BLOB)"))
    return engine


async def _write(engine: AsyncEngine, commits: int, size: int) -> None:
    for _ in range(commits):
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO notes (body) VALUES (:b)"), {"b": b"x" * size})


def _checkpoints_finished() -> None:
    for thread in threading.enumerate():
        if thread.name == "sqlite-checkpoint":
            thread.join(10)


def test_a_commit_never_checkpoints_however_large_the_wal_grows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The WAL reaches the database file only through `_Checkpoints`' thread: 1,200 pages
    written (past SQLite's own automatic checkpoint of 1,000) leave the file as it was."""
    path = tmp_path / "m.db"
    monkeypatch.setattr(_sqlite_inline, "CHECKPOINT_EVERY", 10_000)

    async def scenario() -> tuple[int, int, int]:
        engine = await _notes_engine(path)
        before = path.stat().st_size
        await _write(engine, 300, 16_000)
        after = path.stat().st_size
        await engine.dispose()  # the last connection to close checkpoints
        engine = make_engine(f"sqlite:///{path}")
        async with engine.connect() as conn:
            count = await conn.scalar(text("SELECT count(*) FROM notes"))
        await engine.dispose()
        return before, after, int(count or 0)

    before, after, count = asyncio.run(scenario())
    assert after == before
    assert count == 300


def test_every_n_commits_a_thread_moves_the_wal_into_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.db"
    monkeypatch.setattr(_sqlite_inline, "CHECKPOINT_EVERY", 10)

    async def scenario() -> tuple[int, int, int, list[bytes]]:
        engine = await _notes_engine(path)  # DDL: sqlite3 commits it on its own
        before = path.stat().st_size
        await _write(engine, 9, 8_000)
        await asyncio.to_thread(_checkpoints_finished)
        ninth = path.stat().st_size
        await _write(engine, 1, 8_000)  # the tenth commit that wrote
        await asyncio.to_thread(_checkpoints_finished)
        tenth = path.stat().st_size
        async with engine.connect() as conn:
            bodies = list((await conn.execute(text("SELECT body FROM notes"))).scalars())
        await engine.dispose()
        return before, ninth, tenth, bodies

    before, ninth, tenth, bodies = asyncio.run(scenario())
    assert ninth == before
    assert tenth >= before + 10 * 8_000
    assert bodies == [b"x" * 8_000] * 10
