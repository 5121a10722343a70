"""Fan-out of live events to connected devices: in process, or across nodes over Redis pub/sub.

A published item is a routing envelope: `{"conversation_id": ...}` reaches every connection
subscribed to that conversation (and, for a membership change, the added or removed user's
connections), `{"device_id": ...}` one device's to-device queue, `{"device_ids": [...]}` those
devices (an alarm), `{"user_ids": [...]}` those users;
`{"kick_device": ...}` and `{"kick_session": ..., "user_id": ...}` close connections.
Connections repair any gap from the database by sequence number (and catch up periodically),
so a lost or reordered pub/sub message costs latency, not data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import defaultdict
from typing import Any, Protocol

log = logging.getLogger("messenger.server.hub")


class Subscriber(Protocol):
    user_id: str
    device_id: str
    session_id: str

    def push(self, item: dict[str, Any]) -> None: ...

    def kick(self) -> None: ...


class LocalHub:
    """In-process routing table; also the last hop on every node when Redis is used."""

    def __init__(self) -> None:
        self.by_conv: dict[str, set[Subscriber]] = defaultdict(set)
        self.by_user: dict[str, set[Subscriber]] = defaultdict(set)
        self.by_device: dict[str, set[Subscriber]] = defaultdict(set)
        self.subs_of: dict[Subscriber, set[str]] = {}

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def connected(self) -> int:
        return len(self.subs_of)

    def subscribers(self) -> list[Subscriber]:
        return list(self.subs_of)

    def attach(self, sub: Subscriber, conversation_ids: set[str]) -> None:
        self.subs_of[sub] = set()
        self.by_user[sub.user_id].add(sub)
        self.by_device[sub.device_id].add(sub)
        for cid in conversation_ids:
            self.subscribe(sub, cid)

    def detach(self, sub: Subscriber) -> None:
        for cid in self.subs_of.pop(sub, set()):
            self._discard(self.by_conv, cid, sub)
        self._discard(self.by_user, sub.user_id, sub)
        self._discard(self.by_device, sub.device_id, sub)

    def subscribe(self, sub: Subscriber, cid: str) -> None:
        if sub in self.subs_of:
            self.subs_of[sub].add(cid)
            self.by_conv[cid].add(sub)

    def unsubscribe(self, sub: Subscriber, cid: str) -> None:
        if sub in self.subs_of:
            self.subs_of[sub].discard(cid)
            self._discard(self.by_conv, cid, sub)

    @staticmethod
    def _discard(table: dict[str, set[Subscriber]], key: str, sub: Subscriber) -> None:
        subs = table.get(key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del table[key]

    async def publish(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            self.dispatch(item)

    def dispatch(self, item: dict[str, Any]) -> None:
        if "kick_device" in item:
            for sub in list(self.by_device.get(item["kick_device"], ())):
                sub.kick()
            return
        if "kick_session" in item:
            for sub in list(self.by_user.get(item["user_id"], ())):
                if sub.session_id == item["kick_session"]:
                    sub.kick()
            return
        targets: set[Subscriber] = set()
        if "conversation_id" in item:
            cid = item["conversation_id"]
            event = item["event"]
            targets |= self.by_conv.get(cid, set())
            if event.get("type") == "membership":
                member = event["user_id"]
                for sub in self.by_user.get(member, set()):
                    targets.add(sub)
                    if event["action"] == "added":
                        self.subscribe(sub, cid)
                    else:
                        self.unsubscribe(sub, cid)
        if "device_id" in item:
            targets |= self.by_device.get(item["device_id"], set())
        for did in item.get("device_ids", ()):
            targets |= self.by_device.get(did, set())
        for uid in item.get("user_ids", ()):
            targets |= self.by_user.get(uid, set())
        for sub in targets:
            sub.push(item)


class Hub(Protocol):
    def attach(self, sub: Subscriber, conversation_ids: set[str]) -> None: ...
    def detach(self, sub: Subscriber) -> None: ...
    def subscribe(self, sub: Subscriber, cid: str) -> None: ...
    def unsubscribe(self, sub: Subscriber, cid: str) -> None: ...
    def connected(self) -> int: ...
    def subscribers(self) -> list[Subscriber]: ...
    async def publish(self, items: list[dict[str, Any]]) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class RedisHub(LocalHub):
    """Publishes every item on one Redis channel; each node dispatches what it receives.

    The publishing node dispatches its own items at once (no round trip through Redis for
    its own streams) and skips their echo, recognised by the node's random `origin` tag."""

    def __init__(self, url: str, channel: str = "medbridge:messenger:events") -> None:
        super().__init__()
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url)
        self._channel = channel
        self._origin = secrets.token_hex(8)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self, ready_timeout: float = 2.0) -> None:
        """Subscribe; if Redis is not reachable yet, start anyway and keep trying."""
        self._task = asyncio.create_task(self._listen())
        try:
            async with asyncio.timeout(ready_timeout):
                await self._ready.wait()
        except TimeoutError:
            log.warning("redis not reachable at start; delivering locally until it is")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()  # type: ignore[attr-defined]

    async def publish(self, items: list[dict[str, Any]]) -> None:
        """Deliver locally, then publish to the other nodes (which catch up later if Redis
        is down).

        The events are stored before they are published, so a Redis outage delays delivery to
        other nodes' streams until their periodic catch-up; it never fails the request.
        """
        from redis.exceptions import RedisError

        if not items:
            return
        wire = [
            json.dumps({**item, "origin": self._origin}, separators=(",", ":")) for item in items
        ]
        for item in items:
            self.dispatch(item)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for text in wire:
                    pipe.publish(self._channel, text)
                await pipe.execute()
        except (OSError, RedisError) as exc:
            log.warning("redis publish failed (%s); delivered locally only", type(exc).__name__)

    async def _listen(self) -> None:
        from redis.exceptions import RedisError

        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._ready.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        item = json.loads(message["data"])
                        if item.pop("origin", None) != self._origin:
                            self.dispatch(item)
            except (OSError, RedisError) as exc:
                log.warning("redis pub/sub lost (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[attr-defined]
