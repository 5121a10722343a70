"""`Idempotency-Key` on sends and creates: a repeated request gets the first answer again.

Keys are per caller and kept `ttl_s` in this process's memory (a restart forgets them; run
one API process per set of callers, or put a shared store here). A per-key lock makes two
concurrent requests with one key run the work once. The same key with a different request
is a 409, as the IETF draft on the header asks (httpapi-idempotency-key-header).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bridge.api.problems import ApiProblem

__all__ = ["IdempotencyStore", "Stored"]

MAX_KEY_LENGTH = 200


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass
class _Entry:
    fingerprint: str
    expires: float
    result: Stored | None = None


class IdempotencyStore:
    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def _sweep(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if e.expires < now]:
            self._entries.pop(key, None)
            self._locks.pop(key, None)

    async def run(
        self,
        caller: str,
        key: str | None,
        request_fingerprint: bytes,
        work: Callable[[], Awaitable[Stored]],
    ) -> tuple[Stored, bool]:
        """The answer for this request and whether it is a replay of an earlier one.

        Without a key the work simply runs. Errors are not stored: a failed request may be
        retried with the same key.

        Raises:
            ApiProblem: 422 for an unusable key, 409 for a key reused for another request.
        """
        if key is None:
            return await work(), False
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise ApiProblem(
                422,
                "invalid-input",
                "Invalid input",
                f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
            )
        now = time.monotonic()
        self._sweep(now)
        fingerprint = hashlib.sha256(request_fingerprint).hexdigest()
        slot = (caller, key)
        lock = self._locks.setdefault(slot, asyncio.Lock())
        async with lock:
            entry = self._entries.get(slot)
            if entry is not None and entry.fingerprint != fingerprint:
                raise ApiProblem(
                    409,
                    "idempotency-key-reused",
                    "Idempotency-Key reused",
                    "This Idempotency-Key was used for a different request.",
                )
            if entry is not None and entry.result is not None:
                return entry.result, True
            result = await work()
            self._entries[slot] = _Entry(fingerprint, now + self.ttl_s, result)
            return result, False
