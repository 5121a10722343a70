"""The portal's plumbing: cookie sessions, CSRF tokens, security headers, language, rendering.

A session is a random cookie token (only its SHA-256 is stored) with its own CSRF token; every
login makes a new one and ends the session the browser presented (no session fixation). It ends
after `portal_idle` without a request and `portal_lifetime` after login, and when the account,
its admin role or its tenant goes. Every POST carries the CSRF token in a hidden field and,
when the browser sends Origin, must come from this server.
"""

from __future__ import annotations

import functools
import secrets
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from messenger.server.admin_service import is_admin
from messenger.server.portal.i18n import pick, translator
from messenger.server.state import AppState
from messenger.sizes import human_size as human
from messenger.store.models import PortalSession, Tenant, User, new_id
from messenger.store.repo import token_hash

if TYPE_CHECKING:
    from jinja2 import Environment

COOKIE = "mb_portal"
LOGIN_COOKIE = "mb_login"
FLASH_COOKIE = "mb_flash"
LANG_COOKIE = "mb_lang"
PATH = "/admin"

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" makes browsers send Origin: null
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@functools.cache
def templates() -> Environment:
    """The page templates, loaded at the first page: a node that only serves the API keeps
    Jinja2 out of its memory."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["filesize"] = human
    env.filters["gigabytes"] = lambda size: f"{size / 10**9:.6f}".rstrip("0").rstrip(".")
    return env


class NotLoggedIn(Exception):
    """No valid session: the page answers with the login form."""


class BadCsrf(Exception):
    """A POST without this session's CSRF token, or from another origin."""


@dataclass
class Admin:
    session: PortalSession
    user: User
    tenant: Tenant


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(
    response: Response, request: Request, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=secure(request),
    )


def finish(response: Response) -> Response:
    for key, value in HEADERS.items():
        response.headers[key] = value
    return response


def lang_of(request: Request) -> str:
    return pick(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language", ""))


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    admin: Admin | None = None,
    status: int = 200,
) -> Response:
    lang = lang_of(request)
    flash = request.cookies.get(FLASH_COOKIE)
    body = (
        templates()
        .get_template(name)
        .render(
            t=translator(lang),
            lang=lang,
            admin=admin,
            csrf=admin.session.csrf_token if admin else "",
            flash=urllib.parse.unquote(flash) if flash else None,
            path=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(body, status_code=status)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path=PATH)
    return finish(response)


def redirect(request: Request, to: str, flash: str | None = None) -> Response:
    response = RedirectResponse(to, status_code=303)
    if flash:
        set_cookie(response, request, FLASH_COOKIE, urllib.parse.quote(flash[:500]), max_age=60)
    return finish(response)


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if urllib.parse.urlsplit(origin).netloc != host:
        raise BadCsrf


async def admin_of(request: Request, state: AppState, db: AsyncSession) -> Admin:
    """The logged-in administrator of this request (and the session's last use moves on)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise NotLoggedIn
    row = (
        await db.execute(
            select(PortalSession, User, Tenant)
            .join(User, User.id == PortalSession.user_id)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(PortalSession.token_hash == token_hash(token))
        )
    ).first()
    if row is None:
        raise NotLoggedIn
    session, user, tenant = row
    now = state.now()
    settings = state.settings
    if (
        session.revoked_at is not None
        or user.disabled
        or user.deleted_at is not None
        or tenant.disabled
        or not is_admin(user)
        or session.created_at + settings.portal_lifetime <= now
        or session.seen_at + settings.portal_idle <= now
    ):
        raise NotLoggedIn
    session.seen_at = now
    await db.flush()
    return Admin(session, user, tenant)


async def check_csrf(request: Request, admin: Admin, sent: str) -> None:
    check_origin(request)
    if not sent or not secrets.compare_digest(sent, admin.session.csrf_token):
        raise BadCsrf


async def start_session(
    request: Request, state: AppState, db: AsyncSession, user: User, response: Response
) -> None:
    """A new session for this login; the one the browser came with (if any) ends."""
    now = state.now()
    presented = request.cookies.get(COOKIE)
    if presented:
        old = await db.scalar(
            select(PortalSession).where(PortalSession.token_hash == token_hash(presented))
        )
        if old is not None and old.revoked_at is None:
            old.revoked_at = now
    token = secrets.token_urlsafe(32)
    db.add(
        PortalSession(
            id=new_id(),
            user_id=user.id,
            token_hash=token_hash(token),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            seen_at=now,
        )
    )
    await db.commit()
    set_cookie(response, request, COOKIE, token)
    response.delete_cookie(LOGIN_COOKIE, path=PATH)
