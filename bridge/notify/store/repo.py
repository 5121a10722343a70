"""All reads and writes of the bridge's database, each a short transaction.

The exactly-once rules live here: a folder's new sync state is saved in the same transaction as
the notifications its batch produced (unique `dedup_key`, so a batch read twice adds nothing);
a sent notification is marked sent and linked to its messenger message in one transaction; an
action from chat is claimed by inserting its (conversation, seq) once.

What a notification says and what a chat user typed are stored sealed (`sealing`): a store
writes or reads them only after `unlock` with the bridge's keys passphrase.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.notify.store.migrations import upgrade
from bridge.notify.store.sealing import (
    ContentSeal,
    SealError,
    is_sealed,
    new_sealed_key,
    open_sealed_key,
)

__all__ = ["ActionRow", "BridgeStore", "LinkRow", "NewNotification", "OutboxRow"]


@dataclass(frozen=True)
class NewNotification:
    """A notification to record; `dedup_key` is the same whenever the same change is seen."""

    dedup_key: str
    mailbox: str
    route: str
    rule: str
    payload: dict[str, Any]
    not_before: float
    item_id: str | None = None
    change_key: str | None = None
    digest: bool = False


@dataclass(frozen=True)
class OutboxRow:
    id: int
    dedup_key: str
    mailbox: str
    item_id: str | None
    route: str
    rule: str
    payload: dict[str, Any]
    not_before: float
    digest: bool
    attempts: int


@dataclass(frozen=True)
class LinkRow:
    outbox_id: int
    mailbox: str
    item_id: str | None
    change_key: str | None
    conversation_id: str
    seq: int


@dataclass(frozen=True)
class ActionRow:
    id: int
    conversation_id: str
    seq: int
    sender: str
    command: str
    outbox_id: int | None
    state: str
    worker: str


class BridgeStore:
    """The bridge's tables over one SQLAlchemy async engine."""

    def __init__(
        self, engine: AsyncEngine, clock: Any = time.time, seal: ContentSeal | None = None
    ) -> None:
        self.engine = engine
        self._clock = clock
        self._seal = seal

    @classmethod
    async def open(cls, url: str, schema: str | None = None) -> BridgeStore:
        """Connect and bring the schema up to date.

        Raises:
            SchemaTooNew: the database was written by a newer release.
        """
        from sqlalchemy.engine import make_url

        from messenger.store.engine import make_engine

        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(url, schema)
        await upgrade(engine)
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    async def unlock(self, passphrase: str, *, opslimit: int, memlimit: int) -> None:
        """Open the database's content key with the keys passphrase (made on first use), and
        seal what an older release left in plaintext.

        Raises:
            SealError: the passphrase does not open the key.
        """
        select = text("SELECT sealed FROM content_keys WHERE name = 'content'")
        async with self.engine.connect() as conn:
            sealed = (await conn.execute(select)).scalar_one_or_none()
        if sealed is None:
            fresh = new_sealed_key(passphrase, opslimit=opslimit, memlimit=memlimit)
            async with self.engine.begin() as conn:
                # Of two workers starting at once, the first key saved is everyone's key.
                await conn.execute(
                    text(
                        "INSERT INTO content_keys (name, sealed, created_at) "
                        "VALUES ('content', :s, :t) ON CONFLICT (name) DO NOTHING"
                    ),
                    {"s": fresh, "t": self.now()},
                )
                sealed = (await conn.execute(select)).scalar_one()
        self._seal = open_sealed_key(str(sealed), passphrase)
        await self._seal_plaintext()

    @property
    def seal(self) -> ContentSeal:
        if self._seal is None:
            raise SealError("the bridge database is locked: unlock it with the keys passphrase")
        return self._seal

    async def _seal_plaintext(self) -> None:
        seal = self.seal
        columns = (("outbox", "payload"), ("actions", "command"), ("actions", "result"))
        async with self.engine.begin() as conn:
            for table, column in columns:
                rows = (
                    await conn.execute(
                        text(f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608 (fixed names)
                    )
                ).all()
                for row_id, value in rows:
                    if not is_sealed(str(value)):
                        await conn.execute(
                            text(f"UPDATE {table} SET {column} = :v WHERE id = :id"),  # noqa: S608 (fixed names)
                            {"v": seal.seal(str(value)), "id": row_id},
                        )

    def now(self) -> float:
        return float(self._clock())

    # ------------------------------------------------------------------ folders

    async def sync_state(self, folder_key: str) -> tuple[bool, str | None]:
        """(known, state): known is False before the folder's first baseline."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT sync_state FROM folder_state WHERE folder_key = :k"),
                    {"k": folder_key},
                )
            ).first()
        return (row is not None, row[0] if row is not None else None)

    async def save_batch(
        self,
        folder_key: str,
        mailbox: str,
        folder_id: str,
        state: str,
        notifications: Sequence[NewNotification],
    ) -> int:
        """Record a batch's notifications and the folder's new state together; returns how many
        notifications were new (a batch seen before adds none)."""
        now = self.now()
        async with self.engine.begin() as conn:
            added = await _insert_outbox(conn, notifications, now, self.seal)
            await conn.execute(
                text(
                    "INSERT INTO folder_state (folder_key, mailbox, folder_id, sync_state, "
                    "updated_at) VALUES (:k, :m, :f, :s, :t) ON CONFLICT (folder_key) DO UPDATE "
                    "SET sync_state = :s, folder_id = :f, updated_at = :t"
                ),
                {"k": folder_key, "m": mailbox, "f": folder_id, "s": state, "t": now},
            )
        return added

    async def reset_folder(self, folder_key: str) -> None:
        """Forget a folder's state: its next sync is a new baseline."""
        async with self.engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM folder_state WHERE folder_key = :k"), {"k": folder_key}
            )

    # ------------------------------------------------------------------ outbox

    async def enqueue(self, notifications: Sequence[NewNotification]) -> int:
        async with self.engine.begin() as conn:
            return await _insert_outbox(conn, notifications, self.now(), self.seal)

    async def due(self, mailboxes: Sequence[str] | None, limit: int = 50) -> list[OutboxRow]:
        """Pending notifications whose time has come, oldest first; only those of `mailboxes`
        (the ones this worker holds) when given; "" is the mailbox of bridge-wide messages."""
        params: dict[str, Any] = {"now": self.now(), "limit": limit}
        where = "state = 'pending' AND not_before <= :now"
        if mailboxes is not None:
            names = [*mailboxes, ""]
            keys = [f"m{i}" for i in range(len(names))]
            where += f" AND mailbox IN ({', '.join(':' + k for k in keys)})"
            params.update(zip(keys, names, strict=True))
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT id, dedup_key, mailbox, item_id, route, rule, payload, not_before,"  # noqa: S608 (fixed clauses, values bound)
                        f" digest, attempts FROM outbox WHERE {where} ORDER BY id LIMIT :limit"
                    ),
                    params,
                )
            ).all()
        return [
            OutboxRow(
                id=int(r[0]),
                dedup_key=r[1],
                mailbox=r[2],
                item_id=r[3],
                route=r[4],
                rule=r[5],
                payload=json.loads(self.seal.open(r[6]) if r[6] else "{}"),
                not_before=float(r[7]),
                digest=bool(r[8]),
                attempts=int(r[9]),
            )
            for r in rows
        ]

    async def mark_sent(self, rows: Sequence[OutboxRow], conversation_id: str, seq: int) -> None:
        """The rows went out as message `seq`: mark them sent, forget their payload, link them."""
        now = self.now()
        async with self.engine.begin() as conn:
            for row in rows:
                await conn.execute(
                    text(
                        "UPDATE outbox SET state = 'sent', sent_at = :t, payload = NULL, "
                        "last_error = NULL WHERE id = :id"
                    ),
                    {"t": now, "id": row.id},
                )
                change_key = (
                    await conn.execute(
                        text("SELECT change_key FROM outbox WHERE id = :id"), {"id": row.id}
                    )
                ).scalar_one()
                await conn.execute(
                    text(
                        "INSERT INTO links (outbox_id, mailbox, item_id, change_key, "
                        "conversation_id, seq) VALUES (:o, :m, :i, :c, :cv, :s) "
                        "ON CONFLICT DO NOTHING"
                    ),
                    {
                        "o": row.id,
                        "m": row.mailbox,
                        "i": row.item_id,
                        "c": change_key,
                        "cv": conversation_id,
                        "s": seq,
                    },
                )

    async def mark_failed(self, row: OutboxRow, error: str, *, retry_at: float | None) -> None:
        """A send failed: retry at `retry_at`, or give up (state failed) when None."""
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = :e, "
                    "state = :state, not_before = :nb WHERE id = :id AND state = 'pending'"
                ),
                {
                    "e": error[:500],
                    "state": "pending" if retry_at is not None else "failed",
                    "nb": retry_at if retry_at is not None else row.not_before,
                    "id": row.id,
                },
            )

    async def outbox_counts(self) -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(text("SELECT state, COUNT(*) FROM outbox GROUP BY state"))
            ).all()
        return {str(r[0]): int(r[1]) for r in rows}

    # ------------------------------------------------------------------ links & routes

    async def link(self, outbox_id: int) -> LinkRow | None:
        return await self._one_link("l.outbox_id = :v", {"v": outbox_id})

    async def latest_link(self, conversation_id: str) -> LinkRow | None:
        """The newest item notification in a conversation (the default target of a command)."""
        return await self._one_link(
            "l.conversation_id = :v AND l.item_id IS NOT NULL", {"v": conversation_id}
        )

    async def _one_link(self, where: str, params: dict[str, Any]) -> LinkRow | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT l.outbox_id, l.mailbox, l.item_id, l.change_key, "  # noqa: S608 (fixed clauses, values bound)
                        f"l.conversation_id, l.seq FROM links l WHERE {where} "
                        "ORDER BY l.outbox_id DESC LIMIT 1"
                    ),
                    params,
                )
            ).first()
        if row is None:
            return None
        return LinkRow(int(row[0]), row[1], row[2], row[3], row[4], int(row[5]))

    async def links(self) -> list[LinkRow]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT outbox_id, mailbox, item_id, change_key, conversation_id, seq "
                        "FROM links ORDER BY outbox_id"
                    )
                )
            ).all()
        return [LinkRow(int(r[0]), r[1], r[2], r[3], r[4], int(r[5])) for r in rows]

    async def route(self, route: str) -> str | None:
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    text("SELECT conversation_id FROM routes WHERE route = :r"), {"r": route}
                )
            ).scalar_one_or_none()

    async def routes(self) -> dict[str, str]:
        async with self.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT route, conversation_id FROM routes"))).all()
        return {str(r[0]): str(r[1]) for r in rows}

    async def save_route(self, route: str, conversation_id: str) -> str:
        """Remember a route's conversation; the first one saved wins (returned)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO routes (route, conversation_id, created_at) VALUES (:r, :c, :t) "
                    "ON CONFLICT (route) DO NOTHING"
                ),
                {"r": route, "c": conversation_id, "t": self.now()},
            )
            return str(
                (
                    await conn.execute(
                        text("SELECT conversation_id FROM routes WHERE route = :r"), {"r": route}
                    )
                ).scalar_one()
            )

    async def forget_route(self, route: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text("DELETE FROM routes WHERE route = :r"), {"r": route})

    # ------------------------------------------------------------------ actions

    async def claim_action(
        self,
        conversation_id: str,
        seq: int,
        sender: str,
        command: str,
        outbox_id: int | None,
        worker: str,
    ) -> bool:
        """Record a chat message as an action to take; False when it was recorded before."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                text(
                    "INSERT INTO actions (conversation_id, seq, sender, command, outbox_id, state,"
                    " worker, created_at) VALUES (:c, :s, :u, :cmd, :o, 'claimed', :w, :t) "
                    "ON CONFLICT (conversation_id, seq) DO NOTHING"
                ),
                {
                    "c": conversation_id,
                    "s": seq,
                    "u": sender,
                    "cmd": self.seal.seal(command),
                    "o": outbox_id,
                    "w": worker,
                    "t": self.now(),
                },
            )
            return result.rowcount == 1

    async def finish_action(
        self, conversation_id: str, seq: int, state: str, result: str, reply: NewNotification
    ) -> None:
        """Close an action and queue its answer to the chat, in one transaction."""
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE actions SET state = :st, result = :r "
                    "WHERE conversation_id = :c AND seq = :s"
                ),
                {"st": state, "r": self.seal.seal(result[:500]), "c": conversation_id, "s": seq},
            )
            await _insert_outbox(conn, [reply], self.now(), self.seal)

    async def unfinished_actions(self, worker: str | None = None) -> list[ActionRow]:
        """Actions claimed but never finished (their worker died): by `worker`, or all."""
        where = "state = 'claimed'" + (" AND worker = :w" if worker else "")
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT id, conversation_id, seq, sender, command, outbox_id, state, "  # noqa: S608 (fixed clauses, values bound)
                        f"worker FROM actions WHERE {where} ORDER BY id"
                    ),
                    {"w": worker},
                )
            ).all()
        return [self._action(r) for r in rows]

    async def adopt_action(self, action_id: int, dead: str, worker: str) -> bool:
        """Take over an unfinished action of a dead worker; False if someone else did."""
        async with self.engine.begin() as conn:
            result = await conn.execute(
                text(
                    "UPDATE actions SET worker = :w "
                    "WHERE id = :id AND worker = :dead AND state = 'claimed'"
                ),
                {"w": worker, "id": action_id, "dead": dead},
            )
            return result.rowcount == 1

    async def actions(self) -> list[ActionRow]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT id, conversation_id, seq, sender, command, outbox_id, state, "
                        "worker FROM actions ORDER BY id"
                    )
                )
            ).all()
        return [self._action(r) for r in rows]

    def _action(self, r: Any) -> ActionRow:
        return ActionRow(int(r[0]), r[1], int(r[2]), r[3], self.seal.open(r[4]), r[5], r[6], r[7])

    # ------------------------------------------------------------------ leases

    async def acquire(self, mailbox: str, worker: str, seconds: float) -> bool:
        """Take or renew the lease on a mailbox; False while another worker's lease is live."""
        now = self.now()
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO leases (mailbox, worker, expires_at) VALUES (:m, :w, :e) "
                    "ON CONFLICT (mailbox) DO NOTHING"
                ),
                {"m": mailbox, "w": worker, "e": now + seconds},
            )
            result = await conn.execute(
                text(
                    "UPDATE leases SET worker = :w, expires_at = :e "
                    "WHERE mailbox = :m AND (worker = :w OR expires_at < :now)"
                ),
                {"m": mailbox, "w": worker, "e": now + seconds, "now": now},
            )
            return result.rowcount == 1

    async def release(self, mailbox: str, worker: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM leases WHERE mailbox = :m AND worker = :w"),
                {"m": mailbox, "w": worker},
            )

    async def lease_holders(self) -> dict[str, str]:
        """Live leases: mailbox → worker."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT mailbox, worker FROM leases WHERE expires_at >= :now"),
                    {"now": self.now()},
                )
            ).all()
        return {str(r[0]): str(r[1]) for r in rows}

    async def heartbeat(self, worker: str) -> None:
        """Say this worker is alive (workers count each other to share the mailboxes)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO workers (worker, cursors, updated_at) VALUES (:w, '{}', :t) "
                    "ON CONFLICT (worker) DO UPDATE SET updated_at = :t"
                ),
                {"w": worker, "t": self.now()},
            )

    async def live_workers(self, within: float) -> list[str]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT worker FROM workers WHERE updated_at >= :since ORDER BY worker"),
                    {"since": self.now() - within},
                )
            ).all()
        return [str(r[0]) for r in rows]

    # ------------------------------------------------------------------ stream cursors

    async def cursors(self, worker: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            raw = (
                await conn.execute(
                    text("SELECT cursors FROM workers WHERE worker = :w"), {"w": worker}
                )
            ).scalar_one_or_none()
        return json.loads(raw) if raw else None

    async def save_cursors(self, worker: str, cursors: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO workers (worker, cursors, updated_at) VALUES (:w, :c, :t) "
                    "ON CONFLICT (worker) DO UPDATE SET cursors = :c, updated_at = :t"
                ),
                {"w": worker, "c": json.dumps(cursors), "t": self.now()},
            )


async def _insert_outbox(
    conn: AsyncConnection, notifications: Sequence[NewNotification], now: float, seal: ContentSeal
) -> int:
    added = 0
    for n in notifications:
        result = await conn.execute(
            text(
                "INSERT INTO outbox (dedup_key, mailbox, item_id, change_key, route, rule, "
                "payload, not_before, digest, created_at) VALUES (:k, :m, :i, :c, :r, :rule, :p, "
                ":nb, :d, :t) ON CONFLICT (dedup_key) DO NOTHING"
            ),
            {
                "k": n.dedup_key,
                "m": n.mailbox,
                "i": n.item_id,
                "c": n.change_key,
                "r": n.route,
                "rule": n.rule,
                "p": seal.seal(json.dumps(n.payload)),
                "nb": n.not_before,
                "d": 1 if n.digest else 0,
                "t": now,
            },
        )
        added += result.rowcount
    return added
