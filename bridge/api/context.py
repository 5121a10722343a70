"""What every route needs, in one object on `app.state`, and the FastAPI dependencies."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from starlette.responses import Response

from bridge.api import ids
from bridge.api.auth import Authenticator, Caller
from bridge.api.changes import Positions
from bridge.api.idempotency import IdempotencyStore, Stored
from bridge.api.identity import ExchangeIdentities
from bridge.api.limits import RateLimiter
from bridge.api.problems import ApiProblem
from bridge.api.settings import ApiSettings, SettingsError
from bridge.api.store import ApiDatabase
from bridge.api.webhooks import WebhookRegistry
from med import DelegateSession, Folder, to_jsonable

__all__ = [
    "ApiContext",
    "CallerDep",
    "ContextDep",
    "IdempotencyKey",
    "SessionDep",
    "api_json",
    "etag_of",
    "folder_by_id",
    "needs",
    "once",
]


@dataclass
class ApiContext:
    settings: ApiSettings
    auth: Authenticator
    identities: ExchangeIdentities
    limiter: RateLimiter
    idempotency: IdempotencyStore
    webhooks: WebhookRegistry
    positions: Positions
    database: ApiDatabase

    @classmethod
    def build(cls, settings: ApiSettings) -> ApiContext:
        positions = Positions(_position_key(settings))
        database = ApiDatabase(settings.database_file())
        return cls(
            settings,
            Authenticator(settings),
            ExchangeIdentities(settings),
            RateLimiter(settings.rate_per_minute),
            IdempotencyStore(settings.idempotency_ttl_s, database),
            WebhookRegistry(
                attempts=settings.webhook_attempts,
                backoff_s=settings.webhook_backoff_s,
                poll_s=settings.change_poll_s,
                positions=positions,
                database=database,
            ),
            positions,
            database,
        )

    async def start(self) -> None:
        """Open the database (one of a newer release stops the start) and resume webhooks."""
        await self.database.engine()
        await self.webhooks.resume(self._session_of_owner)

    def _session_of_owner(self, owner: str) -> Callable[[], Awaitable[DelegateSession]] | None:
        """How a kept webhook's owner ("scheme:name") reaches Exchange again, if it still may:
        a bearer token is gone with the restart, a removed caller or key may not act."""
        scheme, _, name = owner.partition(":")
        if scheme == "api_key":
            if not any(
                k.caller.lower() == name and "events" in k.scopes for k in self.settings.keys
            ):
                return None
            caller = Caller(name, "api_key")
        elif scheme == "negotiate" and self.settings.negotiate is not None:
            caller = Caller(name, "negotiate")
        else:
            return None
        if self.settings.caller(name) is None:
            return None

        async def session() -> DelegateSession:
            return await self.identities.session(caller)

        return session

    async def close(self) -> None:
        await self.webhooks.close()
        await self.identities.close()
        await self.database.close()


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Repeat the request with the same key: it is done once, the answer repeated.",
        max_length=200,
    ),
]


def _position_key(settings: ApiSettings) -> bytes:
    if settings.position_key_file is None:
        return _kept_position_key(settings.database_file().parent / "position.key")
    try:
        key = settings.position_key_file.read_bytes().strip()
    except OSError as exc:
        raise SettingsError(f"{settings.position_key_file}: {exc.strerror}") from exc
    if len(key) < 16:
        raise SettingsError(f"{settings.position_key_file}: the key needs 16 bytes or more")
    return key


def _kept_position_key(path: Path) -> bytes:
    """A random key made once and kept beside the database, so positions (and the webhooks
    following them) stay valid across restarts when no key file is configured."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
        key = path.read_bytes().strip()
    except OSError as exc:
        raise SettingsError(f"{path}: {exc.strerror}") from exc
    if len(key) < 16:
        raise SettingsError(f"{path}: the key needs 16 bytes or more")
    return key


async def _context(request: Request) -> ApiContext:
    """Async on purpose: FastAPI runs a plain-function dependency in a worker thread, a hop
    that cost every request more than the lookup itself."""
    ctx: ApiContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ApiContext, Depends(_context)]


async def _caller(request: Request, ctx: ContextDep) -> Caller:
    caller = await ctx.auth.caller(request)
    request.state.caller = caller.name
    request.state.auth_scheme = caller.scheme
    if caller.negotiate_reply:
        request.state.negotiate_reply = caller.negotiate_reply
    ctx.limiter.take(f"{caller.scheme}:{caller.name.lower()}")
    return caller


CallerDep = Annotated[Caller, Depends(_caller)]


def needs(scope: str, right: str | None = None) -> Any:
    """A dependency refusing callers (API keys) without `scope`; `right` is the Exchange right
    the operation needs, named in a 403 when Exchange itself refuses without saying which."""

    async def check(request: Request, caller: CallerDep) -> Caller:
        request.state.exchange_right = right
        if scope not in caller.scopes:
            raise ApiProblem(
                403,
                "missing-scope",
                "Missing scope",
                f"This API key lacks the {scope!r} scope.",
                missing_scope=scope,
            )
        return caller

    return Depends(check)


async def _session(caller: CallerDep, ctx: ContextDep) -> DelegateSession:
    return await ctx.identities.session(caller)


SessionDep = Annotated[DelegateSession, Depends(_session)]


def api_json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """A JSON answer of med values (ids in their wire form)."""
    body = json.dumps(ids.outward(to_jsonable(data)), ensure_ascii=False, separators=(",", ":"))
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def etag_of(change_key: str | None) -> str | None:
    return f'"{change_key}"' if change_key else None


async def folder_by_id(session: DelegateSession, folder_id: str) -> Folder:
    return await session.folder(ids.inward(folder_id))


async def once(
    ctx: ApiContext,
    caller: Caller,
    key: str | None,
    request_parts: Any,
    work: Callable[[], Awaitable[Response]],
) -> Response:
    """Run `work` once per Idempotency-Key; a repeat gets the first answer again."""

    async def stored() -> Stored:
        answer = await work()
        kept = tuple((k, v) for k, v in answer.headers.items() if k.lower() in ("etag", "location"))
        return Stored(answer.status_code, bytes(answer.body), answer.media_type or "", kept)

    fingerprint = json.dumps(request_parts, sort_keys=True, default=str).encode()
    result, replay = await ctx.idempotency.run(
        f"{caller.scheme}:{caller.name.lower()}", key, fingerprint, stored
    )
    headers = dict(result.headers)
    if replay:
        headers["Idempotent-Replayed"] = "true"
    return Response(result.body, result.status, headers=headers, media_type=result.media_type)
