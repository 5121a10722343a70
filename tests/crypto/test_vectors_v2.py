"""Protocol v2 vectors: the building blocks against their RFCs' published vectors, and the
X3DH + double-ratchet envelope of vectors.json derived again here, step by step as
docs/crypto.md section 4 states it, with raw libsodium and hmac calls (not the library)."""

from __future__ import annotations

import hmac
import json
from pathlib import Path
from typing import Any

import nacl.bindings
import nacl.signing
import pytest

from messenger.crypto import (
    DeviceKeys,
    MasterKey,
    MasterKeyRecord,
    MembershipStatement,
    OneTimePrekey,
    PrekeyBundle,
    PrekeyStore,
    RatchetChannel,
    SignedPrekey,
    hkdf,
    parse_ratchet_envelope,
    verify_approval,
)
from messenger.crypto._ratchet import initiate, public_of, ratchet_encrypt, x25519

V: dict[str, Any] = json.loads(Path(__file__).with_name("vectors.json").read_text())
P2 = V["pairwise_v2"]


def keys(name: str) -> DeviceKeys:
    d = V[name]
    return DeviceKeys(
        d["user_id"],
        d["device_id"],
        bytes.fromhex(d["signing_seed"]),
        bytes.fromhex(d["exchange_secret"]),
    )


def pack(*fields: bytes) -> bytes:
    return b"".join(len(f).to_bytes(4, "big") + f for f in fields)


def rfc5869(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA-256 written out from RFC 5869 section 2, separately from the library."""
    prk = hmac.digest(salt if salt else b"\x00" * 32, ikm, "sha256")
    okm, t, i = b"", b"", 1
    while len(okm) < length:
        t = hmac.digest(prk, t + info + bytes([i]), "sha256")
        okm, i = okm + t, i + 1
    return okm[:length]


# RFC 5869 appendix A, test cases 1-3 (SHA-256)
HKDF_CASES = [
    (
        "0b" * 22,
        "000102030405060708090a0b0c",
        "f0f1f2f3f4f5f6f7f8f9",
        42,
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    ),
    (
        bytes(range(0x00, 0x50)).hex(),
        bytes(range(0x60, 0xB0)).hex(),
        bytes(range(0xB0, 0x100)).hex(),
        82,
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e"
        "590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
    ),
    (
        "0b" * 22,
        "",
        "",
        42,
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    ),
]


@pytest.mark.parametrize(("ikm", "salt", "info", "length", "okm"), HKDF_CASES)
def test_hkdf_matches_rfc_5869(ikm: str, salt: str, info: str, length: int, okm: str) -> None:
    args = bytes.fromhex(ikm), bytes.fromhex(salt), bytes.fromhex(info)
    assert hkdf(args[0], salt=args[1], info=args[2], length=length).hex() == okm
    assert rfc5869(*args, length).hex() == okm


def test_x25519_matches_rfc_7748() -> None:
    # section 5.2, first vector
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    expected = "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    assert x25519(scalar, u).hex() == expected
    # section 6.1, the Diffie-Hellman example
    a = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    b = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    assert public_of(a).hex() == "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    assert public_of(b).hex() == "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    assert x25519(a, public_of(b)).hex() == x25519(b, public_of(a)).hex() == shared


def test_ed25519_master_key_matches_rfc_8032() -> None:
    # RFC 8032 section 7.1, TEST 1 (empty message)
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    master = MasterKey("u", seed)
    assert master.public_key.hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    sig = nacl.signing.SigningKey(seed).sign(b"").signature.hex()
    assert sig.startswith("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155")


def test_x3dh_and_first_ratchet_message_derive_as_specified() -> None:
    alice, bob = keys("alice"), keys("bob")
    spk_secret = bytes.fromhex(P2["signed_prekey"]["secret"])
    otk_secret = bytes.fromhex(P2["one_time_prekey"]["secret"])
    ek = bytes.fromhex(P2["ephemeral_secret"])
    ratchet = bytes.fromhex(P2["ratchet_secret"])
    spk_pub = nacl.bindings.crypto_scalarmult_base(spk_secret)
    otk_pub = nacl.bindings.crypto_scalarmult_base(otk_secret)
    assert spk_pub.hex() == P2["signed_prekey"]["public_key"]
    assert otk_pub.hex() == P2["one_time_prekey"]["public_key"]

    # the signed prekey's signature: Ed25519 over signed("medbridge/prekey/v1", [...])
    binding = b"medbridge/prekey/v1\x00" + pack(
        bob.user_id.encode(), bob.device_id.encode(), (1).to_bytes(4, "big"), spk_pub
    )
    signature = bytes.fromhex(P2["signed_prekey"]["signature"])
    nacl.signing.VerifyKey(bytes.fromhex(V["bob"]["signing_key"])).verify(binding, signature)

    # X3DH: SK = HKDF(0xFF*32 || DH1 || DH2 || DH3 || DH4, salt 0, "medbridge/x3dh/v1")
    dh = nacl.bindings.crypto_scalarmult
    bob_ik = bytes.fromhex(V["bob"]["exchange_key"])
    secrets = (
        dh(alice.exchange_secret, spk_pub) + dh(ek, bob_ik) + dh(ek, spk_pub) + dh(ek, otk_pub)
    )
    sk = rfc5869(b"\xff" * 32 + secrets, b"", b"medbridge/x3dh/v1", 32)
    # first root step with Alice's ratchet key against Bob's signed prekey
    root_out = rfc5869(dh(ratchet, spk_pub), sk, b"medbridge/ratchet-root/v1", 64)
    chain = root_out[32:]
    message_key = hmac.digest(chain, b"\x01", "sha256")
    okm = rfc5869(message_key, b"", b"medbridge/ratchet-message/v1", 56)
    cipher_key, nonce = okm[:32], okm[32:]

    envelope = bytes.fromhex(P2["envelope"])
    assert envelope[:4] == b"MBP2"
    parts, pos = [], 4
    while pos < len(envelope):
        n = int.from_bytes(envelope[pos : pos + 4], "big")
        parts.append(envelope[pos + 4 : pos + 4 + n])
        pos += 4 + n
    assert len(parts) == 10
    assert parts[4] == nacl.bindings.crypto_scalarmult_base(ek)  # session id = Alice's EK
    assert parts[5] == pack((1).to_bytes(4, "big"), (2).to_bytes(4, "big"))  # prekey ids
    assert parts[6] == nacl.bindings.crypto_scalarmult_base(ratchet)
    associated = pack(
        *(
            f
            for name in ("alice", "bob")
            for f in (
                V[name]["user_id"].encode(),
                V[name]["device_id"].encode(),
                bytes.fromhex(V[name]["signing_key"]),
                bytes.fromhex(V[name]["exchange_key"]),
            )
        )
    )
    aad = b"medbridge/pairwise/v2\x00" + pack(associated, *parts[:9])
    padded = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
        parts[9], aad, nonce, cipher_key
    )
    inner = padded.rstrip(b"\x00")[:-1]
    assert inner == pack(
        P2["sent_at_ms"].to_bytes(8, "big"), (0).to_bytes(4, "big"), bytes.fromhex(P2["plaintext"])
    )

    # the library writes exactly these bytes from the same inputs ...
    bundle = PrekeyBundle(
        bob.identity(),
        SignedPrekey(1, spk_pub, signature),
        OneTimePrekey(2, otk_pub),
    )
    session = initiate(alice, bundle, ephemeral_secret=ek, ratchet_secret=ratchet)
    again = ratchet_encrypt(
        session, alice, bob.identity(), bytes.fromhex(P2["plaintext"]), sent_at_ms=P2["sent_at_ms"]
    )
    assert again == envelope
    # ... and Bob's side opens them, using up the one-time prekey
    prekeys = PrekeyStore(signed={1: spk_secret}, one_time={2: otk_secret}, next_id=3)
    opened = RatchetChannel(bob, alice.identity()).decrypt(envelope, prekeys)
    assert opened.plaintext.hex() == P2["plaintext"] and opened.sent_at_ms == P2["sent_at_ms"]
    assert prekeys.one_time == {}
    assert parse_ratchet_envelope(envelope)[0].n == 0


def test_cross_signing_vector() -> None:
    bob = keys("bob")
    cs = V["cross_signing"]
    seed = bytes.fromhex(cs["master_seed"])
    public = nacl.signing.SigningKey(seed).verify_key.encode()
    assert public.hex() == cs["master_key"]
    record = MasterKeyRecord(bob.user_id, public, bytes.fromhex(cs["self_signature"]))
    record.verify()
    self_binding = b"medbridge/master-key/v1\x00" + pack(bob.user_id.encode(), public)
    nacl.signing.VerifyKey(public).verify(self_binding, record.signature)
    approval = bytes.fromhex(cs["bob_device_approval"])
    ident = bob.identity()
    binding = b"medbridge/cross-sign/v1\x00" + pack(
        ident.user_id.encode(), ident.device_id.encode(), ident.signing_key, ident.exchange_key
    )
    nacl.signing.VerifyKey(public).verify(binding, approval)
    verify_approval(ident, approval, record)
    assert MasterKey(bob.user_id, seed).approve(ident) == approval


def test_membership_statement_signs_the_documented_bytes() -> None:
    alice = keys("alice")
    statement = MembershipStatement(
        "conv-station-3", "removed", "carol", alice.user_id, alice.device_id, 41
    )
    signature = statement.sign(alice)
    expected = b"medbridge/membership/v1\x00" + pack(
        b"conv-station-3",
        b"removed",
        b"carol",
        alice.user_id.encode(),
        alice.device_id.encode(),
        (41).to_bytes(8, "big"),
    )
    nacl.signing.VerifyKey(alice.signing_public).verify(expected, signature)
    assert statement.signed_bytes() == expected
