"""Tenant isolation: every cross-tenant path is refused unless both tenant admins allowed it."""

from __future__ import annotations

import pytest
from messenger_harness import Harness, next_of

from messenger.client import CrossTenant, Envelope, MessengerClient, NotFound
from messenger.store import repo
from messenger.store.models import Tenant


async def two_tenants(msg: Harness) -> tuple[str, str, MessengerClient, MessengerClient]:
    kreis = await msg.tenant("Kreis", "kreis.example")
    klinik = await msg.tenant("Klinik", "klinik.example", "klinikum.example")
    anna = await msg.member("anna@kreis.example")
    kurt = await msg.member("kurt@klinik.example")
    return kreis, klinik, anna, kurt


async def test_a_users_address_decides_the_tenant(msg: Harness) -> None:
    _, klinik, _, kurt = await two_tenants(msg)
    other_domain = await msg.member("karla@klinikum.example")
    assert kurt.tenant_id == klinik
    assert other_domain.tenant_id == klinik


async def test_directory_shows_only_the_own_tenant(msg: Harness) -> None:
    _, _, anna, _ = await two_tenants(msg)
    await msg.user("berta@kreis.example")
    emails = [u["email"] for u in await anna.directory()]
    assert emails == ["anna@kreis.example", "berta@kreis.example"]
    assert await anna.directory("kurt") == []


async def test_every_cross_tenant_path_is_refused(msg: Harness) -> None:
    _, _, anna, kurt = await two_tenants(msg)
    assert anna.user_id and kurt.user_id and kurt.device_id and anna.device_id
    kurts = await kurt.create_conversation("group", [], name="Station 3")
    kcid = kurts["conversation_id"]
    attachment = await kurt.upload(kcid, b"encrypted-scan")
    sent = await kurt.send_raw(kcid, b"x")
    own = await anna.create_conversation("group", [])

    refused = [
        anna.user(kurt.user_id),
        anna.devices(kurt.user_id),
        anna.create_conversation("direct", [kurt.user_id]),
        anna.create_conversation("group", [kurt.user_id]),
        anna.add_members(own["conversation_id"], [kurt.user_id]),
        anna.send_raw(kcid, b"intrusion"),
        anna.history(kcid),
        anna.conversation(kcid),
        anna.receipt(kcid, sent.seq),
        anna.receipts(kcid, sent.seq),
        anna.upload(kcid, b"blob"),
        anna.download(attachment),
        anna.send_to_device([Envelope(kurt.user_id, kurt.device_id, b"k")]),
        anna.remove_member(kcid, kurt.user_id),
        kurt.add_members(kcid, [anna.user_id]),
    ]
    for call in refused:
        with pytest.raises(NotFound):
            await call
    # Nothing was stored by the refused calls.
    assert [e["type"] for e in await kurt.history(kcid)] == ["membership", "message"]
    assert (await anna.quota())["used"] == 0
    async with kurt.events() as stream:
        while (event := await stream.next())["type"] != "synced":
            assert event["type"] != "to_device"


async def test_one_sided_consent_keeps_the_tenants_apart(msg: Harness) -> None:
    kreis, klinik, anna, kurt = await two_tenants(msg)
    await msg.allow(kreis, klinik, both=False)
    assert kurt.user_id
    assert await anna.directory("kurt") == []
    with pytest.raises(NotFound):
        await anna.create_conversation("direct", [kurt.user_id])


async def test_allowed_pair_can_find_each_other_and_talk(msg: Harness) -> None:
    kreis, klinik, anna, kurt = await two_tenants(msg)
    await msg.allow(kreis, klinik)
    assert kurt.user_id and anna.user_id
    assert [u["email"] for u in await anna.directory("kurt")] == ["kurt@klinik.example"]
    assert [d["device_id"] for d in await anna.devices(kurt.user_id)] == [kurt.device_id]
    conv = await anna.create_conversation("direct", [kurt.user_id])
    async with kurt.events() as stream:
        await next_of(stream, "synced")
        await anna.send_raw(conv["conversation_id"], b"cross")
        event = await next_of(stream, "message")
    assert event["sender_user_id"] == anna.user_id
    # A third tenant allowed by only one side stays out of that conversation.
    third = await msg.tenant("Feuerwehr", "fw.example")
    fw = await msg.member("fritz@fw.example")
    await msg.allow(kreis, third)
    assert fw.user_id
    group = await anna.create_conversation("group", [kurt.user_id])
    with pytest.raises(CrossTenant):
        await anna.add_members(group["conversation_id"], [fw.user_id])


async def test_withdrawn_consent_stops_sends_in_existing_conversations(msg: Harness) -> None:
    kreis, klinik, anna, kurt = await two_tenants(msg)
    await msg.allow(kreis, klinik)
    assert kurt.user_id
    conv = await anna.create_conversation("direct", [kurt.user_id])
    async with msg.sessions() as db:
        a, b = await db.get(Tenant, klinik), await db.get(Tenant, kreis)
        assert a and b
        await repo.set_partner(db, a, b, False, msg.clock())
        await db.commit()
    with pytest.raises(CrossTenant):
        await anna.send_raw(conv["conversation_id"], b"after withdrawal")
    with pytest.raises(CrossTenant):  # history across the pair stops too
        await kurt.history(conv["conversation_id"])
