"""A client back from a long absence reads everything, against a real server on loopback.

The replay gives sender keys before the messages they open, so a small hold is enough; a message
whose key never came is reported as undecryptable and read once the sender re-shares the key on
request; a full hold is reported and the saved stream position never passes what it did not keep.
A message the server withholds shows as a gap in its sender's chain.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from messenger_harness import Harness
from sqlalchemy import delete

from messenger.client import EventStream, MessengerClient
from messenger.client.e2e import (
    DecryptedMessage,
    E2EResult,
    E2ESession,
    HoldFull,
    MessageGap,
    RejectedMessage,
    UndecryptableMessage,
)
from messenger.crypto import DeviceKeys
from messenger.store.models import Event, ToDevice


@dataclass
class Device:
    client: MessengerClient
    session: E2ESession
    stream: EventStream | None = None
    results: list[E2EResult] = field(default_factory=list)
    raw: list[dict[str, object]] = field(default_factory=list)

    def open_stream(self) -> EventStream:
        self.stream = self.client.events()
        return self.stream

    def of(self, kind: type) -> list[E2EResult]:
        return [r for r in self.results if isinstance(r, kind)]

    def texts(self) -> list[str]:
        return [r.body for r in self.results if isinstance(r, DecryptedMessage)]

    async def pump_until(self, done: Callable[[Device], bool], timeout: float = 60.0) -> None:
        assert self.stream is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while not done(self):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"not reached; got {len(self.texts())} texts")
            event = await self.stream.next(left)
            self.raw.append(event)
            self.results.extend(await self.session.handle_event(event))


async def device(msg: Harness, email: str, max_pending: int = 10_000) -> Device:
    await msg.user(email)
    client = await msg.login(email, device=False)
    assert client.user_id is not None
    keys = DeviceKeys.generate(client.user_id, uuid.uuid4().hex)
    session = E2ESession.for_client(client, keys, max_pending=max_pending)
    await session.register_device(email)
    return Device(client, session)


@pytest.fixture
async def pair(msg: Harness) -> AsyncIterator[tuple[Device, Device, str]]:
    """alice and bob in a group; bob is offline (no stream) until the test opens his."""
    await msg.tenant("Kreisklinik", "klinik.example")
    alice = await device(msg, "alice@klinik.example")
    bob = await device(msg, "bob@klinik.example", max_pending=5)
    conv = await alice.client.create_conversation("group", [bob.session.user_id], name="Station")
    try:
        yield alice, bob, str(conv["conversation_id"])
    finally:
        for d in (alice, bob):
            if d.stream is not None:
                await d.stream.aclose()


async def lose_to_device(msg: Harness, device_id: str) -> None:
    """The key distributions waiting for a device vanish (as if never delivered)."""
    async with msg.engine.begin() as conn:
        await conn.execute(delete(ToDevice).where(ToDevice.device_id == device_id))


def synced_and(texts: list[str]) -> Callable[[Device], bool]:
    return lambda d: d.texts() == texts


async def test_after_a_long_absence_every_message_is_readable(
    pair: tuple[Device, Device, str],
) -> None:
    alice, bob, cid = pair
    sent = [f"Befund {i}" for i in range(120)]  # two sender keys, 24 times bob's hold of 5
    for text in sent:
        await alice.session.send_text(cid, text)
    bob.open_stream()
    await bob.pump_until(lambda d: any(e["type"] == "synced" for e in d.raw))
    assert bob.texts() == sent
    assert bob.session.waiting() == 0
    assert not bob.of(RejectedMessage) and not bob.of(UndecryptableMessage)
    assert not bob.of(HoldFull)


async def test_a_message_whose_key_never_came_is_reported_then_read_after_a_key_request(
    msg: Harness, pair: tuple[Device, Device, str]
) -> None:
    alice, bob, cid = pair
    seqs = [await alice.session.send_text(cid, t) for t in ("Labor", "Röntgen")]
    await lose_to_device(msg, bob.session.device_id)
    bob.open_stream()
    await bob.pump_until(lambda d: len(d.of(UndecryptableMessage)) == 2)
    assert [r.seq for r in bob.of(UndecryptableMessage)] == seqs
    assert bob.texts() == [] and bob.session.waiting() == 2

    alice.open_stream()  # alice's device answers bob's key request
    answered = asyncio.create_task(alice.pump_until(lambda d: False, timeout=30))
    try:
        await bob.pump_until(synced_and(["Labor", "Röntgen"]), timeout=30)
    finally:
        answered.cancel()
    assert bob.session.waiting() == 0 and not bob.of(RejectedMessage)


async def test_a_key_request_from_a_removed_member_is_not_answered(
    msg: Harness, pair: tuple[Device, Device, str]
) -> None:
    alice, bob, cid = pair
    await alice.session.send_text(cid, "vor dem Austritt")
    await lose_to_device(msg, bob.session.device_id)
    bob.open_stream()
    await bob.pump_until(lambda d: len(d.of(UndecryptableMessage)) == 1)
    await alice.client.remove_member(cid, bob.session.user_id)  # before alice reads the request
    alice.open_stream()
    await alice.pump_until(lambda d: any(e["type"] == "to_device" for e in d.raw))  # the request
    answered = asyncio.create_task(alice.pump_until(lambda d: False, timeout=30))
    try:
        with pytest.raises(TimeoutError):
            await bob.pump_until(lambda d: bool(d.texts()), timeout=3)
    finally:
        answered.cancel()
    assert bob.session.waiting() == 1 and bob.texts() == []


async def test_a_full_hold_is_reported_and_the_saved_position_stays_before_it(
    msg: Harness, pair: tuple[Device, Device, str]
) -> None:
    alice, bob, cid = pair
    texts = [f"Visite {i}" for i in range(8)]
    seqs = [await alice.session.send_text(cid, t) for t in texts]
    await lose_to_device(msg, bob.session.device_id)
    stream = bob.open_stream()
    await bob.pump_until(lambda d: len(d.of(UndecryptableMessage)) == 5)
    assert bob.of(HoldFull) == [HoldFull(cid, seqs[5])]
    saved = bob.session.safe_cursors(bob.client.cursors)
    assert saved.conversations[cid] == seqs[5] - 1
    assert bob.client.cursors.conversations[cid] == seqs[-1]  # the stream itself went on

    alice.open_stream()
    answered = asyncio.create_task(alice.pump_until(lambda d: False, timeout=30))
    try:
        await bob.pump_until(synced_and(texts[:5]), timeout=30)
        bob.client.cursors = bob.session.rewind(bob.client.cursors)
        await stream.drop()  # reconnect from the saved position: the rest comes again
        await bob.pump_until(synced_and(texts), timeout=30)
    finally:
        answered.cancel()
    assert not bob.of(RejectedMessage)
    assert bob.session.safe_cursors(bob.client.cursors).conversations[cid] == seqs[-1]


async def test_a_message_the_server_withholds_is_reported_as_a_gap(
    msg: Harness, pair: tuple[Device, Device, str]
) -> None:
    alice, bob, cid = pair
    seqs = [await alice.session.send_text(cid, t) for t in ("eins", "zwei", "drei")]
    async with msg.engine.begin() as conn:
        await conn.execute(delete(Event).where(Event.conversation_id == cid, Event.seq == seqs[1]))
    bob.open_stream()
    await bob.pump_until(synced_and(["eins", "drei"]))
    [gap] = bob.of(MessageGap)
    assert (gap.seq, gap.sender_user_id, gap.missing) == (seqs[2], alice.session.user_id, (1,))
    assert all(isinstance(r, DecryptedMessage) and r.sent_at_ms for r in bob.of(DecryptedMessage))
