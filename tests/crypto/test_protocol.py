"""Behaviour of the E2E primitives that users rely on: who can read what, and what is refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import nacl.bindings
import nacl.public
import nacl.pwhash
import pytest

from messenger.crypto import (
    MAX_KEY_AGE_SECONDS,
    MAX_MESSAGES_PER_KEY,
    DeviceIdentity,
    DeviceKeys,
    IdentityError,
    KeyStoreError,
    MalformedError,
    OutboundSenderKey,
    PairwiseChannel,
    PolicyError,
    ReplayError,
    SenderKeyDistribution,
    SenderKeyStore,
    SignatureError,
    TamperedError,
    UnknownSenderKey,
    WrongPasswordError,
    _wire,
    audit_public_key,
    decrypt_attachment,
    decrypt_pairwise,
    encrypt_attachment,
    encrypt_pairwise,
    load_device_keys,
    new_audit_secret,
    open_audit_seal,
    safety_number,
    save_device_keys,
)
from messenger.crypto._senderkeys import (
    AuditSeal,
    GroupEnvelope,
    GroupHeader,
    message_key,
    next_chain_key,
)

NOW = 1_800_000_000


@pytest.fixture
def alice() -> DeviceKeys:
    return DeviceKeys.generate("alice", "A1")


@pytest.fixture
def bob() -> DeviceKeys:
    return DeviceKeys.generate("bob", "B1")


@pytest.fixture
def carol() -> DeviceKeys:
    return DeviceKeys.generate("carol", "C1")


# identities and safety numbers


def test_published_identity_verifies(alice: DeviceKeys) -> None:
    alice.identity().verify()


def test_identity_with_swapped_exchange_key_is_refused(alice: DeviceKeys, bob: DeviceKeys) -> None:
    forged = DeviceIdentity(
        "alice",
        "A1",
        alice.identity().signing_key,
        bob.identity().exchange_key,
        alice.identity().signature,
    )
    with pytest.raises(IdentityError):
        forged.verify()


def test_identity_renamed_to_another_user_is_refused(alice: DeviceKeys) -> None:
    i = alice.identity()
    with pytest.raises(IdentityError):
        DeviceIdentity("mallory", i.device_id, i.signing_key, i.exchange_key, i.signature).verify()


def test_safety_number_is_the_same_on_both_sides_and_groups_of_five(
    alice: DeviceKeys, bob: DeviceKeys
) -> None:
    ab = safety_number([alice.identity()], [bob.identity()])
    assert ab == safety_number([bob.identity()], [alice.identity()])
    groups = ab.split(" ")
    assert len(groups) == 12 and all(len(g) == 5 and g.isdigit() for g in groups)


def test_safety_number_changes_when_a_key_is_replaced(alice: DeviceKeys, bob: DeviceKeys) -> None:
    impostor = DeviceKeys.generate("bob", "B1")
    assert safety_number([alice.identity()], [bob.identity()]) != safety_number(
        [alice.identity()], [impostor.identity()]
    )


def test_safety_number_covers_all_devices_of_a_user(alice: DeviceKeys, bob: DeviceKeys) -> None:
    bob2 = DeviceKeys.generate("bob", "B2")
    one = safety_number([alice.identity()], [bob.identity()])
    both = safety_number([alice.identity()], [bob.identity(), bob2.identity()])
    assert one != both
    assert both == safety_number([alice.identity()], [bob2.identity(), bob.identity()])


def test_device_keys_repr_hides_secrets(alice: DeviceKeys) -> None:
    assert alice.signing_seed.hex() not in repr(alice)


# pairwise


def test_pairwise_round_trip_and_replay_refused(alice: DeviceKeys, bob: DeviceKeys) -> None:
    send = PairwiseChannel(alice, bob.identity())
    recv = PairwiseChannel(bob, alice.identity())
    first, second = send.encrypt(b"one"), send.encrypt(b"two")
    assert recv.decrypt(second) == b"two"
    assert recv.decrypt(first) == b"one"  # late, within the window: accepted once
    with pytest.raises(ReplayError):
        recv.decrypt(first)


def test_a_sender_restarted_without_its_state_is_read_and_old_envelopes_stay_refused(
    alice: DeviceKeys, bob: DeviceKeys
) -> None:
    recv = PairwiseChannel(bob, alice.identity())
    first_run = PairwiseChannel(alice, bob.identity())
    old = [first_run.encrypt(f"{i}".encode()) for i in range(3)]
    assert [recv.decrypt(e) for e in old] == [b"0", b"1", b"2"]
    second_run = PairwiseChannel(alice, bob.identity())  # state lost; no clock to lean on
    assert recv.decrypt(second_run.encrypt(b"after restart")) == b"after restart"
    for envelope in old:
        with pytest.raises(ReplayError):
            recv.decrypt(envelope)


def test_pairwise_envelope_for_bob_cannot_be_opened_by_carol(
    alice: DeviceKeys, bob: DeviceKeys, carol: DeviceKeys
) -> None:
    env = encrypt_pairwise(alice, bob.identity(), 0, b"secret")
    with pytest.raises(TamperedError):
        decrypt_pairwise(carol, alice.identity(), env)


def test_pairwise_from_an_impostor_device_is_refused(alice: DeviceKeys, bob: DeviceKeys) -> None:
    mallory = DeviceKeys("alice", "A1", os.urandom(32), os.urandom(32))
    env = encrypt_pairwise(mallory, bob.identity(), 0, b"I am alice")
    with pytest.raises(TamperedError):
        decrypt_pairwise(bob, alice.identity(), env)


def test_pairwise_signature_binds_the_sender_signing_key(
    alice: DeviceKeys, bob: DeviceKeys
) -> None:
    # Same exchange key (Box opens) but a different signing key: only the signature catches it.
    mallory = DeviceKeys("alice", "A1", os.urandom(32), alice.exchange_secret)
    env = encrypt_pairwise(mallory, bob.identity(), 0, b"forged")
    with pytest.raises(SignatureError):
        decrypt_pairwise(bob, alice.identity(), env)


def test_tampered_pairwise_does_not_consume_the_counter(alice: DeviceKeys, bob: DeviceKeys) -> None:
    send, recv = PairwiseChannel(alice, bob.identity()), PairwiseChannel(bob, alice.identity())
    env = send.encrypt(b"hello")
    bad = env[:-1] + bytes([env[-1] ^ 1])
    with pytest.raises(TamperedError):
        recv.decrypt(bad)
    assert recv.decrypt(env) == b"hello"


# sender keys


def _member(sender: DeviceKeys, dist: SenderKeyDistribution) -> SenderKeyStore:
    store = SenderKeyStore()
    store.add(SenderKeyDistribution.from_bytes(dist.to_bytes()), sender.identity())
    return store


def test_group_message_round_trip(alice: DeviceKeys) -> None:
    out = OutboundSenderKey.create("conv", NOW)
    bob_store = _member(alice, out.distribution(alice))
    header, text = bob_store.decrypt(out.encrypt(alice, b"Guten Morgen"))
    assert text == b"Guten Morgen"
    assert (header.sender_user, header.iteration) == ("alice", 0)


def test_out_of_order_decrypts_once_and_replay_is_refused(alice: DeviceKeys) -> None:
    out = OutboundSenderKey.create("conv", NOW)
    store = _member(alice, out.distribution(alice))
    msgs = [out.encrypt(alice, f"m{i}".encode()) for i in range(5)]
    for i in (3, 0, 4, 1):
        assert store.decrypt(msgs[i])[1] == f"m{i}".encode()
    for i in (3, 0, 4, 1):
        with pytest.raises(ReplayError):
            store.decrypt(msgs[i])
    assert store.decrypt(msgs[2])[1] == b"m2"
    with pytest.raises(ReplayError):
        store.decrypt(msgs[2])


def test_member_joining_later_cannot_read_earlier_messages(alice: DeviceKeys) -> None:
    out = OutboundSenderKey.create("conv", NOW)
    early = out.encrypt(alice, b"before you joined")
    late_member = _member(alice, out.distribution(alice))
    with pytest.raises(ReplayError):
        late_member.decrypt(early)
    assert late_member.decrypt(out.encrypt(alice, b"welcome"))[1] == b"welcome"


def test_removed_member_cannot_read_after_rotation(alice: DeviceKeys) -> None:
    old = OutboundSenderKey.create("conv", NOW)
    removed = _member(alice, old.distribution(alice))
    assert removed.decrypt(old.encrypt(alice, b"still in"))[1] == b"still in"
    new = OutboundSenderKey.create("conv", NOW)  # rotation: the removed device gets no copy
    stays = _member(alice, new.distribution(alice))
    msg = new.encrypt(alice, b"after removal")
    with pytest.raises(UnknownSenderKey):
        removed.decrypt(msg)
    assert stays.decrypt(msg)[1] == b"after removal"


def test_forged_group_signature_is_refused(alice: DeviceKeys) -> None:
    out = OutboundSenderKey.create("conv", NOW)
    store = _member(alice, out.distribution(alice))
    mallory = DeviceKeys("alice", "A1", os.urandom(32), os.urandom(32))
    # a member who knows the chain key forges a message in alice's name with its own signing key
    forged = OutboundSenderKey(out.conversation_id, out.key_id, out.chain_key, out.iteration, NOW)
    with pytest.raises(SignatureError):
        store.decrypt(forged.encrypt(mallory, b"transfer the patient"))
    assert store.decrypt(out.encrypt(alice, b"real"))[1] == b"real"


def test_tampered_group_ciphertext_is_refused_even_when_re_signed(alice: DeviceKeys) -> None:
    # The signature is checked first; a re-signed, altered ciphertext still fails AEAD.
    out = OutboundSenderKey.create("conv", NOW)
    store = _member(alice, out.distribution(alice))
    env = GroupEnvelope.from_bytes(out.encrypt(alice, b"dose 5 mg"))
    flipped = bytes([env.ciphertext[0] ^ 1]) + env.ciphertext[1:]
    altered = GroupEnvelope(env.header, env.nonce, flipped, b"")
    resigned = GroupEnvelope(env.header, env.nonce, flipped, alice.sign(altered.signed_bytes()))
    with pytest.raises(TamperedError) as info:
        store.decrypt(resigned.to_bytes())
    assert not isinstance(info.value, SignatureError)


def test_group_message_moved_to_another_conversation_is_refused(alice: DeviceKeys) -> None:
    out = OutboundSenderKey.create("conv-a", NOW)
    store = _member(alice, out.distribution(alice))
    env = GroupEnvelope.from_bytes(out.encrypt(alice, b"x"))
    moved = GroupEnvelope(
        GroupHeader("conv-b", "alice", "A1", env.header.key_id, env.header.iteration),
        env.nonce,
        env.ciphertext,
        env.signature,
    )
    with pytest.raises(UnknownSenderKey):
        store.decrypt(moved.to_bytes())


def test_distribution_in_another_senders_name_is_refused(
    alice: DeviceKeys, bob: DeviceKeys
) -> None:
    dist = OutboundSenderKey.create("conv", NOW).distribution(alice)
    with pytest.raises(TamperedError):
        SenderKeyStore().add(dist, bob.identity())


def test_sender_key_rotates_after_100_messages_or_7_days(alice: DeviceKeys) -> None:
    out = OutboundSenderKey.create("conv", NOW)
    assert not out.needs_rotation(NOW)
    assert out.needs_rotation(NOW + MAX_KEY_AGE_SECONDS)
    for _ in range(MAX_MESSAGES_PER_KEY):
        out.encrypt(alice, b"x")
    assert out.needs_rotation(NOW)
    with pytest.raises(PolicyError):
        out.encrypt(alice, b"one too many")


def _advanced(out: OutboundSenderKey, steps: int) -> OutboundSenderKey:
    """A copy of `out` moved `steps` positions along its chain, as a sender would be."""
    chain = out.chain_key
    for _ in range(steps):
        chain = next_chain_key(chain)
    return OutboundSenderKey(out.conversation_id, out.key_id, chain, out.iteration + steps, NOW)


def test_receiver_refuses_iterations_past_the_limit(alice: DeviceKeys) -> None:
    out = OutboundSenderKey.create("conv", NOW)
    store = _member(alice, out.distribution(alice))
    last = _advanced(out, MAX_MESSAGES_PER_KEY - 1)
    assert store.decrypt(last.encrypt(alice, b"last allowed"))[1] == b"last allowed"
    # a sender that ignores rotation: build message 100 by hand, correctly keyed and signed
    header = GroupHeader("conv", "alice", "A1", out.key_id, MAX_MESSAGES_PER_KEY)
    nonce = os.urandom(24)
    ct = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        b"x" + b"\x80" + b"\x00" * 62, header.aad(), nonce, message_key(last.chain_key)
    )
    unsigned = GroupEnvelope(header, nonce, ct, b"")
    env = GroupEnvelope(header, nonce, ct, alice.sign(unsigned.signed_bytes()))
    with pytest.raises(PolicyError):
        store.decrypt(env.to_bytes())


def test_gap_of_late_messages_within_the_chain_all_decrypt(alice: DeviceKeys) -> None:
    out = OutboundSenderKey.create("conv", NOW)
    store = _member(alice, out.distribution(alice))
    msgs = [out.encrypt(alice, bytes([i])) for i in range(MAX_MESSAGES_PER_KEY)]
    assert store.decrypt(msgs[-1])[1] == bytes([MAX_MESSAGES_PER_KEY - 1])
    for i in range(MAX_MESSAGES_PER_KEY - 1):
        assert store.decrypt(msgs[i])[1] == bytes([i])


def test_truncated_envelope_is_malformed(alice: DeviceKeys) -> None:
    out = OutboundSenderKey.create("conv", NOW)
    with pytest.raises(MalformedError):
        SenderKeyStore().decrypt(out.encrypt(alice, b"x")[:-10])


# audit


def test_audit_seal_lets_the_audit_key_read_the_chain_and_nobody_else(alice: DeviceKeys) -> None:
    audit = new_audit_secret()
    out = OutboundSenderKey.create("conv", NOW)
    dist = out.distribution(alice, audit_key=audit_public_key(audit))
    assert dist.audit is not None and dist.audit.audit_key == audit_public_key(audit)
    # the seal survives the wire format members receive
    carried = SenderKeyDistribution.from_bytes(dist.to_bytes()).audit
    assert carried == dist.audit
    msg = out.encrypt(alice, b"audited text")

    record = open_audit_seal(audit, carried)
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
        alice.identity(),
    )
    assert auditor.decrypt(msg)[1] == b"audited text"
    assert record.signing_key == alice.identity().signing_key

    with pytest.raises(TamperedError):
        open_audit_seal(new_audit_secret(), carried)


def test_distribution_without_audit_carries_no_seal(alice: DeviceKeys) -> None:
    dist = OutboundSenderKey.create("conv", NOW).distribution(alice)
    assert SenderKeyDistribution.from_bytes(dist.to_bytes()).audit is None


def test_audit_seal_binds_no_chain_position_before_it(alice: DeviceKeys) -> None:
    audit = new_audit_secret()
    out = OutboundSenderKey.create("conv", NOW)
    before = out.encrypt(alice, b"earlier")
    seal = out.distribution(alice, audit_key=audit_public_key(audit)).audit
    assert seal is not None
    assert open_audit_seal(audit, AuditSeal(seal.audit_key, seal.sealed)).iteration == 1
    assert GroupEnvelope.from_bytes(before).header.iteration == 0


# attachments


def test_attachment_round_trip_and_swapped_blob_refused() -> None:
    blob, key = encrypt_attachment(b"voice bytes")
    assert decrypt_attachment(blob, key) == b"voice bytes"
    other, _ = encrypt_attachment(b"voice bytes")
    with pytest.raises(TamperedError):
        decrypt_attachment(other, key)
    assert b"voice bytes" not in blob


# key store

FAST = {
    "opslimit": nacl.pwhash.argon2id.OPSLIMIT_MIN,
    "memlimit": nacl.pwhash.argon2id.MEMLIMIT_MIN,
}


def test_key_file_round_trip_is_private_to_the_user(tmp_path: Path, alice: DeviceKeys) -> None:
    path = tmp_path / "keys" / "device.key"
    save_device_keys(path, alice, "s3cret passphrase", **FAST)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert alice.signing_seed not in path.read_bytes()
    assert alice.signing_seed.hex() not in path.read_text()
    loaded = load_device_keys(path, "s3cret passphrase")
    assert loaded.identity() == alice.identity()
    assert [p.name for p in path.parent.iterdir()] == ["device.key"]


def test_key_file_with_wrong_password_is_refused(tmp_path: Path, alice: DeviceKeys) -> None:
    path = tmp_path / "device.key"
    save_device_keys(path, alice, "right", **FAST)
    with pytest.raises(WrongPasswordError):
        load_device_keys(path, "wrong")


def test_corrupt_or_missing_key_file_is_a_key_store_error(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    with pytest.raises(KeyStoreError):
        load_device_keys(path, "x")
    path.write_text("{not json")
    with pytest.raises(KeyStoreError):
        load_device_keys(path, "x")


def _sealed(sender: DeviceKeys, header: GroupHeader, chain_key: bytes, inner: bytes) -> bytes:
    """A group envelope built by hand, signed by `sender`, for any header and content."""
    nonce = os.urandom(24)
    ct = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        _wire.pad(inner), header.aad(), nonce, message_key(chain_key)
    )
    unsigned = GroupEnvelope(header, nonce, ct, b"")
    return GroupEnvelope(header, nonce, ct, sender.sign(unsigned.signed_bytes())).to_bytes()


def test_a_message_carries_its_sender_time_and_a_skipped_position_is_reported(
    alice: DeviceKeys,
) -> None:
    out = OutboundSenderKey.create("conv", NOW)
    store = _member(alice, out.distribution(alice))
    msgs = [out.encrypt(alice, f"m{i}".encode(), sent_at_ms=NOW * 1000 + i) for i in range(4)]
    first = store.open(msgs[0])
    assert (first.body, first.sent_at_ms, first.gap) == (b"m0", NOW * 1000, ())
    assert store.open(msgs[3]).gap == (1, 2)  # withheld or late: reported, not absorbed
    late = store.open(msgs[1])
    assert (late.body, late.sent_at_ms, late.gap) == (b"m1", NOW * 1000 + 1, ())


def test_a_counter_inside_that_differs_from_the_header_is_refused(alice: DeviceKeys) -> None:
    out = OutboundSenderKey.create("conv", NOW)
    store = _member(alice, out.distribution(alice))
    header = GroupHeader("conv", alice.user_id, alice.device_id, out.key_id, 0)
    inner = _wire.pack(_wire.u64(NOW * 1000), _wire.u32(5), b"moved")
    with pytest.raises(TamperedError, match="counter"):
        store.open(_sealed(alice, header, out.chain_key, inner))
    assert store.open(out.encrypt(alice, b"real")).body == b"real"  # nothing consumed


def test_version_1_messages_stored_before_the_upgrade_still_open(alice: DeviceKeys) -> None:
    out = OutboundSenderKey.create("conv", NOW)
    store = _member(alice, out.distribution(alice))
    header = GroupHeader("conv", alice.user_id, alice.device_id, out.key_id, 0, version=1)
    old = _sealed(alice, header, out.chain_key, b"vor dem Update")
    assert old[:4] == b"MBG1"
    opened = store.open(old)
    assert (opened.body, opened.sent_at_ms) == (b"vor dem Update", None)
