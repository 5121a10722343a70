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

from messenger.client import Cursors, Envelope, MessengerClient, MessengerError
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
    OutboundSenderKey,
    PairwiseChannel,
    PolicyError,
    ReplayWindow,
    SenderKeyDistribution,
    SenderKeyRequest,
    SenderKeyStore,
    UnknownSenderKey,
    decrypt_attachment,
    decrypt_pairwise,
    encrypt_attachment,
    is_distribution,
    is_key_request,
    open_state,
    parse_header,
    safety_number,
    seal_state,
    write_private_file,
)
from messenger.crypto._pairwise import SESSION_SHIFT
from messenger.crypto._senderkeys import GroupEnvelope

log = logging.getLogger(__name__)

DeviceAddress = tuple[str, str]  # (user_id, device_id)
MAX_PENDING = 10_000  # messages held for a sender key that has not arrived yet
MAX_SENT_KEYS = 1_000  # own sender keys remembered to answer key requests


@dataclass(frozen=True)
class DeviceRecord:
    """One entry of `GET /v1/users/{id}/devices`, keys decoded from base64."""

    user_id: str
    device_id: str
    signing_key: bytes
    exchange_key: bytes
    signature: bytes


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

    async def send_message(
        self,
        conversation_id: str,
        *,
        txn_id: str,
        sender_device_id: str,
        ciphertext: bytes,
        attachment_ids: Sequence[str] = (),
    ) -> int: ...

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
        conv = await self.client.conversation(conversation_id)
        return [str(m["user_id"]) for m in conv["members"]]

    async def send_message(
        self,
        conversation_id: str,
        *,
        txn_id: str,
        sender_device_id: str,
        ciphertext: bytes,
        attachment_ids: Sequence[str] = (),
    ) -> int:
        result = await self.client.send_raw(
            conversation_id,
            ciphertext,
            txn_id=txn_id,
            attachment_ids=attachment_ids,
            device_id=sender_device_id,
        )
        return result.seq

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


E2EResult = (
    DecryptedMessage
    | RejectedMessage
    | UndecryptableMessage
    | UndecodableMessage
    | MessageDeleted
    | HoldFull
    | MessageGap
)


@dataclass
class _Outbound:
    key: OutboundSenderKey
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
        self._channels: dict[DeviceAddress, PairwiseChannel] = {}
        self._outbound: dict[str, _Outbound] = {}
        self._inbound = SenderKeyStore()
        self._pending: dict[tuple[str, str, str, bytes], list[Mapping[str, Any]]] = {}
        self._max_pending = max_pending
        self._requested: set[tuple[str, str, str, bytes]] = set()
        self._deferred: dict[str, int] = {}  # conversation -> first seq not kept (hold full)
        self._sent_keys: dict[tuple[str, bytes], _Outbound] = {}
        self.identity_warnings: list[str] = []
        self._send_lock = asyncio.Lock()
        self._pin(keys.identity())

    @classmethod
    def for_client(cls, client: MessengerClient, keys: DeviceKeys, **kwargs: Any) -> E2ESession:
        """Wrap a logged-in SDK client; `keys.user_id` must be the client's user id."""
        if client.user_id is not None and client.user_id != keys.user_id:
            raise IdentityError("the device keys belong to another user than the client")
        return cls(ClientTransport(client), keys, **kwargs)

    @property
    def user_id(self) -> str:
        return self.keys.user_id

    @property
    def device_id(self) -> str:
        return self.keys.device_id

    # devices ---------------------------------------------------------------------------------

    async def register_device(self, name: str) -> None:
        ident = self.keys.identity()
        await self.transport.register_device(
            device_id=ident.device_id,
            name=name,
            signing_key=ident.signing_key,
            exchange_key=ident.exchange_key,
            signature=ident.signature,
        )

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
        """The verified devices of a user (cached until a device_list event or `refresh`)."""
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

    async def safety_number(self, user_id: str) -> str:
        """Digits both users compare out of band to rule out a key-swapping server."""
        mine = await self.devices_of(self.user_id, refresh=True)
        theirs = await self.devices_of(user_id, refresh=True)
        return safety_number(mine, theirs)

    def _channel(self, peer: DeviceIdentity) -> PairwiseChannel:
        address = (peer.user_id, peer.device_id)
        channel = self._channels.get(address)
        if channel is None:
            # A new sending session (random id, counter 0): peers keep a replay window per
            # session, so a client restarted without state is not taken for a replay.
            channel = PairwiseChannel(self.keys, peer)
            self._channels[address] = channel
        return channel

    # sealing to exact devices ----------------------------------------------------------------

    def trust_devices(self, records: Sequence[DeviceRecord]) -> list[DeviceIdentity]:
        """Verify and pin device records fetched in bulk (e.g. an alarm list's devices).

        A record with a bad self-signature or a changed key is left out (and noted in
        `identity_warnings`), as `devices_of` does.
        """
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
            trusted.append(ident)
        return trusted

    def seal_for(
        self, devices: Sequence[DeviceIdentity], plaintext: bytes
    ) -> list[tuple[str, str, bytes]]:
        """Seal `plaintext` pairwise (signed, encrypted) to each device: (user, device, bytes)."""
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

    async def _member_devices(self, conversation_id: str) -> dict[DeviceAddress, DeviceIdentity]:
        devices: dict[DeviceAddress, DeviceIdentity] = {}
        for user_id in await self.transport.conversation_members(conversation_id):
            for ident in await self.devices_of(user_id):
                devices[(ident.user_id, ident.device_id)] = ident
        devices.pop((self.user_id, self.device_id), None)
        return devices

    async def _prepare(self, conversation_id: str) -> OutboundSenderKey:
        """Rotate if due (age, count, a member or device gone), then distribute where missing."""
        now = int(self._clock())
        devices = await self._member_devices(conversation_id)
        current = self._outbound.get(conversation_id)
        if (
            current is None
            or current.key.needs_rotation(now)
            or not current.holders <= devices.keys()
        ):
            current = _Outbound(OutboundSenderKey.create(conversation_id, now))
            self._outbound[conversation_id] = current
            self._sent_keys[(conversation_id, current.key.key_id)] = current
            while len(self._sent_keys) > MAX_SENT_KEYS:
                del self._sent_keys[next(iter(self._sent_keys))]
            own = current.key.distribution(self.keys)
            self._inbound.add(own, self.keys.identity())  # to read our own messages back
        missing = [devices[a] for a in sorted(devices.keys() - current.holders)]
        if missing:
            dist = current.key.distribution(self.keys, audit_key=self.audit_key).to_bytes()
            batch = [(d.user_id, d.device_id, self._channel(d).encrypt(dist)) for d in missing]
            await self.transport.send_to_device(
                txn_id=uuid.uuid4().hex, sender_device_id=self.device_id, messages=batch
            )
            current.holders.update((d.user_id, d.device_id) for d in missing)
            current.shared.update(((d.user_id, d.device_id), dist) for d in missing)
        return current.key

    def rotate(self, conversation_id: str) -> None:
        """Forget the current sender key; the next send makes and distributes a new one."""
        self._outbound.pop(conversation_id, None)

    async def _send(
        self,
        conversation_id: str,
        content: dict[str, Any],
        attachment_ids: Sequence[str] = (),
        *,
        txn_id: str | None = None,
    ) -> int:
        async with self._send_lock:  # one rotation and one chain position per send
            key = await self._prepare(conversation_id)
            ciphertext = key.encrypt(self.keys, json.dumps(content).encode())
        return await self.transport.send_message(
            conversation_id,
            txn_id=txn_id or uuid.uuid4().hex,
            sender_device_id=self.device_id,
            ciphertext=ciphertext,
            attachment_ids=attachment_ids,
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
        if kind == "membership" and event.get("action") == "removed":
            # The next send would rotate anyway (the key's holders no longer match the members);
            # rotating on the event too makes the removal count however the list is read later.
            self.rotate(str(event["conversation_id"]))
            self._devices.pop(str(event["user_id"]), None)
        elif kind == "device_list":
            self._devices.pop(str(event["user_id"]), None)
        elif kind == "synced":
            # device_list events are live only: after a (re)connect, devices registered while
            # this client was away are unknown, so every list is read afresh at the next send.
            self._devices.clear()
            # Keys come before messages in the replay: what is still held now lacks its key.
            return await self._request_keys(only_new=True)
        return []

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
                await self.transport.send_to_device(
                    txn_id=uuid.uuid4().hex,
                    sender_device_id=self.device_id,
                    messages=[(sender_user, sender_device, self._channel(peer).encrypt(request))],
                )
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
            await self.transport.send_to_device(
                txn_id=uuid.uuid4().hex,
                sender_device_id=self.device_id,
                messages=[(peer.user_id, peer.device_id, self._channel(peer).encrypt(dist))],
            )
        except MessengerError as exc:
            log.warning("cannot answer the key request of %s: %s", peer.device_id, exc)

    async def _on_to_device(self, event: Mapping[str, Any]) -> list[E2EResult]:
        sender_user, sender_device = str(event["sender_user_id"]), str(event["sender_device_id"])
        seq = int(event.get("seq", 0))
        try:
            envelope = _unb64(event["ciphertext"])
            header = parse_header(envelope)
            if (header.sender_user, header.sender_device) != (sender_user, sender_device):
                raise MalformedError("to-device envelope names another sender than the server")
            peer = await self._identity(sender_user, sender_device)
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
            result = _decrypted(cid, seq, sender_user, sender_device, parsed, opened.sent_at_ms)
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
            "version": 1,
            "pinned": [_identity_json(i) for i in self._pinned.values()],
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
            if doc.get("version") != 1:
                raise KeyStoreError("unknown state version")
            for d in doc["pinned"]:
                self._pin(_identity_from_json(d))
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
    cid: str, seq: int, user: str, device: str, parsed: Parsed, sent_at_ms: int | None
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
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedError("ciphertext is not base64") from exc
