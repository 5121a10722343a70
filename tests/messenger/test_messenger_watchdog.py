"""Open streams follow the database: ended sessions close, unpublished changes arrive."""

from __future__ import annotations

from typing import Any

import pytest
from messenger_harness import Harness, next_of

from messenger.client import Unauthenticated
from messenger.store import repo
from messenger.store.models import Conversation, Tenant, User


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"stream_recheck_interval": 0.2}


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
        async with msg.sessions() as db:
            tenant = await db.get(Tenant, kreis)
            assert tenant
            conv, _ = await repo.create_conversation(
                db, None, tenant, "managed", "Leitstelle", [bert.user_id], msg.clock()
            )
            await db.commit()
        added = await next_of(stream, "membership", timeout=5)
        assert (added["conversation_id"], added["user_id"]) == (conv.id, bert.user_id)
        async with msg.sessions() as db:
            group = await db.get(Conversation, conv.id)
            assert group
            await repo.remove_member(db, group, None, bert.user_id, msg.clock())
            await db.commit()
        removed = await next_of(stream, "membership", timeout=5)
    assert removed["action"] == "removed"
