"""Webhooks for integrators who cannot hold a connection open.

A webhook follows one folder's change feed (`bridge.api.changes`) and POSTs each batch of
changes as JSON, signed as the messenger signs its bot webhooks (`messenger.signing`: one
scheme, one verifier for integrators). A delivery that fails (connection error or a non-2xx
answer) is tried again after 1, 2, 4 … × `backoff_s` (or the receiver's
Retry-After), `attempts` times in all; then it becomes a dead letter the owner can read
and the webhook goes on with the next batch. Webhooks, their positions and dead letters are
kept in the API's database (`bridge.api.store`): after a restart each webhook goes on from its
last saved position (a batch delivered just before a restart may come again, under a new
`delivery_id`). A bearer caller's webhook cannot go on, its token
is gone: it shows an error and the caller creates it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text

from bridge.api.changes import ChangeBatch, Positions, follow
from bridge.api.store import ApiDatabase
from med import DelegateSession, MedError
from messenger.signing import signature_headers

__all__ = ["DeadLetter", "Webhook", "WebhookRegistry"]

log = logging.getLogger("bridge.api.webhooks")
MAX_RETRY_AFTER_S = 300.0


@dataclass
class DeadLetter:
    delivery_id: str
    attempts: int
    last_error: str
    payload: dict[str, Any]
    failed_at: float


@dataclass
class Webhook:
    id: str
    owner: str
    folder_id: str
    url: str
    secret: str
    position: str | None = None
    delivered: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    error: str | None = None
    task: asyncio.Task[None] | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "folder_id": self.folder_id,
            "url": self.url,
            "position": self.position,
            "delivered": self.delivered,
            "dead_letters": len(self.dead_letters),
            "error": self.error,
        }


class WebhookRegistry:
    def __init__(
        self,
        *,
        attempts: int,
        backoff_s: float,
        poll_s: float,
        positions: Positions,
        database: ApiDatabase,
        timeout_s: float = 10.0,
    ) -> None:
        self.positions = positions
        self._database = database
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.poll_s = poll_s
        self._hooks: dict[str, Webhook] = {}
        self._http = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    def of(self, owner: str) -> list[Webhook]:
        return [h for h in self._hooks.values() if h.owner == owner]

    def get(self, owner: str, hook_id: str) -> Webhook | None:
        hook = self._hooks.get(hook_id)
        return hook if hook is not None and hook.owner == owner else None

    async def _write(self, statement: str, values: dict[str, Any]) -> None:
        engine = await self._database.engine()
        async with engine.begin() as conn:
            await conn.execute(text(statement), values)

    async def add(
        self,
        owner: str,
        folder_id: str,
        url: str,
        session_for: Callable[[], Awaitable[DelegateSession]],
        position: str | None = None,
    ) -> Webhook:
        hook = Webhook(
            secrets.token_hex(8), owner, folder_id, url, secrets.token_urlsafe(32), position
        )
        await self._write(
            "INSERT INTO webhooks (id, owner, folder_id, url, secret, position)"
            " VALUES (:id, :owner, :folder_id, :url, :secret, :position)",
            {
                "id": hook.id,
                "owner": owner,
                "folder_id": folder_id,
                "url": url,
                "secret": hook.secret,
                "position": position,
            },
        )
        self._start(hook, session_for)
        return hook

    def _start(self, hook: Webhook, session_for: Callable[[], Awaitable[DelegateSession]]) -> None:
        self._hooks[hook.id] = hook
        hook.task = asyncio.create_task(self._run(hook, session_for), name=f"webhook-{hook.id}")

    async def resume(
        self, session_for: Callable[[str], Callable[[], Awaitable[DelegateSession]] | None]
    ) -> None:
        """Start the webhooks kept in the database; `session_for(owner)` is None for an owner
        that can no longer act (a bearer caller, a key or caller removed from the settings)."""
        engine = await self._database.engine()
        async with engine.connect() as conn:
            hooks = (await conn.execute(text("SELECT * FROM webhooks"))).all()
            letters = (await conn.execute(text("SELECT * FROM dead_letters ORDER BY id"))).all()
        for row in hooks:
            hook = Webhook(
                row.id, row.owner, row.folder_id, row.url, row.secret, row.position, row.delivered
            )
            hook.error = row.error
            hook.dead_letters = [
                DeadLetter(
                    d.delivery_id, d.attempts, d.last_error, json.loads(d.payload), d.failed_at
                )
                for d in letters
                if d.webhook_id == row.id
            ]
            session = session_for(row.owner)
            if session is None:
                hook.error = hook.error or "the webhook's caller cannot act after a restart"
                self._hooks[hook.id] = hook
            elif hook.error is None:
                self._start(hook, session)
            else:
                self._hooks[hook.id] = hook

    async def remove(self, owner: str, hook_id: str) -> bool:
        hook = self.get(owner, hook_id)
        if hook is None:
            return False
        self._hooks.pop(hook_id, None)
        await self._stop(hook)
        await self._write("DELETE FROM dead_letters WHERE webhook_id = :id", {"id": hook_id})
        await self._write("DELETE FROM webhooks WHERE id = :id", {"id": hook_id})
        return True

    async def _stop(self, hook: Webhook) -> None:
        if hook.task is not None:
            hook.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hook.task

    async def close(self) -> None:
        for hook in list(self._hooks.values()):
            await self._stop(hook)
        self._hooks.clear()
        await self._http.aclose()

    async def _run(
        self, hook: Webhook, session_for: Callable[[], Awaitable[DelegateSession]]
    ) -> None:
        try:
            async for batch in follow(
                session_for, self.positions, hook.folder_id, hook.position, self.poll_s
            ):
                if batch.changes:
                    await self._deliver(hook, batch)
                if batch.position != hook.position:
                    hook.position = batch.position
                    await self._write(
                        "UPDATE webhooks SET position = :position, delivered = :delivered"
                        " WHERE id = :id",
                        {"position": hook.position, "delivered": hook.delivered, "id": hook.id},
                    )
        except MedError as exc:  # the folder went away or access was withdrawn: say so, stop
            hook.error = str(exc)
            log.warning("webhook %s stopped: %s", hook.id, type(exc).__name__)
            await self._write(
                "UPDATE webhooks SET error = :error WHERE id = :id",
                {"error": hook.error, "id": hook.id},
            )

    async def _deliver(self, hook: Webhook, batch: ChangeBatch) -> None:
        delivery_id = secrets.token_hex(12)
        payload = {
            "webhook_id": hook.id,
            "delivery_id": delivery_id,
            "folder_id": hook.folder_id,
            "position": batch.position,
            "changes": list(batch.changes),
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        error = ""
        for attempt in range(1, self.attempts + 1):
            wait = self.backoff_s * 2 ** (attempt - 1)
            try:
                headers = signature_headers(hook.secret, delivery_id, body, time.time())
                headers["Content-Type"] = "application/json"
                answer = await self._http.post(hook.url, content=body, headers=headers)
                if 200 <= answer.status_code < 300:
                    hook.delivered += 1
                    return
                error = f"HTTP {answer.status_code}"
                retry_after = answer.headers.get("Retry-After", "")
                if retry_after.isdigit():
                    wait = min(float(retry_after), MAX_RETRY_AFTER_S)
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            log.info(
                "webhook %s delivery %s attempt %d failed: %s", hook.id, delivery_id, attempt, error
            )
            if attempt < self.attempts:
                await asyncio.sleep(wait)
        letter = DeadLetter(delivery_id, self.attempts, error, payload, time.time())
        await self._write(
            "INSERT INTO dead_letters (webhook_id, delivery_id, attempts, last_error, payload,"
            " failed_at) VALUES (:webhook_id, :delivery_id, :attempts, :last_error, :payload,"
            " :failed_at)",
            {
                "webhook_id": hook.id,
                "delivery_id": delivery_id,
                "attempts": letter.attempts,
                "last_error": error,
                "payload": json.dumps(payload),
                "failed_at": letter.failed_at,
            },
        )
        hook.dead_letters.append(letter)
