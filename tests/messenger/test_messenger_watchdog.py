"""Open streams follow the database: ended sessions close, unpublished changes arrive."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from messenger_harness import Harness, next_of

from messenger.client import Unauthenticated
from messenger.server.api.stream import StreamConnection
from messenger.store import repo
from messenger.store.models import Conversation, Tenant, User


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"stream_recheck_interval": 0.2}


async def managed_group_made_outside(msg: Harness, tenant_id: str, member: str) -> Conversation:
    """As the admin CLI makes one: in the database, telling no server."""
    async with msg.sessions() as db:
        tenant = await db.get(Tenant, tenant_id)
        assert tenant
        conv, _ = await repo.create_conversation(
            db, None, tenant, "managed", "Leitstelle", [member], msg.clock()
        )
        await db.commit()
    return conv


async def test_disabling_a_user_elsewhere_closes_the_stream(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    async with anna.events() as stream:
        await next_of(stream, "synced")
        async with msg.sessions() as db:  # as the admin CLI does, without telling the server
            user = await db.get(User, anna.user_id)
            assert user
            await repo.disable_user(db, user, msg.clock())
            await db.commit()
        with pytest.raises(Unauthenticated):
            await next_of(stream, "never", timeout=5)


async def test_membership_change_made_outside_the_server_reaches_open_streams(
    msg: Harness,
) -> None:
    kreis = await msg.tenant("Kreis", "kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert bert.user_id
    async with bert.events() as stream:
        await next_of(stream, "synced")
        conv = await managed_group_made_outside(msg, kreis, bert.user_id)
        added = await next_of(stream, "membership", timeout=5)
        assert (added["conversation_id"], added["user_id"]) == (conv.id, bert.user_id)
        async with msg.sessions() as db:
            group = await db.get(Conversation, conv.id)
            assert group
            await repo.remove_member(db, group, None, bert.user_id, msg.clock())
            await db.commit()
        removed = await next_of(stream, "membership", timeout=5)
    assert removed["action"] == "removed"


async def test_only_a_stream_the_database_has_more_for_catches_up(
    msg: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node's recheck reads what its streams could be missing at once; a stream with
    nothing missing costs no catch-up (each stream once ran its own every interval)."""
    kreis = await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert anna.user_id and bert.user_id
    cid = (await anna.create_conversation("group", [bert.user_id]))["conversation_id"]
    await anna.send_raw(cid, b"seen by both")
    caught_up: list[str] = []
    original = StreamConnection.catch_up

    async def counted(self: StreamConnection) -> None:
        caught_up.append(self.user_id)
        await original(self)

    monkeypatch.setattr(StreamConnection, "catch_up", counted)
    async with anna.events() as a_stream, bert.events() as b_stream:
        await next_of(a_stream, "synced")
        await next_of(b_stream, "synced")
        caught_up.clear()  # the replays on connecting
        await asyncio.sleep(1.0)  # ten looks
        assert caught_up == []
        managed = await managed_group_made_outside(msg, kreis, bert.user_id)
        added = await next_of(b_stream, "membership", timeout=5)
        assert added["conversation_id"] == managed.id
        assert set(caught_up) == {bert.user_id}
        await asyncio.sleep(0.3)  # a look made before bert's catch-up ended may add one more
        caught_up.clear()
        await asyncio.sleep(0.5)
    assert caught_up == []  # with the change delivered, bert's stream is not behind any more
