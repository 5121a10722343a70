"""Messenger load for the chaos battery and the scale test: seeded users, senders that retry
each message with its transaction id until the server accepts it, and receivers whose
streams resume after any disconnect, everything recorded in a `Ledger`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from bench.ledger import Ledger
from messenger.client import (
    ApiError,
    EventStream,
    MessengerClient,
    TransportError,
    decode_ciphertext,
    new_txn_id,
)
from messenger.store import repo, schema, sealing
from messenger.store.engine import make_engine, sessionmaker

PASSWORD = "chaos password"
DOMAIN = "chaos.example"
#: Statuses a sender waits out and repeats (the transaction id keeps the repeat harmless).
RETRY_STATUS = {409, 429, 500, 502, 503, 504}


def email(i: int) -> str:
    return f"u{i}@{DOMAIN}"


async def seed(db_url: str, metadata_keys: Path, users: int) -> None:
    """Migrate, then one tenant with `users` users (names sealed with the nodes' key file)."""
    engine = make_engine(db_url)
    try:
        await schema.upgrade(engine)
        sealing.attach(engine, sealing.load_keyring(metadata_keys, create=True))
        hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
        now = dt.datetime.now(dt.UTC)
        async with sessionmaker(engine)() as db:
            tenant = await repo.create_tenant(db, "Chaos", now)
            await repo.add_domain(db, tenant, DOMAIN)
            for i in range(users):
                await repo.create_user(db, email(i), now, password_hash=hashed)
            await db.commit()
    finally:
        await engine.dispose()


async def login(url: str, i: int) -> MessengerClient:
    client = MessengerClient(url, retries=1)  # the senders retry themselves, and count it
    await client.login(email(i), PASSWORD)
    await client.register_device("chaos", secrets.token_bytes(32), secrets.token_bytes(32), b"s")
    return client


def payload(message_id: str) -> bytes:
    return message_id.encode() + b"|" + b"\x00" * 120


def message_id_of(event: dict[str, Any]) -> str:
    return decode_ciphertext(event).split(b"|", 1)[0].decode()


@dataclass
class Receivers:
    """Streams of the receivers, feeding the ledger with arrivals in one conversation."""

    ledger: Ledger
    conversation_id: str
    clients: dict[str, MessengerClient]
    streams: list[EventStream] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, timeout: float = 60.0) -> None:
        synced = {name: asyncio.Event() for name in self.clients}
        for name, client in self.clients.items():
            stream = client.events()
            self.streams.append(stream)
            self.tasks.append(asyncio.create_task(self._pump(name, stream, synced[name])))
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in synced.values())), timeout)

    async def _pump(self, name: str, stream: EventStream, synced: asyncio.Event) -> None:
        async for event in stream:
            kind = event.get("type")
            if kind == "synced":
                synced.set()
            elif kind == "message" and event["conversation_id"] == self.conversation_id:
                self.ledger.arrived(name, message_id_of(event), time.monotonic())

    def reconnects(self) -> int:
        return sum(max(0, s.connects - 1) for s in self.streams)

    async def drain(self, timeout: float) -> None:
        """Wait until every accepted message reached every receiver (or the timeout)."""
        deadline = time.monotonic() + timeout
        while not self.ledger.complete() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        # A moment more, so a late duplicate would still be seen.
        await asyncio.sleep(1.0)

    async def close(self) -> None:
        for stream in self.streams:
            with contextlib.suppress(Exception):
                await stream.aclose()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def send_one(
    client: MessengerClient, conversation_id: str, message_id: str, ledger: Ledger, give_up: float
) -> None:
    """Send until accepted, always with the same transaction id; give up after `give_up`."""
    txn = new_txn_id()
    first = time.monotonic()
    while True:
        try:
            await client.send_raw(conversation_id, payload(message_id), txn_id=txn)
        except (TransportError, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status not in RETRY_STATUS:
                raise
            ledger.send_errors += 1
            if time.monotonic() - first > give_up:
                ledger.unsent.append(message_id)
                return
            await asyncio.sleep(0.1)
        else:
            ledger.accepted(message_id, first, time.monotonic())
            return


async def send_for(
    senders: Sequence[MessengerClient],
    conversation_id: str,
    ledger: Ledger,
    *,
    seconds: float,
    rate_per_sender: float | None,
    give_up: float = 60.0,
) -> float:
    """Each sender sends for `seconds`, at `rate_per_sender` msgs/s (None: flat out, one at
    a time). Returns the wall time until the last send was accepted."""
    started = time.monotonic()
    end = started + seconds

    async def sender(index: int, client: MessengerClient) -> None:
        n = 0
        while time.monotonic() < end:
            tick = time.monotonic()
            await send_one(client, conversation_id, f"s{index}-{n}", ledger, give_up)
            n += 1
            if rate_per_sender:
                await asyncio.sleep(max(0.0, 1.0 / rate_per_sender - (time.monotonic() - tick)))

    await asyncio.gather(*(sender(i, c) for i, c in enumerate(senders)))
    return time.monotonic() - started


async def run_with_faults(
    load: Awaitable[float], faults: Sequence[Callable[[], Awaitable[None]]]
) -> float:
    """Run the load and the fault injectors side by side; the load's duration."""
    fault_tasks = [asyncio.create_task(f()) for f in faults]
    try:
        return await load
    finally:
        for result in await asyncio.gather(*fault_tasks, return_exceptions=True):
            if isinstance(result, BaseException):
                raise result
