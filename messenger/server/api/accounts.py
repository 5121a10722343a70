"""Login, invitations, sessions, the device key registry and the tenant directory."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from messenger.server import invitations
from messenger.server.api._common import Body, Id, unb64
from messenger.server.auth import Authed, hash_password, new_token, verify_password
from messenger.server.clientip import client_address
from messenger.server.errors import ApiError
from messenger.server.state import DB, State
from messenger.server.wire import device_list_change
from messenger.store import repo
from messenger.store.errors import Conflict, NotFound
from messenger.store.models import Device, Session, Tenant, User, new_id

router = APIRouter()
log = logging.getLogger("messenger.server.accounts")


class LoginBody(Body):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    device_id: Id | None = None


class RegisterBody(Body):
    invite_token: str = Field(max_length=200)
    password: str = Field(min_length=8, max_length=1024)
    display_name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)


class DeviceBody(Body):
    name: str = Field(default="", max_length=200)
    signing_key: str = Field(max_length=64)
    exchange_key: str = Field(max_length=64)
    signature: str = Field(max_length=4096)
    device_id: Id | None = None


def user_json(user: User) -> dict[str, Any]:
    return {
        "user_id": user.id,
        "tenant_id": user.tenant_id,
        "email": user.email,
        "display_name": user.display_name,
    }


def device_json(device: Device) -> dict[str, Any]:
    return {
        "device_id": device.id,
        "user_id": device.user_id,
        "name": device.name,
        "signing_key": device.signing_key,
        "exchange_key": device.exchange_key,
        "signature": device.signature,
        "approval": device.approval,
        "approved_by": device.approved_by,
        "created_at": device.created_at.isoformat(),
    }


async def _open_session(state: State, db: DB, user: User, device_id: str | None) -> dict[str, Any]:
    if device_id is not None:
        await repo.active_device(db, user.id, device_id)
    token = new_token()
    session = Session(
        id=new_id(),
        user_id=user.id,
        token_hash=repo.token_hash(token),
        device_id=device_id,
        created_at=state.now(),
    )
    db.add(session)
    await db.commit()
    log.info("session opened user=%s session=%s", user.id, session.id)
    return {
        "token": token,
        "session_id": session.id,
        "user_id": user.id,
        "tenant_id": user.tenant_id,
        "device_id": device_id,
    }


@router.post("/login")
async def login(body: LoginBody, request: Request, state: State) -> dict[str, Any]:
    """Check the password outside any database transaction, after the throttle allows it.

    The connection is held only for the two short lookups, never while argon2 runs, so a
    flood of logins cannot starve other requests of connections.
    """
    account = body.email.strip().lower()
    address = client_address(request, state.proxies)
    await state.logins.check(account, address)
    async with state.sessions() as db:
        user = await repo.user_by_email(db, account)
        tenant = await db.get(Tenant, user.tenant_id) if user is not None else None
        usable = user is not None and not user.disabled and not (tenant and tenant.disabled)
        user_id = user.id if user is not None and usable else None
        stored = user.password_hash if user is not None else None
    async with state.hashing.slot():
        await state.logins.check(account, address)  # failures may have landed while queued
        ok = await verify_password(state.hasher, stored, body.password)
    if user_id is None or not ok:
        await state.logins.failed(account, address)
        log.info("login failed")
        raise ApiError(401, "wrong e-mail or password")
    await state.logins.succeeded(account, address)
    async with state.sessions() as db:
        found = await db.get(User, user_id)
        if found is None or found.disabled:
            raise ApiError(401, "wrong e-mail or password")
        return await _open_session(state, db, found, body.device_id)


@router.post("/register")
async def register(body: RegisterBody, state: State, db: DB) -> dict[str, Any]:
    async with state.hashing.slot():
        hashed = await hash_password(state.hasher, body.password)
    user = await repo.redeem_invitation(db, body.invite_token, state.now())
    user.password_hash = hashed
    if body.display_name:
        user.display_name = body.display_name
    if body.phone:
        user.phone = body.phone
    return await _open_session(state, db, user, None)


@router.post("/logout", status_code=204)
async def logout(caller: Authed, state: State, db: DB) -> Response:
    caller.session.revoked_at = state.now()
    kick = {"kick_session": caller.session.id, "user_id": caller.user.id}
    await db.commit()
    await state.publish([kick])
    return Response(status_code=204)


@router.get("/sessions")
async def sessions(caller: Authed, state: State, db: DB) -> list[dict[str, Any]]:
    rows = await db.scalars(
        select(Session)
        .where(Session.user_id == caller.user.id, Session.revoked_at.is_(None))
        .order_by(Session.created_at)
    )
    return [
        {
            "session_id": s.id,
            "device_id": s.device_id,
            "created_at": s.created_at.isoformat(),
            "expires_at": (s.created_at + state.settings.session_ttl).isoformat(),
            "current": s.id == caller.session.id,
        }
        for s in rows
        if s.created_at + state.settings.session_ttl > state.now()
    ]


@router.delete("/sessions/{session_id}", status_code=204)
async def revoke_session(session_id: str, caller: Authed, state: State, db: DB) -> Response:
    session = await db.get(Session, session_id)
    if session is None or session.user_id != caller.user.id or session.revoked_at is not None:
        raise NotFound("no such session")
    session.revoked_at = state.now()
    kick = {"kick_session": session.id, "user_id": caller.user.id}
    await db.commit()
    await state.publish([kick])
    return Response(status_code=204)


@router.get("/me")
async def me(caller: Authed) -> dict[str, Any]:
    user = caller.user
    return {**user_json(user), "phone": user.phone, "role": user.role}


@router.post("/devices", status_code=201)
async def register_device(body: DeviceBody, caller: Authed, state: State, db: DB) -> dict[str, Any]:
    unb64(body.signing_key, "signing_key", exact=32)
    unb64(body.exchange_key, "exchange_key", exact=32)
    unb64(body.signature, "signature", max_bytes=2048)
    device_id = body.device_id or new_id()
    taken = await db.get(Device, device_id)
    if taken is not None and taken.user_id == caller.user.id:
        raise Conflict("you registered this device id already")
    if taken is not None:
        device_id = new_id()  # the server assigns ids: whose an id is stays unknown
    device = Device(
        id=device_id,
        user_id=caller.user.id,
        name=body.name,
        signing_key=body.signing_key,
        exchange_key=body.exchange_key,
        signature=body.signature,
        to_device_seq=0,
        created_at=state.now(),
    )
    db.add(device)
    await db.flush()
    caller.session.device_id = device.id
    partners = await repo.conversation_partners(db, caller.user.id)
    await db.commit()
    await state.publish([device_list_change(caller.user.id, partners)])
    return {"device_id": device.id}


@router.get("/users/{user_id}/devices")
async def list_devices(user_id: str, caller: Authed, db: DB) -> list[dict[str, Any]]:
    user = await repo.visible_user(db, caller.user, user_id)
    return [device_json(d) for d in await repo.devices_of(db, user.id)]


@router.delete("/devices/{device_id}", status_code=204)
async def remove_device(device_id: str, caller: Authed, state: State, db: DB) -> Response:
    device = await repo.active_device(db, caller.user.id, device_id)
    now = state.now()
    device.removed_at = now
    for session in await db.scalars(select(Session).where(Session.device_id == device.id)):
        if session.revoked_at is None:
            session.revoked_at = now
    await repo.ack_to_device(db, device.id, device.to_device_seq)
    partners = await repo.conversation_partners(db, caller.user.id)
    await db.commit()
    log.info("device removed user=%s device=%s", caller.user.id, device.id)
    await state.publish([{"kick_device": device.id}, device_list_change(caller.user.id, partners)])
    return Response(status_code=204)


@router.get("/directory")
async def directory(
    caller: Authed, db: DB, q: Annotated[str, Query(max_length=200)] = ""
) -> list[dict[str, Any]]:
    return [user_json(u) for u in await repo.directory(db, caller.user, q)]


@router.get("/users/{user_id}")
async def get_user(user_id: str, caller: Authed, db: DB) -> dict[str, Any]:
    return user_json(await repo.visible_user(db, caller.user, user_id))


class PasswordBody(Body):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)


class ResetRequestBody(Body):
    email: str = Field(max_length=320)


class ResetBody(Body):
    token: str = Field(max_length=200)
    new_password: str = Field(min_length=8, max_length=1024)


async def _end_sessions(state: State, db: DB, user_id: str, keep: str | None) -> list[str]:
    """Revoke the user's sessions but `keep`; returns the ended ids (to kick after commit)."""
    ended = []
    for session in await db.scalars(
        select(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None))
    ):
        if session.id != keep:
            session.revoked_at = state.now()
            ended.append(session.id)
    return ended


@router.post("/password", status_code=204)
async def change_password(
    body: PasswordBody, request: Request, caller: Authed, state: State, db: DB
) -> Response:
    """A new password for the caller; every other session of theirs ends."""
    user_id, stored, account = caller.user.id, caller.user.password_hash, caller.user.email
    address = client_address(request, state.proxies)
    await db.commit()  # no transaction open while argon2 runs
    await state.logins.check(account, address)
    async with state.hashing.slot():
        ok = await verify_password(state.hasher, stored, body.current_password)
        hashed = await hash_password(state.hasher, body.new_password) if ok else None
    if hashed is None:
        await state.logins.failed(account, address)
        raise ApiError(403, "the current password is wrong", "forbidden")
    user = await db.get(User, user_id)
    assert user is not None
    user.password_hash = hashed
    ended = await _end_sessions(state, db, user_id, keep=caller.session.id)
    await db.commit()
    await state.publish([{"kick_session": s, "user_id": user_id} for s in ended])
    log.info("password changed user=%s", user_id)
    return Response(status_code=204)


@router.post("/password/reset", status_code=202)
async def request_reset(body: ResetRequestBody, state: State, db: DB) -> dict[str, str]:
    """Mail a reset link if the address has an account; the answer is the same either way."""
    settings = state.settings
    if settings.smtp_url is None:
        # Not a 5xx: nothing failed, the operator did not switch the feature on.
        raise ApiError(404, "password reset by e-mail is not enabled on this server")
    account = repo.normalise_email(body.email)
    user = await repo.user_by_email(db, account)
    if user is not None and not user.disabled:
        token = await repo.password_reset_token(db, user, state.now())
        await db.commit()
        link = settings.reset_link.replace("{token}", token)
        message = invitations.reset_message(settings.smtp_from, user.email, link)
        try:
            await run_in_threadpool(invitations.send, settings.smtp_url, message)
        except invitations.MailError as exc:
            log.warning("reset mail not sent user=%s: %s", user.id, exc)
    return {"detail": "if the address has an account, a reset link is on its way"}


@router.post("/password/reset/confirm", status_code=204)
async def confirm_reset(body: ResetBody, state: State, db: DB) -> Response:
    """Set the new password from a reset link; every session of the user ends."""
    async with state.hashing.slot():
        hashed = await hash_password(state.hasher, body.new_password)
    user = await repo.redeem_invitation(db, body.token, state.now(), purpose="reset")
    user.password_hash = hashed
    user_id = user.id
    ended = await _end_sessions(state, db, user_id, keep=None)
    await db.commit()
    await state.publish([{"kick_session": s, "user_id": user_id} for s in ended])
    log.info("password reset user=%s", user_id)
    return Response(status_code=204)
