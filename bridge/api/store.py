"""The API's own SQLite database: what must outlive a restart (Idempotency-Key answers,
webhooks and their dead letters). It holds webhook secrets, so the file is private (0600).

Its schema steps run through the bridge database's migration mechanism
(`bridge.notify.store.migrations`), with steps of their own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.notify.store.migrations import Migration, upgrade

__all__ = ["API_MIGRATIONS", "ApiDatabase"]

API_MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "answers to requests with an Idempotency-Key",
        (
            """CREATE TABLE idempotency (
                caller TEXT NOT NULL,
                idem_key TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                status INTEGER NOT NULL,
                body BLOB NOT NULL,
                media_type TEXT NOT NULL,
                headers TEXT NOT NULL,
                expires_at {float} NOT NULL,
                PRIMARY KEY (caller, idem_key)
            )""",
            "CREATE INDEX ix_idempotency_expiry ON idempotency (expires_at)",
        ),
    ),
    Migration(
        2,
        "webhooks with their positions, and their dead letters",
        (
            """CREATE TABLE webhooks (
                id TEXT PRIMARY KEY,
                owner TEXT NOT NULL,
                folder_id TEXT NOT NULL,
                url TEXT NOT NULL,
                secret TEXT NOT NULL,
                position TEXT,
                delivered INTEGER NOT NULL DEFAULT 0,
                error TEXT
            )""",
            """CREATE TABLE dead_letters (
                id {serial},
                webhook_id TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
                delivery_id TEXT NOT NULL,
                attempts INTEGER NOT NULL,
                last_error TEXT NOT NULL,
                payload TEXT NOT NULL,
                failed_at {float} NOT NULL
            )""",
            "CREATE INDEX ix_dead_letters_webhook ON dead_letters (webhook_id)",
        ),
    ),
)


class ApiDatabase:
    """One SQLite file, opened (and brought up to date) on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._engine: AsyncEngine | None = None
        self._opening = asyncio.Lock()

    async def engine(self) -> AsyncEngine:
        """The engine, schema up to date.

        Raises:
            SchemaTooNew: the file was written by a newer release.
        """
        if self._engine is not None:
            return self._engine
        async with self._opening:
            if self._engine is None:
                from messenger.store.engine import make_engine

                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.touch(mode=0o600, exist_ok=True)
                self.path.chmod(0o600)
                engine = make_engine(f"sqlite:///{self.path}")
                try:
                    await upgrade(engine, API_MIGRATIONS, "API")
                except BaseException:
                    await engine.dispose()
                    raise
                self._engine = engine
        return self._engine

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
