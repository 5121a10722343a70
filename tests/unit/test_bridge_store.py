"""The bridge's database on SQLite, and on PostgreSQL when MEDBRIDGE_TEST_PG is set.

Migrations from empty and refusal of a newer schema; a batch recorded twice adds nothing; sent
rows are linked once; actions are claimed once; leases pass to another worker only on expiry.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bridge.notify.chat import KEY_STRENGTH
from bridge.notify.store import BridgeStore, NewNotification, SchemaTooNew, latest_version
from bridge.notify.store.migrations import current_version, upgrade
from bridge.notify.store.sealing import PREFIX, SealError
from tests.messenger.messenger_harness import pg_schema

PG = os.environ.get("MEDBRIDGE_TEST_PG")  # read at import: autouse fixtures clear MEDBRIDGE_*
PASSPHRASE = "keys passphrase"
OPS, MEM = KEY_STRENGTH["interactive"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BridgeStore]:
    if request.param == "sqlite":
        opened = await BridgeStore.open(f"sqlite:///{tmp_path / 'bridge.db'}")
        await opened.unlock(PASSPHRASE, opslimit=OPS, memlimit=MEM)
        yield opened
        await opened.close()
        return
    if not PG:
        pytest.skip("MEDBRIDGE_TEST_PG is not set")
    async with pg_schema(PG) as schema:
        opened = await BridgeStore.open(PG, schema)
        await opened.unlock(PASSPHRASE, opslimit=OPS, memlimit=MEM)
        yield opened
        await opened.close()


def note(key: str, mailbox: str = "chef@m", **kw: object) -> NewNotification:
    values: dict[str, object] = {
        "dedup_key": key,
        "mailbox": mailbox,
        "route": "user:assistenz@m",
        "rule": "r",
        "payload": {"subject": key},
        "not_before": 0.0,
        "item_id": f"id-{key}",
    }
    values.update(kw)
    return NewNotification(**values)  # type: ignore[arg-type]


async def test_a_blank_database_reaches_the_latest_version_and_stays_there(
    store: BridgeStore,
) -> None:
    assert await current_version(store.engine) == latest_version()
    assert await upgrade(store.engine) == latest_version()


async def test_a_database_from_a_newer_release_is_refused(store: BridgeStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE schema_version SET version = 999"))
    with pytest.raises(SchemaTooNew, match="999"):
        await upgrade(store.engine)


async def test_a_batch_recorded_twice_adds_nothing_and_keeps_the_state(store: BridgeStore) -> None:
    batch = [note("a"), note("b")]
    assert await store.save_batch("chef@m/inbox", "chef@m", "F1", "s1", batch) == 2
    assert await store.save_batch("chef@m/inbox", "chef@m", "F1", "s1", batch) == 0
    assert await store.sync_state("chef@m/inbox") == (True, "s1")
    assert await store.sync_state("other/inbox") == (False, None)
    assert [r.dedup_key for r in await store.due(["chef@m"])] == ["a", "b"]


async def test_sent_rows_are_linked_once_and_drop_their_payload(store: BridgeStore) -> None:
    await store.enqueue([note("a")])
    [row] = await store.due(None)
    await store.mark_sent([row], "conv-1", 7)
    await store.mark_sent([row], "conv-1", 7)  # a repeat after a crash changes nothing
    assert await store.due(None) == []
    [link] = await store.links()
    assert (link.item_id, link.conversation_id, link.seq) == ("id-a", "conv-1", 7)
    async with store.engine.connect() as conn:
        payload = (await conn.execute(text("SELECT payload FROM outbox"))).scalar_one()
    assert payload is None


async def test_only_due_rows_of_held_mailboxes_are_handed_out(store: BridgeStore) -> None:
    clock = Clock()
    store = BridgeStore(store.engine, clock=clock, seal=store.seal)
    await store.enqueue(
        [note("now"), note("later", not_before=clock.now + 60), note("other", mailbox="post@m")]
    )
    assert [r.dedup_key for r in await store.due(["chef@m"])] == ["now"]
    clock.now += 61
    assert [r.dedup_key for r in await store.due(["chef@m"])] == ["now", "later"]


async def test_an_action_is_claimed_once(store: BridgeStore) -> None:
    assert await store.claim_action("c", 5, "a@m", "flag #1", 1, "w1")
    assert not await store.claim_action("c", 5, "a@m", "flag #1", 1, "w2")
    assert [a.worker for a in await store.unfinished_actions()] == ["w1"]
    await store.finish_action("c", 5, "done", "ok", note("action:c:5", mailbox=""))
    assert await store.unfinished_actions() == []


async def test_a_lease_passes_to_another_worker_only_when_it_expired(store: BridgeStore) -> None:
    clock = Clock()
    store = BridgeStore(store.engine, clock=clock, seal=store.seal)
    assert await store.acquire("chef@m", "w1", 10)
    assert not await store.acquire("chef@m", "w2", 10)
    clock.now += 5
    assert await store.acquire("chef@m", "w1", 10)  # renewed
    clock.now += 9
    assert not await store.acquire("chef@m", "w2", 10)
    clock.now += 2
    assert await store.acquire("chef@m", "w2", 10)
    assert await store.lease_holders() == {"chef@m": "w2"}
    assert not await store.acquire("chef@m", "w1", 10)


async def test_workers_are_live_while_their_heartbeat_is_recent(store: BridgeStore) -> None:
    clock = Clock()
    store = BridgeStore(store.engine, clock=clock, seal=store.seal)
    await store.heartbeat("w1")
    clock.now += 5
    await store.heartbeat("w2")
    assert await store.live_workers(10) == ["w1", "w2"]
    clock.now += 6
    assert await store.live_workers(10) == ["w2"]


async def test_notification_content_is_sealed_at_rest_and_opens_only_with_the_passphrase(
    store: BridgeStore,
) -> None:
    await store.enqueue([note("a", payload={"subject": "Haushaltsentwurf"})])
    assert await store.claim_action("c", 5, "a@m", "forward #1 x@m Vertraulich", 1, "w1")
    await store.finish_action("c", 5, "done", "Forwarded Haushaltsentwurf", note("r", mailbox=""))
    async with store.engine.connect() as conn:
        stored = " ".join(
            str(v)
            for row in (
                await conn.execute(text("SELECT payload FROM outbox")),
                await conn.execute(text("SELECT command, result FROM actions")),
            )
            for r in row.all()
            for v in r
        )
    assert "Haushaltsentwurf" not in stored and "Vertraulich" not in stored
    assert stored.count(PREFIX) == 4
    assert next(r.payload for r in await store.due(None)) == {"subject": "Haushaltsentwurf"}
    assert [a.command for a in await store.actions()] == ["forward #1 x@m Vertraulich"]
    # Another worker with the same passphrase opens the same key; a wrong one is refused.
    other = BridgeStore(store.engine)
    await other.unlock(PASSPHRASE, opslimit=OPS, memlimit=MEM)
    assert [r.payload["subject"] for r in await other.due(None)] == ["Haushaltsentwurf", "r"]
    with pytest.raises(SealError, match="passphrase"):
        await BridgeStore(store.engine).unlock("wrong", opslimit=OPS, memlimit=MEM)
    with pytest.raises(SealError, match="locked"):
        await BridgeStore(store.engine).due(None)


async def test_plaintext_left_by_an_older_release_is_sealed_on_unlock(store: BridgeStore) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO outbox (dedup_key, mailbox, route, rule, payload, not_before, "
                "created_at) VALUES ('old', 'chef@m', 'user:a@m', 'r', :p, 0, 0)"
            ),
            {"p": json.dumps({"subject": "Altbestand"})},
        )
    await BridgeStore(store.engine).unlock(PASSPHRASE, opslimit=OPS, memlimit=MEM)
    async with store.engine.connect() as conn:
        raw = (await conn.execute(text("SELECT payload FROM outbox"))).scalar_one()
    assert raw.startswith(PREFIX) and "Altbestand" not in raw
    assert [r.payload for r in await store.due(None)] == [{"subject": "Altbestand"}]
