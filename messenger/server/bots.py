"""Bot accounts: the one service the admin API, the CLI and the admin portal call.

A bot is a user of kind "bot" in one tenant, with scopes (`read`: its conversations, their
history and the event stream; `send`: messages, attachments, deletions; `alarm`: raise
alarms), a send rate per minute and optionally a webhook. Its token is the bearer token of a
session that does not expire; rotating it ends the old one. Bots join conversations like
users (a member adds them) and hold their own device keys: the server never reads for them.

Every function takes the tenant the caller administers; a bot of another tenant is not found.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from messenger.server.throttle import Counters, Throttled
from messenger.store import repo
from messenger.store.errors import Forbidden, InvalidInput, NotFound
from messenger.store.models import Bot, Session, User, WebhookDelivery, new_id

SCOPES = ("read", "send", "alarm")
MAX_RATE = 10_000

# What a bot may call: (method, route under /v1) -> the scope it needs ("" for none). Others
# (administration, creating conversations, managing members, sessions) are refused.
ROUTE_SCOPES: dict[tuple[str, str], str] = {
    ("GET", "/v1/me"): "",
    ("GET", "/v1/quota"): "",
    ("POST", "/v1/devices"): "",
    ("DELETE", "/v1/devices/{device_id}"): "",
    ("GET", "/v1/users/{user_id}/devices"): "",
    ("GET", "/v1/users/{user_id}"): "",
    ("GET", "/v1/directory"): "",
    ("PUT", "/v1/devices/{device_id}/prekeys"): "",
    ("GET", "/v1/devices/{device_id}/prekeys"): "",
    ("PUT", "/v1/users/me/master_key"): "",
    ("GET", "/v1/users/{user_id}/master_key"): "",
    ("PUT", "/v1/users/{user_id}/devices/{device_id}/approval"): "",
    ("POST", "/v1/prekeys/claim"): "send",
    ("GET", "/v1/conversations"): "read",
    ("GET", "/v1/conversations/{cid}"): "read",
    ("GET", "/v1/conversations/{cid}/events"): "read",
    ("GET", "/v1/conversations/{cid}/messages/{seq}/receipts"): "read",
    ("POST", "/v1/conversations/{cid}/receipts"): "read",
    ("GET", "/v1/attachments/{attachment_id}"): "read",
    ("POST", "/v1/conversations/{cid}/messages"): "send",
    ("DELETE", "/v1/conversations/{cid}/messages/{seq}"): "send",
    ("POST", "/v1/conversations/{cid}/attachments"): "send",
    ("POST", "/v1/to_device"): "send",
    ("POST", "/v1/conversations/{cid}/typing"): "send",
    ("GET", "/v1/alarms"): "read",
    ("POST", "/v1/alarms/{alarm_id}/answers"): "read",
    ("GET", "/v1/alarms/attachments/{attachment_id}"): "read",
    ("GET", "/v1/alarm-lists"): "alarm",
    ("GET", "/v1/alarm-lists/{list_id}/devices"): "alarm",
    ("POST", "/v1/alarms/attachments"): "alarm",
    ("POST", "/v1/alarms"): "alarm",
    ("GET", "/v1/alarms/{alarm_id}"): "alarm",
    ("POST", "/v1/alarms/{alarm_id}/end"): "alarm",
}
# Calls that count against the bot's rate (what lands in conversations).
RATED = {("POST", "/v1/conversations/{cid}/messages"), ("POST", "/v1/alarms")}


@dataclass
class BotInfo:
    bot: Bot
    user: User

    def as_json(self) -> dict[str, Any]:
        return {
            "bot_id": self.user.id,
            "tenant_id": self.bot.tenant_id,
            "name": self.user.display_name,
            "scopes": list(self.bot.scopes),
            "rate_per_minute": self.bot.rate_per_minute,
            "webhook_url": self.bot.webhook_url,
            "disabled": self.user.disabled,
            "created_at": self.bot.created_at.isoformat(),
        }


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidInput(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
    return sorted(set(scopes))


def check_webhook_url(url: str | None, *, allow_http: bool) -> str | None:
    """An https URL (http only where the server allows it, e.g. for a receiver on loopback)."""
    if url is None or url == "":
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput("the webhook URL must be an http(s) URL with a host")
    if parts.scheme == "http" and not allow_http:
        loopback = parts.hostname == "localhost"
        with contextlib.suppress(ValueError):
            loopback = loopback or ipaddress.ip_address(parts.hostname).is_loopback
        if not loopback:
            raise InvalidInput("the webhook URL must use https")
    if parts.username or parts.password:
        raise InvalidInput("the webhook URL must not carry credentials")
    return url


def _check_rate(rate: int) -> int:
    if not 1 <= rate <= MAX_RATE:
        raise InvalidInput(f"the rate is 1 to {MAX_RATE} messages per minute")
    return rate


def _new_session(db: AsyncSession, user_id: str, now: dt.datetime, device: str | None) -> str:
    token = "mbb_" + secrets.token_urlsafe(32)
    db.add(
        Session(
            id=new_id(),
            user_id=user_id,
            token_hash=repo.token_hash(token),
            device_id=device,
            created_at=now,
        )
    )
    return token


async def create_bot(
    db: AsyncSession,
    tenant_id: str,
    name: str,
    scopes: list[str],
    now: dt.datetime,
    *,
    created_by: str | None = None,
    rate_per_minute: int = 60,
    webhook_url: str | None = None,
    allow_http: bool = False,
) -> tuple[BotInfo, str, str | None]:
    """Create a bot; returns it, its token and its webhook secret (both shown only now)."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("a bot's name is 1 to 200 characters")
    user_id = new_id()
    user = User(
        id=user_id,
        tenant_id=tenant_id,
        email=f"bot-{user_id}@bots.invalid",
        display_name=name,
        kind="bot",
        role="user",
        created_at=now,
    )
    url = check_webhook_url(webhook_url, allow_http=allow_http)
    secret = secrets.token_urlsafe(32) if url else None
    bot = Bot(
        user_id=user_id,
        tenant_id=tenant_id,
        scopes=check_scopes(scopes),
        rate_per_minute=_check_rate(rate_per_minute),
        webhook_url=url,
        webhook_secret=secret,
        cursors={},
        created_by=created_by,
        created_at=now,
    )
    db.add(user)
    await db.flush()
    db.add(bot)
    token = _new_session(db, user_id, now, None)
    await db.flush()
    return BotInfo(bot, user), token, secret


async def get_bot(db: AsyncSession, tenant_id: str, bot_id: str) -> BotInfo:
    row = (
        await db.execute(
            select(Bot, User).join(User, User.id == Bot.user_id).where(Bot.user_id == bot_id)
        )
    ).first()
    if row is None or row[0].tenant_id != tenant_id or row[1].deleted_at is not None:
        raise NotFound("no such bot")
    return BotInfo(row[0], row[1])


async def list_bots(db: AsyncSession, tenant_id: str) -> list[BotInfo]:
    rows = await db.execute(
        select(Bot, User)
        .join(User, User.id == Bot.user_id)
        .where(Bot.tenant_id == tenant_id, User.deleted_at.is_(None))
        .order_by(User.display_name, User.id)
    )
    return [BotInfo(b, u) for b, u in rows.all()]


async def update_bot(
    db: AsyncSession,
    tenant_id: str,
    bot_id: str,
    *,
    scopes: list[str] | None = None,
    rate_per_minute: int | None = None,
    webhook_url: str | None = None,
    remove_webhook: bool = False,
    allow_http: bool = False,
) -> tuple[BotInfo, str | None]:
    """Change scopes, rate or webhook; returns the bot and a new webhook secret if one was
    made (a new or changed webhook URL gets a new secret)."""
    info = await get_bot(db, tenant_id, bot_id)
    bot = info.bot
    secret = None
    if scopes is not None:
        bot.scopes = check_scopes(scopes)
    if rate_per_minute is not None:
        bot.rate_per_minute = _check_rate(rate_per_minute)
    if remove_webhook:
        bot.webhook_url = bot.webhook_secret = None
    elif webhook_url is not None and webhook_url != bot.webhook_url:
        bot.webhook_url = check_webhook_url(webhook_url, allow_http=allow_http)
        secret = bot.webhook_secret = secrets.token_urlsafe(32) if bot.webhook_url else None
    await db.flush()
    return info, secret


async def rotate_token(db: AsyncSession, tenant_id: str, bot_id: str, now: dt.datetime) -> str:
    """A new token; the old one stops working at once (the device stays registered)."""
    info = await get_bot(db, tenant_id, bot_id)
    sessions = list(
        await db.scalars(
            select(Session).where(Session.user_id == bot_id, Session.revoked_at.is_(None))
        )
    )
    device = next((s.device_id for s in sessions if s.device_id), None)
    for s in sessions:
        s.revoked_at = now
    token = _new_session(db, info.user.id, now, device)
    await db.flush()
    return token


async def delete_bot(
    db: AsyncSession, tenant_id: str, bot_id: str, now: dt.datetime
) -> repo.Departure:
    """Delete the bot: its token ends, it leaves its conversations, its deliveries go."""
    info = await get_bot(db, tenant_id, bot_id)
    departure = await repo.delete_user(db, info.user, now)
    info.bot.webhook_url = info.bot.webhook_secret = None
    info.bot.scopes = []
    await db.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.bot_user_id == bot_id, WebhookDelivery.state != "delivered")
        .values(state="dropped")
    )
    return departure


async def dead_letters(
    db: AsyncSession, tenant_id: str, bot_id: str, limit: int = 100
) -> list[WebhookDelivery]:
    await get_bot(db, tenant_id, bot_id)
    rows = await db.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.bot_user_id == bot_id, WebhookDelivery.state == "dead")
        .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        .limit(limit)
    )
    return list(rows)


async def redrive(
    db: AsyncSession,
    tenant_id: str,
    bot_id: str,
    now: dt.datetime,
    delivery_ids: list[str] | None = None,
) -> int:
    """Send dead letters again (all, or the ones named) with a fresh count of attempts."""
    await get_bot(db, tenant_id, bot_id)
    stmt = update(WebhookDelivery).where(
        WebhookDelivery.bot_user_id == bot_id, WebhookDelivery.state == "dead"
    )
    if delivery_ids is not None:
        stmt = stmt.where(WebhookDelivery.id.in_(delivery_ids))
    result = await db.execute(stmt.values(state="pending", attempts=0, next_at=now, last_error=""))
    return int(getattr(result, "rowcount", 0) or 0)


def delivery_json(d: WebhookDelivery) -> dict[str, Any]:
    return {
        "delivery_id": d.id,
        "state": d.state,
        "attempts": d.attempts,
        "last_error": d.last_error,
        "created_at": d.created_at.isoformat(),
        "events": len(d.event.get("events", [])),
    }


# -- what a bot may do -----------------------------------------------------------------------


async def authorise(
    db: AsyncSession,
    user_id: str,
    method: str,
    route: str,
    counters: Counters,
    now: float,
) -> None:
    """Refuse a bot's call outside its scopes; count rated calls, 429 over the rate."""
    needed = ROUTE_SCOPES.get((method, route))
    if needed is None:
        raise Forbidden("bots cannot use this call")
    bot = await db.get(Bot, user_id)
    if bot is None:
        raise Forbidden("this bot account is incomplete")
    if needed and needed not in bot.scopes:
        raise Forbidden(f"this bot lacks the {needed!r} scope")
    if (method, route) in RATED:
        window = int(now // 60)
        key = f"bot-rate:{user_id}:{window}"
        [count] = await counters.read([key])
        if count >= bot.rate_per_minute:
            retry = max(1, int((window + 1) * 60 - now))
            raise Throttled(retry, f"over this bot's rate of {bot.rate_per_minute} per minute")
        await counters.add([key], 120)


async def has_scope(db: AsyncSession, user: User, scope: str) -> bool:
    """Whether a user may act under `scope` (people always; bots when granted it)."""
    if user.kind != "bot":
        return True
    bot = await db.get(Bot, user.id)
    return bot is not None and scope in bot.scopes
