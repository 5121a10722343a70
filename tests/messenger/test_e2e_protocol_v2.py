"""Protocol v2 over the real server: prekeys claimed once each, cross-signing and its recovery
path, signed membership changes, and the removal race closed by the server's membership check."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from messenger_harness import Harness

from messenger.client import (
    Conflict,
    EventStream,
    Forbidden,
    MembershipChanged,
    MessengerClient,
    NotFound,
)
from messenger.client.e2e import (
    ClientTransport,
    DecryptedMessage,
    E2EResult,
    E2ESession,
    MembershipChange,
    Roster,
    UndecryptableMessage,
)
from messenger.crypto import DeviceKeys, Trust


@dataclass
class Device:
    client: MessengerClient
    session: E2ESession
    stream: EventStream | None = None
    results: list[E2EResult] = field(default_factory=list)

    def texts(self) -> list[str]:
        return [r.body for r in self.results if isinstance(r, DecryptedMessage)]

    async def pump_until(self, done: Callable[[Device], bool], timeout: float = 60.0) -> None:
        if self.stream is None:
            self.stream = self.client.events()
        deadline = asyncio.get_running_loop().time() + timeout
        while not done(self):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"not reached; got {self.results}")
            self.results.extend(await self.session.handle_event(await self.stream.next(left)))


async def device(msg: Harness, email: str, *, new_user: bool = True, **kw: Any) -> Device:
    if new_user:
        await msg.user(email, role=kw.pop("role", "user"))
    client = await msg.login(email, device=False)
    assert client.user_id is not None
    session = E2ESession.for_client(client, DeviceKeys.generate(client.user_id, uuid.uuid4().hex))
    await session.register_device(email)
    return Device(client, session)


class RefusalsKept(ClientTransport):
    """Keeps each refusal (MembershipChanged) the server answered a send with."""

    def __init__(self, client: MessengerClient) -> None:
        super().__init__(client)
        self.refused: list[MembershipChanged] = []

    async def send_message(self, conversation_id: str, **kw: Any) -> int:
        try:
            return await super().send_message(conversation_id, **kw)
        except MembershipChanged as exc:
            self.refused.append(exc)
            raise


def reloaded(device: Device, transport: ClientTransport, tmp_path: Path) -> E2ESession:
    """The device's E2E session, saved and loaded again over another transport."""
    state = tmp_path / f"{device.session.device_id}.state"
    device.session.save_state(state)
    return E2ESession.load_state(transport, device.session.keys, state)


@pytest.fixture
async def ward(msg: Harness) -> AsyncIterator[dict[str, Device]]:
    await msg.tenant("Kreisklinik", "klinik.example")
    devices = {
        name: await device(msg, f"{name}@klinik.example") for name in ("alice", "bob", "carol")
    }
    try:
        yield devices
    finally:
        for d in devices.values():
            if d.stream is not None:
                await d.stream.aclose()


async def test_each_one_time_prekey_is_handed_out_once_under_concurrent_claims(
    msg: Harness, ward: dict[str, Device]
) -> None:
    bob = ward["bob"].session
    address = (bob.user_id, bob.device_id)
    published = await ward["bob"].client.prekey_count(bob.device_id)
    assert published >= 25
    claimers = [ward["alice"].client, ward["carol"].client]
    claims = await asyncio.gather(
        *(claimers[i % 2].claim_prekeys([address]) for i in range(published + 5))
    )
    one_time = [b[0]["one_time_prekey"] for b in claims]
    handed = [k["key_id"] for k in one_time if k is not None]
    assert len(handed) == len(set(handed)) == published  # every key once, none twice
    assert one_time.count(None) == 5  # then bundles carry the signed prekey alone
    assert await ward["bob"].client.prekey_count(bob.device_id) == 0
    # the owner publishes more when it next syncs
    await bob.handle_event({"type": "synced"})
    assert await ward["bob"].client.prekey_count(bob.device_id) >= 25


async def test_keys_are_published_and_approved_only_by_whom_they_belong_to(
    msg: Harness, ward: dict[str, Device]
) -> None:
    alice, bob = ward["alice"], ward["bob"]
    bob_device = bob.session.device_id
    with pytest.raises(NotFound):
        await alice.client.publish_prekeys(bob_device, one_time_prekeys=[])
    with pytest.raises(Forbidden):
        await alice.client.approve_device(bob.session.user_id, bob_device, bytes(64))
    with pytest.raises(Conflict):  # a stolen password cannot swap the master key
        await bob.client.publish_master_key(bytes(range(32)), bytes(64))


async def test_a_new_device_is_trusted_only_after_approval_and_admins_approve_visibly(
    msg: Harness, ward: dict[str, Device]
) -> None:
    alice, bob = ward["alice"], ward["bob"]
    cid = (await alice.client.create_conversation("group", [bob.session.user_id]))[
        "conversation_id"
    ]
    phone = await device(msg, "bob@klinik.example", new_user=False)
    trusts = await alice.session.device_trust(bob.session.user_id)
    assert {t.device_id: t.trust for t in trusts}[phone.session.device_id] is Trust.UNVERIFIED
    await alice.session.send_text(cid, "nicht für das Telefon")

    # bob lost the laptop: the tenant administrator approves the phone (recovery path)
    admin = await device(msg, "admin@klinik.example", role="tenant_admin")
    await admin.session.approve_device_as_admin(bob.session.user_id, phone.session.device_id)
    trust = {
        t.device_id: (t.trust, t.approved_by)
        for t in await alice.session.device_trust(bob.session.user_id)
    }
    assert trust[phone.session.device_id] == (Trust.ADMIN, admin.session.user_id)
    await alice.session.send_text(cid, "für das Telefon")
    await phone.pump_until(lambda d: "für das Telefon" in d.texts())
    assert "nicht für das Telefon" not in phone.texts()
    assert not phone.session.holds_master_key


async def test_removal_race_the_server_refuses_a_message_prepared_before_a_removal(
    ward: dict[str, Device], tmp_path: Path
) -> None:
    alice, bob, carol = ward["alice"], ward["bob"], ward["carol"]
    members = [bob.session.user_id, carol.session.user_id]
    cid = (await alice.client.create_conversation("group", members))["conversation_id"]
    await alice.session.send_text(cid, "vorher")
    await carol.pump_until(lambda d: "vorher" in d.texts())

    class Racing(RefusalsKept):
        """Alice (group admin) removes carol from another device of hers after the key for
        the next message was shared, before the message reaches the server."""

        raced = False

        async def send_message(self, conversation_id: str, **kw: Any) -> int:
            if not self.raced:
                self.raced = True
                await ward["alice"].client.remove_member(conversation_id, carol.session.user_id)
            return await super().send_message(conversation_id, **kw)

    racing = Racing(alice.client)
    seq = await reloaded(alice, racing, tmp_path).send_text(cid, "nach der Entfernung")
    assert len(racing.refused) == 1  # the first attempt, under the key carol holds, was refused
    await bob.pump_until(lambda d: "nach der Entfernung" in d.texts())
    history = await alice.client.history(cid)
    assert [e["seq"] for e in history if e["type"] == "message"][-1] == seq
    # a server handing carol the stored message anyway: she holds no key for it
    [stored] = [e for e in history if e.get("seq") == seq]
    assert await carol.session.handle_event({**stored, "type": "message"}) == []
    assert carol.session.waiting() == 1
    assert [type(r) for r in await carol.session.request_missing_keys()] == [UndecryptableMessage]


async def test_a_sender_reads_the_members_once_and_a_change_it_missed_costs_one_refusal(
    ward: dict[str, Device], tmp_path: Path
) -> None:
    """The member list is read once, not per send (a group's list runs to 1,250 entries);
    the server's membership check catches a change the sender has not seen, and the message
    then reaches the new member too."""
    alice, bob, carol = ward["alice"], ward["bob"], ward["carol"]
    cid = (await alice.client.create_conversation("group", [bob.session.user_id]))[
        "conversation_id"
    ]
    reads: list[str] = []

    class Counting(RefusalsKept):
        async def conversation_roster(self, conversation_id: str) -> Roster:
            reads.append(conversation_id)
            return await super().conversation_roster(conversation_id)

    counting = Counting(alice.client)
    sender = reloaded(alice, counting, tmp_path)
    for text in ("eins", "zwei", "drei"):
        await sender.send_text(cid, text)
    assert reads == [cid] and counting.refused == []

    await alice.client.add_members(cid, [carol.session.user_id])  # the sender reads no stream
    await sender.send_text(cid, "vier")
    assert len(counting.refused) == 1 and reads == [cid, cid]
    await carol.pump_until(lambda d: "vier" in d.texts())
    await bob.pump_until(lambda d: d.texts() == ["eins", "zwei", "drei", "vier"])


async def test_an_addition_signed_after_an_older_change_is_refused_and_leaves_no_trace(
    ward: dict[str, Device],
) -> None:
    alice, bob, carol = ward["alice"], ward["bob"], ward["carol"]
    carol_id = carol.session.user_id
    cid = (await alice.client.create_conversation("group", [bob.session.user_id]))[
        "conversation_id"
    ]
    seen = (await alice.client.conversation(cid))["membership_seq"]
    await alice.client.add_members(cid, [carol_id])  # a change after the one alice saw
    await alice.client.remove_member(cid, carol_id)
    before = await alice.client.conversation(cid)
    stale = {
        "device_id": alice.session.device_id,
        "after_seq": seen,
        "signatures": {carol_id: base64.b64encode(bytes(64)).decode()},
    }
    with pytest.raises(MembershipChanged):
        await alice.client.add_members(cid, [carol_id], signed=stale)
    after = await alice.client.conversation(cid)
    assert carol_id not in {m["user_id"] for m in after["members"]}
    assert (after["last_seq"], after["membership_seq"]) == (
        before["last_seq"],
        before["membership_seq"],
    )  # no number taken: the sequence stays gap-free
    current = {**stale, "after_seq": before["membership_seq"]}
    added = await alice.client.add_members(cid, [carol_id], signed=current)
    assert added["added"] == [carol_id] and added["last_seq"] == before["last_seq"] + 1


async def test_membership_changes_arrive_signed_by_the_member_who_made_them(
    msg: Harness, ward: dict[str, Device]
) -> None:
    alice, bob, carol = ward["alice"], ward["bob"], ward["carol"]
    cid = (await alice.client.create_conversation("group", [bob.session.user_id]))[
        "conversation_id"
    ]
    await alice.session.add_members(cid, [carol.session.user_id])
    await alice.session.remove_member(cid, carol.session.user_id)
    await alice.client.add_members(cid, [carol.session.user_id])  # made without a signature
    await bob.pump_until(lambda d: sum(isinstance(r, MembershipChange) for r in d.results) >= 4)
    changes = [
        (r.action, r.user_id == carol.session.user_id, r.verified)
        for r in bob.results
        if isinstance(r, MembershipChange)
    ]
    assert changes[-3:] == [("added", True, True), ("removed", True, True), ("added", True, False)]
    with pytest.raises(MembershipChanged):  # a send based on an older membership is refused
        await alice.client.send_raw(cid, b"x", membership_seq=0)
