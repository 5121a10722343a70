"""E2ESession's protocol logic over an in-memory router (fast; no server)."""

from __future__ import annotations

import asyncio
import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from messenger.client.e2e import (
    DecryptedMessage,
    DeviceRecord,
    E2EResult,
    E2ESession,
    MembershipChange,
    RejectedMessage,
)
from messenger.crypto import (
    MAX_KEY_AGE_SECONDS,
    DeviceKeys,
    KeyStoreError,
    MalformedError,
    OutboundSenderKey,
    PairwiseChannel,
    PolicyError,
    PrekeyStore,
    RatchetChannel,
    ReplayError,
    SenderKeyDistribution,
    SenderKeyStore,
    TamperedError,
    Trust,
    audit_public_key,
    new_audit_secret,
    open_audit_seal,
    parse_ratchet_envelope,
)
from tests.crypto.hub import Hub, HubTransport


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def client(hub: Hub, user: str, device: str = "D1", **kw: Any) -> E2ESession:
    s = E2ESession(HubTransport(hub, user, device), DeviceKeys.generate(user, device), **kw)
    await s.register_device(device)
    return s


async def pump(*sessions: E2ESession) -> dict[str, list[E2EResult]]:
    """Deliver every queued event until all inboxes are empty."""
    out: dict[str, list[E2EResult]] = {f"{s.user_id}/{s.device_id}": [] for s in sessions}
    hub = sessions[0].transport.hub  # type: ignore[attr-defined]
    busy = True
    while busy:
        busy = False
        for s in sessions:
            for ev in hub.take(s.user_id, s.device_id):
                busy = True
                out[f"{s.user_id}/{s.device_id}"] += await s.handle_event(ev)
    return out


def texts(results: list[E2EResult]) -> list[str]:
    return [r.body for r in results if isinstance(r, DecryptedMessage)]


async def test_group_members_read_each_other_and_own_other_device_once_approved() -> None:
    hub = Hub(members={"c": ["alice", "bob", "carol"]})
    a, a2, b, c = (
        await client(hub, "alice"),
        await client(hub, "alice", "D2"),  # logged in with the password only
        await client(hub, "bob"),
        await client(hub, "carol"),
    )
    trust = await b.device_trust("alice")
    assert [(t.device_id, t.trust) for t in trust] == [
        ("D1", Trust.OWNER),
        ("D2", Trust.UNVERIFIED),
    ]
    await a.send_text("c", "hallo")
    got = await pump(a, a2, b, c)
    assert texts(got["carol/D1"]) == ["hallo"]
    assert texts(got["alice/D2"]) == []  # no group key for a device nobody approved
    with pytest.raises(PolicyError):
        await a2.approve_device("D2")  # the new device cannot approve itself
    await a.approve_device("D2")
    for s in (a, b, c):
        await s.handle_event({"type": "device_list", "user_id": "alice"})
    await a.send_text("c", "wieder da")
    await b.send_text("c", "servus")
    got = await pump(a, a2, b, c)
    assert texts(got["carol/D1"]) == ["wieder da", "servus"]
    assert texts(got["alice/D2"]) == ["wieder da", "servus"]
    assert texts(got["alice/D1"]) == ["wieder da", "servus"]  # own message read back once
    assert (await c.device_trust("alice"))[1].trust is Trust.OWNER


async def test_a_tenant_admin_approves_a_device_of_a_user_who_lost_every_device() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    admin, a, b = await client(hub, "admin"), await client(hub, "alice"), await client(hub, "bob")
    del a  # alice's only device is lost with her master key
    hub.devices["alice"] = []
    a_new = await client(hub, "alice", "D9")
    assert not a_new.holds_master_key
    await admin.approve_device_as_admin("alice", "D9")
    [trust] = await b.device_trust("alice")
    assert (trust.trust, trust.approved_by) == (Trust.ADMIN, "admin")  # shown to contacts
    await b.send_text("c", "für das neue Gerät")
    assert texts((await pump(a_new, b))["alice/D9"]) == ["für das neue Gerät"]


async def test_message_arriving_before_its_sender_key_waits_then_decrypts() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, b = await client(hub, "alice"), await client(hub, "bob")
    await a.send_text("c", "first")
    events = hub.take("bob", "D1")
    to_device = [e for e in events if e["type"] == "to_device"]
    message = [e for e in events if e["type"] == "message"]
    assert await b.handle_event(message[0]) == []
    assert b.waiting() == 1
    assert texts(await b.handle_event(to_device[0])) == ["first"]
    assert b.waiting() == 0


async def test_removed_member_gets_no_new_key_and_cannot_read() -> None:
    hub = Hub(members={"c": ["alice", "bob", "carol"]})
    a, b, c = await client(hub, "alice"), await client(hub, "bob"), await client(hub, "carol")
    await a.send_text("c", "before")
    await pump(a, b, c)
    hub.remove_member("c", "carol")
    await pump(a, b, c)
    # a hostile server still hands carol the ciphertext: she holds no key for it
    await a.send_text("c", "after")
    msg = next(e for e in hub.inbox[("bob", "D1")] if e["type"] == "message")
    assert await c.handle_event(msg) == []
    assert c.waiting() == 1
    assert texts((await pump(a, b, c))["bob/D1"]) == ["after"]


async def test_rotation_after_a_removal_whose_event_the_sender_has_not_handled() -> None:
    """The sender keeps the member list between sends; the server refuses a message prepared
    before a removal it stored (membership_seq), and the message goes again under a new key
    for the members left."""
    hub = Hub(members={"c": ["alice", "bob", "carol"]})
    a, b, c = await client(hub, "alice"), await client(hub, "bob"), await client(hub, "carol")
    await a.send_text("c", "one")
    await pump(a, b, c)
    hub.remove_member("c", "carol")  # alice has not handled the event
    hub.take("carol", "D1")  # carol's copy of it
    await a.send_text("c", "two")
    msg = next(e for e in hub.inbox[("bob", "D1")] if e["type"] == "message")
    assert hub.take("carol", "D1") == []  # neither the message nor a key reached carol
    assert await c.handle_event(msg) == []  # handed over anyway: no key to read it
    assert c.waiting() == 1
    assert texts((await pump(a, b))["bob/D1"]) == ["two"]


async def test_sender_key_rotates_after_seven_days() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    clock = Clock()
    a, b = await client(hub, "alice", clock=clock), await client(hub, "bob")
    await a.send_text("c", "monday")
    clock.now += MAX_KEY_AGE_SECONDS
    await a.send_text("c", "next monday")
    events = hub.take("bob", "D1")
    assert sum(e["type"] == "to_device" for e in events) == 2
    hub.inbox[("bob", "D1")] = events
    assert texts((await pump(a, b))["bob/D1"]) == ["monday", "next monday"]


async def test_sender_key_rotates_after_100_messages() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, b = await client(hub, "alice"), await client(hub, "bob")
    for i in range(101):
        await a.send_text("c", str(i))
    events = hub.take("bob", "D1")
    assert sum(e["type"] == "to_device" for e in events) == 2
    hub.inbox[("bob", "D1")] = events
    assert texts((await pump(a, b))["bob/D1"]) == [str(i) for i in range(101)]


async def test_forged_and_tampered_messages_are_reported_not_shown() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, b = await client(hub, "alice"), await client(hub, "bob")
    await a.send_text("c", "real")
    await pump(a, b)
    await a.send_text("c", "dose 5 mg")
    ev = next(e for e in hub.take("bob", "D1") if e["type"] == "message")
    raw = bytearray(base64.b64decode(ev["ciphertext"]))
    raw[-70] ^= 1  # inside the ciphertext
    [rejected] = await b.handle_event({**ev, "ciphertext": base64.b64encode(bytes(raw)).decode()})
    assert isinstance(rejected, RejectedMessage) and isinstance(rejected.error, TamperedError)
    assert texts(await b.handle_event(ev)) == ["dose 5 mg"]
    [replayed] = await b.handle_event(ev)
    assert isinstance(replayed, RejectedMessage)


async def test_device_whose_keys_change_is_refused_and_warned() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, _ = await client(hub, "alice"), await client(hub, "bob")
    await a.devices_of("bob")
    impostor = DeviceKeys.generate("bob", "D1").identity()
    hub.devices["bob"] = [
        DeviceRecord("bob", "D1", impostor.signing_key, impostor.exchange_key, impostor.signature)
    ]
    assert await a.devices_of("bob", refresh=True) == []
    assert a.identity_warnings


async def test_safety_numbers_match_on_both_sides() -> None:
    hub = Hub(members={})
    a, b = await client(hub, "alice"), await client(hub, "bob")
    assert await a.safety_number("bob") == await b.safety_number("alice")


async def test_attachment_is_encrypted_on_the_client() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, b = await client(hub, "alice"), await client(hub, "bob")
    voice = b"OggS voice message canary 4711"
    await a.send_attachment("c", voice, name="memo.ogg", mime="audio/ogg")
    assert all(voice not in blob for blob in hub.blobs.values())
    [msg] = (await pump(a, b))["bob/D1"]
    assert isinstance(msg, DecryptedMessage) and msg.attachment is not None
    assert (msg.attachment.name, msg.attachment.mime) == ("memo.ogg", "audio/ogg")
    assert await b.fetch_attachment(msg.attachment) == voice


async def test_audit_on_seals_every_sender_key_and_refuses_unsealed_ones() -> None:
    audit = new_audit_secret()
    audit_pub = audit_public_key(audit)
    hub = Hub(members={"c": ["alice", "bob", "eve"]})
    a = await client(hub, "alice", audit_key=audit_pub)
    b = await client(hub, "bob", audit_key=audit_pub)
    e = await client(hub, "eve")  # a client that ignores the tenant's audit policy
    await a.send_text("c", "audited")
    await e.send_text("c", "unaudited")
    got = (await pump(a, b, e))["bob/D1"]
    assert texts(got) == ["audited"]
    assert any(isinstance(r, RejectedMessage) and isinstance(r.error, PolicyError) for r in got)
    # the auditor's copy, as carried to bob, opens to alice's chain and decrypts her message
    await a.send_text("c", "second")
    events = hub.take("bob", "D1")
    msg = next(e for e in events if e["type"] == "message")
    await a.handle_event(
        {
            "type": "membership",
            "conversation_id": "c",
            "action": "removed",
            "user_id": "eve",
            "seq": 9,
        }
    )
    hub.members["c"].remove("eve")
    await a.send_text("c", "third")
    events = hub.take("bob", "D1")
    td = next(e for e in events if e["type"] == "to_device")
    bobs_channel = RatchetChannel(b.keys, a.keys.identity())
    bobs_channel.load(json.loads(b.export_state())["ratchets"][0]["sessions"])
    prekeys = PrekeyStore.from_json(json.loads(b.export_state())["prekeys"])
    plaintext = bobs_channel.decrypt(base64.b64decode(td["ciphertext"]), prekeys).plaintext
    seal = SenderKeyDistribution.from_bytes(plaintext).audit
    assert seal is not None and seal.audit_key == audit_pub
    record = open_audit_seal(audit, seal)
    assert record.sender_user == "alice"
    auditor = SenderKeyStore()
    auditor.add(
        SenderKeyDistribution(
            record.conversation_id,
            record.sender_user,
            record.sender_device,
            record.key_id,
            record.iteration,
            record.chain_key,
            record.created_at,
        ),
        a.keys.identity(),
    )
    third = next(e for e in events if e["type"] == "message")
    assert json.loads(auditor.decrypt(base64.b64decode(third["ciphertext"]))[1])["body"] == "third"
    assert msg["seq"] < third["seq"]


async def test_to_device_with_server_swapped_sender_is_refused() -> None:
    hub = Hub(members={"c": ["alice", "bob", "carol"]})
    a, b, c = await client(hub, "alice"), await client(hub, "bob"), await client(hub, "carol")
    await a.send_text("c", "x")
    td = next(e for e in hub.take("bob", "D1") if e["type"] == "to_device")
    header, _ = parse_ratchet_envelope(base64.b64decode(td["ciphertext"]))
    assert header.sender_user == "alice"
    [rej] = await b.handle_event({**td, "sender_user_id": "carol"})
    assert isinstance(rej, RejectedMessage) and isinstance(rej.error, MalformedError)
    assert c.waiting() == 0


async def test_restarted_client_keeps_reading_from_saved_state(tmp_path: Path) -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, b = await client(hub, "alice"), await client(hub, "bob")
    await a.send_text("c", "vor dem Neustart")
    first = hub.take("bob", "D1")
    assert texts([r for e in first for r in await b.handle_event(e)]) == ["vor dem Neustart"]
    await a.send_text("c", "wartet")  # arrives while bob is down
    path = tmp_path / "state" / "bob.state"
    b.save_state(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    restarted = E2ESession.load_state(b.transport, b.keys, path)
    await a.send_text("c", "nach dem Neustart")  # no new key: alice knows bob holds it
    later = hub.take("bob", "D1")
    assert [e["type"] for e in later] == ["message", "message"]
    got = [r for e in later for r in await restarted.handle_event(e)]
    assert texts(got) == ["wartet", "nach dem Neustart"]
    [replayed] = await restarted.handle_event(first[-1])
    assert isinstance(replayed, RejectedMessage) and isinstance(replayed.error, ReplayError)
    # alice restarts: her sends continue under a new chain, never reusing a consumed position
    a.save_state(tmp_path / "alice.state")
    await a.send_text("c", "nach dem Speichern")  # sent, then alice crashes before saving
    a2 = E2ESession.load_state(a.transport, a.keys, tmp_path / "alice.state")
    await a2.send_text("c", "alice wieder da")
    again = hub.take("bob", "D1")
    assert [e["type"] for e in again] == ["message", "to_device", "message"]
    got = [r for e in again for r in await restarted.handle_event(e)]
    assert texts(got) == ["nach dem Speichern", "alice wieder da"]
    assert not [r for r in got if isinstance(r, RejectedMessage)]


async def test_state_file_is_sealed_to_the_device(tmp_path: Path) -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, _ = await client(hub, "alice"), await client(hub, "bob")
    await a.send_text("c", "x")
    path = tmp_path / "alice.state"
    a.save_state(path)
    chain = json.loads(a.export_state())["inbound"][0]["chain_key"]
    assert chain.encode() not in path.read_bytes()
    with pytest.raises(KeyStoreError):
        E2ESession.load_state(a.transport, DeviceKeys.generate("alice", "D1"), path)


async def test_device_added_while_away_gets_the_key_after_a_reconnect() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, b = await client(hub, "alice"), await client(hub, "bob")
    await a.send_text("c", "eins")
    b2 = await client(hub, "bob", "D2")  # alice missed the live device_list event
    await b.approve_device("D2")
    assert await a.handle_event({"type": "synced"}) == []
    await a.send_text("c", "zwei")
    assert texts((await pump(a, b, b2))["bob/D2"]) == ["zwei"]


async def test_concurrent_sends_share_one_sender_key() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, b = await client(hub, "alice"), await client(hub, "bob")
    await asyncio.gather(*(a.send_text("c", str(i)) for i in range(10)))
    events = hub.take("bob", "D1")
    assert sum(e["type"] == "to_device" for e in events) == 1
    hub.inbox[("bob", "D1")] = events
    assert sorted(texts((await pump(a, b))["bob/D1"]), key=int) == [str(i) for i in range(10)]


async def test_state_saved_with_one_window_over_whole_counters_still_refuses_replays() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, b = await client(hub, "alice"), await client(hub, "bob")
    # an envelope of pairwise version 1 (Box), as stored on a server before the upgrade
    dist = OutboundSenderKey.create("c", 1).distribution(a.keys).to_bytes()
    legacy = PairwiseChannel(a.keys, b.keys.identity()).encrypt(dist)
    td = {
        "type": "to_device",
        "seq": 0,
        "sender_user_id": "alice",
        "sender_device_id": "D1",
        "ciphertext": base64.b64encode(legacy).decode(),
    }
    assert await b.handle_event(td) == []  # still read
    doc = json.loads(b.export_state())
    for channel in doc["channels"]:  # the layout written before sending sessions
        [(session, window)] = channel.pop("windows").items()
        base = int(session) << 32
        channel["next_counter"] = 0
        channel["highest"] = base + window["highest"]
        channel["seen"] = [base + s for s in window["seen"]]
    assert doc["channels"]
    restarted = E2ESession(b.transport, b.keys)
    restarted.import_state(json.dumps(doc).encode())
    [replayed] = await restarted.handle_event(td)
    assert isinstance(replayed, RejectedMessage) and isinstance(replayed.error, ReplayError)


async def test_replayed_pairwise_envelope_is_refused() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, b = await client(hub, "alice"), await client(hub, "bob")
    await a.send_text("c", "x")
    events = hub.take("bob", "D1")
    td = next(e for e in events if e["type"] == "to_device")
    assert texts([r for e in events for r in await b.handle_event(e)]) == ["x"]
    [replayed] = await b.handle_event(td)
    assert isinstance(replayed, RejectedMessage) and isinstance(replayed.error, ReplayError)


class RacingTransport(HubTransport):
    """Bob removes carol after alice shared her key but before alice's message is stored."""

    race: bool = True

    async def send_message(self, conversation_id: str, **kw: Any) -> int:
        if self.race:
            self.race = False
            self.hub.remove_member(conversation_id, "carol", by="bob")
        return await super().send_message(conversation_id, **kw)


async def test_removal_race_a_message_prepared_before_a_removal_is_sent_under_a_new_key() -> None:
    hub = Hub(members={"c": ["alice", "bob", "carol"]})
    a = E2ESession(RacingTransport(hub, "alice", "D1"), DeviceKeys.generate("alice", "D1"))
    await a.register_device("D1")
    b, c = await client(hub, "bob"), await client(hub, "carol")
    await a.send_text("c", "nach der Entfernung")
    carol_got = hub.take("carol", "D1")
    # carol received the first key and the removal, but neither the message nor the new key
    assert [e["type"] for e in carol_got] == ["to_device", "membership"]
    bob_got = hub.take("bob", "D1")
    [stored] = [e for e in bob_got if e["type"] == "message"]  # refused once, then stored
    for event in carol_got:
        await c.handle_event(event)
    assert await c.handle_event(stored) == []  # held: carol has no key for it
    assert c.waiting() == 1
    hub.inbox[("bob", "D1")] = bob_got
    assert texts((await pump(a, b))["bob/D1"]) == ["nach der Entfernung"]


async def test_membership_changes_are_signed_by_their_author_and_surfaced() -> None:
    hub = Hub(members={"c": ["alice", "bob", "carol"]})
    a, b, c = await client(hub, "alice"), await client(hub, "bob"), await client(hub, "carol")
    await a.send_text("c", "eins")
    await pump(a, b, c)
    await a.remove_member("c", "carol")
    hub.remove_member("c", "bob")  # a change the server reports without any signature
    await b.add_members("c", ["dora"])  # signed by bob's device
    events = hub.take("alice", "D1")
    changes = [r for e in events for r in await a.handle_event(e)]
    surfaced = [
        (m.action, m.user_id, m.verified) for m in changes if isinstance(m, MembershipChange)
    ]
    assert surfaced == [
        ("removed", "carol", True),
        ("removed", "bob", False),
        ("added", "dora", True),
    ]
    forged = {**events[0], "user_id": "bob"}  # carol's signed removal re-aimed at bob
    [change] = await a.handle_event(forged)
    assert isinstance(change, MembershipChange) and not change.verified


async def test_any_membership_change_rotates_the_sender_key_before_the_next_message() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    a, b = await client(hub, "alice"), await client(hub, "bob")
    await a.send_text("c", "eins")
    hub.add_member("c", "dora", by="bob")  # alice has not seen the event yet
    await a.send_text("c", "zwei")
    events = hub.take("bob", "D1")
    kinds = [e["type"] for e in events]
    assert kinds == ["to_device", "message", "membership", "to_device", "message"]
    hub.inbox[("bob", "D1")] = events
    assert texts((await pump(a, b))["bob/D1"]) == ["eins", "zwei"]


async def test_a_device_from_before_cross_signing_makes_the_master_key_when_it_syncs() -> None:
    hub = Hub(members={"c": ["alice", "bob"]})
    old = E2ESession(HubTransport(hub, "alice", "D1"), DeviceKeys.generate("alice", "D1"))
    ident = old.keys.identity()
    await old.transport.register_device(  # registered by a client of the first protocol
        device_id="D1",
        name="alt",
        signing_key=ident.signing_key,
        exchange_key=ident.exchange_key,
        signature=ident.signature,
    )
    b = await client(hub, "bob")
    assert [t.trust for t in await b.device_trust("alice")] == [Trust.UNVERIFIED]
    assert await old.handle_event({"type": "synced"}) == []
    assert old.holds_master_key
    assert [t.trust for t in await b.device_trust("alice")] == [Trust.OWNER]
    await b.send_text("c", "wieder erreichbar")
    assert texts((await pump(old, b))["alice/D1"]) == ["wieder erreichbar"]
