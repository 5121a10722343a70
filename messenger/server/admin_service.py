"""Administration as one service layer for the REST API (`/v1/admin`) and the admin portal.

Every function checks the actor's right first, changes the store in the caller's transaction
and appends one entry to the tenant's hash-chained audit log (`messenger.audit.log`). The
caller commits, then publishes what `Changes.publish` holds (departures, kicked sessions).
Invitation mails go out before the commit: a mail that cannot be sent invites nobody.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from messenger.audit import log as audit_log
from messenger.server import bots, invitations
from messenger.server.config import ServerSettings
from messenger.server.wire import device_list_change, route_conversation, route_departure
from messenger.store import alarms, repo
from messenger.store.errors import Conflict, Forbidden, InvalidInput, NotFound
from messenger.store.models import (
    AlarmList,
    AlarmListMember,
    Conversation,
    Domain,
    Membership,
    Session,
    Tenant,
    TenantPartner,
    User,
)

ADMIN_ROLES = ("tenant_admin", "instance_admin")
INVITE_ROLES = ("user", "tenant_admin")
MAX_LOGO_BYTES = 256 * 1024
MAX_CSV_ROWS = 5000
COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
CONFIG_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
TEMPLATE_KINDS = ("invitation",)
DEFAULT_TEMPLATES = {
    "invitation": {
        "subject": "Your invitation to the {tenant} messenger",
        "body": (
            "You have been invited to the secure messenger of {tenant}.\n\n"
            "Open this link within 14 days to set your password:\n\n"
            "    {link}\n\n"
            "If you did not expect this message, ignore it; the link expires by itself.\n"
        ),
    }
}


@dataclass
class Changes:
    """Hub items to publish after the commit."""

    publish: list[dict[str, Any]] = field(default_factory=list)


# -- who may act -----------------------------------------------------------------------------


def is_admin(user: User) -> bool:
    return user.role in ADMIN_ROLES


async def own_tenant(db: AsyncSession, actor: User) -> Tenant:
    """The tenant a tenant administrator (or the instance administrator) administers."""
    if not is_admin(actor):
        raise Forbidden("this needs a tenant administrator")
    tenant = await db.get(Tenant, actor.tenant_id)
    assert tenant is not None
    return tenant


def require_instance_admin(actor: User, what: str) -> None:
    if actor.role != "instance_admin":
        raise Forbidden(f"{what} by the instance administrator")


async def user_to_administer(db: AsyncSession, actor: User, user_id: str) -> User:
    """A user the actor administers: tenant admins their tenant's, the instance admin any
    tenant's (accounts, never conversations); another tenant's user is simply not found."""
    await own_tenant(db, actor)
    user = await db.get(User, user_id)
    if (
        user is None
        or user.deleted_at is not None
        or (actor.role != "instance_admin" and user.tenant_id != actor.tenant_id)
    ):
        raise NotFound("no such user")
    if user.id == actor.id:
        raise InvalidInput("you cannot change your own account this way")
    if user.role == "instance_admin" and actor.role != "instance_admin":
        raise Forbidden("only the instance administrator changes that account")
    return user


async def _tenant(db: AsyncSession, tenant_id: str) -> Tenant:
    tenant = await db.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("no such tenant")
    return tenant


async def _audit(
    db: AsyncSession,
    tenant_id: str,
    actor: User,
    action: str,
    details: dict[str, Any],
    now: dt.datetime,
) -> None:
    await audit_log.append(db, tenant_id, actor.id, action, details, now)


# -- users -----------------------------------------------------------------------------------


def invite_link(settings: ServerSettings, token: str) -> str:
    return settings.invite_link.replace("{token}", token)


def template(tenant: Tenant, kind: str) -> dict[str, str]:
    stored = (tenant.settings or {}).get("templates", {}).get(kind, {})
    return {**DEFAULT_TEMPLATES[kind], **stored}


def fill(text: str, values: dict[str, str]) -> str:
    """Replace the template fields `{link}`, `{tenant}`, `{name}`; other braces stay as typed."""
    for name, value in values.items():
        text = text.replace("{" + name + "}", value)
    return text


@dataclass
class Invited:
    user: User
    token: str
    mailed: bool


async def invite(
    db: AsyncSession,
    settings: ServerSettings,
    actor: User,
    email: str,
    now: dt.datetime,
    *,
    role: str = "user",
    display_name: str = "",
    mail: bool = True,
) -> Invited:
    """Create the user and its invitation; mail the tenant's invitation e-mail when the server
    has SMTP (and `mail`), before the caller commits."""
    own = await own_tenant(db, actor)
    if role not in INVITE_ROLES:
        raise InvalidInput(f"unknown role {role!r} (one of {', '.join(INVITE_ROLES)})")
    # One answer whether another tenant owns the domain or nobody does: no existence leak.
    if await repo.domain_tenant_id(db, email) != own.id:
        raise Forbidden("you can invite addresses of your own tenant's domains only")
    user, token = await repo.invite_user(db, email, now, role=role, display_name=display_name)
    mailed = False
    if mail and settings.smtp_url:
        tpl = template(own, "invitation")
        values = {
            "link": invite_link(settings, token),
            "tenant": own.name,
            "name": user.display_name,
        }
        message = invitations.compose(
            settings.smtp_from, user.email, fill(tpl["subject"], values), fill(tpl["body"], values)
        )
        try:
            await run_in_threadpool(invitations.send, settings.smtp_url, message)
        except invitations.MailError as exc:
            raise InvalidInput(f"{exc}; nobody was invited") from exc
        mailed = True
    await _audit(db, own.id, actor, "user.invited", {"user_id": user.id, "role": role}, now)
    return Invited(user, token, mailed)


async def disable_user(db: AsyncSession, actor: User, user_id: str, now: dt.datetime) -> Changes:
    user = await user_to_administer(db, actor, user_id)
    departure = await repo.disable_user(db, user, now)
    await _audit(db, user.tenant_id, actor, "user.disabled", {"user_id": user.id}, now)
    return Changes(route_departure(user.id, departure))


async def enable_user(db: AsyncSession, actor: User, user_id: str, now: dt.datetime) -> Changes:
    user = await user_to_administer(db, actor, user_id)
    await repo.enable_user(db, user)
    await _audit(db, user.tenant_id, actor, "user.enabled", {"user_id": user.id}, now)
    return Changes()


async def delete_user(db: AsyncSession, actor: User, user_id: str, now: dt.datetime) -> Changes:
    user = await user_to_administer(db, actor, user_id)
    departure = await repo.delete_user(db, user, now)
    await _audit(db, user.tenant_id, actor, "user.deleted", {"user_id": user.id}, now)
    return Changes(route_departure(user.id, departure))


async def set_user_quota(
    db: AsyncSession, actor: User, user_id: str, quota_bytes: int | None, now: dt.datetime
) -> int:
    """Give a user of the actor's tenant a quota of its own, or (None) the tenant's again;
    returns the quota in force. Bounds: `repo.set_user_quota`."""
    user = await user_to_administer(db, actor, user_id)
    quota = await repo.set_user_quota(db, user, quota_bytes)
    await _audit(
        db,
        user.tenant_id,
        actor,
        "user.quota",
        {"user_id": user.id, "quota_bytes": quota_bytes},
        now,
    )
    return quota


async def reset_devices(db: AsyncSession, actor: User, user_id: str, now: dt.datetime) -> Changes:
    """Remove every device of the user and end its sessions (a lost or replaced phone); the
    user stays in its conversations and registers a new device at the next login."""
    user = await user_to_administer(db, actor, user_id)
    ended = list(
        await db.scalars(
            select(Session.id).where(Session.user_id == user.id, Session.revoked_at.is_(None))
        )
    )
    await db.execute(
        update(Session)
        .where(Session.user_id == user.id, Session.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    removed = []
    for device in await repo.devices_of(db, user.id):
        device.removed_at = now
        removed.append(device.id)
        await repo.ack_to_device(db, device.id, device.to_device_seq)
    partners = await repo.conversation_partners(db, user.id)
    await db.flush()
    await _audit(
        db,
        user.tenant_id,
        actor,
        "user.devices_reset",
        {"user_id": user.id, "devices": removed},
        now,
    )
    return Changes(
        [
            device_list_change(user.id, partners),
            *({"kick_device": d} for d in removed),
            *({"kick_session": s, "user_id": user.id} for s in ended),
        ]
    )


async def users_of(db: AsyncSession, actor: User) -> list[User]:
    own = await own_tenant(db, actor)
    rows = await db.scalars(
        select(User)
        .where(User.tenant_id == own.id, User.deleted_at.is_(None), User.kind == "person")
        .order_by(User.email)
    )
    return list(rows)


# -- CSV import ------------------------------------------------------------------------------


@dataclass
class CsvRow:
    line: int
    email: str
    display_name: str
    role: str
    error: str | None = None


def parse_users_csv(text: str, domains: set[str], known: set[str]) -> list[CsvRow]:
    """Rows `email[,display_name[,role]]` (a header line naming `email` is skipped); each row
    gets the error that would stop its import, so the preview shows every problem at once."""
    rows: list[CsvRow] = []
    seen: set[str] = set()
    reader = csv.reader(io.StringIO(text))
    for number, record in enumerate(reader, start=1):
        if not record or not any(cell.strip() for cell in record):
            continue
        if number == 1 and record[0].strip().lower() in ("email", "e-mail"):
            continue
        if len(rows) >= MAX_CSV_ROWS:
            raise InvalidInput(f"a CSV import holds at most {MAX_CSV_ROWS} users")
        cells = [c.strip() for c in record] + ["", ""]
        email, name, role = cells[0].lower(), cells[1], cells[2] or "user"
        row = CsvRow(number, email, name[:200], role)
        domain = email.rpartition("@")[2]
        if len(record) > 3:
            row.error = "too many columns (email, display name, role)"
        elif not re.fullmatch(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+", email) or len(email) > 320:
            row.error = "not an e-mail address"
        elif domain not in domains:
            row.error = "not a domain of this tenant"
        elif role not in INVITE_ROLES:
            row.error = f"unknown role (one of {', '.join(INVITE_ROLES)})"
        elif email in known:
            row.error = "already registered"
        elif email in seen:
            row.error = "listed twice"
        seen.add(email)
        rows.append(row)
    return rows


async def preview_csv(db: AsyncSession, actor: User, text: str) -> list[CsvRow]:
    own = await own_tenant(db, actor)
    domains = set(await db.scalars(select(Domain.domain).where(Domain.tenant_id == own.id)))
    emails = {r.email for r in parse_users_csv(text, domains, set())}
    known = set(await db.scalars(select(User.email).where(User.email.in_(emails))))
    return parse_users_csv(text, domains, known)


async def import_csv(
    db: AsyncSession, settings: ServerSettings, actor: User, text: str, now: dt.datetime
) -> tuple[list[Invited], list[CsvRow]]:
    """Invite every valid row (mailing each); rows with errors are returned, not imported."""
    rows = await preview_csv(db, actor, text)
    invited = []
    for row in rows:
        if row.error is None:
            invited.append(
                await invite(
                    db,
                    settings,
                    actor,
                    row.email,
                    now,
                    role=row.role,
                    display_name=row.display_name,
                )
            )
    return invited, [r for r in rows if r.error is not None]


# -- managed groups --------------------------------------------------------------------------


async def managed_groups(db: AsyncSession, actor: User) -> list[tuple[Conversation, int]]:
    own = await own_tenant(db, actor)
    count = (
        select(func.count())
        .where(Membership.conversation_id == Conversation.id, Membership.active.is_(True))
        .scalar_subquery()
    )
    rows = await db.execute(
        select(Conversation, count)
        .where(Conversation.tenant_id == own.id, Conversation.kind == "managed")
        .order_by(Conversation.created_at)
    )
    return [(c, n) for c, n in rows]


async def managed_group(db: AsyncSession, actor: User, cid: str) -> Conversation:
    own = await own_tenant(db, actor)
    conv = await db.get(Conversation, cid)
    if conv is None or conv.kind != "managed" or conv.tenant_id != own.id:
        raise NotFound("no such group")
    return conv


async def _tenant_users(db: AsyncSession, tenant: Tenant, emails: list[str]) -> list[User]:
    wanted = [repo.normalise_email(e) for e in emails if e.strip()]
    found = {
        u.email: u
        for u in await db.scalars(
            select(User).where(
                User.email.in_(wanted), User.tenant_id == tenant.id, User.deleted_at.is_(None)
            )
        )
    }
    missing = [e for e in wanted if e not in found]
    if missing:
        raise NotFound(f"no user of this tenant: {', '.join(missing)}")
    return [found[e] for e in wanted]


async def create_managed_group(
    db: AsyncSession,
    actor: User,
    name: str,
    member_emails: list[str],
    admin_emails: list[str],
    now: dt.datetime,
) -> tuple[Conversation, Changes]:
    own = await own_tenant(db, actor)
    name = name.strip()
    if not name:
        raise InvalidInput("a managed group needs a name")
    members = await _tenant_users(db, own, member_emails + admin_emails)
    conv, appended = await repo.create_conversation(
        db, None, own, "managed", name, [u.id for u in members], now
    )
    for admin in await _tenant_users(db, own, admin_emails):
        await repo.set_member_role(db, conv, admin.id, "admin")
    await _audit(
        db,
        own.id,
        actor,
        "group.created",
        {"conversation_id": conv.id, "members": len(members), "admins": len(admin_emails)},
        now,
    )
    return conv, Changes([route_conversation(e) for e in appended.events])


async def change_group_members(
    db: AsyncSession,
    actor: User,
    cid: str,
    now: dt.datetime,
    *,
    add: list[str] | None = None,
    remove: str | None = None,
    admin: tuple[str, bool] | None = None,
) -> Changes:
    conv = await managed_group(db, actor, cid)
    own = await own_tenant(db, actor)
    changes = Changes()
    details: dict[str, Any] = {"conversation_id": conv.id}
    if add:
        users = await _tenant_users(db, own, add)
        appended = await repo.add_members(db, conv, actor, [u.id for u in users], now)
        changes.publish += [route_conversation(e) for e in appended.events]
        details["added"] = [u.id for u in users]
    if remove:
        appended = await repo.remove_member(db, conv, actor, remove, now)
        changes.publish += [route_conversation(e) for e in appended.events]
        details["removed"] = remove
    if admin:
        await repo.set_member_role(db, conv, admin[0], "admin" if admin[1] else "member")
        details["admin" if admin[1] else "member"] = admin[0]
    await _audit(db, own.id, actor, "group.changed", details, now)
    return changes


# -- tenant policy ---------------------------------------------------------------------------


async def set_policy(
    db: AsyncSession,
    actor: User,
    now: dt.datetime,
    *,
    retention_days: int | None = None,
    user_quota_bytes: int | None = None,
    storage_extension_steps: int | None = None,
) -> Tenant:
    own = await own_tenant(db, actor)
    storage = user_quota_bytes is not None or storage_extension_steps is not None
    if storage:
        require_instance_admin(actor, "quota and storage extensions are set")
    await repo.set_policy(
        db,
        own,
        retention_days=retention_days,
        user_quota_bytes=user_quota_bytes,
        storage_extension_steps=storage_extension_steps,
    )
    changed = {
        k: v
        for k, v in (
            ("retention_days", retention_days),
            ("user_quota_bytes", user_quota_bytes),
            ("storage_extension_steps", storage_extension_steps),
        )
        if v is not None
    }
    await _audit(db, own.id, actor, "policy.changed", changed, now)
    return own


async def set_partner(
    db: AsyncSession, actor: User, partner_id: str, allow: bool, now: dt.datetime
) -> None:
    own = await own_tenant(db, actor)
    partner = await _tenant(db, partner_id)
    if partner.id == own.id:
        raise InvalidInput("a tenant always talks to itself")
    await repo.set_partner(db, own, partner, allow, now)
    action = "partner.allowed" if allow else "partner.withdrawn"
    await _audit(db, own.id, actor, action, {"partner_tenant_id": partner.id}, now)


async def consented_partners(db: AsyncSession, tenant_id: str) -> list[str]:
    rows = await db.scalars(
        select(TenantPartner.partner_tenant_id).where(TenantPartner.tenant_id == tenant_id)
    )
    return sorted(rows)


# -- branding, templates, app configuration --------------------------------------------------


def _settings_of(tenant: Tenant) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(tenant.settings or {}))
    return copy  # a new object: the JSON column sees the change


def branding(tenant: Tenant) -> dict[str, Any]:
    """What clients show: colours and the logo (base64 PNG/JPEG or None)."""
    stored = (tenant.settings or {}).get("branding", {})
    return {
        "name": tenant.name,
        "primary_colour": stored.get("primary_colour", "#0b5cad"),
        "accent_colour": stored.get("accent_colour", "#ffffff"),
        "logo_type": stored.get("logo_type"),
        "logo": stored.get("logo"),
    }


def _logo_type(data: bytes) -> str:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    raise InvalidInput("the logo must be a PNG or JPEG image")


async def set_branding(
    db: AsyncSession,
    actor: User,
    now: dt.datetime,
    *,
    primary_colour: str | None = None,
    accent_colour: str | None = None,
    logo: bytes | None = None,
    remove_logo: bool = False,
) -> dict[str, Any]:
    own = await own_tenant(db, actor)
    data = _settings_of(own)
    brand = data.setdefault("branding", {})
    for key, value in (("primary_colour", primary_colour), ("accent_colour", accent_colour)):
        if value is not None:
            if not COLOUR.match(value):
                raise InvalidInput(f"{value!r} is not a colour like #0b5cad")
            brand[key] = value.lower()
    if logo:
        if len(logo) > MAX_LOGO_BYTES:
            raise InvalidInput(f"the logo may have at most {MAX_LOGO_BYTES // 1024} KiB")
        brand["logo_type"] = _logo_type(logo)
        brand["logo"] = base64.b64encode(logo).decode()
    elif remove_logo:
        brand.pop("logo", None)
        brand.pop("logo_type", None)
    own.settings = data
    await db.flush()
    details = {k: v for k, v in brand.items() if k != "logo"} | {"logo": "logo" in brand}
    await _audit(db, own.id, actor, "branding.changed", details, now)
    return branding(own)


async def set_template(
    db: AsyncSession, actor: User, kind: str, subject: str, body: str, now: dt.datetime
) -> None:
    own = await own_tenant(db, actor)
    if kind not in TEMPLATE_KINDS:
        raise NotFound("no such template")
    if not subject.strip() or not body.strip():
        raise InvalidInput("a template needs a subject and a text")
    if len(subject) > 200 or len(body) > 20_000:
        raise InvalidInput("the subject may have 200 characters, the text 20,000")
    if "\n" in subject or "\r" in subject:
        raise InvalidInput("the subject is one line")
    if kind == "invitation" and "{link}" not in body:
        raise InvalidInput("the invitation text must contain {link}")
    data = _settings_of(own)
    data.setdefault("templates", {})[kind] = {"subject": subject.strip(), "body": body}
    own.settings = data
    await db.flush()
    await _audit(db, own.id, actor, "template.changed", {"template": kind}, now)


def app_config(tenant: Tenant) -> dict[str, Any]:
    """AppConfig-style keys for managed devices: dotted keys to JSON values, the shape of the
    TUI's managed.json."""
    return dict((tenant.settings or {}).get("app_config", {}))


def parse_config_value(text: str) -> Any:
    """A JSON value when the text is one (`50`, `true`, `["a"]`, `"x"`), else the text."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value


async def set_app_config(
    db: AsyncSession, actor: User, key: str, value: Any | None, now: dt.datetime
) -> dict[str, Any]:
    """Set (or, with None, remove) one key such as `tui.page_size`."""
    own = await own_tenant(db, actor)
    if not CONFIG_KEY.match(key) or len(key) > 200:
        raise InvalidInput(f"{key!r} is not a dotted key such as tui.page_size")
    data = _settings_of(own)
    config = data.setdefault("app_config", {})
    if value is None:
        config.pop(key, None)
    else:
        if len(json.dumps(value)) > 4000:
            raise InvalidInput("a value may have at most 4,000 characters")
        config[key] = value
    own.settings = data
    await db.flush()
    await _audit(
        db, own.id, actor, "app_config.changed", {"key": key, "set": value is not None}, now
    )
    return app_config(own)


# -- usage -----------------------------------------------------------------------------------


@dataclass
class Usage:
    user: User
    used: int
    quota: int
    own_quota: bool = False
    """The user has a quota of its own (else the tenant's per-user quota applies)."""


async def usage(db: AsyncSession, actor: User) -> list[Usage]:
    own = await own_tenant(db, actor)
    return [
        Usage(
            u,
            u.storage_used,
            u.quota_bytes if u.quota_bytes is not None else own.user_quota_bytes,
            u.quota_bytes is not None,
        )
        for u in await users_of(db, actor)
    ]


# -- instance administration -----------------------------------------------------------------


def pairs(rows: Iterable[Any]) -> dict[Any, Any]:
    """Two-column query rows as a dict (`dict()` would take a Result for a mapping)."""
    return {key: value for key, value in rows}


async def tenants(db: AsyncSession, actor: User) -> list[tuple[Tenant, list[str], int]]:
    require_instance_admin(actor, "tenants are listed")
    doms: dict[str, list[str]] = {}
    for d in await db.scalars(select(Domain).order_by(Domain.domain)):
        doms.setdefault(d.tenant_id, []).append(d.domain)
    counts = pairs(
        await db.execute(
            select(User.tenant_id, func.count())
            .where(User.deleted_at.is_(None))
            .group_by(User.tenant_id)
        )
    )
    return [
        (t, doms.get(t.id, []), counts.get(t.id, 0))
        for t in await db.scalars(select(Tenant).order_by(Tenant.name))
    ]


async def tenant(db: AsyncSession, actor: User, tenant_id: str) -> Tenant:
    require_instance_admin(actor, "tenants are administered")
    return await _tenant(db, tenant_id)


async def create_tenant(
    db: AsyncSession, actor: User, name: str, domains: list[str], now: dt.datetime
) -> Tenant:
    require_instance_admin(actor, "tenants are created")
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("a tenant needs a name of at most 200 characters")
    if await db.scalar(select(Tenant.id).where(Tenant.name == name)):
        raise Conflict(f"a tenant named {name!r} exists already")
    created = await repo.create_tenant(db, name, now)
    for domain in domains:
        await add_domain(db, actor, created.id, domain, now)
    await _audit(db, created.id, actor, "tenant.created", {"name": name}, now)
    return created


async def add_domain(
    db: AsyncSession, actor: User, tenant_id: str, domain: str, now: dt.datetime
) -> None:
    require_instance_admin(actor, "domains are assigned")
    owner = await _tenant(db, tenant_id)
    domain = domain.strip().lower()
    if not re.fullmatch(r"(?=.{1,253}$)([a-z0-9-]{1,63}\.)+[a-z]{2,63}", domain):
        raise InvalidInput(f"{domain!r} is not a domain name")
    if await db.get(Domain, domain) is not None:
        raise Conflict(f"{domain} belongs to a tenant already")
    await repo.add_domain(db, owner, domain)
    await _audit(db, owner.id, actor, "domain.added", {"domain": domain}, now)


async def set_tenant_disabled(
    db: AsyncSession, actor: User, tenant_id: str, disabled: bool, now: dt.datetime
) -> None:
    require_instance_admin(actor, "tenants are disabled")
    target = await _tenant(db, tenant_id)
    if target.id == actor.tenant_id:
        raise InvalidInput("the instance administrator's own tenant cannot be disabled")
    await repo.set_tenant_disabled(db, target, disabled)
    action = "tenant.disabled" if disabled else "tenant.enabled"
    await _audit(db, target.id, actor, action, {}, now)


async def set_retention_bounds(
    db: AsyncSession, actor: User, tenant_id: str, low: int, high: int, now: dt.datetime
) -> Tenant:
    require_instance_admin(actor, "retention bounds are set")
    target = await _tenant(db, tenant_id)
    await repo.set_retention_bounds(db, target, low, high)
    await _audit(db, target.id, actor, "retention.bounds", {"min": low, "max": high}, now)
    return target


async def set_storage_steps(
    db: AsyncSession, actor: User, tenant_id: str, steps: int, now: dt.datetime
) -> Tenant:
    require_instance_admin(actor, "storage extensions are set")
    target = await _tenant(db, tenant_id)
    await repo.set_policy(db, target, storage_extension_steps=steps)
    await _audit(db, target.id, actor, "storage.extensions", {"steps": steps}, now)
    return target


# -- alarm lists (rules in messenger.store.alarms) --------------------------------------------


async def alarm_lists(
    db: AsyncSession, actor: User
) -> list[tuple[AlarmList, list[tuple[AlarmListMember, str]]]]:
    own = await own_tenant(db, actor)
    emails = pairs(await db.execute(select(User.id, User.email).where(User.tenant_id == own.id)))
    out = []
    for row in await alarms.lists_of_tenant(db, own.id):
        members = await alarms.list_members(db, row.id)
        out.append((row, [(m, emails.get(m.user_id, m.user_id)) for m in members]))
    return out


async def create_alarm_list(
    db: AsyncSession,
    actor: User,
    name: str,
    tiers: list[list[str]],
    now: dt.datetime,
    *,
    repeat_seconds: int = 60,
    escalation_seconds: int = 300,
    emergency: bool = False,
) -> AlarmList:
    """A list whose tier n members are the e-mail addresses in `tiers[n - 1]`."""
    own = await own_tenant(db, actor)
    members = [
        alarms.MemberSpec(user.id, tier)
        for tier, emails in enumerate(tiers, start=1)
        for user in await _tenant_users(db, own, emails)
    ]
    row = await alarms.create_list(
        db,
        actor,
        own,
        name,
        now,
        repeat_seconds=repeat_seconds,
        escalation_seconds=escalation_seconds,
        emergency=emergency,
        members=members,
    )
    details = {"list_id": row.id, "members": len(members), "emergency": emergency}
    await _audit(db, own.id, actor, "alarm_list.created", details, now)
    return row


async def delete_alarm_list(db: AsyncSession, actor: User, list_id: str, now: dt.datetime) -> None:
    own = await own_tenant(db, actor)
    row = await alarms.list_for_admin(db, actor, list_id)
    await alarms.delete_list(db, actor, row)
    await _audit(db, own.id, actor, "alarm_list.deleted", {"list_id": list_id}, now)


# -- bots (rules in messenger.server.bots) ---------------------------------------------------


async def bots_of(db: AsyncSession, actor: User) -> list[bots.BotInfo]:
    own = await own_tenant(db, actor)
    return await bots.list_bots(db, own.id)


async def create_bot(
    db: AsyncSession,
    actor: User,
    name: str,
    scopes: list[str],
    now: dt.datetime,
    *,
    rate_per_minute: int = 60,
    webhook_url: str | None = None,
) -> tuple[bots.BotInfo, str, str | None]:
    """The bot, its token and its webhook secret (both shown once)."""
    own = await own_tenant(db, actor)
    created = await bots.create_bot(
        db,
        own.id,
        name,
        scopes,
        now,
        created_by=actor.id,
        rate_per_minute=rate_per_minute,
        webhook_url=webhook_url or None,
    )
    details = {"bot_id": created[0].user.id, "scopes": sorted(scopes)}
    await _audit(db, own.id, actor, "bot.created", details, now)
    return created


async def delete_bot(db: AsyncSession, actor: User, bot_id: str, now: dt.datetime) -> Changes:
    own = await own_tenant(db, actor)
    departure = await bots.delete_bot(db, own.id, bot_id, now)
    await _audit(db, own.id, actor, "bot.deleted", {"bot_id": bot_id}, now)
    return Changes(route_departure(bot_id, departure))
