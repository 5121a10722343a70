"""Pairwise (device-to-device) envelopes: NaCl `Box` plus an Ed25519 signature inside it.

`Box` (X25519 + XSalsa20-Poly1305) authenticates the pair of exchange keys; the signature inside
binds the plaintext to the sender's signing key and to both device names and the counter, so a
recipient cannot re-address a message to a third device and a relay cannot redirect or replay it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import nacl.exceptions
import nacl.public
import nacl.utils

from messenger.crypto import _wire
from messenger.crypto._errors import MalformedError, TamperedError
from messenger.crypto._identity import SIGNATURE_BYTES, DeviceIdentity, DeviceKeys, verify_signature
from messenger.crypto._replay import ReplayWindow

SESSION_SHIFT = 32  # counter = session << 32 | n: a random session per sender run, n from 0
MAX_SESSIONS = 32  # replay windows a receiver keeps per peer (most recently used)

MAGIC = b"MBP1"
NONCE_BYTES = nacl.public.Box.NONCE_SIZE
_CONTEXT = b"medbridge/pairwise/v1"


@dataclass(frozen=True)
class PairwiseHeader:
    """The clear routing header of a pairwise envelope (the server sees it anyway)."""

    sender_user: str
    sender_device: str
    recipient_user: str
    recipient_device: str
    counter: int

    def fields(self) -> list[bytes]:
        return [
            _wire.text(self.sender_user),
            _wire.text(self.sender_device),
            _wire.text(self.recipient_user),
            _wire.text(self.recipient_device),
            _wire.u64(self.counter),
        ]


def parse_header(envelope: bytes) -> PairwiseHeader:
    """Read the clear header, e.g. to look up the sender's identity before decrypting."""
    fields = _wire.open_envelope(envelope, MAGIC, 7, "pairwise envelope")
    what = "pairwise envelope"
    return PairwiseHeader(
        sender_user=_wire.from_text(fields[0], what),
        sender_device=_wire.from_text(fields[1], what),
        recipient_user=_wire.from_text(fields[2], what),
        recipient_device=_wire.from_text(fields[3], what),
        counter=_wire.to_int(fields[4], 8, what),
    )


def encrypt_pairwise(
    sender: DeviceKeys,
    recipient: DeviceIdentity,
    counter: int,
    plaintext: bytes,
    *,
    nonce: bytes | None = None,
) -> bytes:
    """Seal `plaintext` for one device. `nonce` is for test vectors only; leave it random."""
    header = PairwiseHeader(
        sender.user_id, sender.device_id, recipient.user_id, recipient.device_id, counter
    )
    signature = sender.sign(_wire.join_signed(_CONTEXT, [*header.fields(), plaintext]))
    box = nacl.public.Box(sender.exchange_private, nacl.public.PublicKey(recipient.exchange_key))
    nonce = nonce if nonce is not None else nacl.utils.random(NONCE_BYTES)
    sealed = box.encrypt(signature + _wire.pad(plaintext), nonce).ciphertext
    return _wire.envelope(MAGIC, *header.fields(), nonce, bytes(sealed))


def decrypt_pairwise(
    recipient: DeviceKeys, sender: DeviceIdentity, envelope: bytes
) -> tuple[PairwiseHeader, bytes]:
    """Open an envelope from `sender` (a verified identity); stateless, so no replay check."""
    header = parse_header(envelope)
    fields = _wire.open_envelope(envelope, MAGIC, 7, "pairwise envelope")
    nonce = _wire.fixed(fields[5], NONCE_BYTES, "pairwise envelope")
    if (header.sender_user, header.sender_device) != (sender.user_id, sender.device_id):
        raise TamperedError("pairwise envelope: sender does not match the expected device")
    if (header.recipient_user, header.recipient_device) != (
        recipient.user_id,
        recipient.device_id,
    ):
        raise TamperedError("pairwise envelope: addressed to another device")
    box = nacl.public.Box(recipient.exchange_private, nacl.public.PublicKey(sender.exchange_key))
    try:
        inner = box.decrypt(fields[6], nonce)
    except nacl.exceptions.CryptoError as exc:
        raise TamperedError("pairwise envelope: authentication failed") from exc
    if len(inner) < SIGNATURE_BYTES:
        raise MalformedError("pairwise envelope: no signature")
    plaintext = _wire.unpad(inner[SIGNATURE_BYTES:], "pairwise envelope")
    verify_signature(
        sender.signing_key,
        _wire.join_signed(_CONTEXT, [*header.fields(), plaintext]),
        inner[:SIGNATURE_BYTES],
    )
    return header, plaintext


def new_session_counter() -> int:
    """The first counter of a fresh sending session: a random session id, position 0.

    A sender whose state may lag behind what it sent (a restart, a lost state file) starts a
    new session instead of guessing a counter above the old ones, so no clock is involved."""
    return (int.from_bytes(nacl.utils.random(4), "big") | 1) << SESSION_SHIFT


@dataclass
class PairwiseChannel:
    """The state of one device pair: the next counter to send and the replay windows of the
    sessions received from the peer (each counter accepted once per session).

    Persist it with the device's state; a counter must never be reused for the same peer.
    """

    own: DeviceKeys
    peer: DeviceIdentity
    next_counter: int = field(default_factory=new_session_counter)
    windows: dict[int, ReplayWindow] = field(default_factory=dict)

    def encrypt(self, plaintext: bytes) -> bytes:
        envelope = encrypt_pairwise(self.own, self.peer, self.next_counter, plaintext)
        self.next_counter += 1
        return envelope

    def decrypt(self, envelope: bytes) -> bytes:
        """Open, then reject a counter seen before (ReplayError); state changes only on success."""
        header = parse_header(envelope)
        session, position = divmod(header.counter, 1 << SESSION_SHIFT)
        window = self.windows.get(session, ReplayWindow())
        window.check(position)
        _, plaintext = decrypt_pairwise(self.own, self.peer, envelope)
        window.accept(position)
        self.windows.pop(session, None)  # most recently used last
        self.windows[session] = window
        while len(self.windows) > MAX_SESSIONS:
            del self.windows[next(iter(self.windows))]
        return plaintext
