"""Numbered schema steps of the bridge's database, each in its own transaction.

Like the messenger's revisions: steps only ever get appended; a blank database runs them all;
a database written by a newer release (a version above the last step here) stops the bridge
instead of being misread. The same SQL runs on SQLite and PostgreSQL (`{serial}` and `{float}`
name the column types that differ).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "MIGRATIONS",
    "Migration",
    "SchemaTooNew",
    "current_version",
    "latest_version",
    "upgrade",
]


class SchemaTooNew(RuntimeError):
    """The database carries a schema version this code does not know."""

    def __init__(self, version: int, latest: int | None = None, what: str = "bridge") -> None:
        known = latest_version() if latest is None else latest
        super().__init__(
            f"the {what} database is at schema version {version}, newer than this medbridge "
            f"knows ({known}); upgrade medbridge instead of running an older {what}"
        )
        self.version = version


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "folder sync state, outbox, item-message links and conversation routes",
        (
            """CREATE TABLE folder_state (
                folder_key TEXT PRIMARY KEY,
                mailbox TEXT NOT NULL,
                folder_id TEXT NOT NULL,
                sync_state TEXT,
                updated_at {float} NOT NULL
            )""",
            """CREATE TABLE outbox (
                id {serial},
                dedup_key TEXT NOT NULL UNIQUE,
                mailbox TEXT NOT NULL,
                item_id TEXT,
                change_key TEXT,
                route TEXT NOT NULL,
                rule TEXT NOT NULL,
                payload TEXT,
                not_before {float} NOT NULL,
                digest INTEGER NOT NULL DEFAULT 0,
                state TEXT NOT NULL DEFAULT 'pending',
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                created_at {float} NOT NULL,
                sent_at {float}
            )""",
            "CREATE INDEX ix_outbox_due ON outbox (state, not_before)",
            """CREATE TABLE links (
                outbox_id BIGINT PRIMARY KEY REFERENCES outbox (id),
                mailbox TEXT NOT NULL,
                item_id TEXT,
                change_key TEXT,
                conversation_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                UNIQUE (conversation_id, seq, outbox_id)
            )""",
            "CREATE INDEX ix_links_item ON links (mailbox, item_id)",
            """CREATE TABLE routes (
                route TEXT PRIMARY KEY,
                conversation_id TEXT NOT NULL,
                created_at {float} NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "actions taken from chat messages, one row per message",
        (
            """CREATE TABLE actions (
                id {serial},
                conversation_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                sender TEXT NOT NULL,
                command TEXT NOT NULL,
                outbox_id BIGINT,
                state TEXT NOT NULL,
                worker TEXT NOT NULL,
                result TEXT,
                created_at {float} NOT NULL,
                UNIQUE (conversation_id, seq)
            )""",
        ),
    ),
    Migration(
        3,
        "mailbox leases between workers and each worker's messenger stream position",
        (
            """CREATE TABLE leases (
                mailbox TEXT PRIMARY KEY,
                worker TEXT NOT NULL,
                expires_at {float} NOT NULL
            )""",
            """CREATE TABLE workers (
                worker TEXT PRIMARY KEY,
                cursors TEXT NOT NULL,
                updated_at {float} NOT NULL
            )""",
        ),
    ),
    Migration(
        4,
        "the content key (sealed under the keys passphrase) that encrypts stored notifications",
        (
            """CREATE TABLE content_keys (
                name TEXT PRIMARY KEY,
                sealed TEXT NOT NULL,
                created_at {float} NOT NULL
            )""",
        ),
    ),
)

_TYPES = {
    "sqlite": {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "float": "REAL"},
    "postgresql": {"serial": "BIGSERIAL PRIMARY KEY", "float": "DOUBLE PRECISION"},
}


def latest_version() -> int:
    return MIGRATIONS[-1].version


async def _ensure_table(conn: AsyncConnection) -> None:
    await conn.execute(text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"))
    count = (await conn.execute(text("SELECT COUNT(*) FROM schema_version"))).scalar_one()
    if count == 0:
        await conn.execute(text("INSERT INTO schema_version (version) VALUES (0)"))


async def current_version(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        await _ensure_table(conn)
        return int((await conn.execute(text("SELECT version FROM schema_version"))).scalar_one())


async def upgrade(
    engine: AsyncEngine, steps: tuple[Migration, ...] = MIGRATIONS, what: str = "bridge"
) -> int:
    """Apply the missing `steps` in order; returns the version reached. Other databases of
    medbridge (the REST API's) pass their own steps and run through the same mechanism.

    Raises:
        SchemaTooNew: the database is newer than this code.
    """
    types = _TYPES["postgresql" if engine.dialect.name == "postgresql" else "sqlite"]
    version = await current_version(engine)
    if version > steps[-1].version:
        raise SchemaTooNew(version, steps[-1].version, what)
    for step in steps:
        if step.version <= version:
            continue
        async with engine.begin() as conn:
            # Claim the step first: of two workers migrating at once, one applies it.
            claimed = await conn.execute(
                text("UPDATE schema_version SET version = :new WHERE version = :old"),
                {"new": step.version, "old": step.version - 1},
            )
            if claimed.rowcount != 1:
                break
            for statement in step.statements:
                await conn.execute(text(statement.format(**types)))
        version = step.version
    return await current_version(engine)
