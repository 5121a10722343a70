"""`Idempotency-Key` on sends and creates: a repeated request gets the first answer again.

Keys are per caller and their answers kept `ttl_s` in the API's database, so a repeat after a
restart is still answered from the record instead of sending twice. A per-key lock in this
process makes two concurrent requests with one key run the work once (run one API process
per set of callers). The same key with a different request
is a 409, as the IETF draft on the header asks (httpapi-idempotency-key-header).

Before the work runs, the key is recorded as pending (status 0) and committed. A pending
record that a repeat finds belongs to an attempt that never finished: the API stopped (or the
client went away) between the work and its record, so whether the message went out is not
known. Running it again could send twice, so the repeat gets 409 `idempotency-outcome-unknown`
instead: check (e.g. Sent Items), then retry with a new key. Work that fails with an error is
known not to have happened; its pending record is removed, and a retry with the key runs it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import text

from bridge.api.problems import ApiProblem
from bridge.api.store import ApiDatabase

__all__ = ["IdempotencyStore", "Stored"]

MAX_KEY_LENGTH = 200
PENDING = 0
"""The status of a record whose work has not finished."""


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes
    media_type: str
    headers: tuple[tuple[str, str], ...] = ()


_PENDING = Stored(PENDING, b"", "")


class IdempotencyStore:
    def __init__(self, ttl_s: float, database: ApiDatabase) -> None:
        self.ttl_s = ttl_s
        self._database = database
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    async def _recorded(self, caller: str, key: str, now: float) -> tuple[str, Stored] | None:
        engine = await self._database.engine()
        async with engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM idempotency WHERE expires_at < :now"), {"now": now}
            )
            row = (
                await conn.execute(
                    text(
                        "SELECT fingerprint, status, body, media_type, headers FROM idempotency"
                        " WHERE caller = :caller AND idem_key = :key"
                    ),
                    {"caller": caller, "key": key},
                )
            ).first()
        if row is None:
            return None
        headers = tuple((str(k), str(v)) for k, v in json.loads(row.headers))
        return row.fingerprint, Stored(int(row.status), bytes(row.body), row.media_type, headers)

    async def _finish(self, caller: str, key: str, result: Stored | None) -> None:
        """Replace the pending record with the answer (or drop it: the work failed)."""
        engine = await self._database.engine()
        async with engine.begin() as conn:
            if result is None:
                await conn.execute(
                    text("DELETE FROM idempotency WHERE caller = :caller AND idem_key = :key"),
                    {"caller": caller, "key": key},
                )
                return
            await conn.execute(
                text(
                    "UPDATE idempotency SET status = :status, body = :body,"
                    " media_type = :media_type, headers = :headers"
                    " WHERE caller = :caller AND idem_key = :key"
                ),
                {
                    "caller": caller,
                    "key": key,
                    "status": result.status,
                    "body": result.body,
                    "media_type": result.media_type,
                    "headers": json.dumps(list(result.headers)),
                },
            )

    async def _record(
        self, caller: str, key: str, fingerprint: str, result: Stored, now: float
    ) -> None:
        engine = await self._database.engine()
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO idempotency (caller, idem_key, fingerprint, status, body,"
                    " media_type, headers, expires_at) VALUES (:caller, :key, :fingerprint,"
                    " :status, :body, :media_type, :headers, :expires_at)"
                ),
                {
                    "caller": caller,
                    "key": key,
                    "fingerprint": fingerprint,
                    "status": result.status,
                    "body": result.body,
                    "media_type": result.media_type,
                    "headers": json.dumps(list(result.headers)),
                    "expires_at": now + self.ttl_s,
                },
            )

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
        fingerprint = hashlib.sha256(request_fingerprint).hexdigest()
        slot = (caller, key)
        lock, users = self._locks.get(slot, (asyncio.Lock(), 0))
        self._locks[slot] = (lock, users + 1)
        try:
            async with lock:
                recorded = await self._recorded(caller, key, time.time())
                if recorded is not None and recorded[0] != fingerprint:
                    raise ApiProblem(
                        409,
                        "idempotency-key-reused",
                        "Idempotency-Key reused",
                        "This Idempotency-Key was used for a different request.",
                    )
                if recorded is not None and recorded[1].status == PENDING:
                    raise ApiProblem(
                        409,
                        "idempotency-outcome-unknown",
                        "Outcome unknown",
                        "An earlier request with this Idempotency-Key did not finish, so"
                        " whether it took effect is not known. Check (for a send: Sent Items),"
                        " then retry with a new key.",
                    )
                if recorded is not None:
                    return recorded[1], True
                await self._record(caller, key, fingerprint, _PENDING, time.time())
                try:
                    result = await work()
                except Exception:
                    await self._finish(caller, key, None)  # it failed: a retry may run it
                    raise
                # Cancelled or stopped in between: the record stays pending (outcome unknown).
                await self._finish(caller, key, result)
                return result, False
        finally:
            lock, users = self._locks[slot]
            if users == 1:
                del self._locks[slot]
            else:
                self._locks[slot] = (lock, users - 1)
