"""People with real device keys for the alarm tests: SDK client, E2E session, alarm functions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from messenger_harness import PASSWORD

from messenger.client import EventStream, MessengerClient
from messenger.client.alarms import AlarmReceived, AlarmResult, Alarms, AlarmStatus
from messenger.client.e2e import E2ESession
from messenger.crypto import DeviceKeys


@dataclass
class Person:
    name: str
    client: MessengerClient
    session: E2ESession
    alarms: Alarms
    stream: EventStream | None = None
    results: list[AlarmResult] = field(default_factory=list)
    synced: bool = False

    @property
    def user_id(self) -> str:
        return self.session.user_id

    async def listen(self) -> None:
        """Open the stream and read it up to `synced` (alarms replayed on connect included)."""
        self.stream = self.client.events()
        await self.until(lambda p: p.synced)

    async def until(self, done: Callable[[Person], bool], timeout: float = 20.0) -> None:
        """Feed stream events through the E2E session and the alarms until `done(self)`."""
        assert self.stream is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done(self):
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"{self.name}: condition not reached; got {self.results}")
            event = await self.stream.next(timeout=left)
            if event["type"] == "synced":
                self.synced = True
            await self.session.handle_event(event)
            self.results.extend(await self.alarms.handle_event(event))

    def received(self, alarm_id: str | None = None) -> list[AlarmReceived]:
        return [
            r
            for r in self.results
            if isinstance(r, AlarmReceived) and alarm_id in (None, r.alarm_id)
        ]

    def statuses(self, alarm_id: str | None = None) -> list[AlarmStatus]:
        return [
            r for r in self.results if isinstance(r, AlarmStatus) and alarm_id in (None, r.alarm_id)
        ]

    def has_round(self, alarm_id: str, round_: int) -> bool:
        return any(r.round >= round_ for r in self.received(alarm_id))

    def saw(self, alarm_id: str, kind: str, **match: Any) -> bool:
        return any(
            s.kind == kind and all(getattr(s, k) == v for k, v in match.items())
            for s in self.statuses(alarm_id)
        )

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
        await self.client.aclose()


async def person(url: str, email: str, name: str | None = None) -> Person:
    """Log in with a fresh E2E device."""
    client = MessengerClient(url, retries=1)
    await client.login(email, PASSWORD)
    assert client.user_id is not None
    keys = DeviceKeys.generate(client.user_id, uuid.uuid4().hex)
    session = E2ESession.for_client(client, keys)
    await session.register_device(f"{name or email}-device")
    return Person(name or email.partition("@")[0], client, session, Alarms(client, session))
