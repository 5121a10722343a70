"""Sending and receiving over a real server: stream, resume, idempotency, receipts, to-device."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from messenger_harness import Harness, next_of

from messenger.client import Envelope, EventStream, MessengerClient, NotFound, decode_ciphertext
from messenger.store import repo
from messenger.store.models import Conversation


async def messages(stream: EventStream, n: int) -> list[dict[str, Any]]:
    return [await next_of(stream, "message") for _ in range(n)]


async def pair(msg: Harness) -> tuple[MessengerClient, MessengerClient, str]:
    await msg.tenant("Kreis", "kreis.example")
    alice = await msg.member("alice@kreis.example")
    bob = await msg.member("bob@kreis.example")
    assert bob.user_id is not None
    conv = await alice.create_conversation("group", [bob.user_id], name="Leitstelle")
    return alice, bob, conv["conversation_id"]


async def test_message_sent_over_rest_arrives_on_the_members_stream(msg: Harness) -> None:
    alice, bob, cid = await pair(msg)
    async with bob.events() as stream:
        assert (await next_of(stream, "synced"))["type"] == "synced"
        sent = await alice.send_raw(cid, b"\x00opaque\xff")
        event = await next_of(stream, "message")
    assert event["conversation_id"] == cid
    assert event["seq"] == sent.seq
    assert event["sender_user_id"] == alice.user_id
    assert event["sender_device_id"] == alice.device_id
    assert decode_ciphertext(event) == b"\x00opaque\xff"


async def test_a_removal_nobody_published_ends_the_stream_at_the_removal(msg: Harness) -> None:
    """A member removed in the database alone (as the admin CLI does) learns of it from the
    next message of the conversation, which fills the gap, and gets neither that message nor
    any after it."""
    alice, bob, cid = await pair(msg)
    assert bob.user_id
    async with bob.events() as stream:
        await next_of(stream, "synced")
        async with msg.sessions() as db:
            group = await db.get(Conversation, cid)
            assert group
            await repo.remove_member(db, group, None, bob.user_id, msg.clock())
            await db.commit()
        await alice.send_raw(cid, b"after bob left")
        removed = await next_of(stream, "membership")
        assert (removed["action"], removed["user_id"]) == ("removed", bob.user_id)
        await alice.send_raw(cid, b"and another")
        with pytest.raises(TimeoutError):
            await next_of(stream, "message", timeout=1.0)


async def test_stream_replays_from_own_join_then_messages_in_sequence(msg: Harness) -> None:
    alice, bob, cid = await pair(msg)
    for i in range(3):
        await alice.send_raw(cid, f"m{i}".encode())
    async with bob.events() as stream:
        first = [await stream.next() for _ in range(5)]
    # Bob joined at seq 2 (alice's own join at seq 1 is before his window).
    assert [e["type"] for e in first] == ["membership"] + ["message"] * 3 + ["synced"]
    assert (first[0]["action"], first[0]["user_id"]) == ("added", bob.user_id)
    assert [e["seq"] for e in first[:4]] == [2, 3, 4, 5]
    assert [decode_ciphertext(e) for e in first[1:4]] == [b"m0", b"m1", b"m2"]


async def test_resume_after_disconnect_delivers_each_missed_message_once(msg: Harness) -> None:
    alice, bob, cid = await pair(msg)
    async with bob.events() as stream:
        await next_of(stream, "synced")
        await alice.send_raw(cid, b"before")
        assert decode_ciphertext(await next_of(stream, "message")) == b"before"
        await stream.drop()
        for i in range(5):
            await alice.send_raw(cid, f"while-away-{i}".encode())
        got = await messages(stream, 5)
        await alice.send_raw(cid, b"after")
        got.append(await next_of(stream, "message"))
        assert stream.connects == 2
    assert [decode_ciphertext(e) for e in got] == [
        *(f"while-away-{i}".encode() for i in range(5)),
        b"after",
    ]
    seqs = [e["seq"] for e in got]
    assert seqs == sorted(set(seqs))


async def test_a_new_client_resumes_from_persisted_cursors(msg: Harness) -> None:
    alice, bob, cid = await pair(msg)
    await alice.send_raw(cid, b"one")
    async with bob.events() as stream:
        await next_of(stream, "synced")
    saved = bob.cursors
    await alice.send_raw(cid, b"two")
    again = await msg.login("bob@kreis.example", device=False)
    await again.login("bob@kreis.example", "correct horse battery", device_id=bob.device_id)
    again.cursors = saved
    async with again.events() as stream:
        event = await stream.next()
    assert decode_ciphertext(event) == b"two"


async def test_repeated_txn_id_returns_first_result_and_stores_nothing(msg: Harness) -> None:
    alice, bob, cid = await pair(msg)
    first = await alice.send_raw(cid, b"once", txn_id="mail-4711")
    again = await alice.send_raw(cid, b"once", txn_id="mail-4711")
    assert not first.duplicate and again.duplicate
    assert (again.message_id, again.seq) == (first.message_id, first.seq)
    history = await bob.history(cid)
    assert [e["type"] for e in history].count("message") == 1


async def test_concurrent_repeats_of_one_txn_id_store_one_message(msg: Harness) -> None:
    alice, bob, cid = await pair(msg)
    results = await asyncio.gather(*(alice.send_raw(cid, b"race", txn_id="same") for _ in range(8)))
    assert len({r.message_id for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert [e["type"] for e in await bob.history(cid)].count("message") == 1


async def test_read_receipt_reaches_the_sender_and_is_listed(msg: Harness) -> None:
    alice, bob, cid = await pair(msg)
    async with alice.events() as stream:
        await next_of(stream, "synced")
        sent = await alice.send_raw(cid, b"hello")
        await bob.receipt(cid, sent.seq, "delivered")
        await bob.receipt(cid, sent.seq, "read")
        await bob.receipt(cid, sent.seq, "read")
        first = await next_of(stream, "receipt")
        second = await next_of(stream, "receipt")
    assert (first["kind"], second["kind"]) == ("delivered", "read")
    assert first["user_id"] == bob.user_id
    listed = await alice.receipts(cid, sent.seq)
    assert sorted(r["kind"] for r in listed) == ["delivered", "read"]


async def test_to_device_reaches_exactly_the_named_device(msg: Harness) -> None:
    alice, bob, _ = await pair(msg)
    bob_phone = await msg.login("bob@kreis.example")
    assert bob.user_id and bob.device_id and bob_phone.device_id
    async with bob.events() as laptop, bob_phone.events() as phone:
        await next_of(laptop, "synced")
        await next_of(phone, "synced")
        await alice.send_to_device([Envelope(bob.user_id, bob_phone.device_id, b"key-for-phone")])
        await alice.send_to_device([Envelope(bob.user_id, bob.device_id, b"key-for-laptop")])
        got_phone = await next_of(phone, "to_device")
        got_laptop = await next_of(laptop, "to_device")
    assert decode_ciphertext(got_phone) == b"key-for-phone"
    assert decode_ciphertext(got_laptop) == b"key-for-laptop"
    assert got_phone["sender_device_id"] == alice.device_id


async def test_to_device_batch_with_one_unknown_target_stores_nothing(msg: Harness) -> None:
    alice, bob, _ = await pair(msg)
    assert bob.user_id and bob.device_id
    try:
        await alice.send_to_device(
            [
                Envelope(bob.user_id, bob.device_id, b"a"),
                Envelope(bob.user_id, "no-such-device", b"b"),
            ]
        )
        raise AssertionError("the batch was accepted")
    except NotFound:
        pass
    async with bob.events() as stream:
        assert (await stream.next())["type"] in ("membership",)
        while (event := await stream.next())["type"] != "synced":
            assert event["type"] != "to_device"


async def test_to_device_queue_survives_offline_and_is_acknowledged_by_resume(msg: Harness) -> None:
    alice, bob, _ = await pair(msg)
    assert bob.user_id and bob.device_id
    for i in range(3):
        await alice.send_to_device([Envelope(bob.user_id, bob.device_id, f"k{i}".encode())])
    async with bob.events() as stream:
        got = [decode_ciphertext(await next_of(stream, "to_device")) for _ in range(3)]
    assert got == [b"k0", b"k1", b"k2"]
    assert bob.cursors.to_device == 3
    async with bob.events() as stream:
        while (event := await stream.next())["type"] != "synced":
            assert event["type"] != "to_device"


async def test_concurrent_identical_receipts_are_stored_once(msg: Harness) -> None:
    alice, bob, cid = await pair(msg)
    sent = await alice.send_raw(cid, b"hello")
    await asyncio.gather(*(bob.receipt(cid, sent.seq, "read") for _ in range(6)))
    assert [r["kind"] for r in await alice.receipts(cid, sent.seq)] == ["read"]


async def test_to_device_batch_numbers_each_devices_queue_in_order(msg: Harness) -> None:
    alice, bob, _ = await pair(msg)
    bob_phone = await msg.login("bob@kreis.example")
    assert bob.user_id and bob.device_id and bob_phone.device_id
    batch = [
        Envelope(bob.user_id, bob.device_id, b"l1"),
        Envelope(bob.user_id, bob_phone.device_id, b"p1"),
        Envelope(bob.user_id, bob.device_id, b"l2"),
        Envelope(bob.user_id, bob.device_id, b"l3"),
    ]
    assert await alice.send_to_device(batch) == 4
    await alice.send_to_device([Envelope(bob.user_id, bob_phone.device_id, b"p2")])
    async with bob.events() as laptop, bob_phone.events() as phone:
        got_laptop = [await next_of(laptop, "to_device") for _ in range(3)]
        got_phone = [await next_of(phone, "to_device") for _ in range(2)]
    assert [(e["seq"], decode_ciphertext(e)) for e in got_laptop] == [
        (1, b"l1"),
        (2, b"l2"),
        (3, b"l3"),
    ]
    assert [(e["seq"], decode_ciphertext(e)) for e in got_phone] == [(1, b"p1"), (2, b"p2")]


@pytest.mark.parametrize("server_options", [{"stream_replays_at_once": 2}])
async def test_streams_opened_together_replay_a_few_at_a_time_and_each_gets_everything(
    msg: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node's restart reconnects every client at once: replays take turns (bounded memory),
    the waiting streams lose nothing, and a message sent meanwhile reaches each once."""
    from messenger.server.api import stream as stream_api

    replaying = 0
    most = 0
    catch_up = stream_api.StreamConnection.catch_up

    async def counted(self: stream_api.StreamConnection) -> None:
        nonlocal replaying, most
        replaying += 1
        most = max(most, replaying)
        try:
            await asyncio.sleep(0.05)  # long enough for the others to try at the same time
            await catch_up(self)
        finally:
            replaying -= 1

    monkeypatch.setattr(stream_api.StreamConnection, "catch_up", counted)
    await msg.tenant("Kreis", "kreis.example")
    alice = await msg.member("alice@kreis.example")
    readers = [await msg.member(f"r{i}@kreis.example") for i in range(6)]
    ids = [r.user_id for r in readers if r.user_id is not None]
    assert len(ids) == len(readers)
    cid = (await alice.create_conversation("group", ids, name="Leitstelle"))["conversation_id"]
    for i in range(3):
        await alice.send_raw(cid, f"m{i}".encode())

    async def read(reader: MessengerClient, started: asyncio.Event) -> list[bytes]:
        async with reader.events() as stream:
            started.set()
            got = await messages(stream, 4)  # "live" is replayed or comes live, once either way
        return [decode_ciphertext(e) for e in got]

    started = [asyncio.Event() for _ in readers]
    tasks = [asyncio.create_task(read(r, s)) for r, s in zip(readers, started, strict=True)]
    for s in started:
        await s.wait()
    await alice.send_raw(cid, b"live")
    results = await asyncio.wait_for(asyncio.gather(*tasks), 30)
    assert results == [[b"m0", b"m1", b"m2", b"live"]] * len(readers)
    assert most == 2
