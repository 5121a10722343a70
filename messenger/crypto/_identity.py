"""Device identities: an Ed25519 signing key and an X25519 exchange key, bound by a self-signature.

A device publishes `DeviceIdentity` through the server's registry. The self-signature binds the
exchange key and the (user, device) names to the signing key, so a server that swaps one key
is caught; a server that swaps both is caught by comparing safety numbers out of band.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import nacl.exceptions
import nacl.public
import nacl.signing
import nacl.utils

from messenger.crypto import _wire
from messenger.crypto._errors import IdentityError, SignatureError

KEY_BYTES = 32
SIGNATURE_BYTES = 64
_DEVICE_CONTEXT = b"medbridge/device/v1"
_KEYS_MAGIC = b"MBK1"


def _binding(user_id: str, device_id: str, signing_key: bytes, exchange_key: bytes) -> bytes:
    fields = [_wire.text(user_id), _wire.text(device_id), signing_key, exchange_key]
    return _wire.join_signed(_DEVICE_CONTEXT, fields)


@dataclass(frozen=True)
class DeviceIdentity:
    """The public half of a device, as published in the server's device registry."""

    user_id: str
    device_id: str
    signing_key: bytes
    exchange_key: bytes
    signature: bytes

    def verify(self) -> None:
        """Raise IdentityError unless the self-signature binds these keys to these names."""
        if len(self.signing_key) != KEY_BYTES or len(self.exchange_key) != KEY_BYTES:
            raise IdentityError(f"device {self.device_id}: public keys must be 32 bytes")
        try:
            verify_signature(
                self.signing_key,
                _binding(self.user_id, self.device_id, self.signing_key, self.exchange_key),
                self.signature,
            )
        except SignatureError as exc:
            raise IdentityError(
                f"device {self.device_id} of {self.user_id}: self-signature does not verify"
            ) from exc

    def fingerprint(self) -> str:
        """Hex of the signing key in groups of four, for showing one device to a user."""
        hexed = self.signing_key.hex()
        return " ".join(hexed[i : i + 4] for i in range(0, len(hexed), 4))


@dataclass(frozen=True)
class DeviceKeys:
    """The private keys of this device. Never leaves the client; stored via the key store."""

    user_id: str
    device_id: str
    signing_seed: bytes
    exchange_secret: bytes

    @classmethod
    def generate(cls, user_id: str, device_id: str) -> DeviceKeys:
        return cls(
            user_id=user_id,
            device_id=device_id,
            signing_seed=nacl.utils.random(KEY_BYTES),
            exchange_secret=nacl.utils.random(KEY_BYTES),
        )

    @cached_property
    def _signer(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.signing_seed)

    @cached_property
    def exchange_private(self) -> nacl.public.PrivateKey:
        return nacl.public.PrivateKey(self.exchange_secret)

    @property
    def signing_public(self) -> bytes:
        return bytes(self._signer.verify_key)

    def sign(self, message: bytes) -> bytes:
        """Detached Ed25519 signature (deterministic, 64 bytes)."""
        return bytes(self._signer.sign(message).signature)

    def identity(self) -> DeviceIdentity:
        signing_key = self.signing_public
        exchange_key = bytes(self.exchange_private.public_key)
        binding = _binding(self.user_id, self.device_id, signing_key, exchange_key)
        return DeviceIdentity(
            user_id=self.user_id,
            device_id=self.device_id,
            signing_key=signing_key,
            exchange_key=exchange_key,
            signature=self.sign(binding),
        )

    def to_bytes(self) -> bytes:
        """Serialised secret keys; only ever written through the password-sealed key store."""
        return _wire.envelope(
            _KEYS_MAGIC,
            _wire.text(self.user_id),
            _wire.text(self.device_id),
            self.signing_seed,
            self.exchange_secret,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceKeys:
        user, device, seed, secret = _wire.open_envelope(data, _KEYS_MAGIC, 4, "device keys")
        return cls(
            user_id=_wire.from_text(user, "device keys"),
            device_id=_wire.from_text(device, "device keys"),
            signing_seed=_wire.fixed(seed, KEY_BYTES, "device keys"),
            exchange_secret=_wire.fixed(secret, KEY_BYTES, "device keys"),
        )

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        return f"DeviceKeys(user_id={self.user_id!r}, device_id={self.device_id!r})"


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise SignatureError unless `signature` is a valid Ed25519 signature of `message`."""
    if len(signature) != SIGNATURE_BYTES or len(public_key) != KEY_BYTES:
        raise SignatureError("signature or key has the wrong length")
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
        raise SignatureError("signature does not verify") from exc


# Safety numbers ---

FINGERPRINT_ITERATIONS = 5200
_FINGERPRINT_VERSION = b"\x00\x01"


def user_fingerprint(devices: Sequence[DeviceIdentity]) -> str:
    """30 digits identifying one user's set of device signing keys (order-independent).

    Iterated SHA-512 makes finding a second key set with the same digits cost 5200 hashes per try,
    on top of the 10^30 search space.
    """
    if not devices:
        raise IdentityError("a fingerprint needs at least one device")
    users = {d.user_id for d in devices}
    if len(users) != 1:
        raise IdentityError("a fingerprint covers the devices of exactly one user")
    user_id = _wire.text(devices[0].user_id)
    keys = b"".join(sorted(d.signing_key for d in devices))
    digest = hashlib.sha512(_FINGERPRINT_VERSION + keys + user_id).digest()
    for _ in range(FINGERPRINT_ITERATIONS):
        digest = hashlib.sha512(digest + keys).digest()
    chunks = (int.from_bytes(digest[i : i + 5], "big") % 100000 for i in range(0, 30, 5))
    return "".join(f"{chunk:05d}" for chunk in chunks)


def safety_number(mine: Sequence[DeviceIdentity], theirs: Sequence[DeviceIdentity]) -> str:
    """60 digits in 12 groups of five that both users see alike and compare out of band.

    The two halves are ordered by user id, so Alice and Bob compute the same string; any change of
    either side's device keys changes it.
    """
    for group in (mine, theirs):
        for device in group:
            device.verify()
    halves = sorted(
        [
            (mine[0].user_id if mine else "", user_fingerprint(mine)),
            (theirs[0].user_id if theirs else "", user_fingerprint(theirs)),
        ]
    )
    digits = halves[0][1] + halves[1][1]
    return " ".join(digits[i : i + 5] for i in range(0, 60, 5))
