"""Passwords (argon2id), bearer tokens (random, stored as SHA-256) and the caller of a request."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from sqlalchemy import Executable, Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from starlette.concurrency import run_in_threadpool

from messenger.server import bots
from messenger.server.config import Argon2Params
from messenger.server.errors import ApiError
from messenger.server.state import DB, AppState, State
from messenger.store import repo
from messenger.store.models import Session, Tenant, User
from messenger.store.repo import token_hash

# Verifying against this keeps the time of a login for an unknown e-mail like a known one.
_DUMMY: dict[int, str] = {}


def make_hasher(params: Argon2Params) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params.time_cost, memory_cost=params.memory_cost, parallelism=params.parallelism
    )


async def hash_password(hasher: PasswordHasher, password: str) -> str:
    return await run_in_threadpool(hasher.hash, password)


async def verify_password(hasher: PasswordHasher, stored: str | None, password: str) -> bool:
    if stored is None:
        key = id(hasher)
        if key not in _DUMMY:
            _DUMMY[key] = await run_in_threadpool(hasher.hash, secrets.token_hex(8))
        stored = _DUMMY[key]
        await run_in_threadpool(_verify, hasher, stored, password)
        return False
    return await run_in_threadpool(_verify, hasher, stored, password)


def _verify(hasher: PasswordHasher, stored: str, password: str) -> bool:
    try:
        return hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def check_credentials(state: AppState, email: str, password: str, address: str) -> User:
    """The enabled user of an enabled tenant with this password, or a 401 (the same one for
    every reason). The password is checked outside any database transaction, after the
    throttle allows it, so a flood of logins cannot starve other requests of connections."""
    account = email.strip().lower()
    await state.logins.check(account, address)
    async with state.sessions() as db:
        user = await repo.user_by_email(db, account)
        tenant = await db.get(Tenant, user.tenant_id) if user is not None else None
        usable = user is not None and not user.disabled and not (tenant and tenant.disabled)
        user_id = user.id if user is not None and usable else None
        stored = user.password_hash if user is not None else None
    async with state.hashing.slot():
        await state.logins.check(account, address)  # failures may have landed while queued
        ok = await verify_password(state.hasher, stored, password)
    if user_id is None or not ok:
        await state.logins.failed(account, address)
        raise ApiError(401, "wrong e-mail or password")
    await state.logins.succeeded(account, address)
    async with state.sessions() as db:
        found = await db.get(User, user_id)
        if found is None or found.disabled:
            raise ApiError(401, "wrong e-mail or password")
        return found


async def accept_invitation(
    state: AppState,
    db: AsyncSession,
    token: str,
    password: str,
    display_name: str | None = None,
    phone: str | None = None,
) -> User:
    """Redeem an invitation: the user's first password (the caller commits)."""
    async with state.hashing.slot():
        hashed = await hash_password(state.hasher, password)
    user = await repo.redeem_invitation(db, token, state.now())
    user.password_hash = hashed
    if display_name:
        user.display_name = display_name
    if phone:
        user.phone = phone
    return user


@dataclass
class Caller:
    session: Session
    user: User


def _refuse_ended(
    revoked: bool,
    user_disabled: bool,
    tenant_disabled: bool,
    kind: str,
    created_at: dt.datetime,
    state: AppState,
) -> None:
    """The 401s of a token whose session, user or tenant has ended (one rule for all routes)."""
    if revoked or user_disabled or tenant_disabled:
        raise ApiError(401, "this session has ended")
    # A bot's token lasts until it is rotated or the bot deleted (services cannot log in).
    if kind != "bot" and created_at + state.settings.session_ttl <= state.now():
        raise ApiError(401, "this session has expired; log in again")


async def caller_for_token(db: AsyncSession, token: str, state: AppState) -> Caller:
    row = (
        await db.execute(
            select(Session, User, Tenant.disabled)
            .join(User, User.id == Session.user_id)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(Session.token_hash == token_hash(token))
        )
    ).first()
    if row is None:
        raise ApiError(401, "unknown or expired token")
    session, user, tenant_disabled = row
    _refuse_ended(
        session.revoked_at is not None,
        user.disabled,
        tenant_disabled,
        user.kind,
        session.created_at,
        state,
    )
    return Caller(session, user)


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "send 'Authorization: Bearer <token>'")
    return token.strip()


def _route(request: Request) -> str:
    """The route's template; routers included with a prefix may leave "/v1" out of it."""
    path = getattr(request.scope.get("route"), "path", request.url.path)
    return path if path.startswith("/v1/") else "/v1" + path


async def current_caller(request: Request, db: DB, state: State) -> Caller:
    caller = await caller_for_token(db, _bearer(request), state)
    if caller.user.kind == "bot":
        await bots.authorise(
            db,
            caller.user.id,
            request.method,
            _route(request),
            state.logins.counters,
            state.now().timestamp(),
        )
    return caller


Authed = Annotated[Caller, Depends(current_caller)]


@dataclass(frozen=True)
class Sender:
    """The caller of a hot route (sending), as plain values: no ORM objects, no session kept."""

    user_id: str
    session_id: str


_SENDER = (
    select(
        Session.id,
        Session.revoked_at,
        Session.created_at,
        User.id,
        User.kind,
        User.disabled,
        Tenant.disabled,
    )
    .join_from(Session, User, User.id == Session.user_id)
    .join(Tenant, Tenant.id == User.tenant_id)
)
_SENDER_BY_TOKEN = _SENDER.where(Session.token_hash == bindparam("token_hash"))
_SENDER_BY_SESSION = _SENDER.where(Session.id == bindparam("session_id"))
_SENDERS_BY_SESSION = _SENDER.where(Session.id.in_(bindparam("session_ids", expanding=True)))


# session id, revoked at, created at, user id, kind, user disabled, tenant disabled
_SenderRow = Row[str, dt.datetime | None, dt.datetime, str, str, bool, bool]


def _check_sender_row(row: _SenderRow | None, state: AppState) -> _SenderRow:
    """The row of a session that may still send; else its 401."""
    if row is None:
        raise ApiError(401, "unknown or expired token")
    _, revoked_at, created_at, _, kind, user_disabled, tenant_disabled = row
    _refuse_ended(revoked_at is not None, user_disabled, tenant_disabled, kind, created_at, state)
    return row


async def ended_sessions(
    conn: AsyncConnection, session_ids: Collection[str], state: AppState
) -> dict[str, ApiError]:
    """The sessions among these that can no longer send, each with its 401: the check of
    `stream_sender`, made once for a batch of stream sends in the batch's own transaction
    (`GroupCommit`), so a session ended after its stream opened still cannot send."""
    rows = await conn.execute(_SENDERS_BY_SESSION, {"session_ids": sorted(session_ids)})
    found = {row[0]: row for row in rows}
    ended: dict[str, ApiError] = {}
    for session_id in session_ids:
        try:
            _check_sender_row(found.get(session_id), state)
        except ApiError as exc:
            ended[session_id] = exc
    return ended


async def _sender(
    state: AppState, statement: Executable, params: dict[str, str], method: str, route: str
) -> Sender:
    async with state.reads.connect() as conn:
        row = (await conn.execute(statement, params)).first()
    session_id, _, _, user_id, kind, _, _ = _check_sender_row(row, state)
    if kind == "bot":
        async with state.sessions() as db:
            await bots.authorise(
                db,
                user_id,
                method,
                route,
                state.logins.counters,
                state.now().timestamp(),
            )
    return Sender(user_id, session_id)


async def current_sender(request: Request, state: State) -> Sender:
    """The same check as `current_caller` in one Core statement on a connection of its own,
    given back before the route goes on (the send's batch needs the connection on SQLite)."""
    token = _bearer(request)
    params = {"token_hash": token_hash(token)}
    return await _sender(state, _SENDER_BY_TOKEN, params, request.method, _route(request))


async def stream_sender(state: AppState, session_id: str, route: str) -> Sender:
    """`current_sender` for a bot's request made over an open stream (its session already
    known): its scopes and rate limits are checked per request. A person's stream sends are
    checked in their batch instead (`ended_sessions`)."""
    return await _sender(state, _SENDER_BY_SESSION, {"session_id": session_id}, "POST", route)


SenderAuthed = Annotated[Sender, Depends(current_sender)]
