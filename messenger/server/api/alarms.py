"""Alarm lists (tenant administrators) and alarms (raise, answer, end, watch).

The routes translate HTTP to `messenger.store.alarms`, where the rules live (the admin CLI and
the admin portal call the same functions). Alarm content is ciphertext; the server sees the
level, who is alarmed when, and the answers.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import Field
from sqlalchemy.exc import IntegrityError

from messenger.server.alarms import outcome_items
from messenger.server.api._common import Body, Id, TxnId, unb64
from messenger.server.api.accounts import device_json
from messenger.server.api.attachments import receive_upload
from messenger.server.auth import Authed
from messenger.server.errors import ApiError
from messenger.server.state import DB, State
from messenger.server.wire import alarm_event
from messenger.store import alarms, repo
from messenger.store.models import Tenant

router = APIRouter()
log = logging.getLogger("messenger.server.alarms")

Level = Literal["info", "urgent", "alarm", "panic"]
Seconds = Annotated[int, Field(ge=alarms.MIN_INTERVAL, le=alarms.MAX_INTERVAL)]
MAX_KEYS = 10_000


class MemberBody(Body):
    user_id: Id
    tier: int = Field(default=1, ge=1, le=100)
    role: Literal["member", "admin"] = "member"


class ListBody(Body):
    name: str = Field(min_length=1, max_length=200)
    repeat_seconds: Seconds = 60
    escalation_seconds: Seconds = 300
    ack_needed: int = Field(default=1, ge=1, le=alarms.MAX_LIST_MEMBERS)
    emergency: bool = False
    members: list[MemberBody] = Field(default_factory=list, max_length=alarms.MAX_LIST_MEMBERS)


class ListPatch(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    repeat_seconds: Seconds | None = None
    escalation_seconds: Seconds | None = None
    ack_needed: int | None = Field(default=None, ge=1, le=alarms.MAX_LIST_MEMBERS)
    emergency: bool | None = None


class MemberPut(Body):
    tier: int = Field(default=1, ge=1, le=100)
    role: Literal["member", "admin"] = "member"


class SealedKey(Body):
    user_id: Id
    device_id: Id
    ciphertext: str = Field(max_length=8192)


class RaiseBody(Body):
    txn_id: TxnId
    list_id: Id
    level: Level
    sender_device_id: Id
    ciphertext: str
    keys: list[SealedKey] = Field(min_length=1, max_length=MAX_KEYS)
    attachment_ids: list[Id] = Field(default_factory=list, max_length=4)


class AnswerBody(Body):
    kind: Literal["delivered", "seen", "acknowledged", "declined"]
    reason: str | None = Field(default=None, max_length=500)


def _members(body: list[MemberBody]) -> list[alarms.MemberSpec]:
    return [alarms.MemberSpec(m.user_id, m.tier, m.role) for m in body]


# -- alarm lists -----------------------------------------------------------------------------


@router.get("/alarm-lists")
async def lists(caller: Authed, db: DB) -> list[dict[str, Any]]:
    """The tenant's lists; members are shown to the tenant's administrators only."""
    admin = caller.user.role in ("tenant_admin", "instance_admin")
    return [
        await alarms.list_json(db, row, members=admin)
        for row in await alarms.lists_of_tenant(db, caller.user.tenant_id)
    ]


@router.post("/alarm-lists", status_code=201)
async def create_list(body: ListBody, caller: Authed, state: State, db: DB) -> dict[str, Any]:
    tenant = await db.get(Tenant, caller.user.tenant_id)
    assert tenant is not None
    row = await alarms.create_list(
        db,
        caller.user,
        tenant,
        body.name,
        state.now(),
        repeat_seconds=body.repeat_seconds,
        escalation_seconds=body.escalation_seconds,
        ack_needed=body.ack_needed,
        emergency=body.emergency,
        members=_members(body.members),
    )
    out = await alarms.list_json(db, row)
    await db.commit()
    return out


@router.get("/alarm-lists/{list_id}")
async def get_list(list_id: Id, caller: Authed, db: DB) -> dict[str, Any]:
    return await alarms.list_json(db, await alarms.list_for_admin(db, caller.user, list_id))


@router.patch("/alarm-lists/{list_id}")
async def update_list(list_id: Id, body: ListPatch, caller: Authed, db: DB) -> dict[str, Any]:
    row = await alarms.list_for_admin(db, caller.user, list_id)
    await alarms.update_list(db, caller.user, row, **body.model_dump(exclude_none=True))
    out = await alarms.list_json(db, row)
    await db.commit()
    return out


@router.put("/alarm-lists/{list_id}/members/{user_id}")
async def put_member(
    list_id: Id, user_id: Id, body: MemberPut, caller: Authed, db: DB
) -> dict[str, Any]:
    row = await alarms.list_for_admin(db, caller.user, list_id)
    spec = alarms.MemberSpec(user_id, body.tier, body.role)
    await alarms.set_members(db, caller.user, row, [spec])
    out = await alarms.list_json(db, row)
    await db.commit()
    return out


@router.delete("/alarm-lists/{list_id}/members/{user_id}", status_code=204)
async def remove_member(list_id: Id, user_id: Id, caller: Authed, db: DB) -> Response:
    row = await alarms.list_for_admin(db, caller.user, list_id)
    await alarms.remove_member(db, caller.user, row, user_id)
    await db.commit()
    return Response(status_code=204)


@router.delete("/alarm-lists/{list_id}", status_code=204)
async def delete_list(list_id: Id, caller: Authed, db: DB) -> Response:
    row = await alarms.list_for_admin(db, caller.user, list_id)
    await alarms.delete_list(db, caller.user, row)
    await db.commit()
    return Response(status_code=204)


@router.get("/alarm-lists/{list_id}/devices")
async def list_devices(list_id: Id, caller: Authed, db: DB) -> list[dict[str, Any]]:
    """The device records of every member, for a raiser to seal the alarm's key to."""
    row = await alarms.raiseable_list(db, caller.user, list_id)
    return [device_json(d) for _, d in await alarms.recipient_devices(db, row.id)]


# -- alarms ----------------------------------------------------------------------------------


@router.post("/alarms/attachments", status_code=201)
async def upload(
    request: Request, caller: Authed, state: State, db: DB, level: Level = "alarm"
) -> dict[str, Any]:
    """An encrypted attachment for an alarm of `level` (a panic one may use the reserve)."""
    attachment_id, size = await receive_upload(
        request,
        state,
        db,
        lambda blob_id, size: alarms.add_attachment(
            db, caller.user, blob_id, size, level, state.now()
        ),
    )
    return {"attachment_id": attachment_id, "size": size}


@router.get("/alarms/attachments/{attachment_id}")
async def download(attachment_id: Id, caller: Authed, state: State, db: DB) -> FileResponse:
    row = await alarms.attachment_for(db, caller.user, attachment_id)
    path = state.blobs.path(row.id)
    if not path.exists():
        raise ApiError(404, "the attachment's content is gone")
    return FileResponse(path, media_type="application/octet-stream")


@router.post("/alarms", status_code=201)
async def raise_alarm(body: RaiseBody, caller: Authed, state: State, db: DB) -> dict[str, Any]:
    """Raise an alarm: stored, the first tier alarmed at once; a repeated txn_id stores nothing."""
    user = caller.user
    user_id = user.id
    earlier = await repo.claim_txn(db, user_id, body.txn_id)
    if earlier is not None:
        return {**earlier, "duplicate": True}
    device = await repo.active_device(db, user.id, body.sender_device_id)
    row = await alarms.raiseable_list(db, user, body.list_id)
    limit = state.settings.max_ciphertext_bytes
    ciphertext = unb64(body.ciphertext, "ciphertext", max_bytes=limit)
    keys = [
        (k.user_id, k.device_id, unb64(k.ciphertext, "sealed key", max_bytes=4096))
        for k in body.keys
    ]
    now = state.now()
    outcome = await alarms.raise_alarm(
        db, user, device, row, body.level, ciphertext, keys, body.attachment_ids, now
    )
    result = {"alarm_id": outcome.alarm.id, "state": outcome.alarm.state, "level": body.level}
    repo.record_txn(db, user.id, body.txn_id, "alarm", result, now)
    items = await outcome_items(db, outcome, now)
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()
        earlier = await repo.claim_txn(db, user_id, body.txn_id)
        if earlier is None:
            raise
        return {**earlier, "duplicate": True}
    await state.publish(items)
    log.info("alarm raised id=%s level=%s list=%s", result["alarm_id"], body.level, row.id)
    return {**result, "duplicate": False}


@router.get("/alarms/{alarm_id}")
async def status(alarm_id: Id, caller: Authed, db: DB) -> dict[str, Any]:
    """Who was alarmed when and how each answered, with the log (sender and admins)."""
    return await alarms.status_json(db, await alarms.alarm_for_watcher(db, caller.user, alarm_id))


@router.post("/alarms/{alarm_id}/answers", status_code=204)
async def answer(alarm_id: Id, body: AnswerBody, caller: Authed, state: State, db: DB) -> Response:
    now = state.now()
    outcome = await alarms.answer(db, caller.user, alarm_id, body.kind, now, body.reason)
    if outcome is None:
        return Response(status_code=204)
    items = await outcome_items(db, outcome, now)
    await db.commit()
    await state.publish(items)
    return Response(status_code=204)


@router.post("/alarms/{alarm_id}/end")
async def end(alarm_id: Id, caller: Authed, state: State, db: DB) -> dict[str, Any]:
    now = state.now()
    outcome = await alarms.end_alarm(db, caller.user, alarm_id, now)
    items = await outcome_items(db, outcome, now)
    await db.commit()
    await state.publish(items)
    return {"alarm_id": alarm_id, "state": outcome.alarm.state}


@router.get("/alarms")
async def mine(
    caller: Authed,
    db: DB,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Open alarms this device was alarmed with and not answered (as the stream sends them)."""
    device = caller.session.device_id if device_id is None else device_id
    if device is None:
        return {"alarms": []}
    await repo.active_device(db, caller.user.id, device)
    rows = await alarms.deliveries_for_device(db, caller.user.id, device)
    return {"alarms": [alarm_event(a, r, k) for a, r, k in rows]}
