"""End-to-end encryption against a real messenger server (uvicorn on loopback, SQLite, blob dir).

Several clients with E2ESession exchange texts and attachments in a group; a removed member
cannot read what follows; a dump of the database and the blob store holds none of the canary
texts or files; ciphertext changed or forged on the server is refused by the receiving client.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn

from messenger.client import EventStream, MessengerClient
from messenger.client.e2e import DecryptedMessage, E2EResult, E2ESession, RejectedMessage
from messenger.crypto import (
    DeviceKeys,
    OutboundSenderKey,
    SenderKeyDistribution,
    SignatureError,
    TamperedError,
    decrypt_pairwise,
    parse_header,
)
from messenger.server.app import create_app
from messenger.server.auth import make_hasher
from messenger.server.config import Argon2Params, ServerSettings
from messenger.store import repo
from messenger.store.engine import make_engine, sessionmaker

PASSWORD = "Dienstplan-2026!"
ARGON2 = Argon2Params(time_cost=1, memory_cost=8, parallelism=1)
NAMES = ("alice", "bob", "carol", "dave")


@dataclass
class Server:
    url: str
    db_path: Path
    blob_dir: Path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    db_path, blob_dir = tmp_path / "messenger.db", tmp_path / "blobs"
    settings = ServerSettings(database_url=f"sqlite:///{db_path}", blob_dir=blob_dir, argon2=ARGON2)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("messenger server did not start")
        time.sleep(0.02)
    try:
        yield Server(f"http://127.0.0.1:{port}", db_path, blob_dir)
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
        sock.close()


async def seed_users(server: Server) -> None:
    engine = make_engine(f"sqlite:///{server.db_path}")
    hasher = make_hasher(ARGON2)
    try:
        async with sessionmaker(engine)() as db:
            now = dt.datetime.now(dt.UTC)
            tenant = await repo.create_tenant(db, "Kreisklinik", now)
            await repo.add_domain(db, tenant, "klinik.example")
            for name in NAMES:
                await repo.create_user(
                    db, f"{name}@klinik.example", now, password_hash=hasher.hash(PASSWORD)
                )
            await db.commit()
    finally:
        await engine.dispose()


@dataclass
class Member:
    name: str
    client: MessengerClient
    session: E2ESession
    stream: EventStream | None = None
    results: list[E2EResult] = field(default_factory=list)
    raw: list[dict[str, object]] = field(default_factory=list)

    @property
    def user_id(self) -> str:
        return self.session.user_id

    def open_stream(self) -> None:
        self.stream = self.client.events()

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
async def members(server: Server) -> AsyncIterator[dict[str, Member]]:
    await seed_users(server)
    out: dict[str, Member] = {}
    try:
        for name in NAMES:
            client = MessengerClient(server.url)
            await client.login(f"{name}@klinik.example", PASSWORD)
            assert client.user_id is not None
            keys = DeviceKeys.generate(client.user_id, uuid.uuid4().hex)
            session = E2ESession.for_client(client, keys)
            await session.register_device(f"{name}-laptop")
            out[name] = Member(name, client, session)
        yield out
    finally:
        for m in out.values():
            if m.stream is not None:
                await m.stream.aclose()
            await m.client.aclose()


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


def dump(server: Server) -> bytes:
    """Every byte the server persisted: SQLite files (+ WAL), a SQL dump, and all blobs."""
    parts = [p.read_bytes() for p in server.db_path.parent.glob(server.db_path.name + "*")]
    con = sqlite3.connect(server.db_path)
    try:
        parts.append("\n".join(con.iterdump()).encode())
    finally:
        con.close()
    parts += [p.read_bytes() for p in server.blob_dir.rglob("*") if p.is_file()]
    return b"\n".join(parts)


def encodings(canary: bytes) -> list[bytes]:
    """The canary as it could appear: raw, hex (SQL dump), base64 at each alignment."""
    forms = [canary, canary.hex().encode(), canary.hex().upper().encode()]
    for shift in range(3):
        b64 = base64.b64encode(b"\x00" * shift + canary)[4 if shift else 0 :]
        forms.append(b64[4:-4])
    return forms


async def test_database_and_blob_store_hold_no_plaintext(
    server: Server, members: dict[str, Member]
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

    data = dump(server)
    # positive control: clear metadata is found, so the search does see the stored bytes
    assert b"Leitstelle Kontrollname" in data
    assert b"befund.pdf" not in data and b"memo.wav" not in data
    for canary in [*(c.encode() for c in canaries), file_canary[:60], voice_canary[4:64]]:
        for form in encodings(canary):
            assert form not in data, f"plaintext found in the server's storage: {form[:30]!r}"


def _tamper_row(server: Server, cid: str, seq: int, **changes: object) -> None:
    con = sqlite3.connect(server.db_path)
    try:
        for column, value in changes.items():
            con.execute(
                f"UPDATE events SET {column} = ? WHERE conversation_id = ? AND seq = ?",
                (value, cid, seq),
            )
        con.commit()
    finally:
        con.close()


async def test_ciphertext_changed_or_forged_on_the_server_is_refused(
    server: Server, members: dict[str, Member]
) -> None:
    cid = await make_group(members)
    alice, bob, dave = members["alice"], members["bob"], members["dave"]
    await alice.session.send_text(cid, "Medikation: 5 mg")
    seq_tampered = await alice.session.send_text(cid, "Medikation: 50 mg")
    await alice.session.send_text(cid, "Ende der Liste")

    # dave, a member, learns alice's chain key from his copy and forges message 3 in her name
    dave.open_stream()
    await dave.pump_until(has_texts("Ende der Liste"))
    to_dave = next(e for e in dave.raw if e.get("type") == "to_device")
    envelope = base64.b64decode(str(to_dave["ciphertext"]))
    assert parse_header(envelope).sender_user == alice.user_id
    _, dist_bytes = decrypt_pairwise(dave.session.keys, alice.session.keys.identity(), envelope)
    dist = SenderKeyDistribution.from_bytes(dist_bytes)
    chain = OutboundSenderKey(cid, dist.key_id, dist.chain_key, dist.iteration, dist.created_at)
    for _ in range(3):
        chain.encrypt(dave.session.keys, b"")  # advance to position 3
    impostor = DeviceKeys(alice.user_id, alice.session.device_id, b"\x07" * 32, b"\x08" * 32)
    forged = chain.encrypt(impostor, b'{"type": "text", "body": "Medikation: 500 mg"}')
    forged_seq = (await dave.client.send_raw(cid, forged)).seq

    # the compromised server flips a ciphertext byte and attributes dave's post to alice
    con = sqlite3.connect(server.db_path)
    (ct,) = con.execute(
        "SELECT ciphertext FROM events WHERE conversation_id = ? AND seq = ?",
        (cid, seq_tampered),
    ).fetchone()
    con.close()
    flipped = bytearray(ct)
    flipped[-80] ^= 0x01
    _tamper_row(server, cid, seq_tampered, ciphertext=bytes(flipped))
    _tamper_row(
        server,
        cid,
        forged_seq,
        sender_user_id=alice.user_id,
        sender_device_id=alice.session.device_id,
    )

    bob.open_stream()
    await bob.pump_until(lambda m: len(m.texts()) + len(m.rejected()) >= 4)
    assert bob.texts() == ["Medikation: 5 mg", "Ende der Liste"]
    by_seq = {r.seq: r.error for r in bob.rejected()}
    assert isinstance(by_seq[seq_tampered], TamperedError)
    assert isinstance(by_seq[forged_seq], SignatureError)
