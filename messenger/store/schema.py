"""Schema versions: upgrade with the numbered Alembic revisions, refuse a database newer than us."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaError(Exception):
    """The database schema cannot be used by this version of the server."""


class SchemaTooNew(SchemaError):
    """The database carries a revision this code does not know (written by a newer release)."""

    def __init__(self, revision: str) -> None:
        super().__init__(
            f"the database is at schema revision {revision}, which this medbridge does not know; "
            "upgrade medbridge instead of starting an older server on it"
        )
        self.revision = revision


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _check_known(connection: Connection) -> str | None:
    current = _current(connection)
    if current is not None:
        script = ScriptDirectory.from_config(alembic_config())
        if current not in {rev.revision for rev in script.walk_revisions()}:
            raise SchemaTooNew(current)
    return current


def _upgrade(connection: Connection, revision: str) -> None:
    _check_known(connection)
    command.upgrade(alembic_config(connection), revision)


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


# Key of the PostgreSQL advisory lock that serialises upgrades of nodes starting together.
_UPGRADE_LOCK = 0x6D6564627269  # "medbri"


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (each numbered step in its own transaction).

    On PostgreSQL an advisory lock, held on a second connection, makes nodes that start at the
    same time upgrade one after the other; the later ones find the schema current.
    """
    if engine.dialect.name != "postgresql":
        async with engine.connect() as conn:
            await conn.run_sync(_upgrade, revision)
            await conn.commit()
        return
    async with engine.connect() as lock:
        await lock.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _UPGRADE_LOCK})
        await lock.commit()
        try:
            async with engine.connect() as conn:
                await conn.run_sync(_upgrade, revision)
                await conn.commit()
        finally:
            await lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _UPGRADE_LOCK})
            await lock.commit()


async def check(engine: AsyncEngine) -> str | None:
    """Raise SchemaTooNew on an unknown revision; return the current one (None when empty)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_check_known)
