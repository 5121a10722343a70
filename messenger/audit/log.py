"""The audit log: append-only, each row's hash covering its content and the previous row's hash.

    hash_n = SHA-256( canonical JSON of [seq, tenant, at, actor, action, details, hash_{n-1}] )

The first row links to 64 zeros. Changing, removing or reordering any row breaks the chain at
that row, which `verify` names. The log holds ids, times and decisions, never message content.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from messenger.store.models import AuditLogEntry

GENESIS = "0" * 64
_LOCK = 0x6D6261756474  # PostgreSQL advisory lock serialising appends ("mbaudt")


def entry_hash(
    prev_hash: str,
    seq: int,
    tenant_id: str,
    at: dt.datetime,
    actor: str | None,
    action: str,
    details: dict[str, Any],
) -> str:
    body = [seq, tenant_id, at.astimezone(dt.UTC).isoformat(), actor, action, details, prev_hash]
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def append(
    db: AsyncSession,
    tenant_id: str,
    actor: str | None,
    action: str,
    details: dict[str, Any],
    now: dt.datetime,
) -> AuditLogEntry:
    """Add one row at the end of the chain (in the caller's transaction)."""
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    last = await db.scalar(select(AuditLogEntry).order_by(AuditLogEntry.seq.desc()).limit(1))
    seq = 1 if last is None else last.seq + 1
    prev = GENESIS if last is None else last.hash
    at = now.astimezone(dt.UTC)
    row = AuditLogEntry(
        seq=seq,
        tenant_id=tenant_id,
        at=at,
        actor_user_id=actor,
        action=action,
        details=details,
        prev_hash=prev,
        hash=entry_hash(prev, seq, tenant_id, at, actor, action, details),
    )
    db.add(row)
    await db.flush()
    return row


@dataclass
class Verdict:
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def verify(db: AsyncSession) -> Verdict:
    """Recompute the chain from the first row; every broken link is named by its row number."""
    verdict = Verdict()
    prev, expected_seq = GENESIS, 1
    for row in await db.scalars(select(AuditLogEntry).order_by(AuditLogEntry.seq)):
        verdict.rows += 1
        if row.seq != expected_seq:
            verdict.problems.append(
                f"row {row.seq}: rows before it are missing (expected row {expected_seq})"
            )
        if row.prev_hash != prev:
            verdict.problems.append(f"row {row.seq}: does not link to the row before it")
        computed = entry_hash(
            row.prev_hash,
            row.seq,
            row.tenant_id,
            row.at,
            row.actor_user_id,
            row.action,
            dict(row.details),
        )
        if computed != row.hash:
            verdict.problems.append(f"row {row.seq}: content does not match its hash")
        prev, expected_seq = row.hash, row.seq + 1
    return verdict


async def entries(db: AsyncSession, tenant_id: str, limit: int = 1000) -> list[AuditLogEntry]:
    rows = await db.scalars(
        select(AuditLogEntry)
        .where(AuditLogEntry.tenant_id == tenant_id)
        .order_by(AuditLogEntry.seq.desc())
        .limit(limit)
    )
    return list(rows)
