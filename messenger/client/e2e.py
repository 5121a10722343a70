"""End-to-end encryption on top of the messenger client: what the server sees is ciphertext only.

`E2ESession` owns this device's keys and the protocol state of docs/crypto.md. It talks to the
server through `E2ETransport`, the handful of API calls it needs (the client SDK provides them),
and turns incoming stream events into `DecryptedMessage` or `RejectedMessage` values.

    session = E2ESession(transport, device_keys)
    await session.register_device("Laptop")
    await session.send_text(conversation_id, "Hallo")
    for result in await session.handle_event(event):   # each event from the stream
        ...

Sending fetches the conversation's members, verifies their device records (self-signature,
pinned key) and distributes this device's sender key to every device that lacks it. When a
member or device has gone, a fresh sender key is made first, so they cannot read what follows.
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

from messenger.client import Envelope, MessengerClient
from messenger.crypto import (
    AttachmentKey,
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
    SenderKeyStore,
    UnknownSenderKey,
    decrypt_attachment,
    encrypt_attachment,
    is_distribution,
    open_state,
    parse_header,
    safety_number,
    seal_state,
    write_private_file,
)
from messenger.crypto._senderkeys import GroupEnvelope

log = logging.getLogger(__name__)

DeviceAddress = tuple[str, str]  # (user_id, device_id)
MAX_PENDING = 10_000


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
        records = []
        for d in await self.client.devices(user_id):
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
                log.warning("skipping unreadable device record of %s: %s", user_id, exc)
        return records

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


@dataclass(frozen=True)
class AttachmentRef:
    """An attachment as announced in a decrypted message; `E2ESession.fetch_attachment` opens it."""

    attachment_id: str
    name: str
    mime: str
    key: AttachmentKey


@dataclass(frozen=True)
class DecryptedMessage:
    conversation_id: str
    seq: int
    sender_user_id: str
    sender_device_id: str
    body: str
    attachment: AttachmentRef | None = None
    actions: tuple[tuple[str, str], ...] = ()  # (label, reply) buttons offered by the sender


@dataclass(frozen=True)
class RejectedMessage:
    """An event that failed verification; shown to the user as "could not be verified"."""

    conversation_id: str | None
    seq: int
    sender_user_id: str
    sender_device_id: str
    error: CryptoError


E2EResult = DecryptedMessage | RejectedMessage


@dataclass
class _Outbound:
    key: OutboundSenderKey
    holders: set[DeviceAddress] = field(default_factory=set)


class E2ESession:
    """This device's end-to-end state, for one event loop (sends from several tasks are
    serialised; events should be handled by one task, in stream order).

    Args:
        transport: the server calls (the client SDK, bound to this user and device).
        keys: this device's secret keys (see `messenger.crypto.load_device_keys`).
        audit_key: the tenant's audit public key when audit is on; then every sender key is also
            sealed to it, and distributions from others without that seal are refused.
        clock: seconds since the epoch; tests move it to see 7-day rotation.
    """

    def __init__(
        self,
        transport: E2ETransport,
        keys: DeviceKeys,
        *,
        audit_key: bytes | None = None,
        clock: Callable[[], float] = time.time,
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
            # Counters start at the clock in microseconds, so a restarted client with fresh state
            # still sends counters above any it sent before and its peers do not see replays.
            channel = PairwiseChannel(self.keys, peer, next_counter=time.time_ns() // 1000)
            self._channels[address] = channel
        return channel

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

    async def send_text(
        self,
        conversation_id: str,
        text: str,
        *,
        txn_id: str | None = None,
        actions: Sequence[Mapping[str, str]] = (),
    ) -> int:
        """Encrypt and send a text; returns the server's sequence number.

        A caller that may repeat a send after a crash passes the same `txn_id` each time: the
        server stores the first and answers repeats with its sequence number. `actions` are
        buttons a client may show, each `{"label": ..., "reply": ...}`: pressing one sends its
        `reply` as a text (so a client without buttons can type it).
        """
        content: dict[str, Any] = {"type": "text", "body": text}
        if actions:
            content["actions"] = [
                {"label": str(a["label"]), "reply": str(a["reply"])} for a in actions
            ]
        return await self._send(conversation_id, content, txn_id=txn_id)

    async def send_attachment(
        self, conversation_id: str, data: bytes, *, name: str, mime: str, body: str = ""
    ) -> int:
        """Encrypt `data` under a fresh key, upload the blob, send the key inside a message."""
        blob, key = encrypt_attachment(data)
        attachment_id = await self.transport.upload_attachment(conversation_id, blob)
        content = {
            "type": "attachment",
            "attachment_id": attachment_id,
            "key": _b64(key.key),
            "sha256": _b64(key.sha256),
            "size": key.size,
            "name": name,
            "mime": mime,
            "body": body,
        }
        return await self._send(conversation_id, content, [attachment_id])

    async def fetch_attachment(self, ref: AttachmentRef) -> bytes:
        return decrypt_attachment(
            await self.transport.download_attachment(ref.attachment_id), ref.key
        )

    # receiving -------------------------------------------------------------------------------

    async def handle_event(self, event: Mapping[str, Any]) -> list[E2EResult]:
        """Process one stream event; returns the messages it made readable (possibly several,
        when a sender key arrives after messages that were waiting for it)."""
        kind = event.get("type")
        if kind == "to_device":
            return await self._on_to_device(event)
        if kind == "message":
            return await self._on_message(event)
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
        return []

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
            if not is_distribution(plaintext):
                raise MalformedError("unknown to-device payload")
            dist = SenderKeyDistribution.from_bytes(plaintext)
            self._check_audit(dist.audit)
            self._inbound.add(dist, peer)
        except CryptoError as exc:
            log.warning("to-device %s from %s refused: %s", seq, sender_device, type(exc).__name__)
            return [RejectedMessage(None, seq, sender_user, sender_device, exc)]
        slot = (dist.conversation_id, dist.sender_user, dist.sender_device, dist.key_id)
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
                _, plaintext = self._inbound.decrypt(data)
            except UnknownSenderKey:
                self._hold(event)
                return []
            content = json.loads(plaintext)
            result = DecryptedMessage(
                conversation_id=cid,
                seq=seq,
                sender_user_id=sender_user,
                sender_device_id=sender_device,
                body=str(content.get("body", "")),
                attachment=_attachment_ref(content),
                actions=_actions(content),
            )
        except CryptoError as exc:
            log.warning("message %s/%s refused: %s", cid, seq, type(exc).__name__)
            return [RejectedMessage(cid, seq, sender_user, sender_device, exc)]
        except (ValueError, KeyError, TypeError) as exc:
            error = MalformedError(f"message content is not valid: {type(exc).__name__}")
            return [RejectedMessage(cid, seq, sender_user, sender_device, error)]
        return [result]

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
                    "next_counter": c.next_counter,
                    "highest": c.received.highest,
                    "seen": sorted(c.received.seen),
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
                window = ReplayWindow(highest=int(c["highest"]), seen={int(x) for x in c["seen"]})
                # The saved counter may be older than the last one sent before a crash; the
                # clock keeps it above anything this device sent earlier.
                counter = max(int(c["next_counter"]), time.time_ns() // 1000)
                self._channels[(peer.user_id, peer.device_id)] = PairwiseChannel(
                    self.keys, peer, next_counter=counter, received=window
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
                self._hold(event)
        except (ValueError, KeyError, TypeError, IndexError, CryptoError) as exc:
            raise KeyStoreError(f"state file content is corrupt: {type(exc).__name__}") from exc

    def _hold(self, event: Mapping[str, Any]) -> None:
        """Keep a message until its sender key arrives (bounded: oldest dropped first)."""
        header = GroupEnvelope.from_bytes(_unb64(event["ciphertext"])).header
        slot = (header.conversation_id, header.sender_user, header.sender_device, header.key_id)
        self._pending.setdefault(slot, []).append(event)
        while self.waiting() > MAX_PENDING:
            oldest = next(iter(self._pending))
            self._pending[oldest].pop(0)
            if not self._pending[oldest]:
                del self._pending[oldest]

    def waiting(self) -> int:
        """Messages held back until their sender key arrives."""
        return sum(len(v) for v in self._pending.values())


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


def _actions(content: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    buttons = content.get("actions")
    if buttons is None:
        return ()
    if not isinstance(buttons, list):
        raise TypeError("actions must be a list")
    return tuple((str(b["label"]), str(b["reply"])) for b in buttons)


def _attachment_ref(content: Mapping[str, Any]) -> AttachmentRef | None:
    if content.get("type") != "attachment":
        return None
    key = AttachmentKey(
        key=_unb64(content["key"]), sha256=_unb64(content["sha256"]), size=int(content["size"])
    )
    return AttachmentRef(
        attachment_id=str(content["attachment_id"]),
        name=str(content.get("name", "")),
        mime=str(content.get("mime", "application/octet-stream")),
        key=key,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedError("ciphertext is not base64") from exc
