"""End-to-end encryption against a real messenger server (uvicorn on loopback; SQLite, and
PostgreSQL when MEDBRIDGE_TEST_PG is set; blob directory).

Several clients with E2ESession exchange texts and attachments in a group; a removed member
cannot read what follows; a dump of the database and the blob store holds none of the canary
texts or files; ciphertext changed, forged or replayed on the server is refused by the
receiving client.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from messenger_harness import Harness
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from messenger.client import EventStream, MessengerClient
from messenger.client.e2e import DecryptedMessage, E2EResult, E2ESession, RejectedMessage
from messenger.crypto import (
    DeviceKeys,
    OutboundSenderKey,
    ReplayError,
    SignatureError,
    TamperedError,
    Trust,
)
from messenger.store.models import Base, Event

NAMES = ("alice", "bob", "carol", "dave")


@dataclass
class Member:
    name: str
    client: MessengerClient
    session: E2ESession
    streams: list[EventStream]
    stream: EventStream | None = None
    results: list[E2EResult] = field(default_factory=list)
    raw: list[dict[str, object]] = field(default_factory=list)

    @property
    def user_id(self) -> str:
        return self.session.user_id

    def open_stream(self) -> None:
        self.stream = self.client.events()
        self.streams.append(self.stream)

    async def pump_until(self, done: Callable[[Member], bool], timeout: float = 20.0) -> None:
        """Feed stream events to the session until `done(self)`; fails after `timeout`."""
        assert self.stream is not None
        deadline = asyncio.get_running_loop().time() + timeout
        while not done(self):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"{self.name}: condition not reached; got {self.texts()}")
            event = await self.stream.next(timeout=left)
            self.raw.append(event)
            self.results.extend(await self.session.handle_event(event))

    def texts(self) -> list[str]:
        return [r.body for r in self.results if isinstance(r, DecryptedMessage)]

    def rejected(self) -> list[RejectedMessage]:
        return [r for r in self.results if isinstance(r, RejectedMessage)]


@pytest.fixture
async def members(msg: Harness) -> AsyncIterator[dict[str, Member]]:
    await msg.tenant("Kreisklinik", "klinik.example")
    out: dict[str, Member] = {}
    streams: list[EventStream] = []
    try:
        for name in NAMES:
            await msg.user(f"{name}@klinik.example")
            client = await msg.login(f"{name}@klinik.example", device=False)
            assert client.user_id is not None
            keys = DeviceKeys.generate(client.user_id, uuid.uuid4().hex)
            session = E2ESession.for_client(client, keys)
            await session.register_device(f"{name}-laptop")
            out[name] = Member(name, client, session, streams)
        yield out
    finally:
        for stream in streams:
            await stream.aclose()


async def make_group(members: dict[str, Member], name: str = "Station 3") -> str:
    alice = members["alice"]
    others = [m.user_id for n, m in members.items() if n != "alice"]
    conv = await alice.client.create_conversation("group", others, name=name)
    return str(conv["conversation_id"])


def has_texts(*wanted: str) -> Callable[[Member], bool]:
    return lambda m: all(w in m.texts() for w in wanted)


async def test_group_members_exchange_texts_and_attachments(members: dict[str, Member]) -> None:
    cid = await make_group(members)
    for m in members.values():
        m.open_stream()
    alice, bob = members["alice"], members["bob"]
    await alice.session.send_text(cid, "Übergabe 14 Uhr, Zimmer 12")
    await bob.session.send_text(cid, "Verstanden")
    voice = b"OggS" + bytes(range(256)) * 8
    await members["carol"].session.send_attachment(
        cid, voice, name="sprachnachricht.ogg", mime="audio/ogg", body="Sprachnachricht"
    )
    everything = has_texts("Übergabe 14 Uhr, Zimmer 12", "Verstanden", "Sprachnachricht")
    for m in members.values():
        await m.pump_until(everything)
        assert not m.rejected()
    dave = members["dave"]
    [voice_msg] = [r for r in dave.results if isinstance(r, DecryptedMessage) and r.attachment]
    assert voice_msg.attachment is not None
    assert (voice_msg.sender_user_id, voice_msg.attachment.mime) == (
        members["carol"].user_id,
        "audio/ogg",
    )
    assert await dave.session.fetch_attachment(voice_msg.attachment) == voice
    # the server's copy is ciphertext
    assert voice not in await dave.client.download(voice_msg.attachment.attachment_id)


async def test_removed_member_cannot_read_messages_sent_after_removal(
    members: dict[str, Member],
) -> None:
    cid = await make_group(members)
    for m in members.values():
        m.open_stream()
    alice, bob, carol = members["alice"], members["bob"], members["carol"]
    await alice.session.send_text(cid, "vor dem Austritt")
    await carol.pump_until(has_texts("vor dem Austritt"))

    await alice.client.remove_member(cid, carol.user_id)
    after_seq = await alice.session.send_text(cid, "nach dem Austritt")
    await bob.pump_until(has_texts("vor dem Austritt", "nach dem Austritt"))

    # Even if the server handed carol the new ciphertext, she holds no key for it.
    after = next(e for e in bob.raw if e.get("type") == "message" and e["seq"] == after_seq)
    assert await carol.session.handle_event(after) == []
    assert carol.session.waiting() == 1
    assert "nach dem Austritt" not in carol.texts()
    # and the server itself does not give her the message or the new key
    history = await carol.client.history(cid)
    assert all(int(e["seq"]) < int(after["seq"]) for e in history)


async def dump(msg: Harness) -> bytes:
    """Every row of every table (as the database returns it), the SQLite files with their WAL
    when on SQLite, and every file of the blob store."""
    parts: list[bytes] = []
    async with msg.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in await conn.execute(select(table)):
                for value in row:
                    parts.append(value if isinstance(value, bytes) else repr(value).encode())
    url = make_url(msg.database.url)
    if url.get_backend_name() == "sqlite" and url.database:
        db_file = Path(url.database)
        parts += [p.read_bytes() for p in db_file.parent.glob(db_file.name + "*")]
    blob_dir = msg.settings.blob_dir
    parts += [p.read_bytes() for p in blob_dir.rglob("*") if p.is_file()]
    return b"\n".join(parts)


def encodings(canary: bytes) -> list[bytes]:
    """The canary as it could appear: raw, hex (SQL dump), base64 at each alignment."""
    forms = [canary, canary.hex().encode(), canary.hex().upper().encode()]
    for shift in range(3):
        b64 = base64.b64encode(b"\x00" * shift + canary)[4 if shift else 0 :]
        forms.append(b64[4:-4])
    return forms


async def test_database_and_blob_store_hold_no_plaintext(
    msg: Harness, members: dict[str, Member]
) -> None:
    cid = await make_group(members, name="Leitstelle Kontrollname")
    for m in members.values():
        m.open_stream()
    canaries = [f"KANARIENVOGEL-TEXT-{uuid.uuid4().hex}" for _ in range(3)]
    file_canary = f"KANARIENVOGEL-DATEI-{uuid.uuid4().hex}".encode() * 20
    voice_canary = b"RIFF" + f"KANARIENVOGEL-STIMME-{uuid.uuid4().hex}".encode() * 20
    alice, bob = members["alice"], members["bob"]
    for text in canaries:
        await alice.session.send_text(cid, text)
    await bob.session.send_attachment(cid, file_canary, name="befund.pdf", mime="application/pdf")
    await bob.session.send_attachment(cid, voice_canary, name="memo.wav", mime="audio/wav")
    await members["dave"].pump_until(lambda m: len(m.texts()) == 5)
    assert set(canaries) <= set(members["dave"].texts())

    data = await dump(msg)
    # positive control: clear metadata is found, so the search does see the stored bytes
    assert b"Leitstelle Kontrollname" in data
    assert b"befund.pdf" not in data and b"memo.wav" not in data
    for canary in [*(c.encode() for c in canaries), file_canary[:60], voice_canary[4:64]]:
        for form in encodings(canary):
            assert form not in data, f"plaintext found in the server's storage: {form[:30]!r}"


async def _stored_ciphertext(msg: Harness, cid: str, seq: int) -> bytes:
    async with msg.engine.connect() as conn:
        value = await conn.scalar(
            select(Event.ciphertext).where(Event.conversation_id == cid, Event.seq == seq)
        )
    assert isinstance(value, bytes)
    return value


async def _tamper_row(msg: Harness, cid: str, seq: int, **changes: object) -> None:
    """What a compromised server does: rewrite a stored event behind the API's back."""
    async with msg.engine.begin() as conn:
        await conn.execute(
            update(Event).where(Event.conversation_id == cid, Event.seq == seq).values(**changes)
        )


async def test_ciphertext_changed_forged_or_replayed_on_the_server_is_refused(
    msg: Harness, members: dict[str, Member]
) -> None:
    cid = await make_group(members)
    alice, bob, dave = members["alice"], members["bob"], members["dave"]
    await alice.session.send_text(cid, "Medikation: 5 mg")
    seq_tampered = await alice.session.send_text(cid, "Medikation: 50 mg")
    await alice.session.send_text(cid, "Ende der Liste")

    # dave, a member, learns alice's chain key from his copy and forges message 3 in her name
    dave.open_stream()
    await dave.pump_until(has_texts("Ende der Liste"))
    [held] = [
        k
        for k in json.loads(dave.session.export_state())["inbound"]
        if k["sender"][0] == alice.user_id
    ]
    assert held["iteration"] == 3  # dave's copy of alice's chain, after her three messages
    chain = OutboundSenderKey(
        cid,
        base64.b64decode(held["key_id"]),
        base64.b64decode(held["chain_key"]),
        held["iteration"],
        held["created_at"],
    )
    impostor = DeviceKeys(alice.user_id, alice.session.device_id, b"\x07" * 32, b"\x08" * 32)
    forged = chain.encrypt(impostor, b'{"type": "text", "body": "Medikation: 500 mg"}')
    forged_seq = (await dave.client.send_raw(cid, forged)).seq
    first = next(e for e in dave.raw if e.get("type") == "message")
    replay_seq = (await dave.client.send_raw(cid, base64.b64decode(str(first["ciphertext"])))).seq

    # the compromised server flips a ciphertext byte and attributes dave's post to alice
    flipped = bytearray(await _stored_ciphertext(msg, cid, seq_tampered))
    flipped[-80] ^= 0x01
    await _tamper_row(msg, cid, seq_tampered, ciphertext=bytes(flipped))
    for seq in (forged_seq, replay_seq):
        await _tamper_row(
            msg,
            cid,
            seq,
            sender_user_id=alice.user_id,
            sender_device_id=alice.session.device_id,
        )

    bob.open_stream()
    await bob.pump_until(lambda m: len(m.texts()) + len(m.rejected()) >= 5)
    assert bob.texts() == ["Medikation: 5 mg", "Ende der Liste"]
    by_seq = {r.seq: r.error for r in bob.rejected()}
    assert isinstance(by_seq[seq_tampered], TamperedError)
    assert isinstance(by_seq[forged_seq], SignatureError)
    assert isinstance(by_seq[replay_seq], ReplayError)


async def test_new_device_of_a_member_reads_what_is_sent_after_it_registered(
    msg: Harness, members: dict[str, Member]
) -> None:
    cid = await make_group(members)
    alice, bob = members["alice"], members["bob"]
    alice.open_stream()
    await alice.pump_until(lambda m: any(e.get("type") == "synced" for e in m.raw))
    await alice.session.send_text(cid, "an das alte Gerät")

    client = await msg.login("bob@klinik.example", device=False)
    assert client.user_id == bob.user_id
    phone = Member(
        "bob-phone",
        client,
        E2ESession.for_client(client, DeviceKeys.generate(bob.user_id, uuid.uuid4().hex)),
        alice.streams,
    )
    await phone.session.register_device("bob-phone")
    trust = {t.device_id: t.trust for t in await alice.session.device_trust(bob.user_id)}
    assert trust == {bob.session.device_id: Trust.OWNER, phone.session.device_id: Trust.UNVERIFIED}
    await alice.session.send_text(cid, "nur an das bestätigte Gerät")
    # the laptop, which holds bob's master key, approves the phone (after comparing fingerprints)
    await bob.session.approve_device(phone.session.device_id)
    await alice.pump_until(lambda m: sum(e.get("type") == "device_list" for e in m.raw) >= 2)
    await alice.session.send_text(cid, "an beide Geräte")

    phone.open_stream()
    await phone.pump_until(has_texts("an beide Geräte"))
    assert "an das alte Gerät" not in phone.texts()  # sent before the device existed
    assert "nur an das bestätigte Gerät" not in phone.texts()  # sent before it was approved
    bob.open_stream()
    await bob.pump_until(has_texts("an das alte Gerät", "an beide Geräte"))


async def test_repeated_txn_id_stores_one_message_with_its_buttons(
    members: dict[str, Member],
) -> None:
    cid = await make_group(members)
    alice, bob = members["alice"], members["bob"]
    bob.open_stream()
    buttons = [{"label": "Zusagen", "reply": "accept #1"}]
    first = await alice.session.send_text(cid, "Termin 9 Uhr", txn_id="notify-1", actions=buttons)
    # A sender that crashed before it learnt the result sends again, freshly encrypted.
    again = await alice.session.send_text(cid, "Termin 9 Uhr", txn_id="notify-1", actions=buttons)
    assert again == first
    await bob.pump_until(has_texts("Termin 9 Uhr"))
    [message] = [r for r in bob.results if isinstance(r, DecryptedMessage)]
    assert message.actions == (("Zusagen", "accept #1"),)
    history = await bob.client.history(cid)
    assert [e["seq"] for e in history if e.get("type") == "message"] == [first]
