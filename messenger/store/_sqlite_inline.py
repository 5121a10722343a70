"""SQLite for the async engine without a thread hop per call (`sqlite+inline://`).

aiosqlite runs each call on a thread of its own: opening a cursor, executing, fetching and
closing are four round trips between threads. In the bench's 1 msg/s phase a send's
statements (`append_messages`) took 3.2-3.6 ms that way and 2.2 ms here. Statements run on
the event loop's thread, as the process's one connection (engine.make_engine) serves them one
at a time anyway; the price is that a statement holds the loop while it runs, which the
server's indexed lookups and page-sized reads keep short. The commit runs on the loop too
(its fsync, about 0.4 ms here; a trace of a quiet send had its commit take 1.15 ms through a
worker thread, the rest thread wake-ups), but never a WAL checkpoint, which once stalled the
whole node for 100+ ms: the connection's automatic checkpoint is off, and every
`CHECKPOINT_EVERY` commits that wrote, a thread with a connection of its own moves the WAL
into the database file (`_Checkpoints`), beside the loop's work. Another process owning the
write lock is not waited for in SQLite's busy timeout: a locked database answers at once, and
the call is retried after a non-blocking sleep (from inside SQLAlchemy's greenlet), for up to
`BUSY_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.util.concurrency import await_, in_greenlet

BUSY_SECONDS = 30.0
# Commits that wrote between two checkpoints: a send writes a few pages, so this keeps the
# WAL near SQLite's own automatic checkpoint of 1,000 pages.
CHECKPOINT_EVERY = 100
log = logging.getLogger("messenger.store.sqlite")
_T = TypeVar("_T")


async def _waiting_out_locks(call: Callable[[], _T]) -> _T:
    """Run `call`; while another connection holds the lock, sleep (the loop runs on)."""
    deadline = time.monotonic() + BUSY_SECONDS
    delay = 0.001
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            # SQLITE_BUSY and SQLITE_BUSY_RECOVERY pass; SQLITE_BUSY_SNAPSHOT (a read turned
            # write after another commit) never would, so it fails at once as it always has.
            busy = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, 261)
            if not busy or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def run_raw(connection: sqlite3.Connection, sql: str, parameters: Any) -> list[Any]:
    """A statement on the driver's own connection, its rows read at once; a locked database
    is waited out as for every other statement. For a hot path whose statements cost more in
    SQLAlchemy than in SQLite (a quiet send's: `store.usual_sends`)."""
    return await _waiting_out_locks(lambda: connection.execute(sql, parameters).fetchall())


def _retrying_busy(call: Callable[[], _T]) -> _T:
    """`call` through `_waiting_out_locks` from SQLAlchemy's greenlet, which also gives
    AsyncConnection the await it insists every statement makes; elsewhere (a pool clean-up
    outside the engine's tasks) once."""
    if in_greenlet():
        return await_(_waiting_out_locks(call))
    return call()


class InlineCursor:
    """A sqlite3 cursor that waits out a locked database (see the module) and, like
    SQLAlchemy's adapters of async drivers, reads a query's rows at once, so that no
    half-read statement keeps a read transaction open."""

    __slots__ = ("_cursor", "_rows", "arraysize", "description", "lastrowid", "rowcount")

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    def execute(self, operation: str, parameters: Any = ()) -> InlineCursor:
        return self._done(_retrying_busy(lambda: self._cursor.execute(operation, parameters)))

    def executemany(self, operation: str, seq_of_parameters: Any) -> InlineCursor:
        rows = list(seq_of_parameters)  # may be an iterator: a retry must see it whole
        return self._done(_retrying_busy(lambda: self._cursor.executemany(operation, rows)))

    def _done(self, cursor: sqlite3.Cursor) -> InlineCursor:
        self.description = cursor.description
        self._rows = deque(cursor.fetchall()) if cursor.description else deque()
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        return self

    def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        rows = self._rows
        return [rows.popleft() for _ in range(min(size or self.arraysize, len(rows)))]

    def fetchall(self) -> list[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    def close(self) -> None:
        self._rows.clear()
        self._cursor.close()

    async def _async_soft_close(self) -> None:
        """Called by SQLAlchemy's async results; the rows are read already."""

    def __iter__(self) -> Iterator[Any]:
        while self._rows:
            yield self._rows.popleft()


class _Checkpoints:
    """WAL checkpoints of one database file, off the loop: a PASSIVE checkpoint (it waits
    for no one, and no writer waits for it) on a thread and connection of its own, started
    after every `CHECKPOINT_EVERY` commits that wrote, one at a time. One that fails (the
    file gone, say) is logged and tried again after the next commits."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._commits = 0
        self._running: threading.Thread | None = None

    def committed(self) -> None:
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY:
            return
        if self._running is not None and self._running.is_alive():
            return
        self._commits = 0
        self._running = threading.Thread(target=self._run, name="sqlite-checkpoint")
        self._running.start()

    def _run(self) -> None:
        try:
            with contextlib.closing(self._connect()) as conn:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed (%s); tried again later", exc)


class InlineConnection(AdaptedConnection):
    __slots__ = ("_checkpoints",)

    def __init__(
        self, connection: sqlite3.Connection, checkpoints: _Checkpoints | None = None
    ) -> None:
        self._connection = connection  # type: ignore[assignment]
        self._checkpoints = checkpoints

    @property
    def _raw(self) -> sqlite3.Connection:
        return self._connection  # type: ignore[return-value]

    def cursor(self, server_side: bool = False) -> InlineCursor:
        return InlineCursor(self._raw.cursor())

    def execute(self, operation: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        return self.cursor().execute(operation, parameters)

    def commit(self) -> None:
        wrote = self._raw.in_transaction  # sqlite3 begins a transaction at the first write
        _retrying_busy(self._raw.commit)  # never a checkpoint here (see `_Checkpoints`)
        if wrote and self._checkpoints is not None:
            self._checkpoints.committed()

    def rollback(self) -> None:
        self._raw.rollback()

    def close(self) -> None:
        self._raw.close()

    @property
    def isolation_level(self) -> str | None:
        return self._raw.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._raw.isolation_level = value  # type: ignore[assignment] # SQLAlchemy's names

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._raw.create_function(*args, **kwargs)

    def run_async(self, fn: Callable[[Any], Any]) -> Any:
        raise NotImplementedError("sqlite+inline has no awaitable driver connection")


class _InlineModule:
    """The DBAPI module the dialect sees: sqlite3's names, with `connect` adapted."""

    def __init__(self) -> None:
        for name in dir(sqlite3):
            if not name.startswith("_") and name != "connect":
                setattr(self, name, getattr(sqlite3, name))

    def connect(self, *args: Any, **kwargs: Any) -> InlineConnection:
        kwargs["timeout"] = 0  # a locked database answers at once; `_retrying_busy` waits
        # The pool may close a connection from the garbage collector's thread.
        kwargs["check_same_thread"] = False
        connection = sqlite3.connect(*args, **kwargs)
        if _in_memory(args, kwargs):
            return InlineConnection(connection)
        connection.execute("PRAGMA wal_autocheckpoint=0")  # `_Checkpoints` does them
        return InlineConnection(connection, _Checkpoints(lambda: sqlite3.connect(*args, **kwargs)))


def _in_memory(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    database = str(args[0] if args else kwargs.get("database", ""))
    return database in ("", ":memory:") or "mode=memory" in database


class SQLiteDialect_inline(SQLiteDialect_pysqlite):
    driver = "inline"
    is_async = True
    supports_statement_cache = True
    supports_server_side_cursors = False
    has_terminate = False

    @classmethod
    def import_dbapi(cls) -> Any:
        return _InlineModule()

    def get_driver_connection(self, connection: Any) -> Any:
        return connection._connection


registry.register("sqlite.inline", __name__, "SQLiteDialect_inline")
