"""Group messages with sender keys: one symmetric hash ratchet per (conversation, sender device).

The sender makes a random chain key and sends it once to every member device over the pairwise
channel (`SenderKeyDistribution`). Message i is encrypted with XChaCha20-Poly1305 under
message_key(i) = BLAKE2b(key=chain_i, 0x01), after which chain_{i+1} = BLAKE2b(key=chain_i, 0x02)
replaces chain_i, so a leaked chain key reveals no earlier message. Every message is signed with
the sender device's Ed25519 key. A new chain (new key id) is made after 100 messages, after 7 days
and whenever a member leaves, so a removed member cannot read what follows.

With audit on, the distribution also carries the chain key sealed to the tenant's audit public key
(`AuditSeal`, see `_audit.seal`), which only two auditors together can open.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.utils

from messenger.crypto import _audit, _wire
from messenger.crypto._errors import (
    PolicyError,
    ReplayError,
    TamperedError,
    UnknownSenderKey,
)
from messenger.crypto._identity import (
    KEY_BYTES,
    SIGNATURE_BYTES,
    DeviceIdentity,
    DeviceKeys,
    verify_signature,
)

MESSAGE_MAGIC = b"MBG2"
MESSAGE_MAGIC_V1 = b"MBG1"  # read only: messages stored on servers and in saved client state
DISTRIBUTION_MAGIC = b"MBD1"
AUDIT_RECORD_MAGIC = b"MBA1"
KEY_REQUEST_MAGIC = b"MBQ1"
KEY_ID_BYTES = 16
NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
MAX_MESSAGES_PER_KEY = 100
MAX_KEY_AGE_SECONDS = 7 * 24 * 3600
_MESSAGE_CONTEXTS = {1: b"medbridge/group/v1", 2: b"medbridge/group/v2"}


def message_key(chain_key: bytes) -> bytes:
    return hashlib.blake2b(
        b"\x01", key=chain_key, digest_size=32, person=b"medbridge-msgkey"
    ).digest()


def next_chain_key(chain_key: bytes) -> bytes:
    return hashlib.blake2b(
        b"\x02", key=chain_key, digest_size=32, person=b"medbridge-chain"
    ).digest()


# Distribution ---


@dataclass(frozen=True)
class AuditSeal:
    """The sender key sealed to the tenant's audit public key (`_audit.seal`)."""

    audit_key: bytes
    sealed: bytes


@dataclass(frozen=True)
class SenderKeyRecord:
    """What an auditor recovers from an AuditSeal: enough to decrypt and verify that chain."""

    conversation_id: str
    sender_user: str
    sender_device: str
    signing_key: bytes
    key_id: bytes
    iteration: int
    chain_key: bytes
    created_at: int

    def to_bytes(self) -> bytes:
        return _wire.envelope(
            AUDIT_RECORD_MAGIC,
            _wire.text(self.conversation_id),
            _wire.text(self.sender_user),
            _wire.text(self.sender_device),
            self.signing_key,
            self.key_id,
            _wire.u32(self.iteration),
            self.chain_key,
            _wire.u64(self.created_at),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SenderKeyRecord:
        what = "audit record"
        f = _wire.open_envelope(data, AUDIT_RECORD_MAGIC, 8, what)
        return cls(
            conversation_id=_wire.from_text(f[0], what),
            sender_user=_wire.from_text(f[1], what),
            sender_device=_wire.from_text(f[2], what),
            signing_key=_wire.fixed(f[3], KEY_BYTES, what),
            key_id=_wire.fixed(f[4], KEY_ID_BYTES, what),
            iteration=_wire.to_int(f[5], 4, what),
            chain_key=_wire.fixed(f[6], KEY_BYTES, what),
            created_at=_wire.to_int(f[7], 8, what),
        )


def open_audit_seal(audit_secret: int, seal: AuditSeal) -> SenderKeyRecord:
    """Recover the sender key with the whole audit secret (test vectors; in service nobody holds
    it, and auditors open seals one by one with `_audit.combine_partials`)."""
    return SenderKeyRecord.from_bytes(_audit.open_with_secret(audit_secret, seal.sealed))


@dataclass(frozen=True)
class SenderKeyDistribution:
    """A sender key as sent to one member device, inside a pairwise envelope."""

    conversation_id: str
    sender_user: str
    sender_device: str
    key_id: bytes
    iteration: int
    chain_key: bytes
    created_at: int
    audit: AuditSeal | None = None

    def to_bytes(self) -> bytes:
        audit_key, sealed = (self.audit.audit_key, self.audit.sealed) if self.audit else (b"", b"")
        return _wire.envelope(
            DISTRIBUTION_MAGIC,
            _wire.text(self.conversation_id),
            _wire.text(self.sender_user),
            _wire.text(self.sender_device),
            self.key_id,
            _wire.u32(self.iteration),
            self.chain_key,
            _wire.u64(self.created_at),
            audit_key,
            sealed,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SenderKeyDistribution:
        what = "sender key distribution"
        f = _wire.open_envelope(data, DISTRIBUTION_MAGIC, 9, what)
        audit = None
        if f[7] or f[8]:
            audit = AuditSeal(audit_key=_wire.fixed(f[7], KEY_BYTES, what), sealed=f[8])
        return cls(
            conversation_id=_wire.from_text(f[0], what),
            sender_user=_wire.from_text(f[1], what),
            sender_device=_wire.from_text(f[2], what),
            key_id=_wire.fixed(f[3], KEY_ID_BYTES, what),
            iteration=_wire.to_int(f[4], 4, what),
            chain_key=_wire.fixed(f[5], KEY_BYTES, what),
            created_at=_wire.to_int(f[6], 8, what),
            audit=audit,
        )


def is_distribution(data: bytes) -> bool:
    return data[:4] == DISTRIBUTION_MAGIC


@dataclass(frozen=True)
class SenderKeyRequest:
    """A member's request, inside a pairwise envelope, for a sender key it never received.

    The sender answers only a device it distributed that key to before and that is still a
    member, so a request never gives anyone a key they were not meant to have.
    """

    conversation_id: str
    key_id: bytes

    def to_bytes(self) -> bytes:
        return _wire.envelope(KEY_REQUEST_MAGIC, _wire.text(self.conversation_id), self.key_id)

    @classmethod
    def from_bytes(cls, data: bytes) -> SenderKeyRequest:
        what = "sender key request"
        f = _wire.open_envelope(data, KEY_REQUEST_MAGIC, 2, what)
        return cls(_wire.from_text(f[0], what), _wire.fixed(f[1], KEY_ID_BYTES, what))


def is_key_request(data: bytes) -> bool:
    return data[:4] == KEY_REQUEST_MAGIC


# Group message envelope ---


@dataclass(frozen=True)
class GroupHeader:
    conversation_id: str
    sender_user: str
    sender_device: str
    key_id: bytes
    iteration: int
    version: int = 2  # 1: the body alone inside; 2: sender timestamp and counter too

    def fields(self) -> list[bytes]:
        return [
            _wire.text(self.conversation_id),
            _wire.text(self.sender_user),
            _wire.text(self.sender_device),
            self.key_id,
            _wire.u32(self.iteration),
        ]

    def aad(self) -> bytes:
        return _wire.join_signed(_MESSAGE_CONTEXTS[self.version], self.fields())


@dataclass(frozen=True)
class GroupEnvelope:
    header: GroupHeader
    nonce: bytes
    ciphertext: bytes
    signature: bytes

    def signed_bytes(self) -> bytes:
        return self.header.aad() + _wire.pack(self.nonce, self.ciphertext)

    def to_bytes(self) -> bytes:
        magic = MESSAGE_MAGIC if self.header.version == 2 else MESSAGE_MAGIC_V1
        return _wire.envelope(
            magic, *self.header.fields(), self.nonce, self.ciphertext, self.signature
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> GroupEnvelope:
        what = "group message"
        version = 1 if data[:4] == MESSAGE_MAGIC_V1 else 2
        magic = MESSAGE_MAGIC_V1 if version == 1 else MESSAGE_MAGIC
        f = _wire.open_envelope(data, magic, 8, what)
        header = GroupHeader(
            conversation_id=_wire.from_text(f[0], what),
            sender_user=_wire.from_text(f[1], what),
            sender_device=_wire.from_text(f[2], what),
            key_id=_wire.fixed(f[3], KEY_ID_BYTES, what),
            iteration=_wire.to_int(f[4], 4, what),
            version=version,
        )
        return cls(
            header=header,
            nonce=_wire.fixed(f[5], NONCE_BYTES, what),
            ciphertext=f[6],
            signature=_wire.fixed(f[7], SIGNATURE_BYTES, what),
        )


def is_group_message(data: bytes) -> bool:
    return data[:4] in (MESSAGE_MAGIC, MESSAGE_MAGIC_V1)


@dataclass(frozen=True)
class OpenedMessage:
    """A verified, decrypted group message.

    `sent_at_ms` is the sender's clock (milliseconds since the epoch), authenticated but only as
    true as that clock; None for version 1 messages. `gap` lists the chain positions this message
    skipped: not received yet, so either late or withheld.
    """

    header: GroupHeader
    body: bytes
    sent_at_ms: int | None
    gap: tuple[int, ...] = ()


def _inner(sent_at_ms: int, counter: int, body: bytes) -> bytes:
    return _wire.pack(_wire.u64(sent_at_ms), _wire.u32(counter), body)


# Sender side ---


@dataclass
class OutboundSenderKey:
    """This device's current chain for one conversation."""

    conversation_id: str
    key_id: bytes
    chain_key: bytes
    iteration: int
    created_at: int

    @classmethod
    def create(cls, conversation_id: str, now: int) -> OutboundSenderKey:
        return cls(
            conversation_id=conversation_id,
            key_id=nacl.utils.random(KEY_ID_BYTES),
            chain_key=nacl.utils.random(KEY_BYTES),
            iteration=0,
            created_at=now,
        )

    def needs_rotation(self, now: int) -> bool:
        """True after 100 messages or 7 days; removal of a member is the caller's trigger."""
        return (
            self.iteration >= MAX_MESSAGES_PER_KEY or now - self.created_at >= MAX_KEY_AGE_SECONDS
        )

    def distribution(
        self, sender: DeviceKeys, *, audit_key: bytes | None = None
    ) -> SenderKeyDistribution:
        """The chain at its current position for a member device; sealed to `audit_key` if set."""
        seal = None
        if audit_key is not None:
            record = SenderKeyRecord(
                conversation_id=self.conversation_id,
                sender_user=sender.user_id,
                sender_device=sender.device_id,
                signing_key=sender.signing_public,
                key_id=self.key_id,
                iteration=self.iteration,
                chain_key=self.chain_key,
                created_at=self.created_at,
            )
            seal = AuditSeal(audit_key=audit_key, sealed=_audit.seal(audit_key, record.to_bytes()))
        return SenderKeyDistribution(
            conversation_id=self.conversation_id,
            sender_user=sender.user_id,
            sender_device=sender.device_id,
            key_id=self.key_id,
            iteration=self.iteration,
            chain_key=self.chain_key,
            created_at=self.created_at,
            audit=seal,
        )

    def encrypt(
        self,
        sender: DeviceKeys,
        plaintext: bytes,
        *,
        nonce: bytes | None = None,
        sent_at_ms: int | None = None,
    ) -> bytes:
        """Encrypt and sign the next message, then advance the chain (old key forgotten).

        Inside the ciphertext the body follows the sender's timestamp (now unless given) and
        the chain counter, so a receiver can order messages and see gaps from what it opened."""
        if self.iteration >= MAX_MESSAGES_PER_KEY:
            raise PolicyError("sender key exhausted after 100 messages; rotate first")
        header = GroupHeader(
            self.conversation_id, sender.user_id, sender.device_id, self.key_id, self.iteration
        )
        nonce = nonce if nonce is not None else nacl.utils.random(NONCE_BYTES)
        if sent_at_ms is None:
            sent_at_ms = time.time_ns() // 1_000_000
        inner = _inner(sent_at_ms, self.iteration, plaintext)
        ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
            _wire.pad(inner), header.aad(), nonce, message_key(self.chain_key)
        )
        unsigned = GroupEnvelope(header, nonce, ciphertext, b"")
        envelope = replace(unsigned, signature=sender.sign(unsigned.signed_bytes()))
        self.chain_key = next_chain_key(self.chain_key)
        self.iteration += 1
        return envelope.to_bytes()


# Receiver side ---


@dataclass
class InboundSenderKey:
    """A member's copy of someone's chain: position plus keys of skipped (late) messages."""

    conversation_id: str
    sender: DeviceIdentity
    key_id: bytes
    chain_key: bytes
    iteration: int
    created_at: int
    skipped: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def from_distribution(
        cls, dist: SenderKeyDistribution, sender: DeviceIdentity
    ) -> InboundSenderKey:
        if (dist.sender_user, dist.sender_device) != (sender.user_id, sender.device_id):
            raise TamperedError("sender key distribution names another sender than its envelope")
        return cls(
            conversation_id=dist.conversation_id,
            sender=sender,
            key_id=dist.key_id,
            chain_key=dist.chain_key,
            iteration=dist.iteration,
            created_at=dist.created_at,
        )

    def decrypt(self, envelope: GroupEnvelope) -> bytes:
        """The body of `open`."""
        return self.open(envelope).body

    def open(self, envelope: GroupEnvelope) -> OpenedMessage:
        """Verify, decrypt and consume one message key. Raises without changing state on error."""
        header = envelope.header
        if (header.conversation_id, header.key_id) != (self.conversation_id, self.key_id) or (
            header.sender_user,
            header.sender_device,
        ) != (self.sender.user_id, self.sender.device_id):
            raise UnknownSenderKey("message does not belong to this sender key")
        verify_signature(self.sender.signing_key, envelope.signed_bytes(), envelope.signature)
        i = header.iteration
        if i >= MAX_MESSAGES_PER_KEY:
            raise PolicyError("message beyond the 100-message limit of a sender key")
        new_skipped: dict[int, bytes] = {}
        if i < self.iteration:
            key = self.skipped.get(i)
            if key is None:
                raise ReplayError(f"group message {i} was already received or is too old")
            chain, position = self.chain_key, self.iteration
        else:
            chain, position = self.chain_key, self.iteration
            while position < i:
                new_skipped[position] = message_key(chain)
                chain = next_chain_key(chain)
                position += 1
            key = message_key(chain)
            chain, position = next_chain_key(chain), position + 1
        try:
            padded = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                envelope.ciphertext, header.aad(), envelope.nonce, key
            )
        except nacl.exceptions.CryptoError as exc:
            raise TamperedError("group message: authentication failed") from exc
        plaintext = _wire.unpad(padded, "group message")
        sent_at_ms = None
        if header.version == 2:
            ts, counter, plaintext = _wire.unpack(plaintext, 3, "group message content")
            sent_at_ms = _wire.to_int(ts, 8, "group message content")
            if _wire.to_int(counter, 4, "group message content") != i:
                raise TamperedError("group message: counter inside differs from its header")
        gap = tuple(new_skipped)
        # commit: the key used is forgotten, so the same message never decrypts twice
        if i < self.iteration:
            del self.skipped[i]
        else:
            self.skipped.update(new_skipped)
            self.chain_key, self.iteration = chain, position
        return OpenedMessage(header, plaintext, sent_at_ms, gap)


@dataclass
class SenderKeyStore:
    """All inbound sender keys a device holds, by (conversation, sender device, key id)."""

    keys: dict[tuple[str, str, str, bytes], InboundSenderKey] = field(default_factory=dict)

    def add(self, dist: SenderKeyDistribution, sender: DeviceIdentity) -> InboundSenderKey:
        """Install a distributed key; a re-sent copy never resets a chain already held."""
        slot = (dist.conversation_id, dist.sender_user, dist.sender_device, dist.key_id)
        current = self.keys.get(slot)
        if current is not None:
            return current
        inbound = InboundSenderKey.from_distribution(dist, sender)
        self.keys[slot] = inbound
        return inbound

    def decrypt(self, data: bytes) -> tuple[GroupHeader, bytes]:
        opened = self.open(data)
        return opened.header, opened.body

    def open(self, data: bytes) -> OpenedMessage:
        envelope = GroupEnvelope.from_bytes(data)
        h = envelope.header
        inbound = self.keys.get((h.conversation_id, h.sender_user, h.sender_device, h.key_id))
        if inbound is None:
            raise UnknownSenderKey(
                f"no sender key {h.key_id.hex()[:8]} from device {h.sender_device}"
                f" for conversation {h.conversation_id}"
            )
        return inbound.open(envelope)

    def forget_conversation(self, conversation_id: str) -> None:
        self.keys = {k: v for k, v in self.keys.items() if k[0] != conversation_id}
