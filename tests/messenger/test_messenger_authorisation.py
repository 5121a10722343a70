"""Instance administration stays out of other tenants' conversations; withdrawn consent stops
everything across the pair; the member cap holds under concurrent adds."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from messenger_harness import Harness

from messenger.client import CrossTenant, MessengerClient, NotFound
from messenger.store import repo
from messenger.store.models import MAX_GROUP_MEMBERS, Tenant


async def managed_group(msg: Harness, tenant_id: str, name: str, members: list[str]) -> str:
    async with msg.sessions() as db:
        tenant = await db.get(Tenant, tenant_id)
        assert tenant is not None
        conv, _ = await repo.create_conversation(
            db, None, tenant, "managed", name, members, msg.clock()
        )
        await db.commit()
        return conv.id


async def test_the_instance_admin_cannot_act_inside_another_tenants_group(msg: Harness) -> None:
    kreis = await msg.tenant("Kreis", "kreis.example")
    nord = await msg.tenant("Nord", "nord.example")
    await msg.user("root@kreis.example", role="instance_admin")
    root = await msg.login("root@kreis.example")
    nora = await msg.member("nora@nord.example", role="tenant_admin")
    nils = await msg.member("nils@nord.example")
    assert root.user_id and nora.user_id and nils.user_id
    cid = await managed_group(msg, nord, "Leitstelle Nord", [nora.user_id, nils.user_id])
    for attempt in (
        root.remove_member(cid, nora.user_id),
        root.add_members(cid, [root.user_id]),
        root.conversation(cid),
    ):
        with pytest.raises(NotFound):
            await attempt
    await msg.allow(kreis, nord)  # even with both tenants' consent
    with pytest.raises(NotFound):
        await root.add_members(cid, [root.user_id])
    members = {m["user_id"] for m in (await nora.conversation(cid))["members"]}
    assert members == {nora.user_id, nils.user_id}
    # Inside the own tenant the instance admin still manages managed groups.
    own = await managed_group(msg, kreis, "Leitstelle", [])
    await root.add_members(own, [root.user_id])


async def test_withdrawn_consent_stops_everything_across_the_pair(msg: Harness) -> None:
    kreis = await msg.tenant("Kreis", "kreis.example")
    nord = await msg.tenant("Nord", "nord.example")
    anna = await msg.member("anna@kreis.example")
    nils = await msg.member("nils@nord.example")
    await msg.member("nora@nord.example", role="tenant_admin")
    assert nils.user_id
    await msg.allow(kreis, nord)
    cid = (await anna.create_conversation("group", [nils.user_id]))["conversation_id"]
    attachment = await anna.upload(cid, b"encrypted-scan")
    sent = await anna.send_raw(cid, b"x", attachment_ids=[attachment])
    assert await nils.download(attachment) == b"encrypted-scan"
    assert len(await nils.history(cid)) >= 1

    nora = msg.client()
    await nora.login("nora@nord.example", "correct horse battery")
    async with httpx.AsyncClient(
        base_url=msg.url, headers={"Authorization": f"Bearer {nora.token}"}
    ) as admin:
        assert (await admin.delete(f"/v1/admin/partners/{kreis}")).status_code == 204

    async def refused(client: MessengerClient) -> None:
        for attempt in (
            client.send_raw(cid, b"y"),
            client.history(cid),
            client.conversation(cid),
            client.receipt(cid, sent.seq),
            client.receipts(cid, sent.seq),
            client.upload(cid, b"more"),
            client.download(attachment),
        ):
            with pytest.raises(CrossTenant):
                await attempt

    await refused(nils)
    await refused(anna)
    async with nils.events() as stream:  # a fresh stream replays nothing of it either
        replayed = []
        while (event := await stream.next())["type"] != "synced":
            replayed.append(event)
    assert [e for e in replayed if e.get("conversation_id") == cid] == []


async def test_concurrent_adds_never_exceed_the_member_cap(msg: Harness) -> None:
    kreis = await msg.tenant("Kreis", "kreis.example")
    admin = await msg.member("admin@kreis.example", role="tenant_admin")
    present = await msg.users([f"m{i}@kreis.example" for i in range(MAX_GROUP_MEMBERS - 10)])
    cid = await managed_group(msg, kreis, "Alle", present)
    newcomers = await msg.users([f"n{i}@kreis.example" for i in range(30)])
    headers = {"Authorization": f"Bearer {admin.token}"}
    limits = httpx.Limits(max_connections=40)
    async with httpx.AsyncClient(
        base_url=msg.url, headers=headers, limits=limits, timeout=60
    ) as http:
        answers = await asyncio.gather(
            *(
                http.post(f"/v1/conversations/{cid}/members", json={"user_ids": [uid]})
                for uid in newcomers
            )
        )
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 10 + [422] * 20, statuses
    async with msg.sessions() as db:
        assert await repo.active_member_count(db, cid) == MAX_GROUP_MEMBERS
