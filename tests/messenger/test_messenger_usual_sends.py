"""The short path of usual sends: a batch of them is stored in one statement on PostgreSQL
(as the general path would store it), a lone one in five on SQLite; anything else is handed
back untouched to the general path, which gives the refusal or the duplicate's answer."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from messenger_harness import Harness
from sqlalchemy import event, func, select, update
from test_messenger_group_commit import group, pending

from messenger.client import MessengerClient
from messenger.server.sending import GroupCommit
from messenger.store.errors import MembershipChanged, QuotaExceeded
from messenger.store.models import Conversation, Device, Event, Session, Transaction, User
from messenger.store.sends import PendingSend, SendOutcome
from messenger.store.usual_sends import UsualSendsUndone, store_usual_sends

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


async def usual(
    msg: Harness, cid: str, sends: list[PendingSend], session_ids: list[str | None]
) -> tuple[Any, list[str]]:
    """The short path in a transaction of its own; its outcomes and the statements it ran:
    on SQLite as the driver saw them; on PostgreSQL those SQLAlchemy ran (asyncpg does not
    log its prepared statements) and those run on asyncpg's connection directly."""
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    def seen(sql: str) -> None:
        if not sql.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(sql)

    def logged(query: Any) -> None:
        if "pg_catalog" not in query.query and "'jit'" not in query.query:
            seen(query.query)  # not asyncpg's own look-up of a type it meets the first time

    sqlite = msg.engine.dialect.name == "sqlite"
    async with msg.engine.begin() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        if sqlite:
            raw.set_trace_callback(seen)
        else:
            raw.add_query_logger(logged)
            event.listen(msg.engine.sync_engine, "before_cursor_execute", count)
        try:
            outcomes = await store_usual_sends(
                conn, cid, sends, session_ids=session_ids, sessions_issued_after=msg.clock() - TTL
            )
        finally:
            if sqlite:
                raw.set_trace_callback(None)
            else:
                raw.remove_query_logger(logged)
                event.remove(msg.engine.sync_engine, "before_cursor_execute", count)
    return outcomes, statements


async def lone(
    msg: Harness, cid: str, send: PendingSend, session_id: str | None = None
) -> tuple[Any, list[str]]:
    """A batch of one: its outcome (None: handed back) and the statements it ran."""
    outcomes, statements = await usual(msg, cid, [send], [session_id])
    if outcomes is None:
        return None, statements
    (outcome,) = outcomes
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
    # Read back through the ORM as the general path's rows are (on SQLite the short path
    # binds the values itself).
    assert stored["ts"] == send.now.isoformat()
    assert base64.b64decode(stored["ciphertext"]) == send.ciphertext
    # Times compare in SQL as the general path's do (retention and expiry select by them).
    async with msg.engine.connect() as conn:
        found = await conn.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.id == send.message_id, Event.created_at == send.now)
        )
        claimed = await conn.scalar(
            select(func.count())
            .select_from(Transaction)
            .where(Transaction.txn_id == "lone-1", Transaction.created_at == send.now)
        )
    assert (found, claimed) == (1, 1)
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


@pytest.mark.parametrize("batch", [1, 3], ids=["lone", "batch"])
async def test_a_membership_change_met_under_the_lock_leaves_nothing_of_the_short_path(
    msg: Harness, batch: int
) -> None:
    """PostgreSQL: the statement reads the conversation before it waits for its row lock.
    A membership change committed meanwhile rolls the short path back; the general path then
    refuses the senders who had not seen it, and no claim or charge is left. (A batch of one
    and a larger one take different statements.)"""
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
        sending = [  # queued together: one batch
            asyncio.create_task(
                sends.send(cid, pending(anna, msg, f"raced-{n}", membership_seen=seen))
            )
            for n in range(batch)
        ]
        await asyncio.sleep(0.5)  # the batch waits for the row lock
        assert not any(task.done() for task in sending)
        await change.commit()
    for task in sending:
        with pytest.raises(MembershipChanged):
            await task
    await sends.stop()
    last, claims, used = await state(msg, cid, anna.user_id)
    assert (last, claims, used) == (before[0] + 1, before[1], before[2])


def on_postgresql(msg: Harness) -> None:
    if msg.engine.dialect.name != "postgresql":
        pytest.skip("SQLite takes the short path for a send alone in its batch only")


async def test_a_batch_from_two_senders_is_one_statement_numbered_in_its_order(
    msg: Harness,
) -> None:
    on_postgresql(msg)
    (anna, bert, cora), cid = await group(msg, 3)
    assert anna.user_id and bert.user_id
    a0, b0 = await state(msg, cid, anna.user_id), await state(msg, cid, bert.user_id)
    sends = [
        pending(anna, msg, "b-1", ciphertext=b"a" * 10),
        pending(bert, msg, "b-2", ciphertext=b"b" * 7),
        pending(anna, msg, "b-3", ciphertext=b"c" * 5),
    ]
    sessions = [await session_of(msg, anna), await session_of(msg, bert), None]
    outcomes, statements = await usual(msg, cid, sends, sessions)
    assert len(statements) == 1, statements
    assert outcomes is not None
    assert [o.result["seq"] for o in outcomes] == [a0[0] + 1, a0[0] + 2, a0[0] + 3]
    assert [o.event.id for o in outcomes] == [s.message_id for s in sends]
    # Each sender is charged their own bytes and holds their own claims.
    assert await state(msg, cid, anna.user_id) == (a0[0] + 3, a0[1] + 2, a0[2] + 15)
    assert (await state(msg, cid, bert.user_id))[1:] == (b0[1] + 1, b0[2] + 7)
    stored = await cora.history(cid, after_seq=a0[0])
    assert [(m["seq"], m["message_id"], m["sender_device_id"]) for m in stored] == [
        (a0[0] + 1, sends[0].message_id, anna.device_id),
        (a0[0] + 2, sends[1].message_id, bert.device_id),
        (a0[0] + 3, sends[2].message_id, anna.device_id),
    ]
    again = await bert.send_raw(cid, b"b" * 7, txn_id="b-2")
    assert again.duplicate and again.seq == a0[0] + 2


async def test_a_batch_with_one_unusual_send_is_handed_back_whole(msg: Harness) -> None:
    """One send the general path must answer (here, a sender who left) keeps the whole batch
    off the short path, with nothing written for the others either."""
    on_postgresql(msg)
    (anna, bert, _), cid = await group(msg, 3)
    assert anna.user_id and bert.user_id
    await bert.remove_member(cid, bert.user_id)
    before = await state(msg, cid, anna.user_id), await state(msg, cid, bert.user_id)
    sends = [pending(anna, msg, "u-1"), pending(bert, msg, "u-2")]
    outcomes, _ = await usual(msg, cid, sends, [None, None])
    assert outcomes is None
    assert (await state(msg, cid, anna.user_id), await state(msg, cid, bert.user_id)) == before


async def test_a_sender_whose_sends_together_exceed_the_quota_takes_the_general_path(
    msg: Harness,
) -> None:
    """The general path charges a sender's sends one at a time (the first fits, the second
    is refused); the short path charges them together, so it hands such a batch back."""
    on_postgresql(msg)
    (anna, _), cid = await group(msg, 2)
    assert anna.user_id
    async with msg.sessions() as db:
        used = await db.scalar(select(User.storage_used).where(User.id == anna.user_id))
        await db.execute(update(User).where(User.id == anna.user_id).values(quota_bytes=used + 15))
        await db.commit()
    before = await state(msg, cid, anna.user_id)
    sends = [pending(anna, msg, "q-1"), pending(anna, msg, "q-2")]
    outcomes, _ = await usual(msg, cid, sends, [None, None])
    assert outcomes is None
    assert await state(msg, cid, anna.user_id) == before
    commit = GroupCommit(msg.engine, _no_publish)  # the two queue up as one batch
    first, second = await asyncio.gather(
        *(commit.send(cid, s) for s in sends), return_exceptions=True
    )
    await commit.stop()
    assert isinstance(first, SendOutcome) and first.result
    assert first.result["seq"] == before[0] + 1
    assert isinstance(second, QuotaExceeded)


async def test_a_transaction_id_claimed_meanwhile_undoes_the_batch(msg: Harness) -> None:
    """The read does not see the claims: a batch one of whose ids is taken (by a request
    that raced it) has claimed the others when it finds out, and is rolled back."""
    on_postgresql(msg)
    (anna, bert), cid = await group(msg, 2)
    assert anna.user_id
    await bert.send_raw(cid, b"first", txn_id="mine")
    await anna.send_raw(cid, b"first", txn_id="taken")
    before = await state(msg, cid, anna.user_id)
    sends = [pending(bert, msg, "fresh"), pending(anna, msg, "taken")]
    with pytest.raises(UsualSendsUndone):
        await usual(msg, cid, sends, [None, None])
    assert await state(msg, cid, anna.user_id) == before


async def _no_publish(items: list[dict[str, Any]]) -> None:
    return None
