"""Regenerate tests/crypto/vectors.json from fixed inputs (run only when the protocol changes).

    python -m tests.crypto.gen_vectors

The audit seal uses a random ephemeral key by design, so its vector is stored as produced once and
checked in the opening direction only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nacl.pwhash

from messenger.crypto import (
    DeviceKeys,
    MasterKey,
    OneTimePrekey,
    OutboundSenderKey,
    PrekeyBundle,
    PrekeyStore,
    encrypt_attachment,
    encrypt_pairwise,
    safety_number,
    seal_with_password,
)
from messenger.crypto._keystore import _derive
from messenger.crypto._ratchet import initiate, public_of, ratchet_encrypt
from messenger.crypto._senderkeys import message_key, next_chain_key

PATH = Path(__file__).with_name("vectors.json")

ALICE = DeviceKeys("alice@klinik.example", "ALICE-PHONE", bytes(range(32)), bytes(range(32, 64)))
BOB = DeviceKeys("bob@klinik.example", "BOB-DESK", bytes(range(64, 96)), bytes(range(96, 128)))
AUDIT_SECRET = bytes(range(128, 160))
SIGNED_PREKEY_SECRET = bytes(range(160, 192))
ONE_TIME_SECRET = bytes(range(192, 224))
EPHEMERAL_SECRET = bytes(range(224, 256))
RATCHET_SECRET = bytes([0x55]) * 32
MASTER_SEED = bytes([0x66]) * 32


def _device(keys: DeviceKeys) -> dict[str, str]:
    ident = keys.identity()
    return {
        "user_id": keys.user_id,
        "device_id": keys.device_id,
        "signing_seed": keys.signing_seed.hex(),
        "exchange_secret": keys.exchange_secret.hex(),
        "signing_key": ident.signing_key.hex(),
        "exchange_key": ident.exchange_key.hex(),
        "self_signature": ident.signature.hex(),
    }


def build(previous: dict[str, Any] | None) -> dict[str, Any]:
    chain0 = bytes([0x42]) * 32
    chain = chain0
    ratchet = []
    for i in range(3):
        ratchet.append(
            {"iteration": i, "chain_key": chain.hex(), "message_key": message_key(chain).hex()}
        )
        chain = next_chain_key(chain)

    key_id = bytes([0x11]) * 16
    out = OutboundSenderKey("conv-station-3", key_id, chain0, 0, 1_700_000_000)
    group = []
    for i, text in enumerate(["Hallo Station 3", "Patient in Zimmer 12 verlegt"]):
        nonce = bytes([0xA0 + i]) * 24
        sent_at_ms = 1_700_000_000_000 + 1_500 * i
        env = out.encrypt(ALICE, text.encode(), nonce=nonce, sent_at_ms=sent_at_ms)
        group.append(
            {
                "iteration": i,
                "plaintext": text,
                "sent_at_ms": sent_at_ms,
                "nonce": nonce.hex(),
                "envelope": env.hex(),
            }
        )
    dist = OutboundSenderKey("conv-station-3", key_id, chain0, 0, 1_700_000_000).distribution(ALICE)

    pw_nonce = bytes([0x5A]) * 24
    pairwise = encrypt_pairwise(ALICE, BOB.identity(), 7, dist.to_bytes(), nonce=pw_nonce)

    att_key, att_nonce = bytes([0x33]) * 32, bytes([0x44]) * 24
    att_data = b"RIFF....WAVEvoice-message-sample"
    blob, att = encrypt_attachment(att_data, key=att_key, nonce=att_nonce)

    salt, ks_nonce = bytes([0x77]) * 16, bytes([0x88]) * 24
    ops, mem = nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN
    password = "Korrekt Pferd Batterie"
    sealed_file = seal_with_password(
        b"device secrets", password, opslimit=ops, memlimit=mem, salt=salt, nonce=ks_nonce
    )

    if previous is not None and "audit_seal" in previous:
        audit = previous["audit_seal"]
    else:
        fresh = OutboundSenderKey("conv-station-3", key_id, chain0, 0, 1_700_000_000)
        seal = fresh.distribution(ALICE, audit_key=_audit_public()).audit
        assert seal is not None
        audit = {"audit_secret": AUDIT_SECRET.hex(), "sealed": seal.sealed.hex()}

    return {
        "about": "medbridge E2E test vectors; see docs/crypto.md",
        "alice": _device(ALICE),
        "bob": _device(BOB),
        "safety_number": safety_number([ALICE.identity()], [BOB.identity()]),
        "ratchet": {"chain_key_0": chain0.hex(), "steps": ratchet},
        "group": {
            "conversation_id": "conv-station-3",
            "key_id": key_id.hex(),
            "messages": group,
        },
        "distribution": {"created_at": 1_700_000_000, "bytes": dist.to_bytes().hex()},
        "pairwise": {"counter": 7, "nonce": pw_nonce.hex(), "envelope": pairwise.hex()},
        "attachment": {
            "key": att_key.hex(),
            "nonce": att_nonce.hex(),
            "plaintext": att_data.hex(),
            "blob": blob.hex(),
            "sha256": att.sha256.hex(),
        },
        "keystore": {
            "password": password,
            "opslimit": ops,
            "memlimit": mem,
            "salt": salt.hex(),
            "nonce": ks_nonce.hex(),
            "derived_key": _derive(password, salt, ops, mem).hex(),
            "file": sealed_file.decode(),
        },
        "audit_seal": audit,
        "pairwise_v2": _pairwise_v2(dist.to_bytes()),
        "cross_signing": _cross_signing(),
    }


def _pairwise_v2(plaintext: bytes) -> dict[str, Any]:
    prekeys = PrekeyStore(next_id=1)
    spk = prekeys.new_signed_prekey(BOB, secret=SIGNED_PREKEY_SECRET)
    otk = OneTimePrekey(2, public_of(ONE_TIME_SECRET))
    bundle = PrekeyBundle(BOB.identity(), spk, otk)
    session = initiate(
        ALICE, bundle, ephemeral_secret=EPHEMERAL_SECRET, ratchet_secret=RATCHET_SECRET
    )
    sent_at_ms = 1_700_000_002_000
    envelope = ratchet_encrypt(session, ALICE, BOB.identity(), plaintext, sent_at_ms=sent_at_ms)
    return {
        "signed_prekey": {
            "key_id": spk.key_id,
            "secret": SIGNED_PREKEY_SECRET.hex(),
            "public_key": spk.public_key.hex(),
            "signature": spk.signature.hex(),
        },
        "one_time_prekey": {
            "key_id": otk.key_id,
            "secret": ONE_TIME_SECRET.hex(),
            "public_key": otk.public_key.hex(),
        },
        "ephemeral_secret": EPHEMERAL_SECRET.hex(),
        "ratchet_secret": RATCHET_SECRET.hex(),
        "sent_at_ms": sent_at_ms,
        "plaintext": plaintext.hex(),
        "envelope": envelope.hex(),
    }


def _cross_signing() -> dict[str, Any]:
    master = MasterKey(BOB.user_id, MASTER_SEED)
    record = master.record()
    return {
        "master_seed": MASTER_SEED.hex(),
        "master_key": record.public_key.hex(),
        "self_signature": record.signature.hex(),
        "bob_device_approval": master.approve(BOB.identity()).hex(),
    }


def _audit_public() -> bytes:
    import nacl.public

    return bytes(nacl.public.PrivateKey(AUDIT_SECRET).public_key)


def main() -> None:
    previous = json.loads(PATH.read_text()) if PATH.exists() else None
    PATH.write_text(json.dumps(build(previous), indent=2) + "\n")


if __name__ == "__main__":
    main()
