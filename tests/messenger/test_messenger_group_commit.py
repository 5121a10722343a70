"""Group commit: concurrent sends to one conversation share a transaction, and each sender
still gets exactly the answer a send of its own would have had (number, duplicate, error)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from messenger_harness import Harness
from sqlalchemy import select

from messenger.client import MessengerClient
from messenger.server.sending import GroupCommit
from messenger.store.errors import MembershipChanged, NotFound, QuotaExceeded
from messenger.store.models import Conversation, User, new_id
from messenger.store.sends import PendingSend, append_messages


async def group(msg: Harness, size: int) -> tuple[list[MessengerClient], str]:
    await msg.tenant("Kreis", "kreis.example")
    members = [await msg.member(f"m{i}@kreis.example") for i in range(size)]
    others = [m.user_id for m in members[1:] if m.user_id]
    conv = await members[0].create_conversation("group", others, name="Wache")
    return members, conv["conversation_id"]


def pending(client: MessengerClient, msg: Harness, txn_id: str, **kw: Any) -> PendingSend:
    assert client.user_id and client.device_id
    fields: dict[str, Any] = {
        "user_id": client.user_id,
        "txn_id": txn_id,
        "device_id": client.device_id,
        "ciphertext": b"c" * 10,
        "attachment_ids": [],
        "membership_seen": None,
        "message_id": new_id(),
        "now": msg.clock(),
    }
    return PendingSend(**{**fields, **kw})


async def test_concurrent_sends_get_distinct_gap_free_numbers(msg: Harness) -> None:
    members, cid = await group(msg, 3)
    start = (await members[0].history(cid))[-1]["seq"]
    answers = await asyncio.gather(
        *(m.send_raw(cid, f"{i}".encode()) for i in range(10) for m in members)
    )
    seqs = sorted(a.seq for a in answers)
    assert seqs == list(range(start + 1, start + 31))
    history = await members[1].history(cid, after_seq=start)
    assert [e["seq"] for e in history] == seqs
    assert {e["message_id"] for e in history} == {a.message_id for a in answers}


async def test_a_transaction_id_repeated_while_queued_is_stored_once(msg: Harness) -> None:
    members, cid = await group(msg, 2)
    published: list[dict[str, Any]] = []

    async def publish(items: list[dict[str, Any]]) -> None:
        published.extend(items)

    sends = GroupCommit(msg.engine, publish)
    anna = members[0]
    # Queued in one go: the first runs alone, the other five wait as one batch.
    answers = await asyncio.gather(
        *(sends.send(cid, pending(anna, msg, "same")) for _ in range(3)),
        *(sends.send(cid, pending(anna, msg, f"own-{i}")) for i in range(3)),
    )
    await asyncio.sleep(0.05)  # the publishing runs beside the next batch
    await sends.stop()
    repeats = [a.result for a in answers[:3] if a.result]
    assert len({r["message_id"] for r in repeats}) == 1
    assert len({r["seq"] for r in repeats}) == 1
    assert [a.duplicate for a in answers[:3]].count(False) == 1
    history = await members[1].history(cid)
    assert len([e for e in history if e["type"] == "message"]) == 4
    assert sorted(i["event"]["seq"] for i in published) == [e["seq"] for e in history][-4:]


async def test_an_earlier_transaction_answers_as_a_duplicate_inside_a_batch(msg: Harness) -> None:
    members, cid = await group(msg, 2)
    anna = members[0]
    first = await anna.send_raw(cid, b"once", txn_id="mail-1")
    async with msg.engine.begin() as conn:
        outcomes = await append_messages(
            conn, cid, [pending(anna, msg, "mail-1"), pending(anna, msg, "mail-2")]
        )
    assert outcomes[0].duplicate and outcomes[0].event is None
    assert outcomes[0].result is not None
    assert (outcomes[0].result["message_id"], outcomes[0].result["seq"]) == (
        first.message_id,
        first.seq,
    )
    assert outcomes[1].result is not None and outcomes[1].result["seq"] == first.seq + 1


async def test_failing_sends_do_not_fail_the_others_in_their_batch(msg: Harness) -> None:
    members, cid = await group(msg, 4)
    anna, bert, carl, dora = members
    outsider = await msg.member("out@kreis.example")
    assert carl.user_id and dora.device_id
    async with msg.sessions() as db:
        user = await db.get(User, carl.user_id)
        assert user is not None
        user.quota_bytes = 5
        conv = await db.get(Conversation, cid)
        assert conv is not None
        seen = conv.membership_seq
        await db.commit()
    batch = [
        pending(anna, msg, "ok-1"),
        pending(outsider, msg, "not-a-member"),
        pending(carl, msg, "over-quota"),
        pending(bert, msg, "stale", membership_seen=seen - 1),
        pending(dora, msg, "bad-input", refusal=ValueError("not base64")),
        pending(bert, msg, "foreign-device", device_id=dora.device_id),
        pending(dora, msg, "ok-2", membership_seen=seen),
    ]
    async with msg.engine.begin() as conn:
        before = await conn.scalar(select(Conversation.last_seq).where(Conversation.id == cid))
        assert before is not None
        outcomes = await append_messages(conn, cid, batch)
    errors = [type(o.error) if o.error else None for o in outcomes]
    assert errors == [
        None,
        NotFound,
        QuotaExceeded,
        MembershipChanged,
        ValueError,
        NotFound,
        None,
    ]
    stored = [o.result["seq"] for o in outcomes if o.result]
    assert stored == [before + 1, before + 2]
    history = await anna.history(cid, after_seq=before)
    assert [e["seq"] for e in history] == stored
    assert (await carl.quota())["used"] == 0
    # The failed ones left no transaction behind: the same ids work once the cause is gone.
    retry = await bert.send_raw(cid, b"again", txn_id="stale")
    assert not retry.duplicate and retry.seq == before + 3


@pytest.mark.parametrize("senders", [5])
async def test_sends_to_two_conversations_at_once_keep_their_own_numbers(
    msg: Harness, senders: int
) -> None:
    members, first = await group(msg, senders)
    others = [m.user_id for m in members[1:] if m.user_id]
    second = (await members[0].create_conversation("group", others))["conversation_id"]
    answers = await asyncio.gather(
        *(m.send_raw(cid, b"x") for m in members for cid in (first, second) for _ in range(3))
    )
    for cid in (first, second):
        seqs = sorted(a.seq for a in answers if a.conversation_id == cid)
        assert seqs == list(range(seqs[0], seqs[0] + 3 * senders))


async def test_one_senders_sends_in_a_batch_fit_the_quota_one_by_one(msg: Harness) -> None:
    members, cid = await group(msg, 2)
    anna, bert = members
    assert anna.user_id
    async with msg.sessions() as db:
        user = await db.get(User, anna.user_id)
        assert user is not None
        user.quota_bytes = 25
        await db.commit()
    batch = [pending(anna, msg, f"m{i}") for i in range(3)] + [pending(bert, msg, "b")]
    async with msg.engine.begin() as conn:
        outcomes = await append_messages(conn, cid, batch)
    assert [type(o.error) if o.error else None for o in outcomes] == [
        None,
        None,
        QuotaExceeded,
        None,
    ]
    assert (await anna.quota())["used"] == 20


async def test_a_repeat_is_answered_before_membership_is_checked(msg: Harness) -> None:
    members, cid = await group(msg, 3)
    anna = members[0]
    assert anna.user_id
    first = await anna.send_raw(cid, b"vor dem Gehen", txn_id="last-words")
    await anna.remove_member(cid, anna.user_id)  # she leaves
    again = await anna.send_raw(cid, b"vor dem Gehen", txn_id="last-words")
    assert again.duplicate and (again.message_id, again.seq) == (first.message_id, first.seq)


async def test_a_batch_checks_its_senders_sessions_at_once_and_refuses_only_the_ended(
    msg: Harness,
) -> None:
    """Stream sends carry their session, checked in the batch's transaction: one statement
    for the batch; a send whose session ended is refused and takes no number or claim."""
    members, cid = await group(msg, 2)
    checked: list[set[str]] = []
    ended = PermissionError("this session has ended")

    async def check(conn: Any, session_ids: set[str]) -> dict[str, Exception]:
        checked.append(set(session_ids))
        return {"s-ended": ended} if "s-ended" in session_ids else {}

    async def publish(items: list[dict[str, Any]]) -> None:
        return None

    sends = GroupCommit(msg.engine, publish, check)
    anna, ben = members
    start = (await ben.history(cid))[-1]["seq"]
    # Queued before the conversation's worker starts: one batch.
    answers = await asyncio.gather(
        sends.send(cid, pending(anna, msg, "a1"), session_id="s-anna"),
        sends.send(cid, pending(anna, msg, "a2"), session_id="s-anna"),
        sends.send(cid, pending(ben, msg, "b1"), session_id="s-ended"),
        sends.send(cid, pending(anna, msg, "a3")),  # over HTTP: checked before it queued
        return_exceptions=True,
    )
    await sends.stop()
    assert answers[2] is ended
    stored = [a for i, a in enumerate(answers) if i != 2]
    assert sorted(a.result["seq"] for a in stored) == [start + 1, start + 2, start + 3]
    assert checked == [{"s-anna", "s-ended"}]  # one statement for the batch
    # Ben's transaction id was not claimed: the same send goes through once he may send.
    again = await GroupCommit(msg.engine, publish).send(cid, pending(ben, msg, "b1"))
    assert again.result["seq"] == start + 4 and not again.duplicate
