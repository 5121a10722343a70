"""End-to-end encryption on top of the messenger client: what the server sees is ciphertext only.

`E2ESession` owns this device's keys and the protocol state of docs/crypto.md. It talks to the
server through `E2ETransport`, the handful of API calls it needs (the client SDK provides them),
and turns incoming stream events into `DecryptedMessage` or `RejectedMessage` values.

    session = E2ESession(transport, device_keys)
    await session.register_device("Laptop")
    await session.send_text(conversation_id, "Hallo")
    for result in await session.handle_event(event):   # each event from the stream
        ...
    save(session.safe_cursors(client.cursors))          # never past a message not yet kept

Sending fetches the conversation's members, verifies their device records (self-signature,
pinned key) and distributes this device's sender key to every device that lacks it. When a
member or device has gone, a fresh sender key is made first, so they cannot read what follows.

Receiving never loses a message silently. A message whose sender key has not arrived is held
(the server replays to-device envelopes before messages, so after an absence keys come first).
When the stream has caught up (`synced`) and a message is still held, the session says so with
an `UndecryptableMessage` and asks the sender's device for the key again; the sender answers a
device it gave that key to before if it is still a member, and the held message then comes out
as a `DecryptedMessage`. When the hold is full, a `HoldFull` event names the conversation and
the first message not kept, and `safe_cursors` keeps the saved stream position before it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from messenger.client import (
    Conflict,
    Cursors,
    Envelope,
    EventStream,
    MembershipChanged,
    MessengerClient,
    MessengerError,
    NotFound,
)
from messenger.client.content import (
    MAX_LIVE_SECONDS,
    AttachmentRef,
    Content,
    ContentError,
    Edit,
    File,
    LiveShare,
    Location,
    Parsed,
    Reaction,
    Text,
    Thumbnail,
    Voice,
    encode,
    image_info,
    parse_content,
    voice_duration_ms,
)
from messenger.crypto import (
    AuditSeal,
    CryptoError,
    DeviceIdentity,
    DeviceKeys,
    IdentityError,
    InboundSenderKey,
    KeyStoreError,
    MalformedError,
    MasterKey,
    MasterKeyRecord,
    MembershipStatement,
    OneTimePrekey,
    OutboundSenderKey,
    PairwiseChannel,
    PolicyError,
    PrekeyBundle,
    PrekeyStore,
    RatchetChannel,
    ReplayWindow,
    SenderKeyDistribution,
    SenderKeyRequest,
    SenderKeyStore,
    SignedPrekey,
    Trust,
    UnknownSenderKey,
    audit_seal_statement,
    decrypt_attachment,
    decrypt_pairwise,
    encrypt_attachment,
    is_distribution,
    is_key_request,
    is_ratchet_envelope,
    open_state,
    parse_header,
    parse_ratchet_envelope,
    safety_number,
    seal_state,
    verify_approval,
    write_private_file,
)
from messenger.crypto._pairwise import SESSION_SHIFT
from messenger.crypto._ratchet import ONE_TIME_BATCH
from messenger.crypto._senderkeys import GroupEnvelope

log = logging.getLogger(__name__)

DeviceAddress = tuple[str, str]  # (user_id, device_id)
MAX_PENDING = 10_000  # messages held for a sender key that has not arrived yet
MAX_SENT_KEYS = 1_000  # own sender keys remembered to answer key requests
MAX_ONE_TIME_SECRETS = 400  # one-time prekey secrets kept (claimed ones may be used late)
SEND_ATTEMPTS = 3  # sends retried when the members changed meanwhile


@dataclass(frozen=True)
class DeviceRecord:
    """One entry of `GET /v1/users/{id}/devices`, keys decoded from base64."""

    user_id: str
    device_id: str
    signing_key: bytes
    exchange_key: bytes
    signature: bytes
    approval: bytes | None = None  # a master key's signature over the device (cross-signing)
    approved_by: str | None = None  # whose master key: the owner, or a tenant administrator


@dataclass(frozen=True)
class Roster:
    """A conversation's members and the seq of its latest membership change."""

    members: tuple[str, ...]
    membership_seq: int


@dataclass(frozen=True)
class Bundle:
    """A claimed prekey bundle of one device (`E2ETransport.claim_prekeys`)."""

    user_id: str
    device_id: str
    signed_prekey: SignedPrekey
    one_time_prekey: OneTimePrekey | None


@dataclass(frozen=True)
class DeviceTrust:
    """How one device of a user is vouched for, for showing the user (`E2ESession.device_trust`).

    `Trust.OWNER`: approved by its user's master key; `Trust.ADMIN`: approved by the tenant
    administrator `approved_by` (recovery path; show it as such); `Trust.UNVERIFIED`: nobody
    vouched for it, so no group key is shared with it."""

    user_id: str
    device_id: str
    fingerprint: str
    trust: Trust
    approved_by: str | None


class E2ETransport(Protocol):
    """The server calls E2ESession needs; ciphertexts are raw bytes (the transport base64s them).

    Every method raises the client SDK's own errors for HTTP failures; E2ESession lets them pass.
    """

    async def register_device(
        self,
        *,
        device_id: str,
        name: str,
        signing_key: bytes,
        exchange_key: bytes,
        signature: bytes,
    ) -> None: ...

    async def list_devices(self, user_id: str) -> Sequence[DeviceRecord]: ...

    async def conversation_members(self, conversation_id: str) -> Sequence[str]: ...

    async def conversation_roster(self, conversation_id: str) -> Roster: ...

    async def send_message(
        self,
        conversation_id: str,
        *,
        txn_id: str,
        sender_device_id: str,
        ciphertext: bytes,
        attachment_ids: Sequence[str] = (),
        membership_seq: int | None = None,
    ) -> int: ...

    async def publish_prekeys(
        self, device_id: str, signed: SignedPrekey | None, one_time: Sequence[OneTimePrekey]
    ) -> int: ...

    async def claim_prekeys(self, devices: Sequence[DeviceAddress]) -> Sequence[Bundle]: ...

    async def publish_master_key(self, record: MasterKeyRecord) -> bool: ...

    async def master_key(self, user_id: str) -> MasterKeyRecord | None: ...

    async def approve_device(self, user_id: str, device_id: str, signature: bytes) -> None: ...

    async def add_members(
        self, conversation_id: str, user_ids: Sequence[str], signed: Mapping[str, Any]
    ) -> None: ...

    async def remove_member(
        self, conversation_id: str, user_id: str, signed: Mapping[str, Any]
    ) -> None: ...

    async def send_to_device(
        self, *, txn_id: str, sender_device_id: str, messages: Sequence[tuple[str, str, bytes]]
    ) -> None: ...

    async def upload_attachment(self, conversation_id: str, blob: bytes) -> str: ...

    async def download_attachment(self, attachment_id: str) -> bytes: ...

    async def delete_message(self, conversation_id: str, seq: int) -> int: ...


class ClientTransport:
    """`E2ETransport` over the SDK's `MessengerClient` (logged in, device chosen by the session)."""

    def __init__(self, client: MessengerClient) -> None:
        self.client = client
        self.stream: EventStream | None = None  # while set, messages are sent through it

    async def register_device(
        self,
        *,
        device_id: str,
        name: str,
        signing_key: bytes,
        exchange_key: bytes,
        signature: bytes,
    ) -> None:
        await self.client.register_device(
            name, signing_key, exchange_key, signature, device_id=device_id
        )

    async def list_devices(self, user_id: str) -> Sequence[DeviceRecord]:
        return device_records(await self.client.devices(user_id))

    async def conversation_members(self, conversation_id: str) -> Sequence[str]:
        return (await self.conversation_roster(conversation_id)).members

    async def conversation_roster(self, conversation_id: str) -> Roster:
        conv = await self.client.conversation(conversation_id)
        members = tuple(str(m["user_id"]) for m in conv["members"])
        return Roster(members, int(conv.get("membership_seq", 0)))

    async def send_message(
        self,
        conversation_id: str,
        *,
        txn_id: str,
        sender_device_id: str,
        ciphertext: bytes,
        attachment_ids: Sequence[str] = (),
        membership_seq: int | None = None,
    ) -> int:
        stream = self.stream
        if stream is not None and sender_device_id == self.client.device_id:
            result = await stream.send_raw(
                conversation_id,
                ciphertext,
                txn_id=txn_id,
                attachment_ids=attachment_ids,
                membership_seq=membership_seq,
            )
        else:
            result = await self.client.send_raw(
                conversation_id,
                ciphertext,
                txn_id=txn_id,
                attachment_ids=attachment_ids,
                device_id=sender_device_id,
                membership_seq=membership_seq,
            )
        return result.seq

    async def publish_prekeys(
        self, device_id: str, signed: SignedPrekey | None, one_time: Sequence[OneTimePrekey]
    ) -> int:
        spk = None
        if signed is not None:
            spk = {
                "key_id": signed.key_id,
                "public_key": _b64(signed.public_key),
                "signature": _b64(signed.signature),
            }
        otks = [{"key_id": k.key_id, "public_key": _b64(k.public_key)} for k in one_time]
        return await self.client.publish_prekeys(
            device_id, signed_prekey=spk, one_time_prekeys=otks
        )

    async def claim_prekeys(self, devices: Sequence[DeviceAddress]) -> Sequence[Bundle]:
        bundles = []
        for b in await self.client.claim_prekeys(devices):
            try:
                spk, otk = b["signed_prekey"], b.get("one_time_prekey")
                bundles.append(
                    Bundle(
                        user_id=str(b["user_id"]),
                        device_id=str(b["device_id"]),
                        signed_prekey=SignedPrekey(
                            int(spk["key_id"]),
                            _unb64(spk["public_key"]),
                            _unb64(spk["signature"]),
                        ),
                        one_time_prekey=(
                            OneTimePrekey(int(otk["key_id"]), _unb64(otk["public_key"]))
                            if otk
                            else None
                        ),
                    )
                )
            except (KeyError, TypeError, ValueError, MalformedError) as exc:
                log.warning("skipping an unreadable prekey bundle: %s", type(exc).__name__)
        return bundles

    async def publish_master_key(self, record: MasterKeyRecord) -> bool:
        try:
            await self.client.publish_master_key(record.public_key, record.signature)
        except Conflict:
            return False
        return True

    async def master_key(self, user_id: str) -> MasterKeyRecord | None:
        try:
            d = await self.client.master_key(user_id)
        except NotFound:
            return None
        return MasterKeyRecord(str(d["user_id"]), _unb64(d["master_key"]), _unb64(d["signature"]))

    async def approve_device(self, user_id: str, device_id: str, signature: bytes) -> None:
        await self.client.approve_device(user_id, device_id, signature)

    async def add_members(
        self, conversation_id: str, user_ids: Sequence[str], signed: Mapping[str, Any]
    ) -> None:
        await self.client.add_members(conversation_id, user_ids, signed=signed)

    async def remove_member(
        self, conversation_id: str, user_id: str, signed: Mapping[str, Any]
    ) -> None:
        await self.client.remove_member(conversation_id, user_id, signed=signed)

    async def send_to_device(
        self, *, txn_id: str, sender_device_id: str, messages: Sequence[tuple[str, str, bytes]]
    ) -> None:
        envelopes = [Envelope(user, device, ct) for user, device, ct in messages]
        await self.client.send_to_device(envelopes, txn_id=txn_id, device_id=sender_device_id)

    async def upload_attachment(self, conversation_id: str, blob: bytes) -> str:
        return await self.client.upload(conversation_id, blob)

    async def download_attachment(self, attachment_id: str) -> bytes:
        return await self.client.download(attachment_id)

    async def delete_message(self, conversation_id: str, seq: int) -> int:
        return await self.client.delete_message(conversation_id, seq)


def device_records(rows: Sequence[Mapping[str, Any]]) -> list[DeviceRecord]:
    """Device records from the server's JSON (keys in base64); unreadable ones are skipped."""
    records = []
    for d in rows:
        try:
            records.append(
                DeviceRecord(
                    user_id=str(d["user_id"]),
                    device_id=str(d["device_id"]),
                    signing_key=_unb64(d["signing_key"]),
                    exchange_key=_unb64(d["exchange_key"]),
                    signature=_unb64(d["signature"]),
                    approval=_unb64(d["approval"]) if d.get("approval") else None,
                    approved_by=str(d["approved_by"]) if d.get("approved_by") else None,
                )
            )
        except (KeyError, MalformedError) as exc:
            log.warning("skipping an unreadable device record: %s", exc)
    return records


@dataclass(frozen=True)
class DecryptedMessage:
    """A verified message. `content` is its typed content (messenger.client.content); `body`,
    `attachment` and `actions` repeat the text, caption, file and buttons for simple readers."""

    conversation_id: str
    seq: int
    sender_user_id: str
    sender_device_id: str
    body: str
    attachment: AttachmentRef | None = None
    actions: tuple[tuple[str, str], ...] = ()  # (label, reply) buttons offered by the sender
    sent_at_ms: int | None = None  # the sender's clock, authenticated; None for old messages
    sender_verified: bool = True  # False: the sending device is not cross-signed (show it)
    content: Content | None = None
    reply_to: int | None = None  # seq of the message this one answers

    @property
    def parsed(self) -> Parsed:
        assert self.content is not None
        return Parsed(self.content, self.reply_to)


@dataclass(frozen=True)
class UndecodableMessage:
    """A verified message whose content is outside the schema this client knows (shown as
    "cannot be displayed"); `reason` says why, without any of the content."""

    conversation_id: str
    seq: int
    sender_user_id: str
    sender_device_id: str
    reason: str


@dataclass(frozen=True)
class MessageDeleted:
    """The message `target` was deleted for everyone by `by_user_id` (the server dropped it)."""

    conversation_id: str
    seq: int  # the redaction's own place in the conversation
    target: int
    by_user_id: str


@dataclass(frozen=True)
class RejectedMessage:
    """An event that failed verification; shown to the user as "could not be verified"."""

    conversation_id: str | None
    seq: int
    sender_user_id: str
    sender_device_id: str
    error: CryptoError


@dataclass(frozen=True)
class UndecryptableMessage:
    """A message still held for want of its sender key after the stream caught up.

    The key has been requested from the sender's device; the message stays held and comes out
    as a `DecryptedMessage` when the key arrives (`E2ESession.request_missing_keys` asks again).
    """

    conversation_id: str
    seq: int
    sender_user_id: str
    sender_device_id: str


@dataclass(frozen=True)
class HoldFull:
    """The hold of waiting messages is full: this conversation's messages from `from_seq` on
    are not kept. `E2ESession.safe_cursors` stays before `from_seq`, so a restart reads them
    again from the server; `E2ESession.rewind` resumes them in the running process."""

    conversation_id: str
    from_seq: int


@dataclass(frozen=True)
class MessageGap:
    """A message of this sender's chain skipped `missing` (chain counters): they have not
    arrived. Late ones still open when they come; ones that never come were withheld."""

    conversation_id: str
    seq: int  # the message that showed the gap
    sender_user_id: str
    sender_device_id: str
    missing: tuple[int, ...]


@dataclass(frozen=True)
class MembershipChange:
    """A member was added or removed. `verified`: the change carries a valid signature of a
    verified device of `by_user_id` (the member or group admin who made it), made after the
    previous change; False for changes the server made or reports without such a signature."""

    conversation_id: str
    seq: int
    action: str  # "added" or "removed"
    user_id: str
    by_user_id: str | None
    by_device_id: str | None
    verified: bool


E2EResult = (
    DecryptedMessage
    | RejectedMessage
    | UndecryptableMessage
    | UndecodableMessage
    | MessageDeleted
    | HoldFull
    | MessageGap
    | MembershipChange
)


class AuditSource(Protocol):
    """Where a session learns the tenant's audit key and deposits its seals
    (`messenger.client.audit.TenantAudit` over the server)."""

    async def current(self) -> tuple[bytes, str] | None:
        """(audit public key, key id) while audit is on, verified and pinned; None when off.
        Raises `IdentityError` when the key changed and the user has not accepted it."""
        ...

    async def deposit(
        self, conversation_id: str, chain_key_id: bytes, sealed: bytes, signature: bytes
    ) -> None: ...


@dataclass
class _Outbound:
    key: OutboundSenderKey
    membership_seq: int = 0  # the membership change this key was made after
    audit_key: bytes | None = None
    holders: set[DeviceAddress] = field(default_factory=set)
    # the distribution each holder got (the chain where it joined), re-sent on a key request
    shared: dict[DeviceAddress, bytes] = field(default_factory=dict)


class E2ESession:
    """This device's end-to-end state, for one event loop (sends from several tasks are
    serialised; events should be handled by one task, in stream order).

    Args:
        transport: the server calls (the client SDK, bound to this user and device).
        keys: this device's secret keys (see `messenger.crypto.load_device_keys`).
        audit_key: the tenant's audit public key when audit is on; then every sender key is also
            sealed to it, and distributions from others without that seal are refused.
        clock: seconds since the epoch; tests move it to see 7-day rotation.
        max_pending: messages held at most while their sender keys are missing.
    """

    def __init__(
        self,
        transport: E2ETransport,
        keys: DeviceKeys,
        *,
        audit_key: bytes | None = None,
        clock: Callable[[], float] = time.time,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.transport = transport
        self.keys = keys
        self.audit_key = audit_key
        self._clock = clock
        self._pinned: dict[DeviceAddress, DeviceIdentity] = {}
        self._devices: dict[str, list[DeviceIdentity]] = {}
        self._channels: dict[DeviceAddress, PairwiseChannel] = {}  # version 1, read only
        self._ratchets: dict[DeviceAddress, RatchetChannel] = {}
        self._prekeys = PrekeyStore()
        self._master: MasterKey | None = None  # this user's master key, if this device holds it
        self._masters: dict[str, MasterKeyRecord] = {}  # pinned master keys by user
        self._records: dict[DeviceAddress, DeviceRecord] = {}
        self._trust: dict[DeviceAddress, tuple[Trust, str | None]] = {}
        self._outbound: dict[str, _Outbound] = {}
        # Members as last read, per conversation. A send names the membership change it was
        # prepared after and the server refuses it if a newer one exists, so a stale list
        # costs one refused send, never a message to the wrong members.
        self._rosters: dict[str, Roster] = {}
        self._inbound = SenderKeyStore()
        self._pending: dict[tuple[str, str, str, bytes], list[Mapping[str, Any]]] = {}
        self._max_pending = max_pending
        self._requested: set[tuple[str, str, str, bytes]] = set()
        self._deferred: dict[str, int] = {}  # conversation -> first seq not kept (hold full)
        self._sent_keys: dict[tuple[str, bytes], _Outbound] = {}
        self.identity_warnings: list[str] = []
        self._send_lock = asyncio.Lock()
        self.audit_source: AuditSource | None = None
        self._pin(keys.identity())

    @classmethod
    def for_client(cls, client: MessengerClient, keys: DeviceKeys, **kwargs: Any) -> E2ESession:
        """Wrap a logged-in SDK client; `keys.user_id` must be the client's user id."""
        if client.user_id is not None and client.user_id != keys.user_id:
            raise IdentityError("the device keys belong to another user than the client")
        return cls(ClientTransport(client), keys, **kwargs)

    def send_through(self, stream: EventStream | None) -> None:
        """Send messages through this open stream of the session's client, saving each an
        HTTP request (None: over HTTP again). Sends from the task that reads the stream still
        go over HTTP (`EventStream.send_raw`), so use it where the reading task stays quick:
        an answer waits until that task reads again."""
        if isinstance(self.transport, ClientTransport):
            self.transport.stream = stream

    @property
    def user_id(self) -> str:
        return self.keys.user_id

    @property
    def device_id(self) -> str:
        return self.keys.device_id

    # devices ---------------------------------------------------------------------------------

    async def register_device(self, name: str) -> None:
        """Register this device, publish its prekeys, and set up cross-signing: the user's
        first device makes the master key and approves itself; a later device stays
        unverified until `approve_device` runs on a device holding the master key (or a
        tenant administrator approves it), so a password alone never makes a trusted device."""
        ident = self.keys.identity()
        await self.transport.register_device(
            device_id=ident.device_id,
            name=name,
            signing_key=ident.signing_key,
            exchange_key=ident.exchange_key,
            signature=ident.signature,
        )
        await self.replenish_prekeys()
        await self._ensure_cross_signing()

    async def _ensure_cross_signing(self) -> None:
        """Make and publish the user's master key if the user has none yet (first device, or a
        device registered before cross-signing), and approve this device with it."""
        if await self._master_of(self.user_id) is not None:
            return
        master = MasterKey.generate(self.user_id)
        if await self.transport.publish_master_key(master.record()):
            self._master = master
            self._masters[self.user_id] = master.record()
            await self.transport.approve_device(
                self.user_id, self.device_id, master.approve(self.keys.identity())
            )
        else:  # another device of this user published one first
            await self._master_of(self.user_id)

    async def replenish_prekeys(self) -> int:
        """Publish a signed prekey if none is held, and one-time prekeys when fewer than half
        a batch are left on the server; returns how many the server holds. Runs at each
        `synced` event too."""
        signed = None
        if not self._prekeys.signed:
            signed = self._prekeys.new_signed_prekey(self.keys)
        count = await self.transport.publish_prekeys(self.device_id, signed, [])
        if count < ONE_TIME_BATCH // 2:
            batch = self._prekeys.new_one_time_prekeys(ONE_TIME_BATCH)
            while len(self._prekeys.one_time) > MAX_ONE_TIME_SECRETS:
                del self._prekeys.one_time[next(iter(self._prekeys.one_time))]
            count = await self.transport.publish_prekeys(self.device_id, None, batch)
        return count

    @property
    def holds_master_key(self) -> bool:
        """Whether this device can approve the user's other devices."""
        return self._master is not None

    async def approve_device(self, device_id: str) -> None:
        """Approve another device of this user with the master key held here (raises
        PolicyError on a device that does not hold it). Compare the device's fingerprint
        (`device_trust`) with the one the new device shows before approving it."""
        if self._master is None:
            raise PolicyError(
                "this device holds no master key: approve from the device that does,"
                " or ask a tenant administrator"
            )
        await self.devices_of(self.user_id, refresh=True)
        ident = self._pinned.get((self.user_id, device_id))
        if ident is None:
            raise IdentityError(f"device {device_id} is not among your verified devices")
        await self.transport.approve_device(self.user_id, device_id, self._master.approve(ident))
        self._devices.pop(self.user_id, None)

    async def approve_device_as_admin(self, user_id: str, device_id: str) -> None:
        """The recovery path: a tenant administrator (this session's user, holding their own
        master key) approves a device of a user of their tenant who has no device left to
        approve it. Contacts see such a device as approved by this administrator."""
        if self._master is None:
            raise PolicyError("this device holds no master key of its administrator")
        await self.devices_of(user_id, refresh=True)
        ident = self._pinned.get((user_id, device_id))
        if ident is None:
            raise IdentityError(f"device {device_id} of {user_id} is not in the registry")
        await self.transport.approve_device(
            user_id, device_id, self._master.approve_as_admin(ident)
        )
        self._devices.pop(user_id, None)

    async def device_trust(self, user_id: str) -> list[DeviceTrust]:
        """Every self-consistent device of a user and how it is vouched for; clients show the
        unverified ones (no group keys go to them) and the ones an administrator approved."""
        devices = await self.devices_of(user_id, refresh=True)
        return [
            DeviceTrust(
                d.user_id,
                d.device_id,
                d.fingerprint(),
                *self._trust.get((d.user_id, d.device_id), (Trust.UNVERIFIED, None)),
            )
            for d in devices
        ]

    async def _master_of(self, user_id: str) -> MasterKeyRecord | None:
        """The user's master key, pinned on first sight; a different one later is refused."""
        pinned = self._masters.get(user_id)
        if pinned is not None:
            return pinned
        record = await self.transport.master_key(user_id)
        if record is None:
            return None
        try:
            if record.user_id != user_id:
                raise IdentityError(f"master key listed for the wrong user {user_id}")
            record.verify()
        except IdentityError as exc:
            log.warning("refusing the master key of %s: %s", user_id, exc)
            self.identity_warnings.append(str(exc))
            return None
        self._masters[user_id] = record
        return record

    async def _assess(self, ident: DeviceIdentity, rec: DeviceRecord) -> tuple[Trust, str | None]:
        if rec.approval is None or rec.approved_by is None:
            return Trust.UNVERIFIED, None
        admin = None if rec.approved_by == ident.user_id else rec.approved_by
        master = await self._master_of(rec.approved_by)
        if master is None:
            return Trust.UNVERIFIED, None
        try:
            verify_approval(ident, rec.approval, master, admin_user_id=admin)
        except IdentityError as exc:
            self.identity_warnings.append(str(exc))
            return Trust.UNVERIFIED, None
        return (Trust.ADMIN if admin else Trust.OWNER), rec.approved_by

    def _verified(self, ident: DeviceIdentity) -> bool:
        trust, _ = self._trust.get((ident.user_id, ident.device_id), (Trust.UNVERIFIED, None))
        return trust is not Trust.UNVERIFIED

    def _pin(self, ident: DeviceIdentity) -> None:
        """Trust on first use per device: a device whose key later changes is refused."""
        ident.verify()
        address = (ident.user_id, ident.device_id)
        known = self._pinned.get(address)
        if known is not None and (known.signing_key, known.exchange_key) != (
            ident.signing_key,
            ident.exchange_key,
        ):
            raise IdentityError(f"device {ident.device_id} of {ident.user_id} changed its keys")
        self._pinned[address] = ident

    async def devices_of(self, user_id: str, *, refresh: bool = False) -> list[DeviceIdentity]:
        """The self-consistent devices of a user (cached until a device_list event or
        `refresh`); whether each is cross-signed is `device_trust`."""
        if refresh or user_id not in self._devices:
            verified: list[DeviceIdentity] = []
            for rec in await self.transport.list_devices(user_id):
                ident = DeviceIdentity(
                    rec.user_id, rec.device_id, rec.signing_key, rec.exchange_key, rec.signature
                )
                if ident.user_id != user_id:
                    self.identity_warnings.append(f"device {rec.device_id} listed for wrong user")
                    continue
                try:
                    self._pin(ident)
                except IdentityError as exc:
                    log.warning("refusing device %s of %s: %s", rec.device_id, user_id, exc)
                    self.identity_warnings.append(str(exc))
                    continue
                verified.append(ident)
                self._records[(ident.user_id, ident.device_id)] = rec
                self._trust[(ident.user_id, ident.device_id)] = await self._assess(ident, rec)
            self._devices[user_id] = verified
        return self._devices[user_id]

    async def _identity(self, user_id: str, device_id: str) -> DeviceIdentity:
        ident = self._pinned.get((user_id, device_id))
        if ident is None:
            await self.devices_of(user_id, refresh=True)
            ident = self._pinned.get((user_id, device_id))
        if ident is None:
            raise UnknownSenderKey(f"device {device_id} of {user_id} is not in the registry")
        return ident

    async def identity_of(self, user_id: str, device_id: str) -> DeviceIdentity:
        """A device's verified, pinned identity (from the registry when not pinned yet)."""
        return await self._identity(user_id, device_id)

    def pin(self, ident: DeviceIdentity) -> None:
        """Verify a device record the server handed over and pin it (IdentityError if it
        contradicts the pinned one)."""
        self._pin(ident)

    async def safety_number(self, user_id: str) -> str:
        """Digits both users compare out of band to rule out a key-swapping server."""
        mine = await self.devices_of(self.user_id, refresh=True)
        theirs = await self.devices_of(user_id, refresh=True)
        return safety_number(mine, theirs)

    def _channel(self, peer: DeviceIdentity) -> PairwiseChannel:
        """The version 1 channel (Box), kept to read envelopes sent before the upgrade."""
        address = (peer.user_id, peer.device_id)
        channel = self._channels.get(address)
        if channel is None:
            channel = PairwiseChannel(self.keys, peer)
            self._channels[address] = channel
        return channel

    def _ratchet(self, peer: DeviceIdentity) -> RatchetChannel:
        address = (peer.user_id, peer.device_id)
        channel = self._ratchets.get(address)
        if channel is None:
            channel = RatchetChannel(self.keys, peer)
            self._ratchets[address] = channel
        return channel

    async def _send_pairwise(
        self, peers: Sequence[DeviceIdentity], payload: bytes
    ) -> set[DeviceAddress]:
        """Send one payload to each device over its ratchet channel, first claiming prekey
        bundles (one request) for devices without a session; returns the devices reached.
        Sender-key distributions leave this device only through here."""
        new = [p for p in peers if not self._ratchet(p).ready]
        if new:
            claimed = {
                (b.user_id, b.device_id): b
                for b in await self.transport.claim_prekeys([(p.user_id, p.device_id) for p in new])
            }
            for peer in new:
                bundle = claimed.get((peer.user_id, peer.device_id))
                if bundle is None:
                    log.warning("device %s of %s has no prekeys", peer.device_id, peer.user_id)
                    continue
                try:
                    self._ratchet(peer).start(
                        PrekeyBundle(peer, bundle.signed_prekey, bundle.one_time_prekey)
                    )
                except IdentityError as exc:
                    self.identity_warnings.append(str(exc))
        batch = [
            (p.user_id, p.device_id, self._ratchet(p).encrypt(payload))
            for p in peers
            if self._ratchet(p).ready
        ]
        if batch:
            await self.transport.send_to_device(
                txn_id=uuid.uuid4().hex, sender_device_id=self.device_id, messages=batch
            )
        return {(user, device) for user, device, _ in batch}

    # sealing to exact devices ----------------------------------------------------------------

    async def trust_devices(self, records: Sequence[DeviceRecord]) -> list[DeviceIdentity]:
        """The cross-signed devices among records fetched in bulk (e.g. an alarm list's).

        Each is pinned and checked as `devices_of` does; a record with a bad self-signature,
        a changed key or no valid approval by its owner's (or an administrator's) master key
        is left out, so only devices that get sender keys get sealed payloads.
        """
        owners = sorted({r.approved_by for r in records if r.approved_by})
        await asyncio.gather(*(self._master_of(user_id) for user_id in owners))
        trusted = []
        for rec in records:
            ident = DeviceIdentity(
                rec.user_id, rec.device_id, rec.signing_key, rec.exchange_key, rec.signature
            )
            try:
                self._pin(ident)
            except CryptoError as exc:
                log.warning("refusing device %s of %s: %s", rec.device_id, rec.user_id, exc)
                self.identity_warnings.append(str(exc))
                continue
            self._records[(ident.user_id, ident.device_id)] = rec
            self._trust[(ident.user_id, ident.device_id)] = await self._assess(ident, rec)
            if self._verified(ident):
                trusted.append(ident)
        return trusted

    def seal_for(
        self, devices: Sequence[DeviceIdentity], plaintext: bytes
    ) -> list[tuple[str, str, bytes]]:
        """Seal `plaintext` to each device: (user, device, bytes).

        A stateless signed envelope (version 1, `Box`), not the ratchet: the payload can be
        opened again when it arrives again (an alarm's repeats, a reinstalled state file).
        """
        return [(d.user_id, d.device_id, self._channel(d).encrypt(plaintext)) for d in devices]

    async def open_sealed(self, sender_user: str, sender_device: str, envelope: bytes) -> bytes:
        """Open a pairwise envelope `seal_for` made on the sender's device.

        No replay window: the same sealed payload may arrive again (an alarm's repeats), so
        callers that must see each payload once keep track themselves.
        """
        header = parse_header(envelope)
        if (header.sender_user, header.sender_device) != (sender_user, sender_device):
            raise MalformedError("sealed payload names another sender than the server")
        peer = await self._identity(sender_user, sender_device)
        return decrypt_pairwise(self.keys, peer, envelope)[1]

    # sending ---------------------------------------------------------------------------------

    async def _member_devices(self, members: Sequence[str]) -> dict[DeviceAddress, DeviceIdentity]:
        """The cross-signed devices of the members (other than this one): only they get keys."""
        devices: dict[DeviceAddress, DeviceIdentity] = {}
        for user_id in members:
            for ident in await self.devices_of(user_id):
                if self._verified(ident):
                    devices[(ident.user_id, ident.device_id)] = ident
        devices.pop((self.user_id, self.device_id), None)
        return devices

    async def _audit_now(self) -> tuple[bytes, str] | None:
        """The audit key new sender keys are sealed to (from the source when following)."""
        if self.audit_source is None:
            return None
        current = await self.audit_source.current()
        self.audit_key = current[0] if current else None
        return current

    async def _deposit_seal(self, out: _Outbound) -> None:
        """Seal the new chain at position 0 to the audit key and deposit it, signed."""
        assert self.audit_source is not None and out.audit_key is not None
        seal = out.key.distribution(self.keys, audit_key=out.audit_key).audit
        assert seal is not None
        signature = self.keys.sign(
            audit_seal_statement(out.key.conversation_id, out.key.key_id, seal.sealed)
        )
        await self.audit_source.deposit(
            out.key.conversation_id, out.key.key_id, seal.sealed, signature
        )

    async def _prepare(self, conversation_id: str) -> tuple[OutboundSenderKey, int]:
        """Rotate if due (age, count, a member or device gone, any membership change since
        the key was made, another audit key), then distribute where missing. With audit on, a
        new chain is first deposited sealed to the audit key. Returns the key and the
        membership change it was prepared after (the server refuses the message if a newer
        one exists)."""
        now = int(self._clock())
        roster = self._rosters.get(conversation_id)
        if roster is None:
            roster = await self.transport.conversation_roster(conversation_id)
            self._rosters[conversation_id] = roster
        devices = await self._member_devices(roster.members)
        current = self._outbound.get(conversation_id)
        audit = await self._audit_now()
        audit_key = audit[0] if audit else self.audit_key
        if (
            current is None
            or current.key.needs_rotation(now)
            or not current.holders <= devices.keys()
            or current.membership_seq != roster.membership_seq
            or current.audit_key != audit_key
        ):
            current = _Outbound(
                OutboundSenderKey.create(conversation_id, now), roster.membership_seq, audit_key
            )
            if audit is not None:
                await self._deposit_seal(current)
            self._outbound[conversation_id] = current
            self._sent_keys[(conversation_id, current.key.key_id)] = current
            while len(self._sent_keys) > MAX_SENT_KEYS:
                del self._sent_keys[next(iter(self._sent_keys))]
            own = current.key.distribution(self.keys)
            self._inbound.add(own, self.keys.identity())  # to read our own messages back
        missing = [devices[a] for a in sorted(devices.keys() - current.holders)]
        if missing:
            # Every distribution of this device's sender keys to members is made here (key
            # requests re-send one made here), and leaves through `_send_pairwise`.
            dist = current.key.distribution(self.keys, audit_key=current.audit_key).to_bytes()
            reached = await self._send_pairwise(missing, dist)
            current.holders.update(reached)
            current.shared.update((address, dist) for address in reached)
        return current.key, current.membership_seq

    def rotate(self, conversation_id: str) -> None:
        """Forget the current sender key and the members it was made for; the next send reads
        the members, then makes and distributes a new key."""
        self._outbound.pop(conversation_id, None)
        self._rosters.pop(conversation_id, None)

    async def _send(
        self,
        conversation_id: str,
        content: dict[str, Any],
        attachment_ids: Sequence[str] = (),
        *,
        txn_id: str | None = None,
    ) -> int:
        txn_id = txn_id or uuid.uuid4().hex
        for attempt in range(1, SEND_ATTEMPTS + 1):
            async with self._send_lock:  # one rotation and one chain position per send
                key, membership_seq = await self._prepare(conversation_id)
                ciphertext = key.encrypt(self.keys, json.dumps(content).encode())
            try:
                return await self.transport.send_message(
                    conversation_id,
                    txn_id=txn_id,
                    sender_device_id=self.device_id,
                    ciphertext=ciphertext,
                    attachment_ids=attachment_ids,
                    membership_seq=membership_seq,
                )
            except MembershipChanged:
                # The members changed after this key was shared (the removal race): the
                # server stored nothing; a new key for the new members encrypts it again.
                if attempt == SEND_ATTEMPTS:
                    raise
                self.rotate(conversation_id)
        raise AssertionError("unreachable")

    async def add_members(self, conversation_id: str, user_ids: Sequence[str]) -> None:
        """Add members with a membership statement signed by this device (members verify it)."""
        roster = await self.transport.conversation_roster(conversation_id)
        signatures = {
            user_id: _b64(
                self._statement(conversation_id, "added", user_id, roster.membership_seq).sign(
                    self.keys
                )
            )
            for user_id in user_ids
        }
        signed = {
            "device_id": self.device_id,
            "after_seq": roster.membership_seq,
            "signatures": signatures,
        }
        await self.transport.add_members(conversation_id, user_ids, signed)

    async def remove_member(self, conversation_id: str, user_id: str) -> None:
        """Remove a member (or leave, with one's own user id), signed by this device. This
        device's sender key for the conversation is dropped: the next send makes a new one."""
        roster = await self.transport.conversation_roster(conversation_id)
        statement = self._statement(conversation_id, "removed", user_id, roster.membership_seq)
        signed = {
            "device_id": self.device_id,
            "after_seq": roster.membership_seq,
            "signature": _b64(statement.sign(self.keys)),
        }
        await self.transport.remove_member(conversation_id, user_id, signed)
        self.rotate(conversation_id)

    def _statement(
        self, conversation_id: str, action: str, user_id: str, after_seq: int
    ) -> MembershipStatement:
        return MembershipStatement(
            conversation_id, action, user_id, self.user_id, self.device_id, after_seq
        )

    async def send_content(
        self,
        conversation_id: str,
        content: Content,
        *,
        reply_to: int | None = None,
        txn_id: str | None = None,
        attachment_ids: Sequence[str] = (),
    ) -> int:
        """Encrypt and send any content of `messenger.client.content`; returns its seq.

        A caller that may repeat a send after a crash passes the same `txn_id` each time: the
        server stores the first and answers repeats with its sequence number.
        """
        doc = encode(content, reply_to)  # raises ContentError before anything is sent
        return await self._send(conversation_id, doc, attachment_ids, txn_id=txn_id)

    async def send_text(
        self,
        conversation_id: str,
        text: str,
        *,
        txn_id: str | None = None,
        actions: Sequence[Mapping[str, str]] = (),
        reply_to: int | None = None,
    ) -> int:
        """Encrypt and send a text (a reply when `reply_to` names a seq).

        `actions` are buttons a client may show, each `{"label": ..., "reply": ...}`: pressing
        one sends its `reply` as a text (so a client without buttons can type it).
        """
        buttons = tuple((str(a["label"]), str(a["reply"])) for a in actions)
        return await self.send_content(
            conversation_id, Text(text, buttons), reply_to=reply_to, txn_id=txn_id
        )

    async def _upload(
        self, conversation_id: str, data: bytes, name: str, mime: str
    ) -> AttachmentRef:
        blob, key = encrypt_attachment(data)
        attachment_id = await self.transport.upload_attachment(conversation_id, blob)
        return AttachmentRef(attachment_id, name, mime, key)

    async def send_attachment(
        self,
        conversation_id: str,
        data: bytes,
        *,
        name: str,
        mime: str,
        body: str = "",
        reply_to: int | None = None,
        txn_id: str | None = None,
    ) -> int:
        """Encrypt `data` under a fresh key, upload the blob, send the key inside a message.

        An image (`image/*` this client can read) also gets its size and a small JPEG
        thumbnail, made here and encrypted under its own key like the image.
        """
        width = height = None
        thumbnail: Thumbnail | None = None
        info = None
        if mime.startswith("image/"):
            try:
                info = image_info(data)
            except ContentError:
                log.info("image not readable here: sent as a file without thumbnail")
        ref = await self._upload(conversation_id, data, name, mime)
        ids = [ref.attachment_id]
        if info is not None:
            width, height = info.width, info.height
            thumb_ref = await self._upload(conversation_id, info.thumbnail, "", "image/jpeg")
            thumbnail = Thumbnail(thumb_ref, info.thumb_width, info.thumb_height)
            ids.append(thumb_ref.attachment_id)
        content = File(ref, body, width, height, thumbnail)
        return await self.send_content(
            conversation_id, content, reply_to=reply_to, txn_id=txn_id, attachment_ids=ids
        )

    async def send_voice(
        self,
        conversation_id: str,
        data: bytes,
        *,
        mime: str,
        duration_ms: int | None = None,
        name: str = "",
        body: str = "",
        reply_to: int | None = None,
        txn_id: str | None = None,
    ) -> int:
        """Send a voice message: Opus in Ogg (`audio/ogg`) or WAV (`audio/wav`). The container
        is checked first (ContentError if it is not what `mime` says); the duration is read
        from it unless given."""
        measured = voice_duration_ms(data, mime)
        ref = await self._upload(conversation_id, data, name or f"voice.{mime[6:]}", mime)
        content = Voice(ref, duration_ms or measured, body)
        return await self.send_content(
            conversation_id,
            content,
            reply_to=reply_to,
            txn_id=txn_id,
            attachment_ids=[ref.attachment_id],
        )

    async def send_location(
        self,
        conversation_id: str,
        lat: float,
        lon: float,
        accuracy_m: float,
        *,
        reply_to: int | None = None,
        txn_id: str | None = None,
    ) -> int:
        """Send a position once (degrees WGS 84, accuracy radius in metres)."""
        return await self.send_content(
            conversation_id, Location(lat, lon, accuracy_m), reply_to=reply_to, txn_id=txn_id
        )

    async def share_live_location(
        self, conversation_id: str, lat: float, lon: float, accuracy_m: float, *, seconds: int
    ) -> tuple[int, LiveShare]:
        """Start sharing a live position for `seconds`; returns (seq, the share for updates)."""
        if not 1 <= seconds <= MAX_LIVE_SECONDS:
            raise ContentError(f"live sharing lasts 1 to {MAX_LIVE_SECONDS} seconds")
        share = LiveShare(uuid.uuid4().hex, int(self._clock() * 1000) + seconds * 1000)
        seq = await self.send_content(conversation_id, Location(lat, lon, accuracy_m, share))
        return seq, share

    async def update_live_location(
        self,
        conversation_id: str,
        share: LiveShare,
        lat: float,
        lon: float,
        accuracy_m: float,
        *,
        final: bool = False,
    ) -> int:
        """Send a new position of a running share; `final=True` ends the share with it."""
        if int(self._clock() * 1000) >= share.until_ms:
            raise ContentError("this live sharing has ended")
        live = LiveShare(share.id, share.until_ms, final)
        return await self.send_content(conversation_id, Location(lat, lon, accuracy_m, live))

    async def edit(self, conversation_id: str, target: int, body: str) -> int:
        """Replace the text of one's own message `target` (others' clients ignore other edits)."""
        return await self.send_content(conversation_id, Edit(target, body))

    async def react(
        self, conversation_id: str, target: int, emoji: str, *, remove: bool = False
    ) -> int:
        return await self.send_content(conversation_id, Reaction(target, emoji, remove))

    async def delete_for_everyone(self, conversation_id: str, target: int) -> int:
        """Have the server drop one's own message (its ciphertext and attachments) for every
        member; members get a `MessageDeleted`. Returns the seq of the deletion."""
        return await self.transport.delete_message(conversation_id, target)

    async def fetch_attachment(self, ref: AttachmentRef) -> bytes:
        return decrypt_attachment(
            await self.transport.download_attachment(ref.attachment_id), ref.key
        )

    async def fetch_voice(self, voice: Voice) -> bytes:
        """The voice recording, its container checked against its type (ContentError if not)."""
        data = await self.fetch_attachment(voice.attachment)
        voice_duration_ms(data, voice.attachment.mime)
        return data

    # receiving -------------------------------------------------------------------------------

    async def handle_event(self, event: Mapping[str, Any]) -> list[E2EResult]:
        """Process one stream event; returns the messages it made readable (possibly several,
        when a sender key arrives after messages that were waiting for it)."""
        kind = event.get("type")
        if kind == "to_device":
            return await self._on_to_device(event)
        if kind == "message":
            if event.get("deleted"):
                return []  # its redaction follows in the sequence and says so
            return await self._on_message(event)
        if kind == "redaction":
            return [
                MessageDeleted(
                    str(event["conversation_id"]),
                    int(event["seq"]),
                    int(event["redacts"]),
                    str(event["by_user_id"]),
                )
            ]
        if kind == "membership":
            # Any membership change seen: the next message goes under a new sender key (the
            # server also refuses a message prepared before a change it stored meanwhile).
            self.rotate(str(event["conversation_id"]))
            self._devices.pop(str(event["user_id"]), None)
            return [await self._membership_change(event)]
        if kind == "device_list":
            self._devices.pop(str(event["user_id"]), None)
        elif kind == "synced":
            # device_list events are live only: after a (re)connect, devices registered while
            # this client was away are unknown, so every list is read afresh at the next send.
            self._devices.clear()
            self._rosters.clear()
            try:
                await self.replenish_prekeys()
                await self._ensure_cross_signing()
            except MessengerError as exc:
                log.warning("cannot publish prekeys or the master key: %s", exc)
            # Keys come before messages in the replay: what is still held now lacks its key.
            return await self._request_keys(only_new=True)
        return []

    async def _membership_change(self, event: Mapping[str, Any]) -> MembershipChange:
        cid, seq = str(event["conversation_id"]), int(event["seq"])
        action, user_id = str(event["action"]), str(event["user_id"])
        by_user = str(event["by_user_id"]) if event.get("by_user_id") else None
        by_device = str(event["by_device_id"]) if event.get("by_device_id") else None
        verified = False
        if by_user and by_device and event.get("signature") is not None:
            try:
                after_seq = int(event["after_seq"])
                if after_seq >= seq:
                    raise MalformedError("membership statement names a later change")
                actor = await self._identity(by_user, by_device)
                statement = MembershipStatement(cid, action, user_id, by_user, by_device, after_seq)
                statement.verify(actor, _unb64(event["signature"]))
                verified = self._verified(actor)
            except (CryptoError, MessengerError, ValueError, KeyError, TypeError) as exc:
                log.warning("membership change %s/%s not verified: %s", cid, seq, exc)
        return MembershipChange(cid, seq, action, user_id, by_user, by_device, verified)

    async def request_missing_keys(self) -> list[E2EResult]:
        """Ask again for every sender key that held messages wait for; returns an
        `UndecryptableMessage` per held message."""
        return await self._request_keys(only_new=False)

    async def _request_keys(self, *, only_new: bool) -> list[E2EResult]:
        results: list[E2EResult] = []
        for slot, events in list(self._pending.items()):
            if only_new and slot in self._requested:
                continue
            conversation_id, sender_user, sender_device, key_id = slot
            try:
                peer = await self._identity(sender_user, sender_device)
                request = SenderKeyRequest(conversation_id, key_id).to_bytes()
                if await self._send_pairwise([peer], request):
                    self._requested.add(slot)
            except (CryptoError, MessengerError) as exc:
                log.warning("cannot request a sender key from %s: %s", sender_device, exc)
            results.extend(
                UndecryptableMessage(
                    conversation_id, int(e["seq"]), sender_user, str(e["sender_device_id"])
                )
                for e in events
            )
        return results

    async def _answer_key_request(self, peer: DeviceIdentity, request: SenderKeyRequest) -> None:
        """Re-send a sender key to a device that had it from us and is still a member."""
        address = (peer.user_id, peer.device_id)
        sent = self._sent_keys.get((request.conversation_id, request.key_id))
        dist = sent.shared.get(address) if sent is not None else None
        if dist is None:
            log.info("key request from %s for a key it never had: ignored", peer.device_id)
            return
        try:
            members = await self.transport.conversation_members(request.conversation_id)
            devices = await self.devices_of(peer.user_id, refresh=True)
            if peer.user_id not in members or all(d.device_id != peer.device_id for d in devices):
                log.info("key request from %s, no longer a member: ignored", peer.device_id)
                return
            await self._send_pairwise([peer], dist)
        except MessengerError as exc:
            log.warning("cannot answer the key request of %s: %s", peer.device_id, exc)

    async def _on_to_device(self, event: Mapping[str, Any]) -> list[E2EResult]:
        sender_user, sender_device = str(event["sender_user_id"]), str(event["sender_device_id"])
        seq = int(event.get("seq", 0))
        try:
            envelope = _unb64(event["ciphertext"])
            if is_ratchet_envelope(envelope):
                names = parse_ratchet_envelope(envelope)[0]
                named = (names.sender_user, names.sender_device)
            else:
                header = parse_header(envelope)
                named = (header.sender_user, header.sender_device)
            if named != (sender_user, sender_device):
                raise MalformedError("to-device envelope names another sender than the server")
            peer = await self._identity(sender_user, sender_device)
            if is_ratchet_envelope(envelope):
                plaintext = self._ratchet(peer).decrypt(envelope, self._prekeys).plaintext
            else:
                plaintext = self._channel(peer).decrypt(envelope)
            if is_key_request(plaintext):
                await self._answer_key_request(peer, SenderKeyRequest.from_bytes(plaintext))
                return []
            if not is_distribution(plaintext):
                raise MalformedError("unknown to-device payload")
            dist = SenderKeyDistribution.from_bytes(plaintext)
            self._check_audit(dist.audit)
            self._inbound.add(dist, peer)
        except CryptoError as exc:
            log.warning("to-device %s from %s refused: %s", seq, sender_device, type(exc).__name__)
            return [RejectedMessage(None, seq, sender_user, sender_device, exc)]
        slot = (dist.conversation_id, dist.sender_user, dist.sender_device, dist.key_id)
        self._requested.discard(slot)
        results: list[E2EResult] = []
        for waiting in self._pending.pop(slot, []):
            results.extend(await self._on_message(waiting))
        return results

    def _check_audit(self, seal: AuditSeal | None) -> None:
        if self.audit_key is not None and (seal is None or seal.audit_key != self.audit_key):
            raise PolicyError("audit is on for this tenant but the sender key is not sealed to it")

    async def _on_message(self, event: Mapping[str, Any]) -> list[E2EResult]:
        cid = str(event["conversation_id"])
        seq = int(event["seq"])
        sender_user, sender_device = str(event["sender_user_id"]), str(event["sender_device_id"])
        deferred_from = self._deferred.get(cid)
        if deferred_from is not None and seq >= deferred_from:
            return []  # reported by HoldFull; read again after rewind or restart
        gap: list[E2EResult] = []
        try:
            data = _unb64(event["ciphertext"])
            envelope = GroupEnvelope.from_bytes(data)
            h = envelope.header
            if (h.conversation_id, h.sender_user, h.sender_device) != (
                cid,
                sender_user,
                sender_device,
            ):
                raise MalformedError("message header does not match its conversation or sender")
            try:
                opened = self._inbound.open(data)
            except UnknownSenderKey:
                return self._hold(event)
            if opened.gap:  # reported even if the content below turns out unreadable
                gap.append(MessageGap(cid, seq, sender_user, sender_device, opened.gap))
            try:
                parsed = parse_content(json.loads(opened.body))
            except (ValueError, ContentError) as exc:
                reason = str(exc) if isinstance(exc, ContentError) else "content is not JSON"
                log.info("message %s/%s undecodable: %s", cid, seq, reason)
                return [*gap, UndecodableMessage(cid, seq, sender_user, sender_device, reason)]
            result = _decrypted(
                cid,
                seq,
                sender_user,
                sender_device,
                parsed,
                opened.sent_at_ms,
                self._trust.get((sender_user, sender_device), (None,))[0]
                in (Trust.OWNER, Trust.ADMIN)
                or (sender_user, sender_device) == (self.user_id, self.device_id),
            )
        except CryptoError as exc:
            log.warning("message %s/%s refused: %s", cid, seq, type(exc).__name__)
            return [RejectedMessage(cid, seq, sender_user, sender_device, exc)]
        return [*gap, result]

    # persistence -----------------------------------------------------------------------------

    def save_state(self, path: Path) -> None:
        """Write the protocol state (sealed to this device, mode 0600) so a restart keeps
        reading: held sender keys, own chains and who has them, pinned devices, counters.
        Save after handling events and before advancing the SDK's stream cursors on disk."""
        write_private_file(path, seal_state(self.keys, self.export_state()))

    @classmethod
    def load_state(
        cls, transport: E2ETransport, keys: DeviceKeys, path: Path, **kwargs: Any
    ) -> E2ESession:
        """A session continuing from `save_state`; raises KeyStoreError if unreadable."""
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise KeyStoreError(f"cannot read state file {path}: {exc.strerror}") from exc
        session = cls(transport, keys, **kwargs)
        session.import_state(open_state(keys, blob))
        return session

    def export_state(self) -> bytes:
        """The state as JSON bytes. Holds secret chain keys: seal it (see save_state)."""
        doc = {
            "version": 2,
            "pinned": [_identity_json(i) for i in self._pinned.values()],
            "prekeys": self._prekeys.to_json(),
            "master": _b64(self._master.seed) if self._master else None,
            "masters": [
                [m.user_id, _b64(m.public_key), _b64(m.signature)] for m in self._masters.values()
            ],
            "ratchets": [
                {"peer": [c.peer.user_id, c.peer.device_id], "sessions": c.to_json()}
                for c in self._ratchets.values()
                if c.sessions
            ],
            "channels": [
                {
                    "peer": [c.peer.user_id, c.peer.device_id],
                    "windows": {
                        str(session): {"highest": w.highest, "seen": sorted(w.seen)}
                        for session, w in c.windows.items()
                    },
                }
                for c in self._channels.values()
            ],
            "inbound": [
                {
                    "conversation_id": k.conversation_id,
                    "sender": [k.sender.user_id, k.sender.device_id],
                    "key_id": _b64(k.key_id),
                    "chain_key": _b64(k.chain_key),
                    "iteration": k.iteration,
                    "created_at": k.created_at,
                    "skipped": {str(i): _b64(v) for i, v in k.skipped.items()},
                }
                for k in self._inbound.keys.values()
            ],
            "pending": [dict(e) for events in self._pending.values() for e in events],
        }
        return json.dumps(doc).encode()

    def import_state(self, data: bytes) -> None:
        try:
            doc = json.loads(data)
            if doc.get("version") not in (1, 2):
                raise KeyStoreError("unknown state version")
            for d in doc["pinned"]:
                self._pin(_identity_from_json(d))
            if doc["version"] >= 2:
                self._prekeys = PrekeyStore.from_json(doc["prekeys"])
                if doc["master"]:
                    self._master = MasterKey(self.user_id, _unb64(doc["master"]))
                for user_id, key, signature in doc["masters"]:
                    record = MasterKeyRecord(user_id, _unb64(key), _unb64(signature))
                    record.verify()
                    self._masters[user_id] = record
                for r in doc["ratchets"]:
                    peer = self._pinned[(r["peer"][0], r["peer"][1])]
                    self._ratchet(peer).load(r["sessions"])
            for c in doc["channels"]:
                peer = self._pinned[(c["peer"][0], c["peer"][1])]
                windows = {
                    int(session): ReplayWindow(
                        highest=int(w["highest"]), seen={int(x) for x in w["seen"]}
                    )
                    for session, w in c.get("windows", {}).items()
                }
                if "highest" in c:  # saved before sessions: one window over whole counters
                    windows.update(_session_windows(int(c["highest"]), c["seen"]))
                # The saved counter may be older than the last one sent before a crash, so
                # sending resumes in a new session rather than at a counter peers may have seen.
                self._channels[(peer.user_id, peer.device_id)] = PairwiseChannel(
                    self.keys, peer, windows=windows
                )
            # Own chains are not restored: messages sent after the save would make a restored
            # chain reuse positions its readers already consumed. The next send rotates.
            for k in doc["inbound"]:
                sender = self._pinned[(k["sender"][0], k["sender"][1])]
                inbound = InboundSenderKey(
                    conversation_id=k["conversation_id"],
                    sender=sender,
                    key_id=_unb64(k["key_id"]),
                    chain_key=_unb64(k["chain_key"]),
                    iteration=int(k["iteration"]),
                    created_at=int(k["created_at"]),
                    skipped={int(i): _unb64(v) for i, v in k["skipped"].items()},
                )
                slot = (inbound.conversation_id, sender.user_id, sender.device_id, inbound.key_id)
                self._inbound.keys[slot] = inbound
            for event in doc["pending"]:
                self._keep(event)
        except (ValueError, KeyError, TypeError, IndexError, CryptoError) as exc:
            raise KeyStoreError(f"state file content is corrupt: {type(exc).__name__}") from exc

    def _hold(self, event: Mapping[str, Any]) -> list[E2EResult]:
        """Keep a message until its sender key arrives. When the hold is full, the message and
        the rest of its conversation are not kept but reported (`HoldFull`), and the saved
        stream position stays before them (`safe_cursors`)."""
        if self.waiting() >= self._max_pending:
            cid, seq = str(event["conversation_id"]), int(event["seq"])
            self._deferred[cid] = seq
            log.warning("hold full: conversation %s deferred from %s", cid, seq)
            return [HoldFull(cid, seq)]
        self._keep(event)
        return []

    def _keep(self, event: Mapping[str, Any]) -> None:
        header = GroupEnvelope.from_bytes(_unb64(event["ciphertext"])).header
        slot = (header.conversation_id, header.sender_user, header.sender_device, header.key_id)
        self._pending.setdefault(slot, []).append(event)

    def safe_cursors(self, cursors: Cursors) -> Cursors:
        """The stream position to save: `cursors`, but before any message not kept (hold full).
        Held messages are in the saved state (`save_state`), so the position may pass them."""
        conversations = dict(cursors.conversations)
        for cid, first in self._deferred.items():
            conversations[cid] = min(conversations.get(cid, first - 1), first - 1)
        return Cursors(conversations=conversations, to_device=cursors.to_device)

    def rewind(self, cursors: Cursors) -> Cursors:
        """`safe_cursors`, and the deferred conversations are read again from there: give the
        result to the client (`client.cursors = ...`) and reconnect the stream."""
        safe = self.safe_cursors(cursors)
        self._deferred.clear()
        return safe

    def waiting(self) -> int:
        """Messages held back until their sender key arrives."""
        return sum(len(v) for v in self._pending.values())


def _session_windows(highest: int, seen: Sequence[Any]) -> dict[int, ReplayWindow]:
    """Replay windows per session from a window saved over whole counters (older state)."""
    windows: dict[int, ReplayWindow] = {}
    for counter in sorted({int(x) for x in seen} | {highest}):
        if counter < 0:
            continue
        session, position = divmod(counter, 1 << SESSION_SHIFT)
        window = windows.setdefault(session, ReplayWindow())
        window.seen.add(position)
        window.highest = max(window.highest, position)
    return windows


def _identity_json(ident: DeviceIdentity) -> dict[str, str]:
    return {
        "user_id": ident.user_id,
        "device_id": ident.device_id,
        "signing_key": _b64(ident.signing_key),
        "exchange_key": _b64(ident.exchange_key),
        "signature": _b64(ident.signature),
    }


def _identity_from_json(d: Mapping[str, Any]) -> DeviceIdentity:
    return DeviceIdentity(
        user_id=str(d["user_id"]),
        device_id=str(d["device_id"]),
        signing_key=_unb64(d["signing_key"]),
        exchange_key=_unb64(d["exchange_key"]),
        signature=_unb64(d["signature"]),
    )


def _decrypted(
    cid: str,
    seq: int,
    user: str,
    device: str,
    parsed: Parsed,
    sent_at_ms: int | None,
    sender_verified: bool,
) -> DecryptedMessage:
    content = parsed.content
    body, attachment = "", None
    actions: tuple[tuple[str, str], ...] = ()
    if isinstance(content, Text):
        body, actions = content.body, content.actions
    elif isinstance(content, File | Voice):
        body, attachment = content.body, content.attachment
    elif isinstance(content, Edit):
        body = content.body
    return DecryptedMessage(
        conversation_id=cid,
        seq=seq,
        sender_user_id=user,
        sender_device_id=device,
        body=body,
        attachment=attachment,
        actions=actions,
        sent_at_ms=sent_at_ms,
        content=content,
        reply_to=parsed.reply_to,
        sender_verified=sender_verified,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedError("ciphertext is not base64") from exc
