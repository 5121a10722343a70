"""Numbered migrations: from empty, from each previous revision, and refusal of a newer schema."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from messenger_harness import Clock, Database, make_settings
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from messenger.server.app import open_state
from messenger.store import repo, schema
from messenger.store.engine import make_engine, sessionmaker
from messenger.store.models import Base


@pytest.fixture
async def engine(database: Database) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(database.url, database.schema)
    yield eng
    await eng.dispose()


def revisions() -> list[str]:
    script = ScriptDirectory.from_config(schema.alembic_config())
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def test_revision_ids_are_numbered_in_order() -> None:
    ids = revisions()
    assert ids == [f"{i:04d}" for i in range(1, len(ids) + 1)]


def test_the_revisions_read_without_alembic_are_alembics() -> None:
    # The server compares the database with these at start instead of loading Alembic.
    assert list(schema.revision_ids()) == revisions()
    assert (
        schema.head_revision()
        == ScriptDirectory.from_config(schema.alembic_config()).get_current_head()
    )


async def test_upgrade_from_empty_matches_the_models(engine: AsyncEngine) -> None:
    assert await schema.current_revision(engine) is None
    await schema.upgrade(engine)
    assert await schema.current_revision(engine) == schema.head_revision()

    def diff(conn: object) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))  # type: ignore[arg-type]

    async with engine.connect() as conn:
        assert await conn.run_sync(diff) == []


@pytest.mark.parametrize("step", range(1, len(revisions())))
async def test_upgrade_from_the_previous_revision_keeps_data(
    engine: AsyncEngine, step: int
) -> None:
    ids = revisions()
    await schema.upgrade(engine, ids[step - 1])
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tenants (id, name, retention_days, user_quota_bytes, "
                "storage_extension_steps, storage_used, audit_enabled, settings, created_at) "
                "VALUES ('t1', 'Kreis', 30, 1, 0, 0, false, '{}', CURRENT_TIMESTAMP)"
            )
        )
    await schema.upgrade(engine, ids[step])
    assert await schema.current_revision(engine) == ids[step]
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT name FROM tenants"))).scalar_one() == "Kreis"


async def test_a_fresh_database_is_usable_after_upgrade(engine: AsyncEngine) -> None:
    await schema.upgrade(engine)
    async with sessionmaker(engine)() as db:
        tenant = await repo.create_tenant(db, "Kreis", Clock()())
        await repo.add_domain(db, tenant, "kreis.example")
        await repo.create_user(db, "a@kreis.example", Clock()())
        await db.commit()


async def test_server_refuses_to_start_on_a_newer_schema(
    engine: AsyncEngine, database: Database, tmp_path: Path
) -> None:
    await schema.upgrade(engine)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(schema.SchemaTooNew) as refused:
        await open_state(make_settings(database, tmp_path, Clock()))
    assert "9999" in str(refused.value)
    with pytest.raises(schema.SchemaTooNew):
        await schema.upgrade(engine)


async def test_conversations_existing_before_0009_are_treated_as_cross_tenant(
    engine: AsyncEngine,
) -> None:
    await schema.upgrade(engine, "0008")
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO tenants (id, name, retention_days, user_quota_bytes, "
                "storage_extension_steps, storage_used, audit_enabled, settings, created_at) "
                "VALUES ('t1', 'Kreis', 30, 1, 0, 0, false, '{}', CURRENT_TIMESTAMP)"
            )
        )
        await conn.execute(
            text(
                "INSERT INTO conversations (id, tenant_id, kind, name, last_seq, created_at) "
                "VALUES ('c1', 't1', 'group', 'g', 0, CURRENT_TIMESTAMP)"
            )
        )
    await schema.upgrade(engine, "0009")
    async with engine.connect() as conn:
        flag = (await conn.execute(text("SELECT cross_tenant FROM conversations"))).scalar_one()
    assert flag in (True, 1)
