"""Property tests: every message round-trips, and any single changed bit is refused without
disturbing the receiver's state (the genuine message still decrypts afterwards)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messenger.crypto import (
    CryptoError,
    DeviceKeys,
    OutboundSenderKey,
    PairwiseChannel,
    SenderKeyDistribution,
    SenderKeyStore,
    decrypt_attachment,
    encrypt_attachment,
)
from messenger.crypto._attachments import AttachmentKey

ALICE = DeviceKeys("alice", "A1", bytes(range(32)), bytes(range(32, 64)))
BOB = DeviceKeys("bob", "B1", bytes(range(64, 96)), bytes(range(96, 128)))
NOW = 1_800_000_000
payloads = st.binary(max_size=2048)


def _group() -> tuple[OutboundSenderKey, SenderKeyStore]:
    out = OutboundSenderKey.create("conv", NOW)
    store = SenderKeyStore()
    store.add(
        SenderKeyDistribution.from_bytes(out.distribution(ALICE).to_bytes()), ALICE.identity()
    )
    return out, store


@given(st.lists(payloads, min_size=1, max_size=8), st.randoms(use_true_random=False))
@settings(max_examples=40, deadline=None)
def test_group_messages_round_trip_in_any_order(texts: list[bytes], rnd: object) -> None:
    out, store = _group()
    envs = [out.encrypt(ALICE, t) for t in texts]
    order = list(range(len(texts)))
    rnd.shuffle(order)  # type: ignore[attr-defined]
    for i in order:
        assert store.decrypt(envs[i])[1] == texts[i]


@given(payloads, st.data())
@settings(max_examples=60, deadline=None)
def test_any_flipped_bit_in_a_group_message_is_refused(text: bytes, data: st.DataObject) -> None:
    out, store = _group()
    env = out.encrypt(ALICE, text)
    bit = data.draw(st.integers(0, len(env) * 8 - 1))
    bad = bytearray(env)
    bad[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(CryptoError):
        store.decrypt(bytes(bad))
    assert store.decrypt(env)[1] == text


@given(payloads)
@settings(max_examples=30, deadline=None)
def test_pairwise_round_trip(text: bytes) -> None:
    send, recv = PairwiseChannel(ALICE, BOB.identity()), PairwiseChannel(BOB, ALICE.identity())
    assert recv.decrypt(send.encrypt(text)) == text


@given(payloads, st.data())
@settings(max_examples=60, deadline=None)
def test_any_flipped_bit_in_a_pairwise_envelope_is_refused(
    text: bytes, data: st.DataObject
) -> None:
    send, recv = PairwiseChannel(ALICE, BOB.identity()), PairwiseChannel(BOB, ALICE.identity())
    env = send.encrypt(text)
    bit = data.draw(st.integers(0, len(env) * 8 - 1))
    bad = bytearray(env)
    bad[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(CryptoError):
        recv.decrypt(bytes(bad))
    assert recv.decrypt(env) == text


@given(st.binary(max_size=4096), st.data())
@settings(max_examples=40, deadline=None)
def test_attachment_round_trip_and_any_flipped_bit_refused(
    blob_data: bytes, data: st.DataObject
) -> None:
    blob, key = encrypt_attachment(blob_data)
    assert decrypt_attachment(blob, key) == blob_data
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    bad = bytearray(blob)
    bad[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(CryptoError):
        decrypt_attachment(bytes(bad), key)
    # even when the attacker also controls the digest in the message, AEAD refuses the change
    forged_key = AttachmentKey(key.key, hashlib.sha256(bytes(bad)).digest(), key.size)
    with pytest.raises(CryptoError):
        decrypt_attachment(bytes(bad), forged_key)
