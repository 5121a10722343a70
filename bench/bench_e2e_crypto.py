"""Cost of the E2E protocol on one client: sender-key distribution to a 1,250-member group
(one pairwise ratchet envelope per device; the X3DH setup of those channels, once per device
pair, measured apart), group message encryption/decryption, attachment encryption."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from messenger.crypto import (
    DeviceKeys,
    OutboundSenderKey,
    PrekeyBundle,
    PrekeyStore,
    RatchetChannel,
    SenderKeyDistribution,
    SenderKeyStore,
    decrypt_attachment,
    encrypt_attachment,
)

GROUP = 1250


def _timed(fn: Callable[[], object], repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    sender = DeviceKeys.generate("sender", "S1")
    member_keys = [DeviceKeys.generate(f"user{i}", "D1") for i in range(GROUP)]
    bundles = []
    for keys in member_keys:
        prekeys = PrekeyStore()
        spk = prekeys.new_signed_prekey(keys)
        bundles.append(PrekeyBundle(keys.identity(), spk, prekeys.new_one_time_prekeys(1)[0]))
    out = OutboundSenderKey.create("conv", int(time.time()))
    dist = out.distribution(sender).to_bytes()
    channels = [RatchetChannel(sender, b.identity) for b in bundles]

    # once per device pair: X3DH from the claimed bundle, then the first ratchet message
    start = time.perf_counter()
    for channel, bundle in zip(channels, bundles, strict=True):
        channel.start(bundle)
    setup_s = time.perf_counter() - start
    # every rotation (membership change, 100 messages, 7 days): one envelope per device
    start = time.perf_counter()
    envelopes = [c.encrypt(dist) for c in channels]
    distribute_s = time.perf_counter() - start

    store = SenderKeyStore()
    store.add(SenderKeyDistribution.from_bytes(dist), sender.identity())
    text = "Alarm: Einsatz Station 3, bitte bestätigen".encode() * 4
    n = 99
    start = time.perf_counter()
    msgs = [out.encrypt(sender, text) for _ in range(n)]
    encrypt_s = (time.perf_counter() - start) / n
    start = time.perf_counter()
    for m in msgs:
        store.decrypt(m)
    decrypt_s = (time.perf_counter() - start) / n

    blob_data = bytes(5 * 1024 * 1024)
    blob, key = encrypt_attachment(blob_data)
    att_enc = _timed(lambda: encrypt_attachment(blob_data), 5)
    att_dec = _timed(lambda: decrypt_attachment(blob, key), 5)

    results = {
        "group_size": GROUP,
        "distribute_sender_key_s": round(distribute_s, 4),
        "pairwise_session_setup_s": round(setup_s, 4),
        "distribution_bytes_total": sum(len(e) for e in envelopes),
        "group_encrypt_ms": round(encrypt_s * 1000, 4),
        "group_decrypt_ms": round(decrypt_s * 1000, 4),
        "group_message_bytes": len(msgs[0]),
        "attachment_5mib_encrypt_ms": round(att_enc * 1000, 2),
        "attachment_5mib_decrypt_ms": round(att_dec * 1000, 2),
    }
    for k, v in results.items():
        print(f"{k:32} {v}")
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    (out_dir / "e2e_crypto.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
