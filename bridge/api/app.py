"""`create_app(settings)`: the delegate mailbox REST API as an ASGI app (FastAPI)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from bridge.api.accesslog import AccessLog
from bridge.api.context import ApiContext
from bridge.api.limits import BodyLimit
from bridge.api.problems import install_problem_handlers
from bridge.api.routes import ROUTERS
from bridge.api.schemas import Problem
from bridge.api.settings import ApiSettings

__all__ = ["DESCRIPTION", "create_app"]

DESCRIPTION = """\
Delegate access to Exchange mailboxes over HTTP: the mailboxes a caller works in (own,
delegated, functional, shared, public folders, archives), their folders and items of every
kind, sending and answering meetings on behalf of others, calendar views, free/busy,
permissions and delegates, iCalendar, voicemail, and a change stream (server-sent events,
resumable with `Last-Event-ID`) or signed webhooks.

**Identity.** Every call acts toward Exchange with the caller's own identity, so Exchange's
own rights decide. A caller with an OAuth **bearer** token (a JWT of the configured issuer
with Graph's audience) has that token passed on to Microsoft Graph unchanged. A **Kerberos**
(Negotiate) or **API-key** caller acts through the Exchange account configured for that
caller (normally its own); a caller without one gets 403: there is no shared service account.

**Errors** are RFC 9457 problem details: 403 names the missing Exchange right
(`missing_right`), 409 a conflict, 412 a stale `If-Match`, 429/503 carry `Retry-After`, 501
names the feature the backend lacks. **Updates** need `If-Match` with the item's `ETag`;
**sends and creates** take an `Idempotency-Key`.
"""

_SECURITY_SCHEMES = {
    "negotiate": {
        "type": "http",
        "scheme": "negotiate",
        "description": "Kerberos (SPNEGO) with a ticket for HTTP/<API host>.",
    },
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def create_app(settings: ApiSettings, *, context: ApiContext | None = None) -> FastAPI:
    """The API for `settings`; `context` lets a caller share or inspect the state."""
    ctx = context or ApiContext.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        reaper = asyncio.create_task(_close_idle_sessions(ctx), name="close-idle-sessions")
        try:
            yield
        finally:
            reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reaper
            await ctx.close()

    app = FastAPI(
        title="medbridge delegate mailbox API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    install_problem_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AccessLog)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema(
                ref_template="#/components/schemas/{model}"
            )
            components["securitySchemes"] = _SECURITY_SCHEMES
            schema["security"] = [{"negotiate": []}, {"bearer": []}, {"apiKey": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _close_idle_sessions(ctx: ApiContext) -> None:
    while True:
        await asyncio.sleep(60)
        await ctx.identities.close_idle()
