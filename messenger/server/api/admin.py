"""Tenant administration over REST: partner consent, retention, invitations, users.

Tenant admins act on their own tenant only; the tenant's per-user quota and storage extensions
are the instance admin's, a single user's quota (within the tenant's storage) the tenant
admin's. The rules and the audit log entries live in `messenger.server.admin_service`, shared
with the admin portal.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from messenger.server import admin_service as svc
from messenger.server.api._common import Body, Bytes, Id
from messenger.server.auth import Authed
from messenger.server.state import DB, State
from messenger.store import repo
from messenger.store.models import Tenant

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


async def _tenant_json(db: AsyncSession, tenant: Tenant) -> dict[str, Any]:
    return {
        "tenant_id": tenant.id,
        "name": tenant.name,
        "retention_days": tenant.retention_days,
        "retention_bounds": [tenant.retention_min_days, tenant.retention_max_days],
        "user_quota_bytes": tenant.user_quota_bytes,
        "storage_extension_steps": tenant.storage_extension_steps,
        "storage_used": tenant.storage_used,
        "consented_partners": await svc.consented_partners(db, tenant.id),
        "active_partners": sorted(await repo.partner_tenants(db, tenant.id)),
    }


@router.get("/tenant")
async def tenant(caller: Authed, db: DB) -> dict[str, Any]:
    return await _tenant_json(db, await svc.own_tenant(db, caller.user))


@router.put("/partners/{partner_id}", status_code=204)
async def allow_partner(partner_id: Id, caller: Authed, state: State, db: DB) -> Response:
    await svc.set_partner(db, caller.user, partner_id, True, state.now())
    await db.commit()
    return Response(status_code=204)


@router.delete("/partners/{partner_id}", status_code=204)
async def withdraw_partner(partner_id: Id, caller: Authed, state: State, db: DB) -> Response:
    await svc.set_partner(db, caller.user, partner_id, False, state.now())
    await db.commit()
    return Response(status_code=204)


@router.patch("/policy")
async def policy(body: PolicyBody, caller: Authed, state: State, db: DB) -> dict[str, Any]:
    own = await svc.set_policy(
        db,
        caller.user,
        state.now(),
        retention_days=body.retention_days,
        user_quota_bytes=body.user_quota_bytes,
        storage_extension_steps=body.storage_extension_steps,
    )
    await db.commit()
    return await _tenant_json(db, own)


@router.post("/invitations", status_code=201)
async def invite(body: InviteBody, caller: Authed, state: State, db: DB) -> dict[str, str]:
    """The token comes back to the caller; the server mails nothing for the REST call."""
    invited = await svc.invite(
        db,
        state.settings,
        caller.user,
        body.email,
        state.now(),
        role=body.role,
        display_name=body.display_name,
        mail=False,
    )
    await db.commit()
    return {"user_id": invited.user.id, "email": invited.user.email, "invite_token": invited.token}


@router.post("/users/{user_id}/disable", status_code=204)
async def disable_user(user_id: Id, caller: Authed, state: State, db: DB) -> Response:
    changes = await svc.disable_user(db, caller.user, user_id, state.now())
    await db.commit()
    log.info("user disabled user=%s by=%s", user_id, caller.user.id)
    await state.publish(changes.publish)
    return Response(status_code=204)


@router.post("/users/{user_id}/enable", status_code=204)
async def enable_user(user_id: Id, caller: Authed, state: State, db: DB) -> Response:
    await svc.enable_user(db, caller.user, user_id, state.now())
    await db.commit()
    return Response(status_code=204)


@router.delete("/users/{user_id}", status_code=204)
async def delete_user(user_id: Id, caller: Authed, state: State, db: DB) -> Response:
    changes = await svc.delete_user(db, caller.user, user_id, state.now())
    await db.commit()
    log.info("user deleted user=%s by=%s", user_id, caller.user.id)
    await state.publish(changes.publish)
    return Response(status_code=204)


class UserQuotaBody(Body):
    quota_bytes: Bytes | None = None
    """None gives the user the tenant's per-user quota again."""


@router.put("/users/{user_id}/quota")
async def user_quota(
    user_id: Id, body: UserQuotaBody, caller: Authed, state: State, db: DB
) -> dict[str, Any]:
    quota = await svc.set_user_quota(db, caller.user, user_id, body.quota_bytes, state.now())
    await db.commit()
    return {"user_id": user_id, "quota_bytes": body.quota_bytes, "quota": quota}


class TenantStateBody(Body):
    disabled: bool


@router.put("/tenants/{tenant_id}/state", status_code=204)
async def tenant_state(
    tenant_id: Id, body: TenantStateBody, caller: Authed, state: State, db: DB
) -> Response:
    """The instance administrator disables or enables a whole tenant (not its own)."""
    await svc.set_tenant_disabled(db, caller.user, tenant_id, body.disabled, state.now())
    await db.commit()
    return Response(status_code=204)


class RetentionBoundsBody(Body):
    min_days: int = Field(ge=1, le=36500)
    max_days: int = Field(ge=1, le=36500)


@router.put("/tenants/{tenant_id}/retention-bounds")
async def retention_bounds(
    tenant_id: Id, body: RetentionBoundsBody, caller: Authed, state: State, db: DB
) -> dict[str, Any]:
    """The instance administrator bounds a tenant's retention (its admins choose within)."""
    tenant = await svc.set_retention_bounds(
        db, caller.user, tenant_id, body.min_days, body.max_days, state.now()
    )
    await db.commit()
    return {
        "tenant_id": tenant.id,
        "retention_days": tenant.retention_days,
        "retention_bounds": [tenant.retention_min_days, tenant.retention_max_days],
    }
