"""The implementation reproduces docs/crypto.md's test vectors, and the vectors follow the spec.

Each vector is checked twice: the library must produce the stored bytes, and an independent
reading of the stored bytes with raw libsodium/hashlib calls (as the spec describes them, without
the library's parser) must yield the stored plaintext.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.public
import nacl.signing
import pytest

from messenger.crypto import (
    DeviceKeys,
    OutboundSenderKey,
    SenderKeyDistribution,
    SenderKeyStore,
    audit_public_key,
    decrypt_attachment,
    decrypt_pairwise,
    encrypt_attachment,
    encrypt_pairwise,
    open_audit_seal,
    open_with_password,
    safety_number,
    seal_with_password,
)
from messenger.crypto._attachments import AttachmentKey
from messenger.crypto._senderkeys import AuditSeal

V: dict[str, Any] = json.loads(Path(__file__).with_name("vectors.json").read_text())


def keys(name: str) -> DeviceKeys:
    d = V[name]
    return DeviceKeys(
        d["user_id"],
        d["device_id"],
        bytes.fromhex(d["signing_seed"]),
        bytes.fromhex(d["exchange_secret"]),
    )


def fields(data: bytes) -> list[bytes]:
    """Split length-prefixed fields exactly as docs/crypto.md describes (independent parser)."""
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    assert pos == len(data)
    return out


def unpad(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    assert stripped.endswith(b"\x80") and len(data) % 64 == 0
    return stripped[:-1]


@pytest.mark.parametrize("name", ["alice", "bob"])
def test_device_identity_vector(name: str) -> None:
    ident = keys(name).identity()
    assert ident.signing_key.hex() == V[name]["signing_key"]
    assert ident.exchange_key.hex() == V[name]["exchange_key"]
    assert ident.signature.hex() == V[name]["self_signature"]
    binding = b"medbridge/device/v1\x00" + b"".join(
        len(f).to_bytes(4, "big") + f
        for f in [
            ident.user_id.encode(),
            ident.device_id.encode(),
            ident.signing_key,
            ident.exchange_key,
        ]
    )
    nacl.signing.VerifyKey(ident.signing_key).verify(binding, ident.signature)


def test_safety_number_vector() -> None:
    alice, bob = keys("alice").identity(), keys("bob").identity()
    assert safety_number([alice], [bob]) == V["safety_number"]
    assert safety_number([bob], [alice]) == V["safety_number"]


def test_ratchet_vector_matches_the_spec_formula() -> None:
    chain = bytes.fromhex(V["ratchet"]["chain_key_0"])
    for step in V["ratchet"]["steps"]:
        assert chain.hex() == step["chain_key"]
        mk = hashlib.blake2b(
            b"\x01", key=chain, digest_size=32, person=b"medbridge-msgkey"
        ).digest()
        assert mk.hex() == step["message_key"]
        chain = hashlib.blake2b(
            b"\x02", key=chain, digest_size=32, person=b"medbridge-chain"
        ).digest()


def test_group_message_vectors_are_reproduced_and_readable_by_the_spec() -> None:
    alice = keys("alice")
    g = V["group"]
    out = OutboundSenderKey(
        g["conversation_id"],
        bytes.fromhex(g["key_id"]),
        bytes.fromhex(V["ratchet"]["chain_key_0"]),
        0,
        1_700_000_000,
    )
    for m in g["messages"]:
        env = out.encrypt(
            alice,
            m["plaintext"].encode(),
            nonce=bytes.fromhex(m["nonce"]),
            sent_at_ms=m["sent_at_ms"],
        )
        assert env.hex() == m["envelope"]

        raw = bytes.fromhex(m["envelope"])
        assert raw[:4] == b"MBG2"
        conv, user, dev, key_id, it, nonce, ct, sig = fields(raw[4:])
        header = [conv, user, dev, key_id, it]
        aad = b"medbridge/group/v2\x00" + b"".join(len(f).to_bytes(4, "big") + f for f in header)
        signed = aad + b"".join(len(f).to_bytes(4, "big") + f for f in [nonce, ct])
        nacl.signing.VerifyKey(alice.identity().signing_key).verify(signed, sig)
        mk = bytes.fromhex(V["ratchet"]["steps"][m["iteration"]]["message_key"])
        padded = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, aad, nonce, mk)
        sent_at, counter, body = fields(unpad(padded))
        assert body == m["plaintext"].encode()
        assert int.from_bytes(sent_at, "big") == m["sent_at_ms"]
        assert int.from_bytes(counter, "big") == int.from_bytes(it, "big") == m["iteration"]


def test_pairwise_vector_carries_the_distribution_vector() -> None:
    alice, bob = keys("alice"), keys("bob")
    dist = bytes.fromhex(V["distribution"]["bytes"])
    p = V["pairwise"]
    env = encrypt_pairwise(
        alice, bob.identity(), p["counter"], dist, nonce=bytes.fromhex(p["nonce"])
    )
    assert env.hex() == p["envelope"]

    header, plaintext = decrypt_pairwise(bob, alice.identity(), env)
    assert (header.counter, plaintext) == (7, dist)
    # independent: Box(bob_secret, alice_public) opens the last field; signature precedes padding
    f = fields(env[4:])
    inner = nacl.public.Box(
        nacl.public.PrivateKey(bob.exchange_secret),
        nacl.public.PublicKey(alice.identity().exchange_key),
    ).decrypt(f[6], f[5])
    assert unpad(inner[64:]) == dist

    parsed = SenderKeyDistribution.from_bytes(dist)
    assert parsed.chain_key.hex() == V["ratchet"]["chain_key_0"]
    assert parsed.key_id.hex() == V["group"]["key_id"]
    assert parsed.audit is None


def test_distribution_vector_lets_bob_read_the_group_vectors() -> None:
    store = SenderKeyStore()
    store.add(
        SenderKeyDistribution.from_bytes(bytes.fromhex(V["distribution"]["bytes"])),
        keys("alice").identity(),
    )
    for m in V["group"]["messages"]:
        _, plaintext = store.decrypt(bytes.fromhex(m["envelope"]))
        assert plaintext == m["plaintext"].encode()


def test_attachment_vector() -> None:
    a = V["attachment"]
    data = bytes.fromhex(a["plaintext"])
    blob, key = encrypt_attachment(
        data, key=bytes.fromhex(a["key"]), nonce=bytes.fromhex(a["nonce"])
    )
    assert blob.hex() == a["blob"]
    assert key.sha256.hex() == a["sha256"] == hashlib.sha256(blob).hexdigest()
    raw = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
        blob[28:], b"medbridge/attachment/v1", blob[4:28], bytes.fromhex(a["key"])
    )
    assert raw == data
    assert (
        decrypt_attachment(blob, AttachmentKey(bytes.fromhex(a["key"]), key.sha256, len(data)))
        == data
    )


def test_keystore_vector() -> None:
    k = V["keystore"]
    derived = nacl.bindings.crypto_pwhash_alg(
        32,
        k["password"].encode(),
        bytes.fromhex(k["salt"]),
        k["opslimit"],
        k["memlimit"],
        nacl.bindings.crypto_pwhash_ALG_ARGON2ID13,
    )
    assert derived.hex() == k["derived_key"]
    produced = seal_with_password(
        b"device secrets",
        k["password"],
        opslimit=k["opslimit"],
        memlimit=k["memlimit"],
        salt=bytes.fromhex(k["salt"]),
        nonce=bytes.fromhex(k["nonce"]),
    )
    assert produced.decode() == k["file"]
    assert open_with_password(k["file"].encode(), k["password"]) == b"device secrets"


def test_audit_seal_vector_opens_to_the_senders_chain() -> None:
    a = V["audit_seal"]
    secret = int.from_bytes(bytes.fromhex(a["audit_secret"]), "little")
    public = audit_public_key(secret)
    record = open_audit_seal(secret, AuditSeal(public, bytes.fromhex(a["sealed"])))
    assert record.chain_key.hex() == V["ratchet"]["chain_key_0"]
    assert record.signing_key.hex() == V["alice"]["signing_key"]
    assert (record.conversation_id, record.sender_device) == ("conv-station-3", "ALICE-PHONE")
