"""Attachments, quota under concurrent uploads, and retention purge with a shifted clock."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from messenger_harness import Harness

from messenger.client import MessengerClient, NotFound, QuotaExceeded
from messenger.store import repo
from messenger.store.errors import QuotaExceeded as StoreQuotaExceeded
from messenger.store.models import GIB, Tenant, User


@pytest.fixture
def server_options() -> dict[str, Any]:
    # Sessions outlive the shifted clock, so the same clients read after "a month".
    return {"purge_interval": 0.1, "session_ttl": dt.timedelta(days=365)}


async def setup(
    msg: Harness, quota: int | None = None
) -> tuple[str, MessengerClient, MessengerClient, str]:
    tid = await msg.tenant("Kreis", "kreis.example")
    if quota is not None:
        async with msg.sessions() as db:
            tenant = await db.get(Tenant, tid)
            assert tenant
            await repo.set_policy(db, tenant, user_quota_bytes=quota)
            await db.commit()
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert bert.user_id
    cid = (await anna.create_conversation("group", [bert.user_id]))["conversation_id"]
    return tid, anna, bert, cid


def blob_count(msg: Harness) -> int:
    root = msg.settings.blob_dir
    return sum(1 for p in root.rglob("*") if p.is_file() and p.parent.name != "tmp")


async def test_attachment_round_trip_for_members(msg: Harness) -> None:
    _, anna, bert, cid = await setup(msg)
    data = bytes(range(256)) * 40
    aid = await anna.upload(cid, data)
    sent = await anna.send_raw(cid, b"see attachment", attachment_ids=[aid])
    event = (await bert.history(cid, after_seq=sent.seq - 1))[0]
    assert event["attachment_ids"] == [aid]
    assert await bert.download(aid) == data
    assert (await anna.quota())["used"] == len(data) + len(b"see attachment")  # both count
    assert (await bert.quota())["used"] == 0


async def test_quota_holds_under_concurrent_uploads(msg: Harness) -> None:
    _, anna, _, cid = await setup(msg, quota=1000)
    results = await asyncio.gather(
        *(anna.upload(cid, bytes([i]) * 300) for i in range(10)), return_exceptions=True
    )
    accepted = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(accepted) == 3 and len(refused) == 7
    assert (await anna.quota()) == {"used": 900, "limit": 1000}
    assert blob_count(msg) == 3


async def test_tenant_capacity_grows_in_500_gb_steps(msg: Harness) -> None:
    tid, anna, _, _ = await setup(msg, quota=10 * GIB)
    async with msg.sessions() as db:
        user = await db.get(User, anna.user_id)
        tenant = await db.get(Tenant, tid)
        assert user and tenant
        # Two users give the tenant 2 GiB; a 3 GiB charge fits the user's quota, not the tenant.
        with pytest.raises(StoreQuotaExceeded):
            await repo.charge_storage(db, user, 3 * GIB)
        await db.rollback()
        tenant = await db.get(Tenant, tid)
        user = await db.get(User, anna.user_id)
        assert tenant and user
        await repo.set_policy(db, tenant, storage_extension_steps=1)
        await repo.charge_storage(db, user, 3 * GIB)
        await db.commit()
    assert (await anna.quota())["used"] == 3 * GIB


async def test_retention_purges_old_messages_and_attachments(msg: Harness) -> None:
    _, anna, bert, cid = await setup(msg)
    aid = await anna.upload(cid, b"old scan")
    await anna.send_raw(cid, b"old", attachment_ids=[aid])
    msg.clock.shift(days=31)
    await anna.send_raw(cid, b"new")
    for _ in range(200):  # the scheduler runs every 0.1 s with the shifted clock
        kinds = [e["type"] for e in await bert.history(cid)]
        if kinds == ["message"]:
            break
        await asyncio.sleep(0.05)
    assert kinds == ["message"]
    with pytest.raises(NotFound):
        await bert.download(aid)
    assert (await anna.quota())["used"] == len(b"new")  # the old message's bytes came back
    assert blob_count(msg) == 0


async def test_retention_follows_each_tenants_policy(msg: Harness) -> None:
    tid, anna, bert, cid = await setup(msg)
    await msg.tenant("Klinik", "klinik.example")
    kurt = await msg.member("kurt@klinik.example")
    karl = await msg.member("karl@klinik.example")
    assert karl.user_id
    kcid = (await kurt.create_conversation("group", [karl.user_id]))["conversation_id"]
    async with msg.sessions() as db:
        tenant = await db.get(Tenant, tid)
        assert tenant
        await repo.set_policy(db, tenant, retention_days=7)
        await db.commit()
    await anna.send_raw(cid, b"kreis")
    await kurt.send_raw(kcid, b"klinik")
    msg.clock.shift(days=8)
    for _ in range(200):
        if await bert.history(cid) == []:
            break
        await asyncio.sleep(0.05)
    assert await bert.history(cid) == []
    assert [e["type"] for e in await karl.history(kcid)].count("message") == 1


async def test_concurrent_purges_charge_each_attachment_back_once(msg: Harness) -> None:
    from messenger.server.blobs import BlobStore
    from messenger.server.retention import run_purge
    from messenger.store.engine import make_engine, sessionmaker

    tid, anna, _, cid = await setup(msg)
    for i in range(5):
        await anna.upload(cid, bytes([i]) * 100)
    msg.clock.shift(days=31)
    engines = [make_engine(msg.database.url, msg.database.schema) for _ in range(3)]
    blobs = BlobStore(msg.settings.blob_dir)
    try:
        results = await asyncio.gather(
            *(run_purge(sessionmaker(e), blobs, msg.clock()) for e in engines)
        )
    finally:
        for e in engines:
            await e.dispose()
    assert sum(r.attachments for r in results) <= 5  # the server's own scheduler may take some
    assert (await anna.quota())["used"] == 0
    async with msg.sessions() as db:
        tenant = await db.get(Tenant, tid)
        assert tenant is not None and tenant.storage_used == 0
