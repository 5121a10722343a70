"""Public key material the clients publish for each other: prekeys and cross-signing.

The server checks who may publish what (a user for their own devices; a tenant administrator
for approvals in their tenant) and sizes; it cannot check signatures that matter, since clients
verify every one of them against keys they pinned (docs/crypto.md).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field

from messenger.server.api._common import Body, Id, unb64
from messenger.server.auth import Authed
from messenger.server.state import DB, State
from messenger.server.wire import device_list_change
from messenger.store import repo
from messenger.store.errors import Conflict, Forbidden, NotFound
from messenger.store.models import MAX_KEY_ID

router = APIRouter()

KeyId = Field(ge=1, le=MAX_KEY_ID)
MAX_CLAIM = 2000  # devices per claim: every device of a full group


class SignedPrekeyBody(Body):
    key_id: int = KeyId
    public_key: str = Field(max_length=64)
    signature: str = Field(max_length=128)


class OneTimePrekeyBody(Body):
    key_id: int = KeyId
    public_key: str = Field(max_length=64)


class PrekeysBody(Body):
    signed_prekey: SignedPrekeyBody | None = None
    one_time_prekeys: list[OneTimePrekeyBody] = Field(
        default_factory=list, max_length=repo.MAX_ONE_TIME_PREKEYS
    )


class MasterKeyBody(Body):
    master_key: str = Field(max_length=64)
    signature: str = Field(max_length=128)


class ApprovalBody(Body):
    signature: str = Field(max_length=128)


@router.put("/devices/{device_id}/prekeys")
async def publish_prekeys(
    device_id: str, body: PrekeysBody, caller: Authed, db: DB
) -> dict[str, Any]:
    device = await repo.active_device(db, caller.user.id, device_id)
    signed = None
    if body.signed_prekey is not None:
        spk = body.signed_prekey
        unb64(spk.public_key, "signed_prekey.public_key", exact=32)
        unb64(spk.signature, "signed_prekey.signature", exact=64)
        signed = (spk.key_id, spk.public_key, spk.signature)
    for otk in body.one_time_prekeys:
        unb64(otk.public_key, "one_time_prekeys.public_key", exact=32)
    count = await repo.publish_prekeys(
        db, device, signed, [(k.key_id, k.public_key) for k in body.one_time_prekeys]
    )
    await db.commit()
    return {"one_time_count": count}


@router.get("/devices/{device_id}/prekeys")
async def prekey_count(device_id: str, caller: Authed, db: DB) -> dict[str, Any]:
    device = await repo.active_device(db, caller.user.id, device_id)
    return {
        "one_time_count": await repo.one_time_prekey_count(db, device.id),
        "signed_prekey_id": device.signed_prekey_id,
    }


class DeviceRef(Body):
    user_id: Id
    device_id: Id


class ClaimBody(Body):
    devices: list[DeviceRef] = Field(min_length=1, max_length=MAX_CLAIM)


@router.post("/prekeys/claim")
async def claim_prekeys(body: ClaimBody, caller: Authed, db: DB) -> dict[str, Any]:
    """One bundle per device to start a session with it; each one-time prekey is handed out
    once. Devices unknown, invisible to the caller or without prekeys are left out."""
    bundles = []
    for ref in body.devices:
        try:
            user = await repo.visible_user(db, caller.user, ref.user_id)
            device = await repo.active_device(db, user.id, ref.device_id)
        except NotFound:
            continue
        if device.signed_prekey is None:
            continue
        one_time = await repo.claim_one_time_prekey(db, device.id)
        bundles.append(
            {
                "user_id": user.id,
                "device_id": device.id,
                "signed_prekey": {
                    "key_id": device.signed_prekey_id,
                    "public_key": device.signed_prekey,
                    "signature": device.signed_prekey_signature,
                },
                "one_time_prekey": (
                    {"key_id": one_time[0], "public_key": one_time[1]} if one_time else None
                ),
            }
        )
    await db.commit()
    return {"bundles": bundles}


@router.put("/users/me/master_key", status_code=201)
async def publish_master_key(body: MasterKeyBody, caller: Authed, db: DB) -> dict[str, Any]:
    """Set once: a master key already published cannot be replaced through the API, so a
    stolen password cannot swap it; a lost one is replaced by approving devices as admin."""
    unb64(body.master_key, "master_key", exact=32)
    unb64(body.signature, "signature", exact=64)
    user = caller.user
    if user.master_key is not None and user.master_key != body.master_key:
        raise Conflict("a master key is published already")
    user.master_key, user.master_signature = body.master_key, body.signature
    await db.commit()
    return {"user_id": user.id, "master_key": user.master_key}


@router.get("/users/{user_id}/master_key")
async def master_key(user_id: str, caller: Authed, db: DB) -> dict[str, Any]:
    user = await repo.visible_user(db, caller.user, user_id)
    if user.master_key is None:
        raise NotFound("this user has published no master key")
    return {"user_id": user.id, "master_key": user.master_key, "signature": user.master_signature}


@router.put("/users/{user_id}/devices/{device_id}/approval")
async def approve_device(
    user_id: Id, device_id: Id, body: ApprovalBody, caller: Authed, state: State, db: DB
) -> dict[str, Any]:
    """Store a master key's signature over a device: the owner's own, or a tenant
    administrator's (the recovery path; `approved_by` shows contacts who approved)."""
    unb64(body.signature, "signature", exact=64)
    approver = caller.user
    user = await repo.visible_user(db, approver, user_id)
    if approver.id != user.id and not (
        approver.role in ("tenant_admin", "instance_admin") and approver.tenant_id == user.tenant_id
    ):
        raise Forbidden("only the user or an administrator of their tenant approves a device")
    if approver.master_key is None:
        raise Conflict("publish a master key before approving devices")
    device = await repo.active_device(db, user.id, device_id)
    device.approval, device.approved_by = body.signature, approver.id
    partners = await repo.conversation_partners(db, user.id)
    await db.commit()
    await state.publish([device_list_change(user.id, partners)])
    return {"device_id": device.id, "approved_by": approver.id}
