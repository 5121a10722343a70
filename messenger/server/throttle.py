"""Login throttling: failures per account, per client address and across the instance.

Counters live in fixed windows, in Redis when the server has one (so every node sees every
node's failures) and in this node's memory otherwise or while Redis is unreachable. Hashing
is bounded separately by `HashGate`: a flood waits in a short queue or gets 429 at once,
instead of running hundreds of argon2 hashes (64 MiB each by default) side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any, Protocol

from messenger.server.config import LoginLimits

log = logging.getLogger("messenger.server.throttle")


class Throttled(Exception):
    """Too many attempts: retry after `retry_after` seconds."""

    def __init__(self, retry_after: int, detail: str) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
        self.detail = detail


class Counters(Protocol):
    async def read(self, keys: list[str]) -> list[int]: ...
    async def add(self, keys: list[str], ttl: int) -> None: ...
    async def clear(self, key: str) -> None: ...


class MemoryCounters:
    """Counters of one node, the oldest forgotten first beyond `capacity` keys."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._counts: OrderedDict[str, tuple[float, int]] = OrderedDict()

    async def read(self, keys: list[str]) -> list[int]:
        now = time.monotonic()
        out = []
        for key in keys:
            expiry, count = self._counts.get(key, (0.0, 0))
            out.append(count if expiry > now else 0)
        return out

    async def add(self, keys: list[str], ttl: int) -> None:
        now = time.monotonic()
        for key in keys:
            expiry, count = self._counts.get(key, (0.0, 0))
            if expiry <= now:
                expiry, count = now + ttl, 0
            self._counts[key] = (expiry, count + 1)
            self._counts.move_to_end(key)
        while len(self._counts) > self.capacity:
            self._counts.popitem(last=False)

    async def clear(self, key: str) -> None:
        self._counts.pop(key, None)


class RedisCounters:
    """Counters shared by every node through Redis; this node's memory while Redis is down."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis.asyncio as aioredis

        self._redis: Any = aioredis.Redis.from_url(url)
        self._prefix = prefix
        self._fallback = MemoryCounters()

    async def read(self, keys: list[str]) -> list[int]:
        from redis.exceptions import RedisError

        try:
            values = await self._redis.mget([self._prefix + k for k in keys])
        except (OSError, RedisError) as exc:
            log.warning("redis unreachable for login counters (%s)", type(exc).__name__)
            return await self._fallback.read(keys)
        return [int(v) if v is not None else 0 for v in values]

    async def add(self, keys: list[str], ttl: int) -> None:
        from redis.exceptions import RedisError

        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.incr(self._prefix + key)
                    pipe.expire(self._prefix + key, ttl)
                await pipe.execute()
        except (OSError, RedisError) as exc:
            log.warning("redis unreachable for login counters (%s)", type(exc).__name__)
            await self._fallback.add(keys, ttl)

    async def clear(self, key: str) -> None:
        from redis.exceptions import RedisError

        await self._fallback.clear(key)
        try:
            await self._redis.delete(self._prefix + key)
        except (OSError, RedisError) as exc:
            log.warning("redis unreachable for login counters (%s)", type(exc).__name__)

    async def close(self) -> None:
        await self._redis.aclose()


class LoginThrottle:
    """Refuses a login once its account, its address or the instance failed too often.

    The account limit stops guessing one password from many addresses; the address limit
    stops trying many accounts from one; the global limit caps what a distributed attack
    costs every node. Each is a fixed window; Retry-After is the time to its end.
    """

    def __init__(self, limits: LoginLimits, counters: Counters) -> None:
        self.limits = limits
        self.counters = counters

    def _keys(self, account: str, address: str, now: float) -> list[tuple[str, float, int]]:
        lim = self.limits
        out = []
        for name, window, limit in (
            (f"account:{account}", lim.window, lim.account_failures),
            (f"address:{address}", lim.window, lim.address_failures),
            ("global", lim.global_window, lim.global_failures),
        ):
            index = int(now // window)
            out.append((f"login:{name}:{index}", (index + 1) * window - now, limit))
        return out

    async def check(self, account: str, address: str) -> None:
        """Raise Throttled when any limit is reached."""
        keys = self._keys(account, address, time.time())
        counts = await self.counters.read([k for k, _, _ in keys])
        waits = [left for (_, left, limit), n in zip(keys, counts, strict=True) if n >= limit]
        if waits:
            wait = max(1, int(max(waits)) + 1)
            raise Throttled(wait, f"too many failed logins; try again in {wait} s")

    async def failed(self, account: str, address: str) -> None:
        keys = self._keys(account, address, time.time())
        ttl = int(max(self.limits.window, self.limits.global_window)) + 1
        await self.counters.add([k for k, _, _ in keys], ttl)

    async def succeeded(self, account: str, address: str) -> None:
        key, _, _ = self._keys(account, address, time.time())[0]
        await self.counters.clear(key)


class HashGate:
    """At most `concurrency` password hashes at once and `queue` waiting; beyond, Throttled."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._queue = queue
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._waiting >= self._queue:
            raise Throttled(1, "the server is busy with other logins; try again in 1 s")
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()
