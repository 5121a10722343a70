"""Cross-signing and signed membership changes.

A user's **master key** (Ed25519, its secret kept by the device that made it) signs each of the
user's devices; a password alone therefore never makes a trusted device: a new device is
approved from a device that holds the master key, or by a tenant administrator's master key (the
recovery path, which contacts see as such). Contacts pin a user's master key on first sight; a
device counts as verified when the pinned key (or the master key of a tenant administrator of
that user's tenant) signed it.

A **membership statement** is signed by the device of the member (or group admin) who adds or
removes someone; it names the last membership change its author had seen, so the server cannot
replay an old statement after later changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property

import nacl.signing
import nacl.utils

from messenger.crypto import _wire
from messenger.crypto._errors import IdentityError, SignatureError
from messenger.crypto._identity import KEY_BYTES, DeviceIdentity, DeviceKeys, verify_signature

_MASTER_CONTEXT = b"medbridge/master-key/v1"
_DEVICE_CONTEXT = b"medbridge/cross-sign/v1"
_ADMIN_CONTEXT = b"medbridge/admin-approval/v1"
_MEMBERSHIP_CONTEXT = b"medbridge/membership/v1"


def _device_fields(device: DeviceIdentity) -> list[bytes]:
    return [
        _wire.text(device.user_id),
        _wire.text(device.device_id),
        device.signing_key,
        device.exchange_key,
    ]


def _approval_bytes(device: DeviceIdentity, admin_user_id: str | None) -> bytes:
    if admin_user_id is None:
        return _wire.join_signed(_DEVICE_CONTEXT, _device_fields(device))
    return _wire.join_signed(_ADMIN_CONTEXT, [_wire.text(admin_user_id), *_device_fields(device)])


@dataclass(frozen=True)
class MasterKeyRecord:
    """A user's published master public key with its self-signature (binding the user id)."""

    user_id: str
    public_key: bytes
    signature: bytes

    def verify(self) -> None:
        if len(self.public_key) != KEY_BYTES:
            raise IdentityError(f"master key of {self.user_id} must be 32 bytes")
        binding = _wire.join_signed(_MASTER_CONTEXT, [_wire.text(self.user_id), self.public_key])
        try:
            verify_signature(self.public_key, binding, self.signature)
        except SignatureError as exc:
            raise IdentityError(f"master key of {self.user_id} is not self-signed") from exc


@dataclass(frozen=True)
class MasterKey:
    """The secret master key of one user (kept in the sealed state of the device holding it)."""

    user_id: str
    seed: bytes

    @classmethod
    def generate(cls, user_id: str) -> MasterKey:
        return cls(user_id, nacl.utils.random(KEY_BYTES))

    @cached_property
    def _signer(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.seed)

    @property
    def public_key(self) -> bytes:
        return bytes(self._signer.verify_key)

    def record(self) -> MasterKeyRecord:
        binding = _wire.join_signed(_MASTER_CONTEXT, [_wire.text(self.user_id), self.public_key])
        return MasterKeyRecord(
            self.user_id, self.public_key, bytes(self._signer.sign(binding).signature)
        )

    def approve(self, device: DeviceIdentity) -> bytes:
        """Sign one of this user's own devices (verifies its self-signature first)."""
        device.verify()
        if device.user_id != self.user_id:
            raise IdentityError("a master key approves only its own user's devices")
        return bytes(self._signer.sign(_approval_bytes(device, None)).signature)

    def approve_as_admin(self, device: DeviceIdentity) -> bytes:
        """A tenant administrator's approval of another user's device (the recovery path)."""
        device.verify()
        return bytes(self._signer.sign(_approval_bytes(device, self.user_id)).signature)

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"MasterKey(user_id={self.user_id!r})"


class Trust(Enum):
    """How a device of a contact (or of oneself) is vouched for."""

    OWNER = "owner"  # signed by its user's pinned master key
    ADMIN = "admin"  # approved by a tenant administrator's master key (recovery path)
    UNVERIFIED = "unverified"  # no valid approval: no group keys are shared with it


def verify_approval(
    device: DeviceIdentity,
    signature: bytes,
    master: MasterKeyRecord,
    *,
    admin_user_id: str | None = None,
) -> None:
    """Raise IdentityError unless `master` (the device owner's, or the named admin's) signed it."""
    try:
        verify_signature(master.public_key, _approval_bytes(device, admin_user_id), signature)
    except SignatureError as exc:
        raise IdentityError(f"device {device.device_id} is not approved by that key") from exc


@dataclass(frozen=True)
class MembershipStatement:
    """`actor` (user and device) adds or removes `subject` after membership change `after_seq`."""

    conversation_id: str
    action: str  # "added" or "removed"
    subject_user: str
    actor_user: str
    actor_device: str
    after_seq: int

    def signed_bytes(self) -> bytes:
        return _wire.join_signed(
            _MEMBERSHIP_CONTEXT,
            [
                _wire.text(self.conversation_id),
                _wire.text(self.action),
                _wire.text(self.subject_user),
                _wire.text(self.actor_user),
                _wire.text(self.actor_device),
                _wire.u64(self.after_seq),
            ],
        )

    def sign(self, keys: DeviceKeys) -> bytes:
        if (keys.user_id, keys.device_id) != (self.actor_user, self.actor_device):
            raise IdentityError("a membership statement is signed by its actor's device")
        return keys.sign(self.signed_bytes())

    def verify(self, actor: DeviceIdentity, signature: bytes) -> None:
        if (actor.user_id, actor.device_id) != (self.actor_user, self.actor_device):
            raise IdentityError("membership statement signed by another device than its actor")
        verify_signature(actor.signing_key, self.signed_bytes(), signature)
