"""Groups: member limit, membership events for key rotation, managed-group rights."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from messenger_harness import Harness, next_of
from sqlalchemy import event

from messenger.client import (
    Forbidden,
    GroupFull,
    MessengerClient,
    NotFound,
    decode_ciphertext,
)
from messenger.store import repo
from messenger.store.errors import MembershipChanged
from messenger.store.models import MAX_GROUP_MEMBERS, Conversation, Tenant, User


async def anna_bert_and_cleo(
    msg: Harness,
) -> tuple[MessengerClient, MessengerClient, MessengerClient, str]:
    """Three members of one tenant, and anna's group with bert (cleo not in it yet)."""
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    cleo = await msg.member("cleo@kreis.example")
    assert anna.user_id and bert.user_id and cleo.user_id
    cid = (await anna.create_conversation("group", [bert.user_id]))["conversation_id"]
    return anna, bert, cleo, cid


async def test_a_group_takes_1250_members_and_refuses_the_1251st(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    owner = await msg.member("owner@kreis.example")
    others = await msg.users([f"u{i}@kreis.example" for i in range(MAX_GROUP_MEMBERS)])
    conv = await owner.create_conversation("group", others[: MAX_GROUP_MEMBERS - 1])
    cid = conv["conversation_id"]
    assert len((await owner.conversation(cid))["members"]) == MAX_GROUP_MEMBERS
    with pytest.raises(GroupFull) as refused:
        await owner.add_members(cid, [others[-1]])
    assert "1250" in refused.value.detail
    assert len((await owner.conversation(cid))["members"]) == MAX_GROUP_MEMBERS
    # After someone leaves there is room again.
    await owner.remove_member(cid, others[0])
    await owner.add_members(cid, [others[-1]])


async def test_creating_an_oversized_group_is_refused_whole(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    owner = await msg.member("owner@kreis.example")
    others = await msg.users([f"u{i}@kreis.example" for i in range(MAX_GROUP_MEMBERS)])
    with pytest.raises(GroupFull):
        await owner.create_conversation("group", others)
    assert await owner.conversations() == []


async def test_removal_is_an_event_in_sequence_and_ends_delivery(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    cleo = await msg.member("cleo@kreis.example")
    assert bert.user_id and cleo.user_id
    conv = await anna.create_conversation("group", [bert.user_id, cleo.user_id])
    cid = conv["conversation_id"]
    async with bert.events() as b_stream, cleo.events() as c_stream:
        await next_of(b_stream, "synced")
        await next_of(c_stream, "synced")
        await anna.send_raw(cid, b"before")
        await anna.remove_member(cid, cleo.user_id)
        await anna.send_raw(cid, b"after")
        seen_by_bert = [await b_stream.next() for _ in range(3)]
        seen_by_cleo = [await c_stream.next() for _ in range(2)]
        with pytest.raises(TimeoutError):
            await c_stream.next(timeout=0.5)
    assert [e["type"] for e in seen_by_bert] == ["message", "membership", "message"]
    removal = seen_by_bert[1]
    assert (removal["action"], removal["user_id"], removal["by_user_id"]) == (
        "removed",
        cleo.user_id,
        anna.user_id,
    )
    assert seen_by_bert[0]["seq"] + 1 == removal["seq"] == seen_by_bert[2]["seq"] - 1
    assert [e["type"] for e in seen_by_cleo] == ["message", "membership"]
    assert decode_ciphertext(seen_by_cleo[0]) == b"before"
    with pytest.raises(NotFound):
        await cleo.send_raw(cid, b"still here?")
    # The removed member's history ends at the removal.
    assert [e["type"] for e in await cleo.history(cid)][-1] == "membership"


async def test_removed_member_learns_of_removal_on_resume(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    cleo = await msg.member("cleo@kreis.example")
    assert cleo.user_id
    cid = (await anna.create_conversation("group", [cleo.user_id]))["conversation_id"]
    async with cleo.events() as stream:
        await next_of(stream, "synced")
    await anna.send_raw(cid, b"last words")
    await anna.remove_member(cid, cleo.user_id)
    await anna.send_raw(cid, b"secret after")
    async with cleo.events() as stream:
        got = [await stream.next() for _ in range(3)]
    assert [e["type"] for e in got] == ["message", "membership", "synced"]


async def test_only_group_admins_change_members_but_anyone_may_leave(msg: Harness) -> None:
    anna, bert, cleo, cid = await anna_bert_and_cleo(msg)
    with pytest.raises(Forbidden):
        await bert.add_members(cid, [cleo.user_id])
    with pytest.raises(Forbidden):
        await bert.remove_member(cid, anna.user_id)
    await bert.remove_member(cid, bert.user_id)
    assert [m["user_id"] for m in (await anna.conversation(cid))["members"]] == [anna.user_id]


async def test_managed_group_is_run_by_tenant_and_group_admins(msg: Harness) -> None:
    kreis = await msg.tenant("Kreis", "kreis.example")
    admin = await msg.member("admin@kreis.example", role="tenant_admin")
    lead = await msg.member("lead@kreis.example")
    staff = await msg.member("staff@kreis.example")
    extra = await msg.member("extra@kreis.example")
    assert lead.user_id and staff.user_id and extra.user_id
    async with msg.sessions() as db:
        tenant = await db.get(Tenant, kreis)
        assert tenant
        conv, _ = await repo.create_conversation(
            db, None, tenant, "managed", "Leitstelle", [lead.user_id, staff.user_id], msg.clock()
        )
        await repo.set_member_role(db, conv, lead.user_id, "admin")
        await db.commit()
    # The tenant admin manages it without being a member; the group admin as a member.
    await admin.add_members(conv.id, [extra.user_id])
    await lead.remove_member(conv.id, extra.user_id)
    with pytest.raises(Forbidden):
        await staff.add_members(conv.id, [extra.user_id])
    with pytest.raises(Forbidden):
        await staff.remove_member(conv.id, staff.user_id)  # managed: members cannot leave
    async with msg.sessions() as db:
        assert (await db.get(Conversation, conv.id)) is not None


async def test_a_user_may_be_in_several_managed_groups(msg: Harness) -> None:
    kreis = await msg.tenant("Kreis", "kreis.example")
    staff = await msg.member("staff@kreis.example")
    assert staff.user_id
    async with msg.sessions() as db:
        tenant = await db.get(Tenant, kreis)
        assert tenant
        for name in ("Leitstelle", "Poststelle"):
            await repo.create_conversation(
                db, None, tenant, "managed", name, [staff.user_id], msg.clock()
            )
        await db.commit()
    assert sorted(c["name"] for c in await staff.conversations()) == ["Leitstelle", "Poststelle"]


async def test_member_added_while_connected_receives_live_from_then_on(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert bert.user_id
    cid = (await anna.create_conversation("group", []))["conversation_id"]
    await anna.send_raw(cid, b"before bert")
    async with bert.events() as stream:
        await next_of(stream, "synced")
        await anna.add_members(cid, [bert.user_id])
        added = await stream.next()
        await anna.send_raw(cid, b"welcome")
        message = await stream.next()
    assert (added["type"], added["action"], added["conversation_id"]) == (
        "membership",
        "added",
        cid,
    )
    assert decode_ciphertext(message) == b"welcome"
    assert message["seq"] == added["seq"] + 1


async def test_a_membership_change_numbers_itself_in_one_statement_and_refuses_a_stale_one(
    msg: Harness,
) -> None:
    """Adding reads the users and their memberships at once, and one UPDATE both takes the
    number and records it as the latest membership change; a change signed against an older
    one takes no number."""
    anna, _, cleo, cid = await anna_bert_and_cleo(msg)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()[:3]))

    async with msg.sessions() as db:
        actor = await db.get(User, anna.user_id)
        conv, mem = await repo.conversation_and_membership(db, cid, anna.user_id)
        assert actor and conv and mem and mem.role == "admin"
        before = conv.last_seq
        event.listen(msg.engine.sync_engine, "before_cursor_execute", seen)
        try:
            added = await repo.add_members(db, conv, actor, [cleo.user_id], msg.clock())
        finally:
            event.remove(msg.engine.sync_engine, "before_cursor_execute", seen)
        (joined,) = added.events
        # The session's copy follows the UPDATE: no reload, no second UPDATE of the row.
        assert joined.seq == conv.last_seq == conv.membership_seq == before + 1
        assert [s for s in statements if "conversations" in s] == ["UPDATE conversations SET"]
        assert statements[0].startswith("SELECT users.id") and statements[1].startswith("UPDATE")
        stale = repo.Statement(mem.conversation_id, before, {})
        with pytest.raises(MembershipChanged):
            await repo.remove_member(db, conv, actor, cleo.user_id, msg.clock(), statement=stale)
        await db.rollback()
    after = await anna.conversation(cid)
    assert (after["last_seq"], after["membership_seq"]) == (before, before)  # rolled back whole
    await anna.add_members(cid, [cleo.user_id])
    signature = base64.b64encode(bytes(64)).decode()  # checked by the members' clients
    current = {"device_id": anna.device_id, "after_seq": before + 1, "signature": signature}
    await anna.remove_member(cid, cleo.user_id, signed=current)
    gone = await anna.conversation(cid)
    assert cleo.user_id not in {m["user_id"] for m in gone["members"]}
    assert gone["last_seq"] == gone["membership_seq"] == before + 2
