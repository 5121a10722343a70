"""`medbridge messenger`: run the messenger server, purge by retention, administer tenants.

The admin commands work on the database directly (like migrations do), so they need no
running server. Membership changes made here reach connected clients at once when the server
uses Redis (`--redis`); on a single node open streams pick them up at their periodic check.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from bridge import paths
from bridge.commands._common import fail, print_json
from bridge.commands._messenger_bots import admin_bot_app, bot_app

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

NAME = "messenger"
app = typer.Typer(help="The tenant-closed secure messenger server.", no_args_is_help=True)
admin = typer.Typer(
    help="Administer tenants, domains, users, groups, alarm lists and policies.",
    no_args_is_help=True,
)
tenant_app = typer.Typer(help="Tenants.", no_args_is_help=True)
domain_app = typer.Typer(help="E-mail domains of tenants.", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
group_app = typer.Typer(help="Managed groups.", no_args_is_help=True)
policy_app = typer.Typer(help="Tenant policies.", no_args_is_help=True)
audit_app = typer.Typer(help="Four-eyes audit: the audit log and requests.", no_args_is_help=True)
keys_app = typer.Typer(
    help="The server key that seals names at rest (envelope encryption).", no_args_is_help=True
)
alarm_list_app = typer.Typer(
    help="Alarm lists: who an alarm reaches, tier by tier.", no_args_is_help=True
)
app.add_typer(admin, name="admin")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
admin.add_typer(tenant_app, name="tenant")
admin.add_typer(domain_app, name="domain")
admin.add_typer(user_app, name="user")
admin.add_typer(group_app, name="group")
admin.add_typer(policy_app, name="policy")
admin.add_typer(admin_bot_app, name="bot")
app.add_typer(bot_app, name="bot")
admin.add_typer(alarm_list_app, name="alarm-list")

T = TypeVar("T")

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (default: SQLite file in the data directory).",
        envvar="MEDBRIDGE_MESSENGER_DB",
    ),
]
SchemaOpt = Annotated[
    str | None,
    typer.Option(
        "--schema", help="PostgreSQL schema to use.", envvar="MEDBRIDGE_MESSENGER_DB_SCHEMA"
    ),
]
RedisOpt = Annotated[
    str | None,
    typer.Option(
        "--redis", help="Redis URL for multi-node fan-out.", envvar="MEDBRIDGE_MESSENGER_REDIS"
    ),
]
KeysOpt = Annotated[
    Path | None,
    typer.Option(
        "--metadata-keys",
        help="Key file sealing names at rest (default: metadata-keys.json in the data directory;"
        " the server and these commands must use the same file).",
        envvar="MEDBRIDGE_MESSENGER_METADATA_KEYS",
    ),
]
ChannelOpt = Annotated[
    str,
    typer.Option(
        "--redis-channel",
        help="Pub/sub channel shared by the nodes of one instance.",
        envvar="MEDBRIDGE_MESSENGER_REDIS_CHANNEL",
    ),
]

# Module-level state set by the callback: which database the admin commands use.
_target: dict[str, Any] = {}


def messenger_dir() -> Path:
    return paths.data_dir() / "messenger"


def default_db() -> str:
    return f"sqlite:///{messenger_dir() / 'messenger.db'}"


@app.callback()
def _options(
    db: DbOpt = None,
    schema: SchemaOpt = None,
    redis: RedisOpt = None,
    redis_channel: ChannelOpt = "medbridge:messenger:events",
    metadata_keys: KeysOpt = None,
) -> None:
    """The tenant-closed secure messenger server."""
    _target.update(
        db=db, schema=schema, redis=redis, channel=redis_channel, metadata_keys=metadata_keys
    )


def _keys_path() -> Path:
    path = _target.get("metadata_keys")
    return Path(path) if path else messenger_dir() / "metadata-keys.json"


def _db_url() -> str:
    url = _target.get("db") or default_db()
    if url.startswith("sqlite"):
        messenger_dir().mkdir(parents=True, exist_ok=True)
    return str(url)


def _run(work: Callable[[AsyncSession, dt.datetime], Awaitable[T]]) -> T:
    """Run one admin transaction against the (migrated) database; errors become one line."""
    from sqlalchemy.exc import SQLAlchemyError

    from messenger.store import schema, sealing
    from messenger.store.engine import make_engine, sessionmaker
    from messenger.store.errors import StoreError

    async def main() -> T:
        engine = make_engine(_db_url(), _target.get("schema"))
        try:
            await schema.check(engine)
            await schema.upgrade(engine)
            sealing.attach(engine, sealing.load_keyring(_keys_path(), create=True))
            async with sessionmaker(engine)() as db:
                result = await work(db, dt.datetime.now(dt.UTC))
                await db.commit()
                return result
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except StoreError as exc:
        fail(exc.detail)
    except (schema.SchemaError, sealing.SealingError) as exc:
        fail(str(exc))
    except (SQLAlchemyError, OSError) as exc:
        fail(f"database error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")


async def _publish(items: list[dict[str, Any]]) -> None:
    if _target.get("redis") and items:
        from messenger.server.hub import RedisHub

        hub = RedisHub(_target["redis"], _target["channel"])
        try:
            await hub.publish(items)
        finally:
            await hub.stop()


# -- server ----------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8470,
    blob_dir: Annotated[Path | None, typer.Option(help="Attachment store directory.")] = None,
    purge_interval: Annotated[float, typer.Option(help="Seconds between retention runs.")] = 3600.0,
    node_name: Annotated[str, typer.Option(help="Name of this node in logs.")] = "node",
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
    log_json: Annotated[bool, typer.Option(help="Log JSON lines (for log collectors).")] = False,
    api_docs: Annotated[bool, typer.Option(help="Serve /docs and /openapi.json.")] = False,
    metrics_token: Annotated[
        str | None,
        typer.Option(
            envvar="MEDBRIDGE_METRICS_TOKEN",
            help="Bearer token for /metrics from other than loopback.",
        ),
    ] = None,
    smtp: Annotated[
        str | None,
        typer.Option(
            "--smtp",
            envvar="MEDBRIDGE_MESSENGER_SMTP",
            help="Mail password-reset links via this SMTP URL (without it, reset is off).",
        ),
    ] = None,
    smtp_from: Annotated[
        str, typer.Option(help="Sender address of password-reset mails.")
    ] = "messenger@localhost",
    reset_link: Annotated[
        str,
        typer.Option(help="Password-reset link sent by mail; {token} is replaced."),
    ] = "medbridge://reset-password?token={token}",
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(help="Reverse proxy (address or CIDR) whose X-Forwarded-For is believed."),
    ] = None,
) -> None:
    """Run the messenger server (migrates the schema; refuses a newer one)."""
    from messenger.server.serve import ServeOptions, exec_serving

    settings: dict[str, Any] = {
        "database_url": _db_url(),
        "db_schema": _target.get("schema"),
        "redis_url": _target.get("redis"),
        "redis_channel": _target["channel"],
        "blob_dir": str(blob_dir or messenger_dir() / "blobs"),
        "metadata_key_file": str(_keys_path()),
        "purge_interval": purge_interval,
        "node_name": node_name,
        "trusted_proxies": list(trusted_proxy or []),
        "api_docs": api_docs,
        "metrics_token": metrics_token,
        "smtp_url": smtp,
        "smtp_from": smtp_from,
        "reset_link": reset_link,
    }
    # The server runs in a fresh interpreter in this process's place: the command line's own
    # modules would otherwise stay in the server's memory (messenger.server.serve).
    exec_serving(
        ServeOptions(settings, host=host, port=port, log_level=log_level, log_json=log_json)
    )


@app.command()
def migrate() -> None:
    """Bring the database schema to this version's head."""
    from messenger.store.schema import head_revision

    async def noop(db: AsyncSession, now: dt.datetime) -> None:
        return None

    _run(noop)
    typer.echo(f"schema at {head_revision()}")


@app.command()
def purge(
    blob_dir: Annotated[Path | None, typer.Option(help="Attachment store directory.")] = None,
    at: Annotated[str | None, typer.Option(help="Purge as if it were this ISO time (UTC).")] = None,
    allow_future: Annotated[
        bool,
        typer.Option(help="Allow --at in the future (deletes what is still within retention)."),
    ] = False,
) -> None:
    """Delete messages and attachments older than each tenant's retention."""
    from messenger.server.blobs import BlobStore
    from messenger.store import repo

    when: dt.datetime | None = None
    if at:
        try:
            when = dt.datetime.fromisoformat(at)
        except ValueError:
            fail(f"--at {at!r} is not an ISO date-time")
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        if when > dt.datetime.now(dt.UTC) and not allow_future:
            fail(
                f"--at {at} is in the future: that would delete messages still within their "
                "retention; add --allow-future if that is what you want"
            )

    async def work(db: AsyncSession, now: dt.datetime) -> repo.PurgeResult:
        return await repo.purge(db, when or now)

    result = _run(work)
    blobs = BlobStore(blob_dir or messenger_dir() / "blobs")
    for blob_id in result.attachment_ids:
        blobs.delete(blob_id)
    print_json(result.as_dict())


# -- admin: tenants and domains --------------------------------------------------------------


@tenant_app.command("create")
def tenant_create(
    name: str,
    domain: Annotated[list[str] | None, typer.Option(help="E-mail domain (repeatable).")] = None,
) -> None:
    """Create a tenant, optionally with its e-mail domains."""
    from messenger.store import repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, Any]:
        tenant = await repo.create_tenant(db, name, now)
        for d in domain or []:
            await repo.add_domain(db, tenant, d)
        return {"tenant_id": tenant.id, "name": tenant.name, "domains": domain or []}

    print_json(_run(work))


@tenant_app.command("list")
def tenant_list() -> None:
    """List tenants with their domains and policies."""
    from sqlalchemy import select

    from messenger.store.models import Domain, Tenant

    async def work(db: AsyncSession, now: dt.datetime) -> list[dict[str, Any]]:
        out = []
        for t in await db.scalars(select(Tenant).order_by(Tenant.name)):
            domains = await db.scalars(select(Domain.domain).where(Domain.tenant_id == t.id))
            out.append(
                {
                    "tenant_id": t.id,
                    "name": t.name,
                    "domains": sorted(domains),
                    "retention_days": t.retention_days,
                    "user_quota_bytes": t.user_quota_bytes,
                    "storage_extension_steps": t.storage_extension_steps,
                    "storage_used": t.storage_used,
                }
            )
        return out

    print_json(_run(work))


@domain_app.command("add")
def domain_add(tenant: str, domain: str) -> None:
    """Give a tenant an e-mail domain (a domain belongs to one tenant only)."""
    from messenger.store import repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, str]:
        t = await repo.tenant_by_ref(db, tenant)
        row = await repo.add_domain(db, t, domain)
        return {"tenant_id": t.id, "domain": row.domain}

    print_json(_run(work))


# -- admin: users ----------------------------------------------------------------------------


def _invite_link(token: str) -> str:
    base = os.environ.get("MEDBRIDGE_MESSENGER_PUBLIC_URL", "")
    return f"{base.rstrip('/')}/register#{token}" if base else token


SmtpOpt = Annotated[
    str | None,
    typer.Option(
        "--smtp",
        help="Mail the invitation via this SMTP URL (smtp://, smtp+starttls://, smtps://).",
        envvar="MEDBRIDGE_MESSENGER_SMTP",
    ),
]
SmtpFromOpt = Annotated[
    str | None,
    typer.Option(
        "--smtp-from",
        help="Sender address of invitation mails.",
        envvar="MEDBRIDGE_MESSENGER_SMTP_FROM",
    ),
]


async def _deliver(
    db: AsyncSession, user: Any, token: str, smtp: str | None, sender: str | None
) -> dict[str, str]:
    """Mail the invitation (before the commit: a failed mail stores nothing) or return it."""
    from messenger.server import invitations
    from messenger.store import errors
    from messenger.store.models import Tenant

    link = _invite_link(token)
    if smtp is None:
        return {"user_id": user.id, "email": user.email, "invite_token": token, "invite": link}
    tenant = await db.get(Tenant, user.tenant_id)
    from_addr = sender or f"noreply@{user.email.rpartition('@')[2]}"
    msg = invitations.invitation_message(from_addr, user.email, link, tenant.name if tenant else "")
    try:
        await asyncio.to_thread(invitations.send, smtp, msg)
    except invitations.MailError as exc:
        raise errors.InvalidInput(f"{exc}; nobody was invited") from exc
    return {"user_id": user.id, "email": user.email, "mailed": "true"}


@user_app.command("invite")
def user_invite(
    email: str,
    role: Annotated[str, typer.Option(help="user, tenant_admin or instance_admin.")] = "user",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    smtp: SmtpOpt = None,
    smtp_from: SmtpFromOpt = None,
) -> None:
    """Create a user and mail (with --smtp) or print the invitation (valid 14 days)."""
    from messenger.store import repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, str]:
        user, token = await repo.invite_user(db, email, now, role=role, display_name=name)
        return await _deliver(db, user, token, smtp, smtp_from)

    print_json(_run(work))


@user_app.command("import")
def user_import(
    csv_file: Annotated[
        Path, typer.Argument(help="CSV with columns email[,display_name,role,phone].")
    ],
    smtp: SmtpOpt = None,
    smtp_from: SmtpFromOpt = None,
) -> None:
    """Invite every user of a CSV file in one transaction (all or none)."""
    from messenger.store import errors, repo
    from messenger.store.errors import InvalidInput

    try:
        with csv_file.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        fail(f"cannot read {csv_file}: {exc.strerror}")
    except (csv.Error, UnicodeDecodeError) as exc:
        fail(f"{csv_file} is not a readable CSV file: {exc}")
    if rows and "email" not in rows[0]:
        fail(f"{csv_file} needs a header line with an 'email' column")

    async def work(db: AsyncSession, now: dt.datetime) -> list[dict[str, str]]:
        invited: list[tuple[Any, str]] = []
        for line, row in enumerate(rows, start=2):
            try:
                user, token = await repo.invite_user(
                    db,
                    row.get("email") or "",
                    now,
                    role=(row.get("role") or "user").strip(),
                    display_name=(row.get("display_name") or "").strip(),
                )
            except (InvalidInput, errors.Conflict) as exc:
                raise type(exc)(f"line {line}: {exc.detail}") from exc
            if row.get("phone"):
                user.phone = row["phone"].strip()[:40]
            invited.append((user, token))
        # Mail only once every row is valid, still before the commit.
        return [await _deliver(db, user, token, smtp, smtp_from) for user, token in invited]

    print_json(_run(work))


@user_app.command("disable")
def user_disable(email: str) -> None:
    """Disable a user: sessions end at once, it leaves its groups and the directory."""
    from messenger.server.wire import route_departure
    from messenger.store import errors, repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, str]:
        user = await repo.user_by_email(db, email)
        if user is None:
            raise errors.NotFound(f"no user {email}")
        departure = await repo.disable_user(db, user, now)
        await db.commit()
        await _publish(route_departure(user.id, departure))
        return {"user_id": user.id, "email": user.email, "disabled": "true"}

    print_json(_run(work))


# -- admin: managed groups -------------------------------------------------------------------


async def _users_by_email(db: AsyncSession, emails: list[str]) -> list[str]:
    from messenger.store import errors, repo

    ids = []
    for email in emails:
        user = await repo.user_by_email(db, email)
        if user is None:
            raise errors.NotFound(f"no user {email}")
        ids.append(user.id)
    return ids


async def _group(db: AsyncSession, group_id: str) -> Any:
    from messenger.store import errors
    from messenger.store.models import Conversation

    conv = await db.get(Conversation, group_id)
    if conv is None or conv.kind != "managed":
        raise errors.NotFound(f"no managed group {group_id}")
    return conv


@group_app.command("create")
def group_create(
    tenant: str,
    name: str,
    member: Annotated[list[str] | None, typer.Option(help="Member e-mail (repeatable).")] = None,
    admin_email: Annotated[
        list[str] | None, typer.Option("--admin", help="Group admin e-mail (repeatable).")
    ] = None,
) -> None:
    """Create a managed group of a tenant."""
    from messenger.server.wire import route_conversation
    from messenger.store import repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, Any]:
        t = await repo.tenant_by_ref(db, tenant)
        admins = await _users_by_email(db, admin_email or [])
        members = await _users_by_email(db, member or [])
        conv, appended = await repo.create_conversation(
            db, None, t, "managed", name, [*admins, *members], now
        )
        for uid in admins:
            await repo.set_member_role(db, conv, uid, "admin")
        await db.commit()
        await _publish([route_conversation(e) for e in appended.events])
        return {"group_id": conv.id, "name": conv.name, "members": len(set(admins + members))}

    print_json(_run(work))


@group_app.command("add")
def group_add(group_id: str, emails: list[str]) -> None:
    """Add users to a managed group."""
    from messenger.server.wire import route_conversation
    from messenger.store import repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, Any]:
        conv = await _group(db, group_id)
        appended = await repo.add_members(db, conv, None, await _users_by_email(db, emails), now)
        await db.commit()
        await _publish([route_conversation(e) for e in appended.events])
        return {"group_id": conv.id, "added": len(appended.events)}

    print_json(_run(work))


@group_app.command("remove")
def group_remove(group_id: str, email: str) -> None:
    """Remove a user from a managed group (members rotate their keys on this event)."""
    from messenger.server.wire import route_conversation
    from messenger.store import repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, Any]:
        conv = await _group(db, group_id)
        (uid,) = await _users_by_email(db, [email])
        appended = await repo.remove_member(db, conv, None, uid, now)
        await db.commit()
        await _publish([route_conversation(e) for e in appended.events])
        return {"group_id": conv.id, "removed": email}

    print_json(_run(work))


# -- admin: policies -------------------------------------------------------------------------


@policy_app.command("set")
def policy_set(
    tenant: str,
    retention_days: Annotated[int | None, typer.Option(help="Days messages are kept.")] = None,
    user_quota: Annotated[int | None, typer.Option(help="Storage quota per user, bytes.")] = None,
    storage_extensions: Annotated[
        int | None, typer.Option(help="Number of 500 GB extensions.")
    ] = None,
    allow_partner: Annotated[
        list[str] | None, typer.Option(help="Allow traffic with this tenant (repeatable).")
    ] = None,
    deny_partner: Annotated[
        list[str] | None, typer.Option(help="Withdraw consent for this tenant.")
    ] = None,
) -> None:
    """Set a tenant's retention, quota, storage extensions and partner consents."""
    from messenger.store import repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, Any]:
        t = await repo.tenant_by_ref(db, tenant)
        await repo.set_policy(
            db,
            t,
            retention_days=retention_days,
            user_quota_bytes=user_quota,
            storage_extension_steps=storage_extensions,
        )
        for ref in allow_partner or []:
            await repo.set_partner(db, t, await repo.tenant_by_ref(db, ref), True, now)
        for ref in deny_partner or []:
            await repo.set_partner(db, t, await repo.tenant_by_ref(db, ref), False, now)
        partners = await repo.partner_tenants(db, t.id)
        return {
            "tenant_id": t.id,
            "retention_days": t.retention_days,
            "user_quota_bytes": t.user_quota_bytes,
            "storage_extension_steps": t.storage_extension_steps,
            "active_partners": sorted(partners),
        }

    print_json(_run(work))


# -- four-eyes audit -------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the hash chain of the audit log; exit 1 naming every row that breaks it."""
    from messenger.audit import log

    verdict = _run(lambda db, now: log.verify(db))
    if not verdict.ok:
        for problem in verdict.problems:
            typer.echo(f"audit log: {problem}", err=True)
        fail(f"the audit log is broken ({len(verdict.problems)} problems in {verdict.rows} rows)")
    typer.echo(f"audit log intact: {verdict.rows} rows")


@audit_app.command("requests")
def audit_requests(tenant: str) -> None:
    """A tenant's audit requests with who approved them (newest first)."""
    from sqlalchemy import select

    from messenger.audit import service
    from messenger.store import repo
    from messenger.store.models import AuditRequest

    async def work(db: AsyncSession, now: dt.datetime) -> list[dict[str, Any]]:
        t = await repo.tenant_by_ref(db, tenant)
        rows = await db.scalars(
            select(AuditRequest)
            .where(AuditRequest.tenant_id == t.id)
            .order_by(AuditRequest.created_at.desc())
        )
        return [
            {
                **service.request_json(r),
                "approved_by": [a.auditor_user_id for a in await service.approvals_of(db, r.id)],
            }
            for r in rows
        ]

    print_json(_run(work))


@audit_app.command("status")
def audit_status(tenant: str) -> None:
    """Whether audit is on for a tenant, its key and auditors."""
    from messenger.audit import service
    from messenger.store import repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, Any]:
        t = await repo.tenant_by_ref(db, tenant)
        st = await service.state(db, t.id)
        return {
            "tenant_id": t.id,
            "enabled": st.enabled,
            "key": service.key_json(st.key, st.auditors) if st.key else None,
        }


# -- admin: alarm lists ----------------------------------------------------------------------

MemberOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--member",
        help="EMAIL[:TIER[:admin]] (repeatable); tier 1 is alarmed first, admins watch alarms.",
    ),
]


async def _alarm_members(db: AsyncSession, specs: list[str]) -> list[Any]:
    from messenger.store import alarms, errors

    out = []
    for spec in specs:
        email, _, rest = spec.partition(":")
        tier_text, _, role = rest.partition(":")
        try:
            tier = int(tier_text) if tier_text else 1
        except ValueError:
            raise errors.InvalidInput(f"{spec!r}: the tier is a number") from None
        (uid,) = await _users_by_email(db, [email])
        out.append(alarms.MemberSpec(uid, tier, role or "member"))
    return out


@alarm_list_app.command("create")
def alarm_list_create(
    tenant: str,
    name: str,
    member: MemberOpt = None,
    repeat: Annotated[int, typer.Option(help="Seconds between re-alarms.")] = 60,
    escalation: Annotated[int, typer.Option(help="Seconds before the next tier.")] = 300,
    ack_needed: Annotated[int, typer.Option(help="Acknowledgements that close an alarm.")] = 1,
    emergency: Annotated[bool, typer.Option(help="The tenant's panic-button list.")] = False,
) -> None:
    """Create an alarm list of a tenant."""
    from messenger.store import alarms, repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, Any]:
        t = await repo.tenant_by_ref(db, tenant)
        row = await alarms.create_list(
            db,
            None,
            t,
            name,
            now,
            repeat_seconds=repeat,
            escalation_seconds=escalation,
            ack_needed=ack_needed,
            emergency=emergency,
            members=await _alarm_members(db, member or []),
        )
        return await alarms.list_json(db, row)

    print_json(_run(work))


# -- metadata keys ---------------------------------------------------------------------------


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new key-encryption key and rewrap every stored name's data key under it.

    Running servers read rewrapped names at once (they reload the key file); restart them,
    then run `keys retire` to drop the old key from the file.
    """
    from messenger.store import sealing

    try:
        ring = sealing.rotate(_keys_path())
    except sealing.SealingError as exc:
        fail(str(exc))
    changed = _run(lambda db, now: sealing.reseal(db, ring))
    print_json({"current_key": ring.current, "keys": sorted(ring.keys), "rewrapped": changed})


@keys_app.command("retire")
def keys_retire() -> None:
    """Rewrap what still uses an old key, then remove every key but the current one."""
    from messenger.store import sealing

    try:
        ring = sealing.load_keyring(_keys_path())
    except sealing.SealingError as exc:
        fail(str(exc))
    changed = _run(lambda db, now: sealing.reseal(db, ring))
    gone = sealing.retire(_keys_path(), ring)
    print_json({"current_key": ring.current, "retired": gone, "rewrapped": changed})


@alarm_list_app.command("list")
def alarm_list_list(tenant: str) -> None:
    """A tenant's alarm lists with their members."""
    from messenger.store import alarms, repo

    async def work(db: AsyncSession, now: dt.datetime) -> list[dict[str, Any]]:
        t = await repo.tenant_by_ref(db, tenant)
        return [await alarms.list_json(db, row) for row in await alarms.lists_of_tenant(db, t.id)]

    print_json(_run(work))


@alarm_list_app.command("set")
def alarm_list_set(
    tenant: str,
    alarm_list: Annotated[str, typer.Argument(metavar="LIST", help="List id or name.")],
    member: MemberOpt = None,
    name: Annotated[str | None, typer.Option(help="New name.")] = None,
    repeat: Annotated[int | None, typer.Option(help="Seconds between re-alarms.")] = None,
    escalation: Annotated[int | None, typer.Option(help="Seconds before the next tier.")] = None,
    ack_needed: Annotated[int | None, typer.Option(help="Acknowledgements to close.")] = None,
    emergency: Annotated[
        bool | None, typer.Option("--emergency/--no-emergency", help="The panic-button list.")
    ] = None,
) -> None:
    """Change an alarm list's settings; add members or change their tier and role."""
    from messenger.store import alarms, repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, Any]:
        t = await repo.tenant_by_ref(db, tenant)
        row = await alarms.list_by_ref(db, t.id, alarm_list)
        await alarms.update_list(
            db,
            None,
            row,
            name=name,
            repeat_seconds=repeat,
            escalation_seconds=escalation,
            ack_needed=ack_needed,
            emergency=emergency,
        )
        await alarms.set_members(db, None, row, await _alarm_members(db, member or []))
        return await alarms.list_json(db, row)

    print_json(_run(work))


@alarm_list_app.command("remove")
def alarm_list_remove(
    tenant: str,
    alarm_list: Annotated[str, typer.Argument(metavar="LIST", help="List id or name.")],
    email: str,
) -> None:
    """Take a user off an alarm list (alarms already raised keep their recipients)."""
    from messenger.store import alarms, repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, Any]:
        t = await repo.tenant_by_ref(db, tenant)
        row = await alarms.list_by_ref(db, t.id, alarm_list)
        (uid,) = await _users_by_email(db, [email])
        await alarms.remove_member(db, None, row, uid)
        return await alarms.list_json(db, row)

    print_json(_run(work))


@alarm_list_app.command("delete")
def alarm_list_delete(
    tenant: str,
    alarm_list: Annotated[str, typer.Argument(metavar="LIST", help="List id or name.")],
) -> None:
    """Delete an alarm list and its closed alarms (refused while one is open)."""
    from messenger.store import alarms, repo

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, str]:
        t = await repo.tenant_by_ref(db, tenant)
        row = await alarms.list_by_ref(db, t.id, alarm_list)
        await alarms.delete_list(db, None, row)
        return {"deleted": row.id}

    print_json(_run(work))
