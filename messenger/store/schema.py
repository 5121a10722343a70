"""Schema versions: upgrade with the numbered Alembic revisions, refuse a database newer than us."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
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


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (each numbered step in its own transaction)."""
    async with engine.connect() as conn:
        await conn.run_sync(_upgrade, revision)
        await conn.commit()


async def check(engine: AsyncEngine) -> str | None:
    """Raise SchemaTooNew on an unknown revision; return the current one (None when empty)."""
    async with engine.connect() as conn:
        return await conn.run_sync(_check_known)
