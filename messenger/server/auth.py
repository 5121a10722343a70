"""Passwords (argon2id), bearer tokens (random, stored as SHA-256) and the caller of a request."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from messenger.server import bots
from messenger.server.config import Argon2Params
from messenger.server.errors import ApiError
from messenger.server.state import DB, AppState, State
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


@dataclass
class Caller:
    session: Session
    user: User


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
    if session.revoked_at is not None or user.disabled or tenant_disabled:
        raise ApiError(401, "this session has ended")
    # A bot's token lasts until it is rotated or the bot deleted (services cannot log in).
    if user.kind != "bot" and session.created_at + state.settings.session_ttl <= state.now():
        raise ApiError(401, "this session has expired; log in again")
    return Caller(session, user)


async def current_caller(request: Request, db: DB, state: State) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "send 'Authorization: Bearer <token>'")
    caller = await caller_for_token(db, token.strip(), state)
    if caller.user.kind == "bot":
        # The route's template; routers included with a prefix may leave "/v1" out of it.
        path = getattr(request.scope.get("route"), "path", request.url.path)
        await bots.authorise(
            db,
            caller.user,
            request.method,
            path if path.startswith("/v1/") else "/v1" + path,
            state.logins.counters,
            state.now().timestamp(),
        )
    return caller


Authed = Annotated[Caller, Depends(current_caller)]
