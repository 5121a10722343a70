"""Bot administration over REST: tenant admins create, change and delete their tenant's bots,
rotate tokens, read and re-drive webhook dead letters (rules in `messenger.server.bots`)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Response
from pydantic import Field

from messenger.server import admin_service, bots
from messenger.server.admin_service import own_tenant
from messenger.server.api._common import Body, Id
from messenger.server.auth import Authed
from messenger.server.state import DB, State

router = APIRouter(prefix="/admin/bots")
log = logging.getLogger("messenger.server.bots")

Scopes = list[str]


class CreateBody(Body):
    name: str = Field(min_length=1, max_length=200)
    scopes: Scopes = Field(default_factory=list, max_length=len(bots.SCOPES))
    rate_per_minute: int = Field(default=60, ge=1, le=bots.MAX_RATE)
    webhook_url: str | None = Field(default=None, max_length=2000)


class UpdateBody(Body):
    scopes: Scopes | None = Field(default=None, max_length=len(bots.SCOPES))
    rate_per_minute: int | None = Field(default=None, ge=1, le=bots.MAX_RATE)
    webhook_url: str | None = Field(default=None, max_length=2000)
    remove_webhook: bool = False


class RedriveBody(Body):
    delivery_ids: list[Id] | None = Field(default=None, max_length=1000)


@router.post("", status_code=201)
async def create(body: CreateBody, caller: Authed, state: State, db: DB) -> dict[str, Any]:
    info, token, secret = await admin_service.create_bot(
        db,
        caller.user,
        body.name,
        body.scopes,
        state.now(),
        rate_per_minute=body.rate_per_minute,
        webhook_url=body.webhook_url,
    )
    out = {**info.as_json(), "token": token, "webhook_secret": secret}
    await db.commit()
    log.info("bot created bot=%s by=%s", info.user.id, caller.user.id)
    return out


@router.get("")
async def list_all(caller: Authed, db: DB) -> list[dict[str, Any]]:
    tenant = await own_tenant(db, caller.user)
    return [i.as_json() for i in await bots.list_bots(db, tenant.id)]


@router.get("/{bot_id}")
async def get_one(bot_id: Id, caller: Authed, db: DB) -> dict[str, Any]:
    tenant = await own_tenant(db, caller.user)
    return (await bots.get_bot(db, tenant.id, bot_id)).as_json()


@router.patch("/{bot_id}")
async def update(bot_id: Id, body: UpdateBody, caller: Authed, db: DB) -> dict[str, Any]:
    tenant = await own_tenant(db, caller.user)
    info, secret = await bots.update_bot(
        db,
        tenant.id,
        bot_id,
        scopes=body.scopes,
        rate_per_minute=body.rate_per_minute,
        webhook_url=body.webhook_url,
        remove_webhook=body.remove_webhook,
    )
    out = {**info.as_json(), "webhook_secret": secret}
    await db.commit()
    return out


@router.post("/{bot_id}/token")
async def rotate(bot_id: Id, caller: Authed, state: State, db: DB) -> dict[str, str]:
    tenant = await own_tenant(db, caller.user)
    token = await bots.rotate_token(db, tenant.id, bot_id, state.now())
    await db.commit()
    log.info("bot token rotated bot=%s by=%s", bot_id, caller.user.id)
    return {"bot_id": bot_id, "token": token}


@router.delete("/{bot_id}", status_code=204)
async def delete(bot_id: Id, caller: Authed, state: State, db: DB) -> Response:
    changes = await admin_service.delete_bot(db, caller.user, bot_id, state.now())
    await db.commit()
    await state.publish(changes.publish)
    return Response(status_code=204)


@router.get("/{bot_id}/dead-letters")
async def dead_letters(bot_id: Id, caller: Authed, db: DB) -> list[dict[str, Any]]:
    tenant = await own_tenant(db, caller.user)
    return [bots.delivery_json(d) for d in await bots.dead_letters(db, tenant.id, bot_id)]


@router.post("/{bot_id}/dead-letters/redrive")
async def redrive(
    bot_id: Id, body: RedriveBody, caller: Authed, state: State, db: DB
) -> dict[str, int]:
    tenant = await own_tenant(db, caller.user)
    count = await bots.redrive(db, tenant.id, bot_id, state.now(), body.delivery_ids)
    await db.commit()
    return {"redriven": count}
