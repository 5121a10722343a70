"""Four-eyes audit workflow over the database: audit keys, seals, requests, approvals, exports.

The server in this workflow stores and checks, and can decrypt nothing:

- a tenant admin's client makes the audit key, splits its secret 2-of-n among named auditors
  (each share sealed to the auditor's device) and publishes the public key signed by its
  device (`publish_key`); the admin switches audit on or off (`set_enabled`);
- senders' clients deposit each sender key sealed to the audit key (`deposit_seal`);
- a tenant admin or an auditor asks for a conversation and time range with a reason, signed by
  its device (`create_request`);
- each auditor's client checks the request and the seals, computes partial decryptions with
  its share and seals them to the requester's device (`approve`); one auditor's answer opens
  nothing. When the key's threshold of different auditors approved, the export (the range's
  ciphertexts, attachments, seals and the sealed partials) is sealed to the requester's device;
- the requester downloads it once (`take_export`) and its client decrypts it.

Every step is appended to the hash-chained audit log (`messenger.audit.log`). Functions take an
open session and leave committing to the caller; they raise `messenger.store.errors`. The REST
API (`messenger.server.api.audit`) and the admin portal both call them.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import nacl.public
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messenger.audit import log
from messenger.crypto import (
    CryptoError,
    audit_key_statement,
    audit_request_statement,
    audit_seal_statement,
    verify_signature,
)
from messenger.crypto._senderkeys import MAX_KEY_AGE_SECONDS
from messenger.store import repo
from messenger.store.errors import Conflict, Forbidden, Gone, InvalidInput, NotFound
from messenger.store.models import (
    Attachment,
    AuditApproval,
    AuditExport,
    AuditKey,
    AuditRequest,
    AuditSealRow,
    AuditShare,
    Conversation,
    Device,
    Event,
    Tenant,
    User,
    new_id,
)

MIN_THRESHOLD = 2
REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
ReadBlob = Callable[[str], bytes | None]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: str) -> bytes:
    return base64.b64decode(value)


def is_admin(user: User) -> bool:
    return user.role in ("tenant_admin", "instance_admin")


def require_admin(user: User) -> None:
    if not is_admin(user):
        raise Forbidden("this needs a tenant administrator")


async def _device(db: AsyncSession, user_id: str, device_id: str) -> Device:
    device = await db.get(Device, device_id)
    if device is None or device.user_id != user_id or device.removed_at is not None:
        raise NotFound("no such device")
    return device


def _check_signature(device: Device, statement: bytes, signature: bytes, what: str) -> None:
    try:
        verify_signature(unb64(device.signing_key), statement, signature)
    except CryptoError:
        raise InvalidInput(f"the {what} signature does not verify for that device") from None


# -- keys and state ------------------------------------------------------------------------


async def current_key(db: AsyncSession, tenant_id: str) -> AuditKey | None:
    return await db.scalar(
        select(AuditKey)
        .where(AuditKey.tenant_id == tenant_id, AuditKey.retired_at.is_(None))
        .order_by(AuditKey.epoch.desc())
        .limit(1)
    )


async def auditors_of(db: AsyncSession, key_id: str) -> list[AuditShare]:
    rows = await db.scalars(
        select(AuditShare).where(AuditShare.key_id == key_id).order_by(AuditShare.x)
    )
    return list(rows)


async def is_auditor(db: AsyncSession, user: User, key_id: str) -> bool:
    return await db.get(AuditShare, (key_id, user.id)) is not None


@dataclass
class AuditState:
    """What every user of the tenant sees: whether audit is on (the banner) and the key."""

    enabled: bool
    key: AuditKey | None
    auditors: list[str] = field(default_factory=list)


async def state(db: AsyncSession, tenant_id: str) -> AuditState:
    tenant = await db.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such tenant")
    key = await current_key(db, tenant_id)
    auditors = [s.auditor_user_id for s in await auditors_of(db, key.id)] if key else []
    return AuditState(enabled=tenant.audit_enabled and key is not None, key=key, auditors=auditors)


@dataclass(frozen=True)
class ShareIn:
    auditor_user_id: str
    auditor_device_id: str
    x: int
    sealed_share: bytes


async def publish_key(
    db: AsyncSession,
    admin: User,
    *,
    public_key: bytes,
    epoch: int,
    threshold: int,
    admin_device_id: str,
    signature: bytes,
    shares: Sequence[ShareIn],
    now: dt.datetime,
) -> AuditKey:
    """Store a new audit key for the admin's tenant; the previous one is retired (its seals and
    shares stay, so requests over older ranges still work with their auditors)."""
    require_admin(admin)
    tenant_id = admin.tenant_id
    if len(public_key) != 32:
        raise InvalidInput("an audit public key is 32 bytes")
    if not MIN_THRESHOLD <= threshold <= len(shares):
        raise InvalidInput(
            f"an audit key needs a threshold of at least {MIN_THRESHOLD} "
            "and at least that many auditors"
        )
    if len({s.auditor_user_id for s in shares}) != len(shares) or len({s.x for s in shares}) != len(
        shares
    ):
        raise InvalidInput("each auditor holds exactly one share")
    previous = await current_key(db, tenant_id)
    expected = (previous.epoch + 1) if previous else 1
    if epoch != expected:
        raise Conflict(f"the next audit key epoch is {expected}")
    device = await _device(db, admin.id, admin_device_id)
    statement = audit_key_statement(tenant_id, public_key, epoch, threshold)
    _check_signature(device, statement, signature, "audit key")
    for share in shares:
        auditor = await db.get(User, share.auditor_user_id)
        if auditor is None or auditor.tenant_id != tenant_id or auditor.disabled:
            raise NotFound(f"no such user {share.auditor_user_id!r} in this tenant")
        await _device(db, auditor.id, share.auditor_device_id)
    if previous is not None:
        previous.retired_at = now
    key = AuditKey(
        id=new_id(),
        tenant_id=tenant_id,
        public_key=b64(public_key),
        epoch=epoch,
        threshold=threshold,
        admin_user_id=admin.id,
        admin_device_id=admin_device_id,
        signature=b64(signature),
        created_at=now,
    )
    db.add(key)
    await db.flush()
    for share in shares:
        db.add(
            AuditShare(
                key_id=key.id,
                auditor_user_id=share.auditor_user_id,
                auditor_device_id=share.auditor_device_id,
                x=share.x,
                sealed_share=share.sealed_share,
            )
        )
    await db.flush()
    await log.append(
        db,
        tenant_id,
        admin.id,
        "key_published",
        {
            "key_id": key.id,
            "epoch": epoch,
            "threshold": threshold,
            "auditors": sorted(s.auditor_user_id for s in shares),
        },
        now,
    )
    return key


async def set_enabled(db: AsyncSession, admin: User, enabled: bool, now: dt.datetime) -> None:
    require_admin(admin)
    tenant = await db.get(Tenant, admin.tenant_id)
    assert tenant is not None
    if enabled and await current_key(db, tenant.id) is None:
        raise Conflict("publish an audit key with its auditors before switching audit on")
    if tenant.audit_enabled == enabled:
        return
    tenant.audit_enabled = enabled
    await db.flush()
    await log.append(db, tenant.id, admin.id, "enabled" if enabled else "disabled", {}, now)


# -- seals ---------------------------------------------------------------------------------


async def deposit_seal(
    db: AsyncSession,
    sender: User,
    conversation_id: str,
    *,
    device_id: str,
    audit_key_id: str,
    chain_key_id: bytes,
    sealed: bytes,
    signature: bytes,
    now: dt.datetime,
) -> AuditSealRow:
    """Keep a sender key sealed to the sender's tenant's audit key (signed by its device)."""
    conv, _ = await repo.conversation_for_member(db, sender, conversation_id)
    device = await _device(db, sender.id, device_id)
    key = await db.get(AuditKey, audit_key_id)
    if key is None or key.tenant_id != sender.tenant_id:
        raise NotFound("no such audit key")
    statement = audit_seal_statement(conv.id, chain_key_id, sealed)
    _check_signature(device, statement, signature, "seal")
    row = AuditSealRow(
        id=new_id(),
        conversation_id=conv.id,
        audit_key_id=key.id,
        sender_user_id=sender.id,
        sender_device_id=device.id,
        chain_key_id=chain_key_id.hex(),
        sealed=sealed,
        signature=b64(signature),
        created_at=now,
    )
    db.add(row)
    await db.flush()
    return row


# -- requests ------------------------------------------------------------------------------


async def _conversation_of_tenant(db: AsyncSession, tenant_id: str, cid: str) -> Conversation:
    """A conversation the tenant may audit: its own, or one its users took part in."""
    conv = await db.get(Conversation, cid)
    if conv is None:
        raise NotFound("no such conversation")
    if conv.tenant_id != tenant_id and tenant_id not in await repo.member_tenants(db, cid):
        raise NotFound("no such conversation")
    return conv


async def create_request(
    db: AsyncSession,
    requester: User,
    *,
    request_id: str,
    conversation_id: str,
    start: dt.datetime,
    end: dt.datetime,
    reason: str,
    device_id: str,
    signature: bytes,
    now: dt.datetime,
) -> AuditRequest:
    tenant_id = requester.tenant_id
    key = await current_key(db, tenant_id)
    if key is None:
        raise Conflict("this tenant has no audit key")
    if not is_admin(requester) and not await is_auditor(db, requester, key.id):
        raise Forbidden("audit requests are made by tenant administrators and auditors")
    if not REQUEST_ID.match(request_id):
        raise InvalidInput("a request id is 32 lower-case hex digits")
    if await db.get(AuditRequest, request_id) is not None:
        raise Conflict("this request id is taken")
    if start.tzinfo is None or end.tzinfo is None or not start < end:
        raise InvalidInput("the time range needs a start before its end, with time zones")
    reason = reason.strip()
    if not reason:
        raise InvalidInput("an audit request needs a reason")
    conv = await _conversation_of_tenant(db, tenant_id, conversation_id)
    device = await _device(db, requester.id, device_id)
    statement = audit_request_statement(
        request_id,
        conv.id,
        start.astimezone(dt.UTC).isoformat(),
        end.astimezone(dt.UTC).isoformat(),
        reason,
        requester.id,
        device.id,
    )
    _check_signature(device, statement, signature, "request")
    request = AuditRequest(
        id=request_id,
        tenant_id=tenant_id,
        conversation_id=conv.id,
        audit_key_id=key.id,
        range_start=start,
        range_end=end,
        reason=reason,
        requester_user_id=requester.id,
        requester_device_id=device.id,
        requester_signature=b64(signature),
        status="pending",
        created_at=now,
    )
    db.add(request)
    await db.flush()
    await log.append(
        db,
        tenant_id,
        requester.id,
        "request_created",
        {
            "request_id": request.id,
            "conversation_id": conv.id,
            "start": start.astimezone(dt.UTC).isoformat(),
            "end": end.astimezone(dt.UTC).isoformat(),
        },
        now,
    )
    return request


async def _may_see(db: AsyncSession, user: User, request: AuditRequest) -> bool:
    if request.tenant_id != user.tenant_id:
        return False
    return (
        is_admin(user)
        or request.requester_user_id == user.id
        or await is_auditor(db, user, request.audit_key_id)
    )


async def get_request(db: AsyncSession, user: User, request_id: str) -> AuditRequest:
    request = await db.get(AuditRequest, request_id)
    if request is None or not await _may_see(db, user, request):
        raise NotFound("no such audit request")
    return request


async def list_requests(db: AsyncSession, user: User) -> list[AuditRequest]:
    key = await current_key(db, user.tenant_id)
    if not is_admin(user) and not (key and await is_auditor(db, user, key.id)):
        raise Forbidden("audit requests are seen by tenant administrators and auditors")
    rows = await db.scalars(
        select(AuditRequest)
        .where(AuditRequest.tenant_id == user.tenant_id)
        .order_by(AuditRequest.created_at.desc())
    )
    return list(rows)


async def approvals_of(db: AsyncSession, request_id: str) -> list[AuditApproval]:
    rows = await db.scalars(
        select(AuditApproval)
        .where(AuditApproval.request_id == request_id)
        .order_by(AuditApproval.created_at)
    )
    return list(rows)


async def seals_for(db: AsyncSession, request: AuditRequest) -> list[tuple[AuditSealRow, Device]]:
    """The seals whose chains can hold messages of the range, with their senders' devices.

    A chain lives at most MAX_KEY_AGE_SECONDS, so seals from that long before the start on
    are needed; the requester's client keeps only messages inside the range.
    """
    earliest = request.range_start - dt.timedelta(seconds=MAX_KEY_AGE_SECONDS)
    rows = await db.execute(
        select(AuditSealRow, Device)
        .join(Device, Device.id == AuditSealRow.sender_device_id)
        .where(
            AuditSealRow.conversation_id == request.conversation_id,
            AuditSealRow.audit_key_id == request.audit_key_id,
            AuditSealRow.created_at >= earliest,
            AuditSealRow.created_at <= request.range_end,
        )
        .order_by(AuditSealRow.created_at, AuditSealRow.id)
    )
    return [(s, d) for s, d in rows]


async def share_of(db: AsyncSession, user: User, request: AuditRequest) -> AuditShare | None:
    return await db.get(AuditShare, (request.audit_key_id, user.id))


async def approve(
    db: AsyncSession,
    auditor: User,
    request_id: str,
    partials: bytes,
    now: dt.datetime,
    read_blob: ReadBlob,
) -> AuditRequest:
    """Record one auditor's approval; at the threshold, build the export."""
    request = await get_request(db, auditor, request_id)
    if await share_of(db, auditor, request) is None:
        raise Forbidden("only an auditor holding a share of this audit key approves")
    if request.status != "pending":
        raise Conflict(f"this request is {request.status}")
    if await db.get(AuditApproval, (request.id, auditor.id)) is not None:
        raise Conflict("you approved this request already; a second auditor must approve")
    db.add(
        AuditApproval(
            request_id=request.id, auditor_user_id=auditor.id, partials=partials, created_at=now
        )
    )
    await db.flush()
    await log.append(
        db, request.tenant_id, auditor.id, "request_approved", {"request_id": request.id}, now
    )
    key = await db.get(AuditKey, request.audit_key_id)
    assert key is not None
    count = await db.scalar(
        select(func.count())
        .select_from(AuditApproval)
        .where(AuditApproval.request_id == request.id)
    )
    if int(count or 0) >= key.threshold:
        await _build_export(db, request, now, read_blob)
    return request


async def reject(
    db: AsyncSession, auditor: User, request_id: str, reason: str, now: dt.datetime
) -> AuditRequest:
    """An auditor declines: the request closes and nothing is exported."""
    request = await get_request(db, auditor, request_id)
    if await share_of(db, auditor, request) is None:
        raise Forbidden("only an auditor holding a share of this audit key rejects")
    if request.status != "pending":
        raise Conflict(f"this request is {request.status}")
    request.status = "rejected"
    await db.execute(
        update(AuditApproval).where(AuditApproval.request_id == request.id).values(partials=None)
    )
    await db.flush()
    await log.append(
        db,
        request.tenant_id,
        auditor.id,
        "request_rejected",
        {"request_id": request.id, "reason_chars": len(reason)},
        now,
    )
    return request


async def _build_export(
    db: AsyncSession, request: AuditRequest, now: dt.datetime, read_blob: ReadBlob
) -> None:
    events = list(
        await db.scalars(
            select(Event)
            .where(
                Event.conversation_id == request.conversation_id,
                Event.kind == "message",
                Event.created_at >= request.range_start,
                Event.created_at <= request.range_end,
            )
            .order_by(Event.seq)
        )
    )
    attachment_ids = sorted({a for e in events for a in e.payload.get("attachment_ids", [])})
    attachments: dict[str, str] = {}
    if attachment_ids:
        present = await db.scalars(select(Attachment.id).where(Attachment.id.in_(attachment_ids)))
        for att_id in present:
            blob = read_blob(att_id)
            if blob is not None:
                attachments[att_id] = b64(blob)
    seals = await seals_for(db, request)
    approvals = await approvals_of(db, request.id)
    bundle: dict[str, Any] = {
        "version": 1,
        "request": request_json(request),
        "seals": [seal_json(s, d) for s, d in seals],
        "approvals": [
            {"auditor_user_id": a.auditor_user_id, "partials": b64(a.partials or b"")}
            for a in approvals
        ],
        "events": [
            {
                "seq": e.seq,
                "ts": e.created_at.isoformat(),
                "sender_user_id": e.sender_user_id,
                "sender_device_id": e.sender_device_id,
                "ciphertext": b64(e.ciphertext or b""),
                "attachment_ids": list(e.payload.get("attachment_ids", [])),
            }
            for e in events
        ],
        "attachments": attachments,
    }
    device = await db.get(Device, request.requester_device_id)
    assert device is not None
    box = nacl.public.SealedBox(nacl.public.PublicKey(unb64(device.exchange_key)))
    sealed = bytes(box.encrypt(json.dumps(bundle).encode()))
    db.add(AuditExport(request_id=request.id, sealed=sealed, size=len(sealed), created_at=now))
    # The partials now live in the export only.
    await db.execute(
        update(AuditApproval).where(AuditApproval.request_id == request.id).values(partials=None)
    )
    request.status = "ready"
    await db.flush()
    await log.append(
        db,
        request.tenant_id,
        None,
        "export_ready",
        {
            "request_id": request.id,
            "messages": len(events),
            "attachments": len(attachments),
            "seals": len(seals),
            "bytes": len(sealed),
        },
        now,
    )


async def take_export(
    db: AsyncSession, requester: User, request_id: str, now: dt.datetime
) -> bytes:
    """The sealed export, handed out once to the requester; afterwards it is gone."""
    request = await get_request(db, requester, request_id)
    if request.requester_user_id != requester.id:
        raise Forbidden("only the requester downloads the export")
    export = await db.get(AuditExport, request.id, with_for_update=True)
    if export is None:
        raise Conflict("the export is not ready: two different auditors must approve first")
    if export.downloaded_at is not None or export.sealed is None:
        raise Gone("this export was downloaded already; it is handed out once")
    sealed = export.sealed
    export.sealed = None
    export.downloaded_at = now
    request.status = "downloaded"
    await db.flush()
    await log.append(
        db,
        request.tenant_id,
        requester.id,
        "export_downloaded",
        {"request_id": request.id, "bytes": len(sealed)},
        now,
    )
    return sealed


# -- JSON shapes (API and portal) ----------------------------------------------------------


def key_json(key: AuditKey, auditors: Sequence[str]) -> dict[str, Any]:
    return {
        "key_id": key.id,
        "public_key": key.public_key,
        "epoch": key.epoch,
        "threshold": key.threshold,
        "admin_user_id": key.admin_user_id,
        "admin_device_id": key.admin_device_id,
        "signature": key.signature,
        "auditors": list(auditors),
        "created_at": key.created_at.isoformat(),
    }


def request_json(request: AuditRequest) -> dict[str, Any]:
    return {
        "request_id": request.id,
        "conversation_id": request.conversation_id,
        "audit_key_id": request.audit_key_id,
        "start": request.range_start.astimezone(dt.UTC).isoformat(),
        "end": request.range_end.astimezone(dt.UTC).isoformat(),
        "reason": request.reason,
        "requester_user_id": request.requester_user_id,
        "requester_device_id": request.requester_device_id,
        "requester_signature": request.requester_signature,
        "status": request.status,
        "created_at": request.created_at.isoformat(),
    }


def seal_json(seal: AuditSealRow, device: Device) -> dict[str, Any]:
    return {
        "seal_id": seal.id,
        "conversation_id": seal.conversation_id,
        "sender_user_id": seal.sender_user_id,
        "sender_device_id": seal.sender_device_id,
        "chain_key_id": seal.chain_key_id,
        "sealed": b64(seal.sealed),
        "signature": seal.signature,
        "created_at": seal.created_at.isoformat(),
        "device": {
            "user_id": device.user_id,
            "device_id": device.id,
            "signing_key": device.signing_key,
            "exchange_key": device.exchange_key,
            "signature": device.signature,
        },
    }
