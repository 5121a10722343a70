"""Schema versions: upgrade with the numbered Alembic revisions, refuse a database newer than us.

Alembic (with Mako and the migration scripts) is imported only when an upgrade has work to do:
a server starting on a current schema reads its revision with one query and compares it with
the revision ids written in the scripts, which keeps several MB out of every node's memory.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"  # Alembic's default, where it keeps the current revision;
# the query in _current names it too

_REVISION = re.compile(r"^revision\s*(?::\s*str\s*)?=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]+)?=\s*(?:None|[\"']([^\"']+)[\"'])", re.M)


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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def revision_ids() -> tuple[str, ...]:
    """The revision ids of the migration scripts, oldest first, read from their text.

    The history is one line (each script revises the one before); a fork or a gap is a
    packaging error and fails loudly here rather than at some later upgrade.
    """
    parent_of: dict[str, str | None] = {}
    for script in sorted((MIGRATIONS / "versions").glob("*.py")):
        source = script.read_text(encoding="utf-8")
        revision, down = _REVISION.search(source), _DOWN_REVISION.search(source)
        if revision is None or down is None:
            raise SchemaError(f"migration script without revision ids: {script.name}")
        parent_of[revision.group(1)] = down.group(1)
    children = {parent: rev for rev, parent in parent_of.items()}
    if len(children) != len(parent_of):
        raise SchemaError("the migration scripts do not form one line of revisions")
    chain: list[str] = []
    current = children.get(None)
    while current is not None:
        chain.append(current)
        current = children.get(current)
    if len(chain) != len(parent_of):
        raise SchemaError("the migration scripts do not form one line of revisions")
    return tuple(chain)


def head_revision() -> str:
    return revision_ids()[-1]


def known_revisions() -> frozenset[str]:
    return frozenset(revision_ids())


def _current(connection: Connection) -> str | None:
    """The revision recorded in the database (None: never migrated), without Alembic."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise SchemaError(f"the database records several schema revisions: {sorted(rows)}")
    return rows[0] if rows else None


def _check_known(connection: Connection) -> str | None:
    current = _current(connection)
    if current is not None and current not in known_revisions():
        raise SchemaTooNew(current)
    return current


def _upgrade(connection: Connection, revision: str) -> None:
    current = _check_known(connection)
    if current is not None and current == _target(revision):
        return
    from alembic import command

    command.upgrade(alembic_config(connection), revision)


def _target(revision: str) -> str:
    return head_revision() if revision == "head" else revision


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


# Key of the PostgreSQL advisory lock that serialises upgrades of nodes starting together.
_UPGRADE_LOCK = 0x6D6564627269  # "medbri"


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (each numbered step in its own transaction).

    On PostgreSQL an advisory lock, held on a second connection, makes nodes that start at the
    same time upgrade one after the other; the later ones find the schema current. A schema
    already at `revision` is left alone without loading Alembic.
    """
    async with engine.connect() as conn:
        if await conn.run_sync(_check_known) == _target(revision):
            return
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
