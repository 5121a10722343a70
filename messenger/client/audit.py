"""Four-eyes audit in the SDK: the tenant's audit key as users see it, and the three roles.

Users: `TenantAudit` reads the tenant's audit state, checks that a tenant admin's device,
verified through cross-signing (approved by the admin's master key), signed the audit key,
pins the key (a different key later is refused until the user accepts it) and
tells the `E2ESession` to seal every new sender key to it. `banner` is True while audit is on.

    audit = TenantAudit(client, session)
    status = await audit.refresh()          # status.enabled -> show the banner
    session.audit_source = audit            # every new sender key is sealed and deposited

Tenant admin: `publish_audit_key` makes the audit key on this device, splits its secret 2-of-n
among named auditors (each share sealed to the auditor's device), signs the public key and
forgets the secret. Requester (tenant admin or auditor): `request_audit`, then
`download_export` once two auditors approved. Auditor: `approve_request` checks the request's
signature and each seal's sender signature, and answers with partial decryptions sealed to the
requester's device; its share never leaves this device.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.public

from messenger.client._client import MessengerClient
from messenger.client.e2e import E2ESession
from messenger.crypto import (
    AuditPartial,
    AuditShare,
    CryptoError,
    DeviceIdentity,
    IdentityError,
    InboundSenderKey,
    MalformedError,
    PolicyError,
    TamperedError,
    Trust,
    audit_key_statement,
    audit_public_key,
    audit_request_statement,
    audit_seal_statement,
    combine_partials,
    decrypt_attachment,
    new_audit_secret,
    open_sealed,
    pack_partials,
    partial_decrypt,
    split_secret,
    unpack_partials,
    verify_signature,
)
from messenger.crypto._attachments import AttachmentKey
from messenger.crypto._senderkeys import GroupEnvelope, SenderKeyRecord


class AuditKeyChanged(IdentityError):
    """The server presents another audit key than the one pinned; sending stops until the user
    looks at it and calls `TenantAudit.accept_new_key`."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError as exc:
        raise MalformedError("audit data is not base64") from exc


def _identity(d: Mapping[str, Any]) -> DeviceIdentity:
    return DeviceIdentity(
        str(d["user_id"]),
        str(d["device_id"]),
        _unb64(d["signing_key"]),
        _unb64(d["exchange_key"]),
        _unb64(d["signature"]),
    )


async def _vouched(session: E2ESession, ident: DeviceIdentity, role: str) -> None:
    """Refuse a device its user's master key (or a tenant admin) has not approved."""
    for trust in await session.device_trust(ident.user_id):
        if trust.device_id == ident.device_id and trust.trust is not Trust.UNVERIFIED:
            return
    raise IdentityError(f"the {role}'s device {ident.device_id} is not verified (cross-signing)")


def fingerprint(public_key: bytes) -> str:
    hexed = public_key.hex()
    return " ".join(hexed[i : i + 4] for i in range(0, len(hexed), 4))


@dataclass(frozen=True)
class AuditStatus:
    """What a client shows: the banner while `enabled`, the key's fingerprint and auditors."""

    enabled: bool
    public_key: bytes | None = None
    key_id: str | None = None
    epoch: int = 0
    auditors: tuple[str, ...] = ()
    changed: bool = False  # a new key waits for the user's acceptance

    @property
    def banner(self) -> bool:
        return self.enabled

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key) if self.public_key else ""


class TenantAudit:
    """The tenant's audit key as this device trusts it (an `AuditSource` for E2ESession).

    The key must be signed by a tenant admin's device (checked against that device's pinned
    identity). The first key seen is pinned; a different one later is refused (`current`
    raises AuditKeyChanged, so nothing is sealed to an unchecked key) until
    `accept_new_key`. `refresh_interval` bounds how stale the audit state may be on a send.
    """

    def __init__(
        self,
        client: MessengerClient,
        session: E2ESession,
        *,
        pinned: bytes | None = None,
        refresh_interval: float = 60.0,
    ) -> None:
        self.client = client
        self.session = session
        self.pinned = pinned
        self.refresh_interval = refresh_interval
        self.status = AuditStatus(enabled=False)
        self._offered: bytes | None = None
        self._fetched = -1e18

    async def refresh(self) -> AuditStatus:
        state = await self.client.audit_state()
        self._fetched = time.monotonic()
        key = state.get("key")
        if not state.get("enabled") or not key:
            self.status = AuditStatus(enabled=False, changed=self._offered is not None)
            self._apply()
            return self.status
        public = _unb64(key["public_key"])
        admin_user, admin_device = str(key["admin_user_id"]), str(key["admin_device_id"])
        admin = await self.session.identity_of(admin_user, admin_device)
        await _vouched(self.session, admin, "tenant admin")
        tenant_id = self.client.tenant_id or ""
        statement = audit_key_statement(tenant_id, public, int(key["epoch"]), int(key["threshold"]))
        try:
            verify_signature(admin.signing_key, statement, _unb64(key["signature"]))
        except CryptoError as exc:
            raise IdentityError("the audit key is not signed by a tenant admin's device") from exc
        if self.pinned is None:
            self.pinned = public
        changed = public != self.pinned
        self._offered = public if changed else None
        self.status = AuditStatus(
            enabled=True,
            public_key=public,
            key_id=str(key["key_id"]),
            epoch=int(key["epoch"]),
            auditors=tuple(str(a) for a in key.get("auditors", [])),
            changed=changed,
        )
        self._apply()
        return self.status

    async def handle_event(self, event: Mapping[str, Any]) -> AuditStatus | None:
        """Feed stream events: an `audit` event (switched on or off, new key) refreshes."""
        if event.get("type") != "audit":
            return None
        return await self.refresh()

    def _apply(self) -> None:
        """Let the session (when it follows this source) demand seals to the pinned key from
        the distributions it receives; a changed key waits for the user."""
        if self.session.audit_source is not self or self.status.changed:
            return
        self.session.audit_key = self.status.public_key if self.status.enabled else None

    def accept_new_key(self) -> None:
        """The user looked at the new key (its fingerprint) and accepts it."""
        if self._offered is not None:
            self.pinned, self._offered = self._offered, None
            self.status = AuditStatus(**{**self.status.__dict__, "changed": False})
            self._apply()

    async def current(self) -> tuple[bytes, str] | None:
        if time.monotonic() - self._fetched >= self.refresh_interval:
            await self.refresh()
        status = self.status
        if status.changed:
            raise AuditKeyChanged(
                f"the tenant's audit key changed (new fingerprint {status.fingerprint}); "
                "check it with your administrator and accept it before sending"
            )
        if not status.enabled or status.public_key is None or status.key_id is None:
            return None
        return status.public_key, status.key_id

    async def deposit(
        self, conversation_id: str, chain_key_id: bytes, sealed: bytes, signature: bytes
    ) -> None:
        assert self.status.key_id is not None
        await self.client.deposit_audit_seal(
            conversation_id,
            {
                "sender_device_id": self.session.device_id,
                "audit_key_id": self.status.key_id,
                "chain_key_id": _b64(chain_key_id),
                "sealed": _b64(sealed),
                "signature": _b64(signature),
            },
        )


# -- tenant admin ----------------------------------------------------------------------------


async def publish_audit_key(
    client: MessengerClient,
    session: E2ESession,
    auditors: Sequence[str],
    *,
    threshold: int = 2,
) -> dict[str, Any]:
    """Make, split and publish a new audit key; returns the server's record of it.

    Each auditor (a user id) needs exactly one registered device: its share is sealed to it.
    The whole secret exists only inside this call.
    """
    if len(set(auditors)) != len(auditors):
        raise PolicyError("name each auditor once")
    devices: list[DeviceIdentity] = []
    for user_id in auditors:
        found = await session.devices_of(user_id, refresh=True)
        if len(found) != 1:
            raise PolicyError(
                f"auditor {user_id} has {len(found)} verified devices; a share goes to exactly one"
            )
        await _vouched(session, found[0], "auditor")
        devices.append(found[0])
    state = await client.audit_state()
    epoch = int(state["key"]["epoch"]) + 1 if state.get("key") else 1
    secret = new_audit_secret()
    public = audit_public_key(secret)
    shares = split_secret(secret, threshold, len(auditors))
    del secret
    body = {
        "public_key": _b64(public),
        "epoch": epoch,
        "threshold": threshold,
        "admin_device_id": session.device_id,
        "signature": _b64(
            session.keys.sign(audit_key_statement(client.tenant_id or "", public, epoch, threshold))
        ),
        "shares": [
            {
                "auditor_user_id": device.user_id,
                "auditor_device_id": device.device_id,
                "x": share.x,
                "sealed_share": _b64(
                    bytes(
                        nacl.public.SealedBox(nacl.public.PublicKey(device.exchange_key)).encrypt(
                            share.to_bytes()
                        )
                    )
                ),
            }
            for device, share in zip(devices, shares, strict=True)
        ],
    }
    return await client.publish_audit_key(body)


# -- requester -------------------------------------------------------------------------------


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise PolicyError("audit time ranges need time zones")
    return value.astimezone(dt.UTC).isoformat()


async def request_audit(
    client: MessengerClient,
    session: E2ESession,
    conversation_id: str,
    start: dt.datetime,
    end: dt.datetime,
    reason: str,
) -> dict[str, Any]:
    """Ask for a conversation's messages between start and end; signed by this device, whose
    key the export will be sealed to."""
    request_id = secrets.token_hex(16)
    statement = audit_request_statement(
        request_id,
        conversation_id,
        _iso(start),
        _iso(end),
        reason.strip(),
        session.user_id,
        session.device_id,
    )
    return await client.create_audit_request(
        {
            "request_id": request_id,
            "conversation_id": conversation_id,
            "start": _iso(start),
            "end": _iso(end),
            "reason": reason.strip(),
            "requester_device_id": session.device_id,
            "signature": _b64(session.keys.sign(statement)),
        }
    )


# -- auditor ---------------------------------------------------------------------------------


def _open_box(session: E2ESession, sealed: bytes, what: str) -> bytes:
    try:
        return bytes(nacl.public.SealedBox(session.keys.exchange_private).decrypt(sealed))
    except nacl.exceptions.CryptoError as exc:
        raise TamperedError(f"{what} is not sealed to this device") from exc


def _checked_device(session: E2ESession, record: Mapping[str, Any]) -> DeviceIdentity:
    """A device record the server attached, checked against its self-signature and the pins."""
    ident = _identity(record)
    session.pin(ident)
    return ident


async def approve_request(
    client: MessengerClient, session: E2ESession, request_id: str
) -> dict[str, Any]:
    """Check the request and its seals, then answer with this auditor's partial decryptions
    sealed to the requester's device. Raises CryptoError when a signature does not hold."""
    detail = await client.audit_request(request_id)
    if "share" not in detail:
        raise PolicyError("this user holds no share of the request's audit key")
    requester = _checked_device(session, detail["requester_device"])
    if (requester.user_id, requester.device_id) != (
        detail["requester_user_id"],
        detail["requester_device_id"],
    ):
        raise TamperedError("the request names another device than the one attached")
    statement = audit_request_statement(
        str(detail["request_id"]),
        str(detail["conversation_id"]),
        str(detail["start"]),
        str(detail["end"]),
        str(detail["reason"]),
        requester.user_id,
        requester.device_id,
    )
    verify_signature(requester.signing_key, statement, _unb64(detail["requester_signature"]))
    await _vouched(session, requester, "requester")
    sealed_share = _unb64(detail["share"]["sealed_share"])
    share = AuditShare.from_bytes(_open_box(session, sealed_share, "your audit share"))
    items: list[tuple[str, AuditPartial]] = []
    for seal in detail.get("seals", []):
        sender = _checked_device(session, seal["device"])
        sealed = _unb64(seal["sealed"])
        if seal["conversation_id"] != detail["conversation_id"] or (
            sender.user_id,
            sender.device_id,
        ) != (seal["sender_user_id"], seal["sender_device_id"]):
            raise TamperedError("a seal belongs to another conversation or sender")
        chain_key_id = bytes.fromhex(str(seal["chain_key_id"]))
        verify_signature(
            sender.signing_key,
            audit_seal_statement(str(seal["conversation_id"]), chain_key_id, sealed),
            _unb64(seal["signature"]),
        )
        items.append((str(seal["seal_id"]), partial_decrypt(share, sealed)))
    box = nacl.public.SealedBox(nacl.public.PublicKey(requester.exchange_key))
    return await client.approve_audit_request(request_id, bytes(box.encrypt(pack_partials(items))))


# -- the export ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditedMessage:
    seq: int
    ts: str
    sender_user_id: str
    sender_device_id: str
    body: str
    attachment_id: str | None = None
    attachment_name: str | None = None
    attachment_mime: str | None = None


@dataclass
class AuditExport:
    """The decrypted content of an export: messages of the range and their attachments."""

    request: dict[str, Any]
    messages: list[AuditedMessage] = field(default_factory=list)
    attachments: dict[str, bytes] = field(default_factory=dict)  # attachment id -> plaintext
    undecryptable: list[int] = field(default_factory=list)  # seqs no seal covered


async def download_export(
    client: MessengerClient, session: E2ESession, request_id: str
) -> AuditExport:
    """Download the export (once) and decrypt it on this device."""
    return open_export(session, await client.audit_export(request_id))


def open_export(session: E2ESession, sealed: bytes) -> AuditExport:
    bundle = json.loads(_open_box(session, sealed, "the export"))
    request = bundle["request"]
    if request["requester_device_id"] != session.device_id:
        raise TamperedError("the export was made for another device")
    partials: dict[str, list[AuditPartial]] = {}
    for approval in bundle["approvals"]:
        opened = unpack_partials(_open_box(session, _unb64(approval["partials"]), "an approval"))
        for seal_id, partial in opened.items():
            partials.setdefault(seal_id, []).append(partial)
    chains: dict[tuple[str, str, bytes], InboundSenderKey] = {}
    for seal in bundle["seals"]:
        parts = partials.get(str(seal["seal_id"]), [])
        try:
            record = SenderKeyRecord.from_bytes(
                open_sealed(_unb64(seal["sealed"]), combine_partials(parts))
            )
        except CryptoError:
            continue  # fewer than two auditors answered this seal: it stays closed
        if record.conversation_id != request["conversation_id"]:
            continue
        # The record carries the sender's signing key, sealed by the sender; exchange key and
        # self-signature are not needed to verify group messages.
        sender = DeviceIdentity(
            record.sender_user, record.sender_device, record.signing_key, b"", b""
        )
        chains[(record.sender_user, record.sender_device, record.key_id)] = InboundSenderKey(
            conversation_id=record.conversation_id,
            sender=sender,
            key_id=record.key_id,
            chain_key=record.chain_key,
            iteration=record.iteration,
            created_at=record.created_at,
        )
    export = AuditExport(request=request)
    for event in bundle["events"]:
        seq = int(event["seq"])
        try:
            envelope = GroupEnvelope.from_bytes(_unb64(event["ciphertext"]))
            h = envelope.header
            chain = chains.get((h.sender_user, h.sender_device, h.key_id))
            if chain is None or (h.sender_user, h.sender_device) != (
                event["sender_user_id"],
                event["sender_device_id"],
            ):
                export.undecryptable.append(seq)
                continue
            content = json.loads(chain.open(envelope).body)
        except (CryptoError, ValueError, KeyError, TypeError):
            export.undecryptable.append(seq)
            continue
        message = AuditedMessage(
            seq=seq,
            ts=str(event["ts"]),
            sender_user_id=h.sender_user,
            sender_device_id=h.sender_device,
            body=str(content.get("body", "")),
        )
        if content.get("type") == "attachment":
            att_id = str(content["attachment_id"])
            message = AuditedMessage(
                **{
                    **message.__dict__,
                    "attachment_id": att_id,
                    "attachment_name": str(content.get("name", "")),
                    "attachment_mime": str(content.get("mime", "")),
                }
            )
            blob = bundle["attachments"].get(att_id)
            if blob is not None:
                key = AttachmentKey(
                    key=_unb64(content["key"]),
                    sha256=_unb64(content["sha256"]),
                    size=int(content["size"]),
                )
                try:
                    export.attachments[att_id] = decrypt_attachment(_unb64(blob), key)
                except CryptoError:
                    export.undecryptable.append(seq)
        export.messages.append(message)
    return export
