"""A real messenger server (SQLite, loopback) for TUI tests, and a second person's E2E client.

`chat_server` starts the server with a tenant and users; `Peer` is someone else's client that
sends and decrypts, so tests see what really crosses the wire.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from messenger.client import EventStream, MessengerClient
from messenger.client.e2e import DecryptedMessage, E2EResult, E2ESession
from messenger.crypto import DeviceKeys
from tests.messenger.messenger_harness import (
    PASSWORD,
    Clock,
    Database,
    Harness,
    ServerThread,
    make_settings,
)
from tui.messaging import MessengerAccount

DOMAIN = "klinik.example"
ME = f"assistenz@{DOMAIN}"
PEER = f"chef@{DOMAIN}"


@dataclass
class Peer:
    """Another person's real E2E client: sends, and reads what arrives for it."""

    client: MessengerClient
    session: E2ESession
    stream: EventStream | None = None
    results: list[E2EResult] = field(default_factory=list)

    @property
    def user_id(self) -> str:
        return self.session.user_id

    async def pump_until(self, done: Callable[[Peer], bool], timeout: float = 20.0) -> None:
        if self.stream is None:
            self.stream = self.client.events()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done(self):
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"not reached; decrypted so far: {self.texts()}")
            event = await self.stream.next(timeout=left)
            self.results.extend(await self.session.handle_event(event))

    def texts(self) -> list[str]:
        return [r.body for r in self.results if isinstance(r, DecryptedMessage)]

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()


async def make_peer(msg: Harness, email: str) -> Peer:
    client = await msg.login(email, device=False)
    assert client.user_id is not None
    session = E2ESession.for_client(client, DeviceKeys.generate(client.user_id, uuid.uuid4().hex))
    await session.register_device("peer laptop")
    return Peer(client, session)


def account_for(msg: Harness, state_dir: Path, email: str = ME) -> MessengerAccount:
    return MessengerAccount(
        profile="work", server=msg.url, user=email, password=PASSWORD, state_dir=state_dir
    )


@pytest.fixture
async def chat_server(tmp_path: Path) -> AsyncIterator[Harness]:
    clock = Clock()
    database = Database(f"sqlite:///{tmp_path / 'messenger.db'}")
    settings = make_settings(database, tmp_path, clock)
    server = ServerThread(settings)
    await server.start()
    harness = Harness(database, settings, clock, server)
    await harness.tenant("Kreisklinik", DOMAIN)
    for email in (ME, PEER, f"sachbearbeitung@{DOMAIN}"):
        await harness.user(email)
    try:
        yield harness
    finally:
        await harness.close()
        await server.stop()
