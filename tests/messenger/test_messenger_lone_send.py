"""The lone send's short path: the usual send is stored in one statement on PostgreSQL (as the
general path would store it); anything else is handed back untouched to the general path,
which gives the refusal or the duplicate's answer."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from messenger_harness import Harness
from sqlalchemy import event, func, select, update
from test_messenger_group_commit import group, pending

from messenger.client import MessengerClient
from messenger.server.sending import GroupCommit
from messenger.store.errors import MembershipChanged
from messenger.store.lone_send import store_lone_send
from messenger.store.models import Conversation, Device, Session, Transaction, User
from messenger.store.sends import PendingSend

TTL = dt.timedelta(days=30)


async def session_of(msg: Harness, client: MessengerClient) -> str:
    async with msg.sessions() as db:
        found = await db.scalar(select(Session.id).where(Session.user_id == client.user_id))
    assert found is not None
    return found


async def state(msg: Harness, cid: str, user_id: str) -> tuple[Any, ...]:
    """What a send writes: the conversation's last number, the user's claimed transaction
    ids and stored bytes."""
    async with msg.engine.connect() as conn:
        last = await conn.scalar(select(Conversation.last_seq).where(Conversation.id == cid))
        claims = await conn.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.user_id == user_id)
        )
        used = await conn.scalar(select(User.storage_used).where(User.id == user_id))
    return last, claims, used


async def lone(
    msg: Harness, cid: str, send: PendingSend, session_id: str | None = None
) -> tuple[Any, list[str]]:
    """The short path in a transaction of its own; its outcome and the statements it ran."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(msg.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with msg.engine.begin() as conn:
            outcome = await store_lone_send(
                conn, cid, send, session_id=session_id, sessions_issued_after=msg.clock() - TTL
            )
    finally:
        event.remove(msg.engine.sync_engine, "before_cursor_execute", count)
    return outcome, statements


async def test_a_usual_send_is_stored_in_one_statement_on_postgresql_five_on_sqlite(
    msg: Harness,
) -> None:
    (anna, bert), cid = await group(msg, 2)
    assert anna.user_id
    before, claims, used = await state(msg, cid, anna.user_id)
    send = pending(anna, msg, "lone-1")
    outcome, statements = await lone(msg, cid, send, await session_of(msg, anna))
    assert outcome is not None and outcome.event is not None
    assert outcome.result == {
        "message_id": send.message_id,
        "conversation_id": cid,
        "ts": send.now.isoformat(),
        "seq": before + 1,
    }
    wanted = {"postgresql": 1, "sqlite": 5}[msg.engine.dialect.name]
    assert len(statements) == wanted, statements
    assert await state(msg, cid, anna.user_id) == (before + 1, claims + 1, used + 10)
    (stored,) = await bert.history(cid, after_seq=before)
    assert (stored["seq"], stored["message_id"]) == (before + 1, send.message_id)
    assert stored["sender_device_id"] == anna.device_id
    # The claim answers a repeat as a duplicate of this send, as the general path's would.
    again = await anna.send_raw(cid, b"c" * 10, txn_id="lone-1")
    assert again.duplicate and (again.message_id, again.seq) == (send.message_id, before + 1)


async def _ended(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    async with msg.sessions() as db:
        row = await db.get(Session, session)
        assert row is not None
        row.revoked_at = msg.clock()
        await db.commit()
    return {}


async def _expired(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    async with msg.sessions() as db:
        row = await db.get(Session, session)
        assert row is not None
        row.created_at = msg.clock() - TTL - dt.timedelta(seconds=1)
        await db.commit()
    return {}


async def _left(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    assert anna.user_id
    await anna.remove_member(cid, anna.user_id)
    return {}


async def _foreign(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    other = await msg.member("fremd@kreis.example")
    return {"device_id": other.device_id}


async def _removed(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    async with msg.sessions() as db:
        await db.execute(
            update(Device).where(Device.id == anna.device_id).values(removed_at=msg.clock())
        )
        await db.commit()
    return {}


async def _unseen(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    async with msg.sessions() as db:
        seen = await db.scalar(select(Conversation.membership_seq).where(Conversation.id == cid))
    assert seen
    return {"membership_seen": seen - 1}


async def _full(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    async with msg.sessions() as db:
        await db.execute(update(User).where(User.id == anna.user_id).values(quota_bytes=9))
        await db.commit()
    return {}


async def _disabled(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    async with msg.sessions() as db:
        await db.execute(update(User).where(User.id == anna.user_id).values(disabled=True))
        await db.commit()
    return {}


async def _pair(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    async with msg.sessions() as db:
        await db.execute(
            update(Conversation).where(Conversation.id == cid).values(cross_tenant=True)
        )
        await db.commit()
    return {}


async def _attached(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    return {"attachment_ids": [await anna.upload(cid, b"encrypted")]}


async def _bad(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    return {"refusal": ValueError("not base64")}


async def _used(msg: Harness, anna: MessengerClient, cid: str, session: str) -> dict[str, Any]:
    await anna.send_raw(cid, b"first", txn_id="taken")
    return {"txn_id": "taken"}


Setup = Callable[[Harness, MessengerClient, str, str], Awaitable[dict[str, Any]]]


@pytest.mark.parametrize(
    "setup",
    [
        _ended,
        _expired,
        _left,
        _foreign,
        _removed,
        _unseen,
        _full,
        _disabled,
        _pair,
        _attached,
        _bad,
        _used,
    ],
    ids=lambda f: f.__name__.strip("_"),
)
async def test_anything_but_the_usual_send_is_handed_back_untouched(
    msg: Harness, setup: Setup
) -> None:
    (anna, _), cid = await group(msg, 2)
    assert anna.user_id
    session = await session_of(msg, anna)
    changes = await setup(msg, anna, cid, session)
    before = await state(msg, cid, anna.user_id)
    txn_id = changes.pop("txn_id", "tried")
    outcome, _ = await lone(msg, cid, pending(anna, msg, txn_id, **changes), session)
    assert outcome is None
    assert await state(msg, cid, anna.user_id) == before


async def test_a_membership_change_met_under_the_lock_leaves_nothing_of_the_short_path(
    msg: Harness,
) -> None:
    """PostgreSQL: the statement reads the conversation before it waits for its row lock.
    A membership change committed meanwhile rolls the short path back; the general path then
    refuses the sender who had not seen it, and no claim or charge is left."""
    if msg.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: nothing changes between the read and the writes")
    (anna, _), cid = await group(msg, 2)
    assert anna.user_id
    async with msg.sessions() as db:
        seen = await db.scalar(select(Conversation.membership_seq).where(Conversation.id == cid))

    async def publish(items: list[dict[str, Any]]) -> None:
        return None

    sends = GroupCommit(msg.engine, publish)
    before = await state(msg, cid, anna.user_id)
    async with msg.engine.connect() as other:
        change = await other.begin()
        await other.execute(  # as a membership change numbers itself, holding the row
            update(Conversation)
            .where(Conversation.id == cid)
            .values(last_seq=Conversation.last_seq + 1, membership_seq=Conversation.last_seq + 1)
        )
        sending = asyncio.create_task(
            sends.send(cid, pending(anna, msg, "raced", membership_seen=seen))
        )
        await asyncio.sleep(0.5)  # the send waits for the row lock
        assert not sending.done()
        await change.commit()
    with pytest.raises(MembershipChanged):
        await sending
    await sends.stop()
    last, claims, used = await state(msg, cid, anna.user_id)
    assert (last, claims, used) == (before[0] + 1, before[1], before[2])
