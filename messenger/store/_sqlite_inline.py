"""SQLite for the async engine without a thread hop per call (`sqlite+inline://`).

aiosqlite runs each call on a thread of its own: opening a cursor, executing, fetching and
closing are four round trips between threads. In the bench's 1 msg/s phase a send's
statements (`append_messages`) took 3.2-3.6 ms that way and 2.2 ms here. Statements run on
the event loop's thread, as the process's one connection (engine.make_engine) serves them one
at a time anyway; the price is that a statement holds the loop while it runs, which the
server's indexed lookups and page-sized reads keep short. The commit, whose fsync and
occasional WAL checkpoint can take long, goes to a worker thread. Another process owning the
write lock is not waited for in SQLite's busy timeout: a locked database answers at once, and
the call is retried after a non-blocking sleep (from inside SQLAlchemy's greenlet), for up
to `BUSY_SECONDS`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.util.concurrency import await_, in_greenlet

BUSY_SECONDS = 30.0
_T = TypeVar("_T")


async def _waiting_out_locks(call: Callable[[], _T], *, off_loop: bool = False) -> _T:
    """Run `call` (on a worker thread if `off_loop`); while another connection holds the
    lock, sleep (the loop runs on)."""
    deadline = time.monotonic() + BUSY_SECONDS
    delay = 0.001
    while True:
        try:
            return await asyncio.to_thread(call) if off_loop else call()
        except sqlite3.OperationalError as exc:
            # SQLITE_BUSY and SQLITE_BUSY_RECOVERY pass; SQLITE_BUSY_SNAPSHOT (a read turned
            # write after another commit) never would, so it fails at once as it always has.
            busy = getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, 261)
            if not busy or time.monotonic() + delay > deadline:
                raise
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def _retrying_busy(call: Callable[[], _T], *, off_loop: bool = False) -> _T:
    """`call` through `_waiting_out_locks` from SQLAlchemy's greenlet, which also gives
    AsyncConnection the await it insists every statement makes; elsewhere (a pool clean-up
    outside the engine's tasks) once."""
    if in_greenlet():
        return await_(_waiting_out_locks(call, off_loop=off_loop))
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


class InlineConnection(AdaptedConnection):
    __slots__ = ()

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection  # type: ignore[assignment]

    @property
    def _raw(self) -> sqlite3.Connection:
        return self._connection  # type: ignore[return-value]

    def cursor(self, server_side: bool = False) -> InlineCursor:
        return InlineCursor(self._raw.cursor())

    def execute(self, operation: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        return self.cursor().execute(operation, parameters)

    def commit(self) -> None:
        # The one call that may take long: its fsync, and now and then the checkpoint that
        # moves the WAL into the database file (100+ ms stalls of the whole node when run on
        # the loop). The connection stays checked out meanwhile, so nothing else uses it.
        _retrying_busy(self._raw.commit, off_loop=True)

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
        return InlineConnection(sqlite3.connect(*args, **kwargs))


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
