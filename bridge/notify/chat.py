"""The bridge's side of the messenger: its account, its device keys, routes to conversations.

Each worker is one device of the bridge's messenger account, with its own keys sealed on disk
under a passphrase and its end-to-end state sealed to those keys. Routes are the portals of
this bridge: a recipient of the config (user, group, managed group) ↔ a conversation, found
once (adopting an existing conversation after a crash) and remembered in the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import nacl.pwhash

from bridge.notify.config import MessengerSettings, Recipient
from bridge.notify.store import BridgeStore
from messenger.client import MessengerClient, NotFound
from messenger.client.e2e import DecryptedMessage, E2ESession
from messenger.crypto import (
    DeviceKeys,
    KeyStoreError,
    load_device_keys,
    save_device_keys,
    seal_state,
    write_private_file,
)

__all__ = ["KEY_STRENGTH", "ChatLink", "RouteError", "txn_id_for"]

log = logging.getLogger("bridge.notify.chat")

KEY_STRENGTH = {
    "moderate": (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE),
    "interactive": (
        nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    ),
}


class RouteError(Exception):
    """A recipient cannot be reached (unknown user, group the bridge is not a member of)."""


def txn_id_for(dedup_key: str) -> str:
    """The messenger transaction id of an outbox entry: the same for every attempt and every
    worker, so the server stores the first send and answers repeats with it."""
    return "mb-" + hashlib.sha256(dedup_key.encode()).hexdigest()[:40]


class ChatLink:
    """The bridge's messenger account on this worker."""

    def __init__(
        self, settings: MessengerSettings, store: BridgeStore, worker: str, *, retries: int = 3
    ) -> None:
        self.settings = settings
        self.store = store
        self.worker = worker
        self.client = MessengerClient(settings.server, retries=retries)
        self.e2e: E2ESession | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._emails: dict[str, str] = {}
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", worker)
        keys_dir = settings.keys_dir or Path(".")
        self.keys_path = keys_dir / f"{safe}.keys"
        self.state_path = keys_dir / f"{safe}.state"

    @property
    def user_id(self) -> str:
        assert self.client.user_id is not None
        return self.client.user_id

    async def start(self) -> None:
        """Log in, load or create this worker's device, restore E2E state and stream cursors.

        Raises:
            messenger.client errors (wrong password, server down), KeyStoreError (wrong
            passphrase or damaged key file).
        """
        password = self.settings.password()
        await self.client.login(self.settings.user, password)
        keys = self._load_or_create_keys()
        registered = {d["device_id"] for d in await self.client.devices(self.user_id)}
        if keys.device_id in registered:
            await self.client.login(self.settings.user, password, device_id=keys.device_id)
            e2e = self._restore(keys)
        else:
            e2e = E2ESession.for_client(self.client, keys)
            await e2e.register_device(f"medbridge bridge {self.worker}")
        self.e2e = e2e
        cursors = await self.store.cursors(self.worker)
        if cursors:
            self.client.cursors.conversations = dict(cursors.get("conversations", {}))
            self.client.cursors.to_device = int(cursors.get("to_device", 0))

    def _load_or_create_keys(self) -> DeviceKeys:
        passphrase = self.settings.keys_passphrase()
        if self.keys_path.exists():
            return load_device_keys(self.keys_path, passphrase)
        keys = DeviceKeys.generate(self.user_id, uuid.uuid4().hex)
        ops, mem = KEY_STRENGTH[self.settings.key_strength]
        save_device_keys(self.keys_path, keys, passphrase, opslimit=ops, memlimit=mem)
        return keys

    def _restore(self, keys: DeviceKeys) -> E2ESession:
        if self.state_path.exists():
            try:
                return E2ESession.load_state(
                    E2ESession.for_client(self.client, keys).transport, keys, self.state_path
                )
            except KeyStoreError as exc:
                log.warning("E2E state unreadable, starting afresh: %s", exc)
        return E2ESession.for_client(self.client, keys)

    async def close(self) -> None:
        await self.client.aclose()

    # ------------------------------------------------------------------ routes

    async def conversation_for(self, route: str) -> str:
        """The conversation of a route ("user:…", "group:…", "managed:…", "conv:<id>").

        Raises:
            RouteError: the recipient does not exist or the bridge is not in the group.
        """
        if route.startswith("conv:"):
            return route[5:]
        lock = self._locks.setdefault(route, asyncio.Lock())
        async with lock:
            known = await self.store.route(route)
            if known is not None:
                return known
            conversation = await self._find_or_create(Recipient.parse(route, "route"))
            return await self.store.save_route(route, conversation)

    async def _find_or_create(self, recipient: Recipient) -> str:
        conversations = await self.client.conversations()
        if recipient.kind == "user":
            peer = await self._user_id(recipient.name)
            for conv in conversations:
                if conv["kind"] == "direct":
                    detail = await self.client.conversation(conv["conversation_id"])
                    if {m["user_id"] for m in detail["members"]} == {self.user_id, peer}:
                        return str(conv["conversation_id"])
            created = await self.client.create_conversation("direct", [peer])
            return str(created["conversation_id"])
        kinds = ("group",) if recipient.kind == "group" else ("managed",)
        for conv in conversations:
            if conv["kind"] in kinds and conv["name"] == recipient.name:
                return str(conv["conversation_id"])
        raise RouteError(
            f"the bridge is not a member of a {recipient.kind} named {recipient.name!r}; "
            "add its account to that group"
        )

    async def _user_id(self, email: str) -> str:
        for entry in await self.client.directory(email):
            if str(entry["email"]).lower() == email.lower():
                self._emails[str(entry["user_id"])] = email.lower()
                return str(entry["user_id"])
        raise RouteError(f"no messenger user {email} in the bridge's tenant")

    async def forget(self, route: str) -> None:
        await self.store.forget_route(route)

    async def email_of(self, user_id: str) -> str:
        if user_id not in self._emails:
            try:
                self._emails[user_id] = str((await self.client.user(user_id))["email"]).lower()
            except NotFound:
                return ""
        return self._emails[user_id]

    # ------------------------------------------------------------------ sending

    async def post(
        self,
        conversation_id: str,
        text: str,
        *,
        txn_id: str,
        actions: Sequence[Mapping[str, str]] = (),
        reply_to: int | None = None,
    ) -> int:
        """Encrypt and send (a reply to message `reply_to`, inside the encrypted content); a
        repeated `txn_id` returns the first send's sequence number."""
        assert self.e2e is not None
        return await self.e2e.send_text(
            conversation_id, text, txn_id=txn_id, actions=actions, reply_to=reply_to
        )

    # ------------------------------------------------------------------ receiving

    async def incoming(self) -> AsyncIterator[DecryptedMessage]:
        """Decrypted messages from other users, in stream order. The E2E state and the stream
        position are saved after the consumer has handled each message (a crash in between
        hands the message out again; the consumer's own records make that harmless)."""
        assert self.e2e is not None
        e2e = self.e2e
        async with self.client.events() as stream:
            async for event in stream:
                for result in await e2e.handle_event(event):
                    if isinstance(result, DecryptedMessage) and result.sender_user_id != (
                        self.user_id
                    ):
                        yield result
                # Export on the loop (senders change the state too), write in a thread.
                blob = seal_state(e2e.keys, e2e.export_state())
                await asyncio.to_thread(write_private_file, self.state_path, blob)
                await self.store.save_cursors(self.worker, self._cursors())

    def _cursors(self) -> dict[str, Any]:
        c = self.client.cursors if self.e2e is None else self.e2e.safe_cursors(self.client.cursors)
        return {"conversations": dict(c.conversations), "to_device": c.to_device}
