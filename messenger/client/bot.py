"""Bots as end-to-end participants: a bot token, its own device keys, events by stream or webhook.

    bot = Bot("https://chat.example.org", token, Path("/var/lib/rota-bot"), passphrase)
    await bot.start()                        # loads or creates and registers its device
    await bot.run(on_message)                # stream: each DecryptedMessage from others

or, for a bot that gets its events by webhook (`verify_webhook` checks the signature):

    results = await bot.handle_webhook(request_headers, request_body, webhook_secret)

The device keys are sealed under `passphrase` in `state_dir`, the protocol state is sealed to
them, and the stream position is saved after each event, so a restarted bot reads on where it
stopped. Sends go through `bot.e2e` (`messenger.client.e2e.E2ESession`): the server sees
ciphertext only, as for people.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
import nacl.pwhash

from messenger.client._client import Cursors, MessengerClient
from messenger.client._errors import MessengerError
from messenger.client.e2e import DecryptedMessage, E2EResult, E2ESession
from messenger.crypto import (
    DeviceKeys,
    KeyStoreError,
    load_device_keys,
    save_device_keys,
    write_private_file,
)
from messenger.signing import verify

log = logging.getLogger("messenger.client.bot")

MessageHandler = Callable[["Bot", DecryptedMessage], Awaitable[None]]


class WebhookRefused(MessengerError):
    """A webhook request without a valid, recent signature (answer it 401)."""


def verify_webhook(secret: str, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The delivery as JSON if signed with `secret` and recent; else WebhookRefused."""
    if not verify(secret, headers, body):
        raise WebhookRefused("webhook signature missing, wrong or too old")
    try:
        doc = json.loads(body)
    except ValueError:
        raise WebhookRefused("webhook body is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise WebhookRefused("webhook body has no events")
    return doc


class Bot:
    """One bot account on one messenger server, with one device."""

    def __init__(
        self,
        server: str,
        token: str,
        state_dir: Path,
        passphrase: str,
        *,
        name: str = "bot",
        transport: httpx.AsyncBaseTransport | None = None,
        key_strength: tuple[int, int] = (
            nacl.pwhash.argon2id.OPSLIMIT_MODERATE,
            nacl.pwhash.argon2id.MEMLIMIT_MODERATE,
        ),
    ) -> None:
        self.client = MessengerClient(server, transport=transport)
        self.client.token = token
        self.state_dir = state_dir
        self.name = name
        self._passphrase = passphrase
        self._strength = key_strength
        self._e2e: E2ESession | None = None
        self._deliveries: OrderedDict[str, None] = OrderedDict()

    @property
    def e2e(self) -> E2ESession:
        if self._e2e is None:
            raise MessengerError("start the bot first")
        return self._e2e

    @property
    def user_id(self) -> str:
        return self.e2e.user_id

    async def start(self) -> None:
        me = await self.client.me()
        self.client.user_id, self.client.tenant_id = str(me["user_id"]), str(me["tenant_id"])
        keys_path = self.state_dir / "device.keys"
        if keys_path.exists():
            keys = load_device_keys(keys_path, self._passphrase)
        else:
            keys = DeviceKeys.generate(self.client.user_id, uuid.uuid4().hex)
            ops, mem = self._strength
            save_device_keys(keys_path, keys, self._passphrase, opslimit=ops, memlimit=mem)
        registered = {d["device_id"] for d in await self.client.devices(self.client.user_id)}
        session = E2ESession.for_client(self.client, keys)
        if keys.device_id not in registered:
            await session.register_device(self.name)
        elif self._state_path.exists():
            try:
                session = E2ESession.load_state(session.transport, keys, self._state_path)
            except KeyStoreError as exc:
                log.warning("E2E state unreadable, starting afresh: %s", exc)
        self.client.device_id = keys.device_id
        self._e2e = session
        if self._cursor_path.exists():
            saved = json.loads(self._cursor_path.read_text())
            self.client.cursors = Cursors(
                {str(k): int(v) for k, v in saved["conversations"].items()},
                int(saved["to_device"]),
            )

    @property
    def _state_path(self) -> Path:
        return self.state_dir / "e2e.state"

    @property
    def _cursor_path(self) -> Path:
        return self.state_dir / "cursors.json"

    def save(self) -> None:
        """Keep the protocol state, then the stream position (never past what is kept)."""
        self.e2e.save_state(self._state_path)
        safe = self.e2e.safe_cursors(self.client.cursors)
        doc = {"conversations": safe.conversations, "to_device": safe.to_device}
        write_private_file(self._cursor_path, json.dumps(doc).encode())

    async def run(self, on_message: MessageHandler) -> None:
        """Read the event stream until cancelled; `on_message` gets each message of others."""
        async with self.client.events() as stream:
            async for event in stream:
                await self._dispatch(await self.e2e.handle_event(event), on_message)
                self.save()

    async def handle_webhook(
        self,
        headers: Mapping[str, str],
        body: bytes,
        secret: str,
        on_message: MessageHandler | None = None,
    ) -> list[E2EResult]:
        """Check and process one webhook delivery (a repeated delivery id is skipped)."""
        doc = verify_webhook(secret, headers, body)
        delivery = str(doc.get("delivery_id", ""))
        if delivery in self._deliveries:
            return []
        results: list[E2EResult] = []
        for event in doc["events"]:
            if isinstance(event, dict):
                results += await self.e2e.handle_event(event)
        self._deliveries[delivery] = None
        while len(self._deliveries) > 1000:
            self._deliveries.popitem(last=False)
        self.e2e.save_state(self._state_path)
        if on_message is not None:
            await self._dispatch(results, on_message)
        return results

    async def _dispatch(self, results: list[E2EResult], on_message: MessageHandler) -> None:
        for result in results:
            if isinstance(result, DecryptedMessage) and result.sender_user_id != self.user_id:
                try:
                    await on_message(self, result)
                except MessengerError as exc:
                    log.warning("handling message %s failed: %s", result.seq, exc)

    async def aclose(self) -> None:
        await self.client.aclose()
