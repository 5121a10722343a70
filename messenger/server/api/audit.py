"""Four-eyes audit over REST: the tenant's audit state (every user), the audit key and switch
(tenant admins), seal deposits (senders), requests, approvals and the one-time export."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import Field
from sqlalchemy import select

from messenger.audit import log as audit_log
from messenger.audit import service
from messenger.server.api._common import Body, Id, unb64
from messenger.server.auth import Authed
from messenger.server.state import DB, State
from messenger.store.models import Device, User

router = APIRouter()
logger = logging.getLogger("messenger.server.audit")

B64 = Annotated[str, Field(max_length=64 * 1024)]


class ShareBody(Body):
    auditor_user_id: Id
    auditor_device_id: Id
    x: int = Field(ge=1, le=255)
    sealed_share: B64


class KeyBody(Body):
    public_key: B64
    epoch: int = Field(ge=1, le=2**62)
    threshold: int = Field(ge=2, le=255)
    admin_device_id: Id
    signature: B64
    shares: list[ShareBody] = Field(min_length=2, max_length=255)


class EnabledBody(Body):
    enabled: bool


class SealBody(Body):
    sender_device_id: Id
    audit_key_id: Id
    chain_key_id: B64
    sealed: B64
    signature: B64


class RequestBody(Body):
    request_id: Id
    conversation_id: Id
    start: dt.datetime
    end: dt.datetime
    reason: str = Field(min_length=1, max_length=2000)
    requester_device_id: Id
    signature: B64


class ApprovalBody(Body):
    partials: str = Field(max_length=16 * 1024 * 1024)


class RejectBody(Body):
    reason: str = Field(default="", max_length=2000)


async def _tell_tenant(state: State, db: DB, tenant_id: str) -> None:
    """Every user of the tenant gets an `audit` event and refreshes its banner and key."""
    users = list(
        await db.scalars(
            select(User.id).where(User.tenant_id == tenant_id, User.disabled.is_(False))
        )
    )
    st = await service.state(db, tenant_id)
    event = {
        "type": "audit",
        "enabled": st.enabled,
        "key_id": st.key.id if st.key else None,
    }
    await state.publish([{"user_ids": users, "event": event}])


def _device_json(device: Device) -> dict[str, Any]:
    return {
        "user_id": device.user_id,
        "device_id": device.id,
        "signing_key": device.signing_key,
        "exchange_key": device.exchange_key,
        "signature": device.signature,
    }


@router.get("/audit")
async def audit_state(caller: Authed, db: DB) -> dict[str, Any]:
    """Whether audit is on for the caller's tenant (clients show a banner) and its key."""
    st = await service.state(db, caller.user.tenant_id)
    return {
        "enabled": st.enabled,
        "key": service.key_json(st.key, st.auditors) if st.key else None,
    }


@router.put("/admin/audit/key", status_code=201)
async def publish_key(body: KeyBody, caller: Authed, state: State, db: DB) -> dict[str, Any]:
    key = await service.publish_key(
        db,
        caller.user,
        public_key=unb64(body.public_key, "public_key", exact=32),
        epoch=body.epoch,
        threshold=body.threshold,
        admin_device_id=body.admin_device_id,
        signature=unb64(body.signature, "signature", exact=64),
        shares=[
            service.ShareIn(
                s.auditor_user_id,
                s.auditor_device_id,
                s.x,
                unb64(s.sealed_share, "sealed_share", max_bytes=1024),
            )
            for s in body.shares
        ],
        now=state.now(),
    )
    auditors = [s.auditor_user_id for s in body.shares]
    out = service.key_json(key, auditors)
    await db.commit()
    logger.info("audit key published tenant=%s epoch=%d", key.tenant_id, key.epoch)
    await _tell_tenant(state, db, caller.user.tenant_id)
    return out


@router.put("/admin/audit/state", status_code=204)
async def set_state(body: EnabledBody, caller: Authed, state: State, db: DB) -> Response:
    await service.set_enabled(db, caller.user, body.enabled, state.now())
    await db.commit()
    await _tell_tenant(state, db, caller.user.tenant_id)
    return Response(status_code=204)


@router.get("/admin/audit/log")
async def read_log(caller: Authed, db: DB) -> dict[str, Any]:
    """The tenant's audit log rows, newest first (tenant admins)."""
    service.require_admin(caller.user)
    rows = await audit_log.entries(db, caller.user.tenant_id)
    return {
        "entries": [
            {
                "seq": r.seq,
                "at": r.at.isoformat(),
                "actor_user_id": r.actor_user_id,
                "action": r.action,
                "details": r.details,
                "hash": r.hash,
            }
            for r in rows
        ]
    }


@router.post("/conversations/{cid}/audit-seals", status_code=201)
async def deposit_seal(
    cid: Id, body: SealBody, caller: Authed, state: State, db: DB
) -> dict[str, str]:
    row = await service.deposit_seal(
        db,
        caller.user,
        cid,
        device_id=body.sender_device_id,
        audit_key_id=body.audit_key_id,
        chain_key_id=unb64(body.chain_key_id, "chain_key_id", max_bytes=64),
        sealed=unb64(body.sealed, "sealed", max_bytes=4096),
        signature=unb64(body.signature, "signature", exact=64),
        now=state.now(),
    )
    await db.commit()
    return {"seal_id": row.id}


@router.post("/audit/requests", status_code=201)
async def create_request(body: RequestBody, caller: Authed, state: State, db: DB) -> dict[str, Any]:
    request = await service.create_request(
        db,
        caller.user,
        request_id=body.request_id,
        conversation_id=body.conversation_id,
        start=body.start,
        end=body.end,
        reason=body.reason,
        device_id=body.requester_device_id,
        signature=unb64(body.signature, "signature", exact=64),
        now=state.now(),
    )
    out = service.request_json(request)
    await db.commit()
    logger.info("audit request created request=%s", request.id)
    return out


@router.get("/audit/requests")
async def list_requests(caller: Authed, db: DB) -> list[dict[str, Any]]:
    out = []
    for request in await service.list_requests(db, caller.user):
        approvals = await service.approvals_of(db, request.id)
        out.append(
            {
                **service.request_json(request),
                "approved_by": [a.auditor_user_id for a in approvals],
            }
        )
    return out


@router.get("/audit/requests/{request_id}")
async def get_request(request_id: Id, caller: Authed, db: DB) -> dict[str, Any]:
    """The request; for an auditor also the seals to answer and its own sealed share."""
    request = await service.get_request(db, caller.user, request_id)
    approvals = await service.approvals_of(db, request.id)
    requester_device = await db.get(Device, request.requester_device_id)
    assert requester_device is not None
    out: dict[str, Any] = {
        **service.request_json(request),
        "approved_by": [a.auditor_user_id for a in approvals],
        "requester_device": _device_json(requester_device),
    }
    share = await service.share_of(db, caller.user, request)
    if share is not None:
        out["share"] = {
            "x": share.x,
            "auditor_device_id": share.auditor_device_id,
            "sealed_share": service.b64(share.sealed_share),
        }
        out["seals"] = [service.seal_json(s, d) for s, d in await service.seals_for(db, request)]
    return out


@router.post("/audit/requests/{request_id}/approvals", status_code=201)
async def approve(
    request_id: Id, body: ApprovalBody, caller: Authed, state: State, db: DB
) -> dict[str, Any]:
    partials = unb64(body.partials, "partials")
    request = await service.approve(
        db, caller.user, request_id, partials, state.now(), state.blobs.read
    )
    out = service.request_json(request)
    await db.commit()
    logger.info("audit request approved request=%s by=%s", request_id, caller.user.id)
    return out


@router.post("/audit/requests/{request_id}/reject")
async def reject(
    request_id: Id, body: RejectBody, caller: Authed, state: State, db: DB
) -> dict[str, Any]:
    request = await service.reject(db, caller.user, request_id, body.reason, state.now())
    out = service.request_json(request)
    await db.commit()
    return out


@router.get("/audit/requests/{request_id}/export")
async def export(request_id: Id, caller: Authed, state: State, db: DB) -> Response:
    """The export sealed to the requester's device; a second download answers 410."""
    sealed = await service.take_export(db, caller.user, request_id, state.now())
    await db.commit()
    return Response(sealed, media_type="application/octet-stream")
