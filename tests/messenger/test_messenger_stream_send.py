"""Sending over the stream: the same message, checks, errors and idempotency as over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from messenger_harness import Harness, next_of
from sqlalchemy import select
from test_messenger_delivery import pair

from messenger.client import (
    EventStream,
    Forbidden,
    MembershipChanged,
    MessengerClient,
    NotFound,
    Unauthenticated,
    decode_ciphertext,
)
from messenger.client.e2e import DecryptedMessage, E2ESession
from messenger.crypto import DeviceKeys
from messenger.store import repo
from messenger.store.models import Event, Tenant


@pytest.fixture
def server_options() -> dict[str, Any]:
    # Streams of ended sessions are closed only once a minute here, so a send made over an
    # open stream meets the per-send session check, not a stream already closed.
    return {"session_check_interval": 60.0}


@contextlib.asynccontextmanager
async def reading(client: MessengerClient) -> AsyncIterator[tuple[EventStream, list[Any]]]:
    """The client's stream, read by a task (answers to sends arrive with the events)."""
    events: list[dict[str, Any]] = []
    synced = asyncio.Event()
    async with client.events() as stream:

        async def read() -> None:
            async for event in stream:
                events.append(event)
                if event["type"] == "synced":
                    synced.set()

        task = asyncio.create_task(read())
        await asyncio.wait_for(synced.wait(), 10)
        try:
            yield stream, events
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def connected(events: list[dict[str, Any]], times: int) -> None:
    """Wait until the stream has synced `times` times (once per connection)."""
    async with asyncio.timeout(10):
        while sum(1 for e in events if e["type"] == "synced") < times:
            await asyncio.sleep(0.01)


def no_http(client: MessengerClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a send falls back to HTTP."""

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the send went over HTTP")

    monkeypatch.setattr(client, "send_raw", refused)


async def test_a_message_sent_over_the_stream_is_stored_once_and_reaches_the_members(
    msg: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob, cid = await pair(msg)
    async with bob.events() as bobs, reading(alice) as (stream, _):
        await next_of(bobs, "synced")
        no_http(alice, monkeypatch)
        sent = await stream.send_raw(cid, b"\x00opaque\xff", txn_id="t-1")
        again = await stream.send_raw(cid, b"\x00opaque\xff", txn_id="t-1")
        event = await next_of(bobs, "message")
        later = await stream.send_raw(cid, b"later")
        assert (await next_of(bobs, "message"))["seq"] == later.seq
    assert (sent.duplicate, again.duplicate, again.seq) == (False, True, sent.seq)
    assert later.seq == sent.seq + 1
    assert (event["seq"], event["sender_user_id"]) == (sent.seq, alice.user_id)
    assert event["sender_device_id"] == alice.device_id
    assert decode_ciphertext(event) == b"\x00opaque\xff"
    history = await bob.history(cid)
    assert [decode_ciphertext(e) for e in history if e["type"] == "message"] == [
        b"\x00opaque\xff",
        b"later",
    ]


async def test_sends_over_the_stream_are_refused_as_over_http_and_the_stream_goes_on(
    msg: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob, cid = await pair(msg)
    carol = await msg.member("carol@kreis.example")
    assert carol.user_id is not None
    theirs = (await bob.create_conversation("direct", [carol.user_id]))["conversation_id"]
    conv = await alice.conversation(cid)
    async with reading(alice) as (stream, _):
        no_http(alice, monkeypatch)
        with pytest.raises(NotFound, match="no such conversation"):
            await stream.send_raw(theirs, b"not a member")
        # frames as another client might write them: answered, never stored
        for frame, detail in [
            ({"ciphertext": "%%%"}, "ciphertext is not valid base64"),
            ({"ciphertext": "", "sender_device_id": "x"}, "sender_device_id: Extra inputs"),
            ({"ciphertext": "", "conversation_id": ""}, "conversation_id: String should have"),
            ({}, "ciphertext: Field required"),
        ]:
            answer = await stream._send_frame(
                {"type": "send", "conversation_id": cid, "txn_id": "t-bad", **frame}, 10
            )
            assert answer is not None
            assert (answer["type"], answer["txn_id"], answer["status"]) == (
                "send_failed",
                "t-bad",
                422,
            )
            assert answer["error"] == "invalid" and detail in answer["detail"]
        await alice.add_members(cid, [carol.user_id])
        with pytest.raises(MembershipChanged):
            await stream.send_raw(cid, b"to the old members", membership_seq=conv["membership_seq"])
        sent = await stream.send_raw(cid, b"still open")
    history = await bob.history(cid)
    assert [decode_ciphertext(e) for e in history if e["type"] == "message"] == [b"still open"]
    assert sent.seq == history[-1]["seq"]


async def test_a_session_ended_after_the_stream_opened_cannot_send_over_it(
    msg: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, _, cid = await pair(msg)
    async with reading(alice) as (stream, _):
        no_http(alice, monkeypatch)
        await stream.send_raw(cid, b"before")
        async with msg.sessions() as db:  # as the admin CLI does, from outside the server
            tenant = await db.get(Tenant, alice.tenant_id)
            assert tenant is not None
            await repo.set_tenant_disabled(db, tenant, True)
            await db.commit()
        with pytest.raises(Unauthenticated, match="ended"):
            await stream.send_raw(cid, b"after")
    async with msg.sessions() as db:
        stored = await db.scalars(select(Event.ciphertext).where(Event.conversation_id == cid))
        assert [c for c in stored if c is not None] == [b"before"]


async def test_a_send_whose_connection_drops_is_stored_once_over_http(msg: Harness) -> None:
    alice, bob, cid = await pair(msg)
    sent: list[int] = []
    async with reading(alice) as (stream, events):
        for i in range(8):
            await connected(events, i + 1)  # again, after the last drop
            send = asyncio.create_task(stream.send_raw(cid, f"m{i}".encode()))
            await asyncio.sleep(i * 0.0005)  # the drop lands before, during or after storing
            await stream.drop()
            sent.append((await send).seq)
        assert stream.connects >= 8
    history = await bob.history(cid)
    stored = [(e["seq"], decode_ciphertext(e)) for e in history if e["type"] == "message"]
    assert stored == [(seq, f"m{i}".encode()) for i, seq in enumerate(sent)]


async def test_without_a_connection_the_send_goes_over_http(msg: Harness) -> None:
    alice, bob, cid = await pair(msg)
    stream = alice.events()
    sent = await stream.send_raw(cid, b"never connected")
    assert not sent.duplicate
    history = await bob.history(cid)
    assert [decode_ciphertext(e) for e in history if e["type"] == "message"] == [b"never connected"]


async def test_a_bot_sends_over_the_stream_only_with_the_send_scope(
    msg: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await msg.tenant("Kreisklinik", "klinik.example")
    await msg.user("admin@klinik.example", role="tenant_admin")
    admin = await msg.login("admin@klinik.example", device=False)
    anna = await msg.member("anna@klinik.example")
    created = await admin._json(
        "POST", "/v1/admin/bots", json_body={"name": "Rota", "scopes": ["read"]}
    )
    bot = MessengerClient(msg.url, retries=1)
    msg.clients.append(bot)
    bot.token = created["token"]
    await bot.register_device("bot", b"\x01" * 32, b"\x02" * 32, b"\x03" * 64)
    cid = (await anna.create_conversation("group", [created["bot_id"]]))["conversation_id"]
    async with reading(bot) as (stream, _):
        no_http(bot, monkeypatch)
        with pytest.raises(Forbidden, match="'send' scope"):
            await stream.send_raw(cid, b"not allowed")
        await admin._json(
            "PATCH", f"/v1/admin/bots/{created['bot_id']}", json_body={"scopes": ["read", "send"]}
        )
        assert (await stream.send_raw(cid, b"allowed")).seq > 0
    history = await anna.history(cid)
    assert [decode_ciphertext(e) for e in history if e["type"] == "message"] == [b"allowed"]


def counting_http(client: MessengerClient, monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The transaction ids of the client's sends over HTTP, as they are made."""
    over_http: list[str | None] = []
    real = client.send_raw

    async def counted(*args: Any, **kwargs: Any) -> Any:
        over_http.append(kwargs.get("txn_id"))
        return await real(*args, **kwargs)

    monkeypatch.setattr(client, "send_raw", counted)
    return over_http


async def test_a_send_from_the_task_reading_the_stream_goes_over_http_at_once(
    msg: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An event handler answering inside the reading loop: its answer frame could only be
    # read by itself, so waiting for it would last until the timeout.
    alice, bob, cid = await pair(msg)
    over_http = counting_http(alice, monkeypatch)
    async with alice.events() as stream, asyncio.timeout(30):
        async for event in stream:
            if event["type"] == "synced":
                sent = await stream.send_raw(cid, b"from the reader", txn_id="t-r", timeout=3600)
                break
    assert over_http == ["t-r"]
    history = await bob.history(cid)
    assert [(e["seq"], decode_ciphertext(e)) for e in history if e["type"] == "message"] == [
        (sent.seq, b"from the reader")
    ]


async def test_an_e2e_session_sends_through_the_open_stream_it_is_given(
    msg: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, cid = await pair(msg)
    sessions = {}
    for name in ["alice", "bob"]:
        client = await msg.login(f"{name}@kreis.example", device=False)
        assert client.user_id is not None
        sessions[name] = E2ESession.for_client(
            client, DeviceKeys.generate(client.user_id, uuid.uuid4().hex)
        )
        await sessions[name].register_device(f"{name}-laptop")
    alice_e2e, bob_e2e = sessions["alice"], sessions["bob"]
    alices = alice_e2e.transport.client  # type: ignore[attr-defined]
    async with reading(alices) as (stream, _):
        alice_e2e.send_through(stream)
        no_http(alices, monkeypatch)
        first = await alice_e2e.send_text(cid, "Übergabe über den Stream")
        monkeypatch.undo()
        over_http = counting_http(alices, monkeypatch)
        alice_e2e.send_through(None)
        second = await alice_e2e.send_text(cid, "und wieder über HTTP", txn_id="t-http")
    assert over_http == ["t-http"] and second == first + 1
    texts: list[str] = []
    async with bob_e2e.transport.client.events() as bobs:  # type: ignore[attr-defined]
        while len(texts) < 2:
            for result in await bob_e2e.handle_event(await bobs.next()):
                if isinstance(result, DecryptedMessage):
                    texts.append(result.body)
    assert texts == ["Übergabe über den Stream", "und wieder über HTTP"]
