"""Tenant administration over REST: partner consent, retention, invitations.

Tenant admins act on their own tenant only; quota and storage extensions are the instance
admin's (and the CLI's). The admin portal will use the same `messenger.store.repo` rules.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import Field
from sqlalchemy import select

from messenger.server.api._common import Body, Bytes, Id
from messenger.server.auth import Authed, Caller
from messenger.server.state import DB, State
from messenger.server.wire import route_departure
from messenger.store import repo
from messenger.store.errors import Forbidden, InvalidInput, NotFound
from messenger.store.models import Tenant, TenantPartner, User

router = APIRouter(prefix="/admin")
log = logging.getLogger("messenger.server.admin")


class PolicyBody(Body):
    retention_days: int | None = Field(default=None, ge=1, le=36500)
    user_quota_bytes: Bytes | None = None
    storage_extension_steps: int | None = Field(default=None, ge=0, le=100_000)


class InviteBody(Body):
    email: str = Field(max_length=320)
    role: Literal["user", "tenant_admin"] = "user"
    display_name: str = Field(default="", max_length=200)


async def _own_tenant(caller: Caller, db: DB) -> Tenant:
    if caller.user.role not in ("tenant_admin", "instance_admin"):
        raise Forbidden("this needs a tenant administrator")
    tenant = await db.get(Tenant, caller.user.tenant_id)
    assert tenant is not None
    return tenant


async def _tenant_json(db: DB, tenant: Tenant) -> dict[str, Any]:
    consents = await db.scalars(
        select(TenantPartner.partner_tenant_id).where(TenantPartner.tenant_id == tenant.id)
    )
    return {
        "tenant_id": tenant.id,
        "name": tenant.name,
        "retention_days": tenant.retention_days,
        "retention_bounds": [tenant.retention_min_days, tenant.retention_max_days],
        "user_quota_bytes": tenant.user_quota_bytes,
        "storage_extension_steps": tenant.storage_extension_steps,
        "storage_used": tenant.storage_used,
        "consented_partners": sorted(consents),
        "active_partners": sorted(await repo.partner_tenants(db, tenant.id)),
    }


@router.get("/tenant")
async def tenant(caller: Authed, db: DB) -> dict[str, Any]:
    return await _tenant_json(db, await _own_tenant(caller, db))


@router.put("/partners/{partner_id}", status_code=204)
async def allow_partner(partner_id: Id, caller: Authed, state: State, db: DB) -> Response:
    own = await _own_tenant(caller, db)
    partner = await db.get(Tenant, partner_id)
    if partner is None:
        raise NotFound("no such tenant")
    await repo.set_partner(db, own, partner, True, state.now())
    await db.commit()
    return Response(status_code=204)


@router.delete("/partners/{partner_id}", status_code=204)
async def withdraw_partner(partner_id: Id, caller: Authed, state: State, db: DB) -> Response:
    own = await _own_tenant(caller, db)
    partner = await db.get(Tenant, partner_id)
    if partner is None:
        raise NotFound("no such tenant")
    await repo.set_partner(db, own, partner, False, state.now())
    await db.commit()
    return Response(status_code=204)


@router.patch("/policy")
async def policy(body: PolicyBody, caller: Authed, db: DB) -> dict[str, Any]:
    own = await _own_tenant(caller, db)
    storage = body.user_quota_bytes is not None or body.storage_extension_steps is not None
    if storage and caller.user.role != "instance_admin":
        raise Forbidden("quota and storage extensions are set by the instance administrator")
    await repo.set_policy(
        db,
        own,
        retention_days=body.retention_days,
        user_quota_bytes=body.user_quota_bytes,
        storage_extension_steps=body.storage_extension_steps,
    )
    await db.commit()
    return await _tenant_json(db, own)


@router.post("/invitations", status_code=201)
async def invite(body: InviteBody, caller: Authed, state: State, db: DB) -> dict[str, str]:
    own = await _own_tenant(caller, db)
    # One answer whether another tenant owns the domain or nobody does: no existence leak.
    if await repo.domain_tenant_id(db, body.email) != own.id:
        raise Forbidden("you can invite addresses of your own tenant's domains only")
    user, token = await repo.invite_user(
        db, body.email, state.now(), role=body.role, display_name=body.display_name
    )
    await db.commit()
    return {"user_id": user.id, "email": user.email, "invite_token": token}


async def _user_to_administer(caller: Caller, db: DB, user_id: str) -> User:
    """A user the caller administers: tenant admins their tenant's, the instance admin any
    tenant's (accounts, never conversations); another tenant's user is simply not found."""
    await _own_tenant(caller, db)
    user = await db.get(User, user_id)
    if (
        user is None
        or user.deleted_at is not None
        or (caller.user.role != "instance_admin" and user.tenant_id != caller.user.tenant_id)
    ):
        raise NotFound("no such user")
    if user.id == caller.user.id:
        raise InvalidInput("you cannot change your own account this way")
    if user.role == "instance_admin" and caller.user.role != "instance_admin":
        raise Forbidden("only the instance administrator changes that account")
    return user


@router.post("/users/{user_id}/disable", status_code=204)
async def disable_user(user_id: Id, caller: Authed, state: State, db: DB) -> Response:
    user = await _user_to_administer(caller, db, user_id)
    departure = await repo.disable_user(db, user, state.now())
    await db.commit()
    log.info("user disabled user=%s by=%s", user.id, caller.user.id)
    await state.publish(route_departure(user.id, departure))
    return Response(status_code=204)


@router.post("/users/{user_id}/enable", status_code=204)
async def enable_user(user_id: Id, caller: Authed, db: DB) -> Response:
    user = await _user_to_administer(caller, db, user_id)
    await repo.enable_user(db, user)
    await db.commit()
    return Response(status_code=204)


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(user_id: Id, caller: Authed, state: State, db: DB) -> Response:
    user = await _user_to_administer(caller, db, user_id)
    departure = await repo.delete_user(db, user, state.now())
    await db.commit()
    log.info("user deleted user=%s by=%s", user.id, caller.user.id)
    await state.publish(route_departure(user.id, departure))
    return Response(status_code=204)


class TenantStateBody(Body):
    disabled: bool


@router.put("/tenants/{tenant_id}/state", status_code=204)
async def tenant_state(tenant_id: Id, body: TenantStateBody, caller: Authed, db: DB) -> Response:
    """The instance administrator disables or enables a whole tenant (not its own)."""
    if caller.user.role != "instance_admin":
        raise Forbidden("tenants are disabled by the instance administrator")
    tenant = await db.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such tenant")
    if tenant.id == caller.user.tenant_id:
        raise InvalidInput("the instance administrator's own tenant cannot be disabled")
    await repo.set_tenant_disabled(db, tenant, body.disabled)
    await db.commit()
    return Response(status_code=204)


class RetentionBoundsBody(Body):
    min_days: int = Field(ge=1, le=36500)
    max_days: int = Field(ge=1, le=36500)


@router.put("/tenants/{tenant_id}/retention-bounds")
async def retention_bounds(
    tenant_id: Id, body: RetentionBoundsBody, caller: Authed, db: DB
) -> dict[str, Any]:
    """The instance administrator bounds a tenant's retention (its admins choose within)."""
    if caller.user.role != "instance_admin":
        raise Forbidden("retention bounds are set by the instance administrator")
    tenant = await db.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such tenant")
    await repo.set_retention_bounds(db, tenant, body.min_days, body.max_days)
    await db.commit()
    return {
        "tenant_id": tenant.id,
        "retention_days": tenant.retention_days,
        "retention_bounds": [tenant.retention_min_days, tenant.retention_max_days],
    }
