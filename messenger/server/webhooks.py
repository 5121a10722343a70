"""Bot webhooks: a bot's events (its to-device envelopes, then its conversations' events, the
same JSON as on the stream) are POSTed in batches, signed (`messenger.signing`).

Queueing and delivery are both database-driven, so a restart or a second node neither loses
nor doubles a batch: each run takes a short lease on a bot, reads what lies beyond its saved
positions, stores that as one delivery and moves the positions in the same transaction
(to-device envelopes are acknowledged there too). Deliveries of one bot go out in order: the
oldest pending one is tried, again after webhook_backoff × 1, 2, 4 … seconds while it fails
(a non-2xx answer or no answer), and after `webhook_attempts` tries it becomes a dead letter
(`messenger.server.bots.dead_letters`, re-driven with `bots.redrive`) and the next goes out.

A bot with a webhook gets its events this way only (envelopes are acknowledged once queued).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from messenger.server.state import AppState
from messenger.server.wire import conversation_event, to_device_event
from messenger.signing import signature_headers
from messenger.store import repo
from messenger.store.models import Bot, User, WebhookDelivery, new_id

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("messenger.server.webhooks")

PAGE = 500
LEASE = dt.timedelta(seconds=30)
MAX_BACKOFF_S = 3600.0


async def queue_events(state: AppState) -> int:
    """Turn new events of every webhook bot into deliveries; returns how many were made."""
    now = state.now()
    async with state.reads.connect() as conn:  # every second on every node: no ORM
        bot_ids = list(
            await conn.scalars(
                select(Bot.user_id)
                .join(User, User.id == Bot.user_id)
                .where(Bot.webhook_url.is_not(None), User.disabled.is_(False))
            )
        )
    made = 0
    for bot_id in bot_ids:
        async with state.sessions() as db:
            taken = await db.execute(
                update(Bot)
                .where(
                    Bot.user_id == bot_id,
                    or_(Bot.lease_until.is_(None), Bot.lease_until < now),
                )
                .values(lease_until=now + LEASE)
            )
            await db.commit()
            if getattr(taken, "rowcount", 0) != 1:
                continue  # another node is at it
            made += await _queue_one(db, bot_id, now)
    return made


async def _queue_one(db: Any, bot_id: str, now: dt.datetime) -> int:
    bot = await db.get(Bot, bot_id)
    events: list[dict[str, Any]] = []
    for device in await repo.devices_of(db, bot_id):
        rows = await repo.pending_to_device(db, device.id, 0, PAGE)
        events += [to_device_event(r) for r in rows]
        if rows:
            await repo.ack_to_device(db, device.id, rows[-1].seq)
    cursors = dict(bot.cursors)
    for mem, last_seq in await repo.sync_candidates(db, bot_id, cursors):
        unseen = repo.unseen_range(mem, last_seq, cursors.get(mem.conversation_id))
        if unseen is None or unseen[1] <= unseen[0]:
            continue  # nothing new there, so no query
        cursor = unseen[0]
        for event in await repo.events_for(db, mem, cursor, PAGE):
            events.append(conversation_event(event))
            cursor = event.seq
        cursors[mem.conversation_id] = cursor
    bot.cursors = cursors
    bot.lease_until = None
    if events:
        db.add(
            WebhookDelivery(
                id=new_id(),
                bot_user_id=bot_id,
                event={"events": events},
                state="pending",
                attempts=0,
                next_at=now,
                last_error="",
                created_at=now,
            )
        )
    await db.commit()
    return 1 if events else 0


def backoff(settings_backoff: float, attempts: int) -> float:
    return float(min(settings_backoff * 2 ** (attempts - 1), MAX_BACKOFF_S))


class Sender:
    """The HTTP client of the deliveries, made at the first one: most servers have no bot
    with a webhook, and httpx (with what it imports) costs several MB of every node's memory."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


async def deliver_due(state: AppState, sender: Sender) -> int:
    """Try the oldest pending delivery of each bot if it is due; returns how many went out."""
    settings = state.settings
    now = state.now()
    async with state.sessions() as db:
        rows = (
            await db.execute(
                select(WebhookDelivery, Bot)
                .join(Bot, Bot.user_id == WebhookDelivery.bot_user_id)
                .where(WebhookDelivery.state == "pending")
                .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
                .limit(1000)
            )
        ).all()
    heads: dict[str, tuple[WebhookDelivery, Bot]] = {}
    for delivery, bot in rows:
        heads.setdefault(delivery.bot_user_id, (delivery, bot))
    sent = 0
    for delivery, bot in heads.values():
        if delivery.next_at > now or not bot.webhook_url or not bot.webhook_secret:
            continue
        async with state.sessions() as db:  # claim it: one node sends it
            claimed = await db.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery.id,
                    WebhookDelivery.state == "pending",
                    WebhookDelivery.next_at == delivery.next_at,
                )
                .values(next_at=now + dt.timedelta(seconds=2 * settings.webhook_timeout + 5))
            )
            await db.commit()
        if getattr(claimed, "rowcount", 0) != 1:
            continue
        body = json.dumps(
            {"delivery_id": delivery.id, "bot_id": bot.user_id, **delivery.event},
            separators=(",", ":"),
        ).encode()
        headers = {
            "Content-Type": "application/json",
            **signature_headers(bot.webhook_secret, delivery.id, body, time.time()),
        }
        import httpx  # loaded by sender.client() at the latest

        error = ""
        client = sender.client()
        try:
            answer = await client.post(bot.webhook_url, content=body, headers=headers)
            if not 200 <= answer.status_code < 300:
                error = f"HTTP {answer.status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        attempts = delivery.attempts + 1
        done = state.now()
        values: dict[str, Any] = {"attempts": attempts, "last_error": error[:500]}
        if not error:
            values.update(state="delivered", delivered_at=done)
            sent += 1
        elif attempts >= settings.webhook_attempts:
            values.update(state="dead")
            log.warning("webhook delivery dead bot=%s id=%s: %s", bot.user_id, delivery.id, error)
        else:
            wait = backoff(settings.webhook_backoff, attempts)
            values.update(next_at=done + dt.timedelta(seconds=wait))
            log.info("webhook delivery failed bot=%s id=%s: %s", bot.user_id, delivery.id, error)
        async with state.sessions() as db:
            await db.execute(
                update(WebhookDelivery).where(WebhookDelivery.id == delivery.id).values(**values)
            )
            await db.commit()
    return sent


async def run(state: AppState) -> None:
    """Queue and deliver every `webhook_interval` seconds until cancelled."""
    sender = Sender(state.settings.webhook_timeout)
    try:
        while True:
            try:
                await queue_events(state)
                await deliver_due(state, sender)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("webhooks: %s", type(exc).__name__)
            await asyncio.sleep(state.settings.webhook_interval)
    finally:
        await sender.aclose()
