"""The admin portal's pages under `/admin`: plain HTML forms, every change through
`messenger.server.admin_service` (the REST API's rules, and one audit log entry each)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import Response
from sqlalchemy import func, select, text

from messenger.audit import log as audit_log
from messenger.audit import service as audit_service
from messenger.server import admin_service as svc
from messenger.server.auth import accept_invitation, check_credentials
from messenger.server.bots import SCOPES
from messenger.server.clientip import client_address
from messenger.server.errors import ApiError
from messenger.server.portal import web
from messenger.server.portal.charts import usage_chart
from messenger.server.portal.i18n import LANGUAGES, translator
from messenger.server.state import DB, State
from messenger.server.throttle import Throttled
from messenger.store import repo
from messenger.store.errors import StoreError
from messenger.store.models import AuditApproval, Membership, Tenant, ToDevice, User

router = APIRouter(prefix="/admin", include_in_schema=False)
log = logging.getLogger("messenger.server.portal")
STATIC = Path(__file__).parent / "static"
MAX_CSV_BYTES = 1024 * 1024

Csrf = Annotated[str, Form(max_length=100)]
Text = Annotated[str, Form(max_length=20_000)]


def install(app: FastAPI) -> None:
    @app.exception_handler(web.NotLoggedIn)
    async def _login(request: Request, _: web.NotLoggedIn) -> Response:
        flash = "expired" if request.cookies.get(web.COOKIE) else None
        response = web.redirect(request, "/admin/login", flash)
        response.delete_cookie(web.COOKIE, path=web.PATH)
        return response

    @app.exception_handler(web.BadCsrf)
    async def _csrf(request: Request, _: web.BadCsrf) -> Response:
        return web.render(request, "error.html", {"message_key": "csrf"}, status=403)

    app.include_router(router)


async def guard(request: Request, state: State, db: DB, csrf: str | None = None) -> web.Admin:
    admin = await web.admin_of(request, state, db)
    if csrf is not None or request.method == "POST":
        await web.check_csrf(request, admin, csrf or "")
    return admin


async def act(request: Request, state: State, db: DB, back: str, work: Awaitable[Any]) -> Response:
    """Run one service call: commit and publish, or roll back and show the error."""
    try:
        result = await work
    except StoreError as exc:
        await db.rollback()
        return web.redirect(request, back, f"! {exc.detail}")
    await db.commit()
    if isinstance(result, svc.Changes) and result.publish:
        await state.publish(result.publish)
    return web.redirect(request, back, translator(web.lang_of(request))["saved"])


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.replace(",", "\n").splitlines() if line.strip()]


# -- static, language, login -----------------------------------------------------------------


@router.get("/static/portal.css")
async def css() -> Response:
    response = Response((STATIC / "portal.css").read_bytes(), media_type="text/css")
    response.headers["Cache-Control"] = "max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.post("/lang")
async def switch_language(
    request: Request, lang: Annotated[str, Form(max_length=5)], back: Annotated[str, Form()] = ""
) -> Response:
    target = back if back.startswith("/admin") and "//" not in back else "/admin/"
    response = web.redirect(request, target)
    if lang in LANGUAGES:
        web.set_cookie(response, request, web.LANG_COOKIE, lang, max_age=365 * 86400)
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    token = request.cookies.get(web.LOGIN_COOKIE) or ""
    if len(token) < 20:
        token = secrets.token_urlsafe(24)
    response = web.render(request, "login.html", {"login_csrf": token})
    web.set_cookie(response, request, web.LOGIN_COOKIE, token, max_age=3600)
    return response


@router.post("/login")
async def login(
    request: Request,
    state: State,
    db: DB,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Csrf,
) -> Response:
    web.check_origin(request)
    expected = request.cookies.get(web.LOGIN_COOKIE, "")
    if not expected or not secrets.compare_digest(expected, csrf):
        raise web.BadCsrf
    try:
        user = await check_credentials(
            state, email, password, client_address(request, state.proxies)
        )
    except ApiError as exc:
        key = "login_failed" if exc.status == 401 else None
        message = translator(web.lang_of(request))[key] if key else exc.detail
        return web.redirect(request, "/admin/login", f"! {message}")
    except Throttled as exc:  # too many failures: the same limits as the app's login
        return web.redirect(request, "/admin/login", f"! {exc}")
    if not svc.is_admin(user):
        return web.redirect(
            request, "/admin/login", "! " + translator(web.lang_of(request))["not_admin"]
        )
    response = web.redirect(request, "/admin/")
    await web.start_session(request, state, db, user, response)
    log.info("portal login user=%s", user.id)
    return response


@router.post("/logout")
async def logout(request: Request, state: State, db: DB, csrf: Csrf) -> Response:
    admin = await guard(request, state, db, csrf)
    admin.session.revoked_at = state.now()
    await db.commit()
    response = web.redirect(request, "/admin/login")
    response.delete_cookie(web.COOKIE, path=web.PATH)
    return response


@router.get("/accept")
async def accept_form(request: Request, token: str = "") -> Response:
    return web.render(request, "accept.html", {"token": token[:200], "done": False})


@router.post("/accept")
async def accept(
    request: Request,
    state: State,
    db: DB,
    token: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    password2: Annotated[str, Form(max_length=1024)],
    display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Set the first password from an invitation link (the token is the proof; no session)."""
    web.check_origin(request)
    t = translator(web.lang_of(request))
    error = None
    if password != password2:
        error = t["mismatch"]
    elif len(password) < 8:
        error = t["too_short"]
    if error is None:
        try:
            await accept_invitation(state, db, token, password, display_name.strip() or None)
            await db.commit()
        except StoreError as exc:
            await db.rollback()
            error = exc.detail
    if error:
        context = {"token": token, "done": False, "error": error}
        return web.render(request, "accept.html", context, status=400)
    return web.render(request, "accept.html", {"token": "", "done": True})


@router.get("/")
async def home(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    target = "/admin/tenants" if admin.user.role == "instance_admin" else "/admin/users"
    return web.redirect(request, target)


# -- users -----------------------------------------------------------------------------------


@router.get("/users")
async def users(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    pending = set(
        await db.scalars(
            select(User.id).where(User.tenant_id == admin.tenant.id, User.password_hash.is_(None))
        )
    )
    context = {"users": await svc.users_of(db, admin.user), "pending": pending}
    await db.commit()
    return web.render(request, "users.html", context, admin)


@router.post("/users/invite")
async def invite(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    email: Annotated[str, Form(max_length=320)],
    role: Annotated[str, Form(max_length=20)] = "user",
    display_name: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    admin = await guard(request, state, db, csrf)
    work = svc.invite(
        db, state.settings, admin.user, email, state.now(), role=role, display_name=display_name
    )
    return await act(request, state, db, "/admin/users", work)


@router.post("/users/{user_id}/{action}")
async def user_action(
    request: Request, state: State, db: DB, csrf: Csrf, user_id: str, action: str
) -> Response:
    admin = await guard(request, state, db, csrf)
    actions = {
        "disable": svc.disable_user,
        "enable": svc.enable_user,
        "delete": svc.delete_user,
        "reset-devices": svc.reset_devices,
    }
    if action not in actions:
        return web.render(request, "error.html", {"message": "no such action"}, admin, 404)
    work = actions[action](db, admin.user, user_id, state.now())
    return await act(request, state, db, "/admin/users", work)


async def _csv_text(upload: UploadFile | None, pasted: str) -> str:
    if upload is not None and upload.filename:
        data = await upload.read(MAX_CSV_BYTES + 1)
        if len(data) > MAX_CSV_BYTES:
            raise ValueError("the CSV file may have at most 1 MiB")
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return data.decode("latin-1")
    return pasted


@router.post("/import")
async def import_preview(
    request: Request,
    state: State,
    db: DB,
    csrf: Annotated[str, Form(max_length=100)],
    file: Annotated[UploadFile | None, File()] = None,
    csv_text: Annotated[str, Form(max_length=MAX_CSV_BYTES)] = "",
) -> Response:
    admin = await guard(request, state, db, csrf)
    try:
        data = await _csv_text(file, csv_text)
        rows = await svc.preview_csv(db, admin.user, data)
    except (ValueError, StoreError) as exc:
        detail = exc.detail if isinstance(exc, StoreError) else str(exc)
        return web.redirect(request, "/admin/users", f"! {detail}")
    await db.commit()
    context = {"rows": rows, "csv_text": data, "valid": sum(r.error is None for r in rows)}
    return web.render(request, "import.html", context, admin)


@router.post("/import/confirm")
async def import_confirm(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    csv_text: Annotated[str, Form(max_length=MAX_CSV_BYTES)],
) -> Response:
    admin = await guard(request, state, db, csrf)
    try:
        invited, skipped = await svc.import_csv(
            db, state.settings, admin.user, csv_text, state.now()
        )
    except StoreError as exc:
        await db.rollback()
        return web.redirect(request, "/admin/users", f"! {exc.detail}")
    await db.commit()
    t = translator(web.lang_of(request))
    message = f"{len(invited)} {t['imported']}, {len(skipped)} {t['skipped']}"
    return web.redirect(request, "/admin/users", message)


# -- managed groups --------------------------------------------------------------------------


@router.get("/groups")
async def groups(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    context = {"groups": await svc.managed_groups(db, admin.user)}
    await db.commit()
    return web.render(request, "groups.html", context, admin)


@router.post("/groups")
async def create_group(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    name: Annotated[str, Form(max_length=200)],
    members: Text = "",
    admins: Text = "",
) -> Response:
    admin = await guard(request, state, db, csrf)

    async def work() -> svc.Changes:
        _, changes = await svc.create_managed_group(
            db, admin.user, name, _lines(members), _lines(admins), state.now()
        )
        return changes

    return await act(request, state, db, "/admin/groups", work())


@router.get("/groups/{cid}")
async def group(request: Request, state: State, db: DB, cid: str) -> Response:
    admin = await guard(request, state, db)
    try:
        conv = await svc.managed_group(db, admin.user, cid)
    except StoreError:
        return web.render(request, "error.html", {"message": "no such group"}, admin, 404)
    rows = await db.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.conversation_id == conv.id, Membership.active.is_(True))
        .order_by(User.email)
    )
    context = {"group": conv, "members": [(m, u) for m, u in rows]}
    await db.commit()
    return web.render(request, "group.html", context, admin)


@router.post("/groups/{cid}/members")
async def add_members(
    request: Request, state: State, db: DB, csrf: Csrf, cid: str, members: Text
) -> Response:
    admin = await guard(request, state, db, csrf)
    work = svc.change_group_members(db, admin.user, cid, state.now(), add=_lines(members))
    return await act(request, state, db, f"/admin/groups/{cid}", work)


@router.post("/groups/{cid}/members/{user_id}/{action}")
async def member_action(
    request: Request, state: State, db: DB, csrf: Csrf, cid: str, user_id: str, action: str
) -> Response:
    admin = await guard(request, state, db, csrf)
    now = state.now()
    if action == "remove":
        work = svc.change_group_members(db, admin.user, cid, now, remove=user_id)
    elif action in ("admin", "member"):
        work = svc.change_group_members(
            db, admin.user, cid, now, admin=(user_id, action == "admin")
        )
    else:
        return web.render(request, "error.html", {"message": "no such action"}, admin, 404)
    return await act(request, state, db, f"/admin/groups/{cid}", work)


# -- alarm lists -----------------------------------------------------------------------------


@router.get("/alarms")
async def alarm_lists(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    context = {"lists": await svc.alarm_lists(db, admin.user)}
    await db.commit()
    return web.render(request, "alarms.html", context, admin)


@router.post("/alarms")
async def create_alarm_list(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    name: Annotated[str, Form(max_length=200)],
    tier1: Text,
    tier2: Text = "",
    repeat_seconds: Annotated[int, Form(ge=1, le=86400)] = 60,
    escalation_seconds: Annotated[int, Form(ge=1, le=86400)] = 300,
    emergency: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    admin = await guard(request, state, db, csrf)
    tiers = [t for t in (_lines(tier1), _lines(tier2)) if t]
    work = svc.create_alarm_list(
        db,
        admin.user,
        name,
        tiers,
        state.now(),
        repeat_seconds=repeat_seconds,
        escalation_seconds=escalation_seconds,
        emergency=bool(emergency),
    )
    return await act(request, state, db, "/admin/alarms", work)


@router.post("/alarms/{list_id}/delete")
async def delete_alarm_list(
    request: Request, state: State, db: DB, csrf: Csrf, list_id: str
) -> Response:
    admin = await guard(request, state, db, csrf)
    work = svc.delete_alarm_list(db, admin.user, list_id, state.now())
    return await act(request, state, db, "/admin/alarms", work)


# -- bots ------------------------------------------------------------------------------------


@router.get("/bots")
async def bots(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    context = {"bots": await svc.bots_of(db, admin.user), "scopes": SCOPES, "created": None}
    await db.commit()
    return web.render(request, "bots.html", context, admin)


@router.post("/bots")
async def create_bot(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    name: Annotated[str, Form(max_length=200)],
    scopes: Annotated[list[str] | None, Form()] = None,
    rate_per_minute: Annotated[int, Form(ge=1, le=10_000)] = 60,
    webhook_url: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The token and webhook secret are shown on this answer only (not redirected)."""
    admin = await guard(request, state, db, csrf)
    try:
        info, token, secret = await svc.create_bot(
            db,
            admin.user,
            name,
            scopes or [],
            state.now(),
            rate_per_minute=rate_per_minute,
            webhook_url=webhook_url.strip() or None,
        )
    except StoreError as exc:
        await db.rollback()
        return web.redirect(request, "/admin/bots", f"! {exc.detail}")
    await db.commit()
    created = {"name": info.user.display_name, "token": token, "secret": secret}
    context = {"bots": await svc.bots_of(db, admin.user), "scopes": SCOPES, "created": created}
    await db.commit()
    return web.render(request, "bots.html", context, admin)


@router.post("/bots/{bot_id}/delete")
async def delete_bot(request: Request, state: State, db: DB, csrf: Csrf, bot_id: str) -> Response:
    admin = await guard(request, state, db, csrf)
    work = svc.delete_bot(db, admin.user, bot_id, state.now())
    return await act(request, state, db, "/admin/bots", work)


# -- policies --------------------------------------------------------------------------------


@router.get("/policies")
async def policies(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    own = admin.tenant
    consented = set(await svc.consented_partners(db, own.id))
    mutual = await repo.partner_tenants(db, own.id)
    others = list(await db.scalars(select(Tenant).where(Tenant.id != own.id).order_by(Tenant.name)))
    audit = await audit_service.state(db, own.id)
    context = {
        "tenant": own,
        "others": others,
        "consented": consented,
        "mutual": mutual,
        "audit": audit,
    }
    await db.commit()
    return web.render(request, "policies.html", context, admin)


@router.post("/policies/retention")
async def set_retention(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    retention_days: Annotated[int, Form(ge=1, le=36500)],
) -> Response:
    admin = await guard(request, state, db, csrf)
    work = svc.set_policy(db, admin.user, state.now(), retention_days=retention_days)
    return await act(request, state, db, "/admin/policies", work)


@router.post("/policies/quota")
async def set_quota(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    quota_gb: Annotated[float, Form(ge=0, le=1_000_000)],
) -> Response:
    admin = await guard(request, state, db, csrf)
    quota = int(quota_gb * 10**9)
    work = svc.set_policy(db, admin.user, state.now(), user_quota_bytes=quota)
    return await act(request, state, db, "/admin/policies", work)


@router.post("/policies/partners/{partner_id}/{action}")
async def partner(
    request: Request, state: State, db: DB, csrf: Csrf, partner_id: str, action: str
) -> Response:
    admin = await guard(request, state, db, csrf)
    work = svc.set_partner(db, admin.user, partner_id, action == "allow", state.now())
    return await act(request, state, db, "/admin/policies", work)


@router.post("/policies/audit/{action}")
async def audit_switch(request: Request, state: State, db: DB, csrf: Csrf, action: str) -> Response:
    admin = await guard(request, state, db, csrf)
    work = audit_service.set_enabled(db, admin.user, action == "on", state.now())
    return await act(request, state, db, "/admin/policies", work)


# -- branding, templates, app configuration --------------------------------------------------


@router.get("/branding")
async def branding(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    context = {"brand": svc.branding(admin.tenant)}
    await db.commit()
    return web.render(request, "branding.html", context, admin)


@router.post("/branding")
async def set_branding(
    request: Request,
    state: State,
    db: DB,
    csrf: Annotated[str, Form(max_length=100)],
    primary_colour: Annotated[str, Form(max_length=20)],
    accent_colour: Annotated[str, Form(max_length=20)],
    logo: Annotated[UploadFile | None, File()] = None,
    remove_logo: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    admin = await guard(request, state, db, csrf)
    data = await logo.read(svc.MAX_LOGO_BYTES + 1) if logo is not None and logo.filename else None
    work = svc.set_branding(
        db,
        admin.user,
        state.now(),
        primary_colour=primary_colour,
        accent_colour=accent_colour,
        logo=data,
        remove_logo=bool(remove_logo),
    )
    return await act(request, state, db, "/admin/branding", work)


@router.get("/templates")
async def templates(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    context = {"templates": {k: svc.template(admin.tenant, k) for k in svc.TEMPLATE_KINDS}}
    await db.commit()
    return web.render(request, "templates.html", context, admin)


@router.post("/templates/{kind}")
async def set_template(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    kind: str,
    subject: Annotated[str, Form(max_length=200)],
    body: Text,
) -> Response:
    admin = await guard(request, state, db, csrf)
    work = svc.set_template(db, admin.user, kind, subject, body, state.now())
    return await act(request, state, db, "/admin/templates", work)


@router.get("/config")
async def config(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    context = {"config": sorted(svc.app_config(admin.tenant).items())}
    await db.commit()
    return web.render(request, "config.html", context, admin)


@router.post("/config")
async def set_config(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    key: Annotated[str, Form(max_length=200)],
    value: Annotated[str, Form(max_length=4000)] = "",
    remove: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    admin = await guard(request, state, db, csrf)
    parsed = None if remove else svc.parse_config_value(value)
    work = svc.set_app_config(db, admin.user, key.strip(), parsed, state.now())
    return await act(request, state, db, "/admin/config", work)


# -- usage and audit -------------------------------------------------------------------------


@router.get("/usage")
async def usage(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    rows = await svc.usage(db, admin.user)
    t = translator(web.lang_of(request))
    context = {"rows": rows, "chart": usage_chart(rows, t["chart_title"])}
    await db.commit()
    return web.render(request, "usage.html", context, admin)


@router.post("/usage/{user_id}/quota")
async def set_user_quota(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    user_id: str,
    quota_gb: Annotated[float | None, Form(ge=0, le=1_000_000)] = None,
    clear: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    admin = await guard(request, state, db, csrf)
    if not clear and quota_gb is None:
        return web.redirect(request, "/admin/usage", "! give the quota in GB")
    quota = None if clear else round((quota_gb or 0) * 10**9)
    work = svc.set_user_quota(db, admin.user, user_id, quota, state.now())
    return await act(request, state, db, "/admin/usage", work)


@router.get("/audit")
async def audit(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    entries = await audit_log.entries(db, admin.tenant.id, limit=200)
    requests = await audit_service.list_requests(db, admin.user)
    approvals = svc.pairs(
        await db.execute(
            select(AuditApproval.request_id, func.count())
            .where(AuditApproval.request_id.in_([r.id for r in requests]))
            .group_by(AuditApproval.request_id)
        )
    )
    emails = svc.pairs(
        await db.execute(select(User.id, User.email).where(User.tenant_id == admin.tenant.id))
    )
    context = {"entries": entries, "requests": requests, "approvals": approvals, "emails": emails}
    await db.commit()
    return web.render(request, "audit.html", context, admin)


# -- instance administration -----------------------------------------------------------------


@router.get("/tenants")
async def tenants(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    try:
        rows = await svc.tenants(db, admin.user)
    except StoreError as exc:
        return web.render(request, "error.html", {"message": exc.detail}, admin, 403)
    await db.commit()
    return web.render(request, "tenants.html", {"tenants": rows}, admin)


@router.post("/tenants")
async def create_tenant(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    name: Annotated[str, Form(max_length=200)],
    domains: Text = "",
) -> Response:
    admin = await guard(request, state, db, csrf)
    work = svc.create_tenant(db, admin.user, name, _lines(domains), state.now())
    return await act(request, state, db, "/admin/tenants", work)


@router.get("/tenants/{tenant_id}")
async def tenant(request: Request, state: State, db: DB, tenant_id: str) -> Response:
    admin = await guard(request, state, db)
    try:
        target = await svc.tenant(db, admin.user, tenant_id)
    except StoreError as exc:
        return web.render(request, "error.html", {"message": exc.detail}, admin, 404)
    domains = [d for t, ds, _ in await svc.tenants(db, admin.user) if t.id == target.id for d in ds]
    capacity = await repo.tenant_capacity(db, target)
    context = {"tenant": target, "domains": domains, "capacity": capacity}
    await db.commit()
    return web.render(request, "tenant.html", context, admin)


@router.post("/tenants/{tenant_id}/{action}")
async def tenant_action(
    request: Request,
    state: State,
    db: DB,
    csrf: Csrf,
    tenant_id: str,
    action: str,
    domain: Annotated[str, Form(max_length=253)] = "",
    min_days: Annotated[int, Form(ge=1, le=36500)] = 1,
    max_days: Annotated[int, Form(ge=1, le=36500)] = 365,
    steps: Annotated[int, Form(ge=0, le=100_000)] = 0,
) -> Response:
    admin = await guard(request, state, db, csrf)
    now = state.now()
    user = admin.user
    works: dict[str, Callable[[], Awaitable[Any]]] = {
        "domain": lambda: svc.add_domain(db, user, tenant_id, domain, now),
        "bounds": lambda: svc.set_retention_bounds(db, user, tenant_id, min_days, max_days, now),
        "storage": lambda: svc.set_storage_steps(db, user, tenant_id, steps, now),
        "disable": lambda: svc.set_tenant_disabled(db, user, tenant_id, True, now),
        "enable": lambda: svc.set_tenant_disabled(db, user, tenant_id, False, now),
    }
    if action not in works:
        return web.render(request, "error.html", {"message": "no such action"}, admin, 404)
    return await act(request, state, db, f"/admin/tenants/{tenant_id}", works[action]())


@router.get("/health")
async def health(request: Request, state: State, db: DB) -> Response:
    admin = await guard(request, state, db)
    if admin.user.role != "instance_admin":
        return web.render(request, "error.html", {"message": "instance administrators"}, admin, 403)
    checks: dict[str, Any] = {"node": state.settings.node_name}
    try:
        await db.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:  # any driver error means the same to the operator
        checks["database"] = False
    checks["database_kind"] = state.engine.dialect.name
    checks["redis"] = None
    if state.settings.redis_url:
        checks["redis"] = await _redis_ok(state)
    pending = await db.scalar(select(func.count()).select_from(ToDevice))
    checks["queues"] = {
        "to_device": int(pending or 0),
        "streams_waiting_for_hello": state.preauth,
    }
    await db.commit()
    return web.render(request, "health.html", {"checks": checks}, admin)


async def _redis_ok(state: State) -> bool:
    import redis.asyncio as aioredis

    client = aioredis.from_url(state.settings.redis_url or "", socket_timeout=2)
    try:
        return bool(await client.ping())
    except Exception:  # unreachable, refused, timed out: all "unreachable"
        return False
    finally:
        await client.aclose()  # type: ignore[attr-defined]
