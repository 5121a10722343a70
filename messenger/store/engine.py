"""Engine construction: SQLite file by default, PostgreSQL by URL, optional PostgreSQL schema."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as DBSession
from sqlalchemy.pool import AsyncAdaptedQueuePool

from messenger.store import _sqlite_inline  # noqa: F401 - registers sqlite+inline


def normalise_url(url: str) -> str:
    """Accept plain `sqlite:///` and `postgresql://` URLs and pick the async drivers."""
    parsed = make_url(url)
    if parsed.drivername in ("sqlite", "sqlite+pysqlite", "sqlite+aiosqlite"):
        parsed = parsed.set(drivername="sqlite+inline")  # messenger.store._sqlite_inline
    elif parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str, schema: str | None = None) -> AsyncEngine:
    url = normalise_url(url)
    kwargs: dict[str, Any] = {}
    if is_sqlite(url):
        # One connection per process: SQLite has one writer anyway, and sharing one connection
        # keeps transactions from failing with "database is locked" inside the server.
        # Another process's write lock is waited out without blocking the loop (_sqlite_inline).
        kwargs.update(poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0)
    else:
        # Connections kept for the bursts a node sees (each send checks its caller on a
        # connection of its own while batches hold theirs): with the default 5 kept, the rest
        # were opened and closed per request, a new PostgreSQL backend (and TLS attempt) each.
        # Last in, first out: a quiet node's requests reuse its most recent connection, whose
        # prepared statements asyncpg has cached, instead of cycling through all twenty.
        kwargs.update(pool_size=20, max_overflow=20, pool_use_lifo=True)
        if schema:
            kwargs["connect_args"] = {"server_settings": {"search_path": schema}}
    engine = create_async_engine(url, **kwargs)
    if is_sqlite(url):

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            # Deleted and overwritten content is zeroed, not left in free pages (sealed names
            # replacing plain ones, purged ciphertext).
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

    return engine


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[DBSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
