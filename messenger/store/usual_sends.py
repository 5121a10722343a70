"""A batch of usual sends, in as few statements as the database allows.

Each batch of sends to one conversation (`server.sending`) would take the general path
(`sends.append_messages`): up to nine round trips to PostgreSQL (begin, the session check,
the transaction ids' claim, the sender check, the senders' lock, the quota charge, the
sequence numbers, the insert, commit). Here a batch of usual sends (members' own devices, no
attachments, no tenant pair to check, quota to spare, new transaction ids, sessions that may
still send) is one statement on PostgreSQL: data-modifying CTEs chained by what each returns,
the sends given as arrays. On SQLite, which has no such CTEs but no round trips either, a
send alone in its batch is one read and the four writes, run on the driver's connection
(SQLAlchemy's part of them was half of a quiet send's time); a larger batch goes the general
way.

This path answers only a batch every send of which would be stored. Anything else is handed
back (None): the general path then gives the refusal, the duplicate's stored answer or the
tenant-pair check, so every error keeps one source. Nothing is written when None is
returned; when a write was made and a later step did not hold (a membership change or a
charge that raced in, a transaction id claimed meanwhile), `UsualSendsUndone` asks the caller
to roll the transaction back and take the general path.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import JSON, LargeBinary, bindparam, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from messenger.store._sqlite_inline import run_raw
from messenger.store.models import UTCDateTime
from messenger.store.sends import (
    PendingSend,
    SendOutcome,
    message_of,
    transaction_result,
)


class UsualSendsUndone(Exception):
    """A write of the usual path was made and a later step did not hold: roll back and send
    through the general path."""


# SQLite: the usual case, as one read (the PostgreSQL statement's `ok` says the same for
# each send of a batch: change both or neither). The sender is an active member sending from
# an own device, the conversation needs no tenant-pair check, the sender has seen its latest
# membership change (or does not say), the quota has room, and the session (when one is
# given) may still send: not ended, not expired (a bot's does not expire), user and tenant
# enabled.
_PLAIN_CASE = """
SELECT c.membership_seq AS mseq
FROM conversations c
JOIN memberships m ON m.conversation_id = c.id AND m.user_id = :user AND m.active
JOIN devices d ON d.id = :device AND d.user_id = :user AND d.removed_at IS NULL
JOIN users u ON u.id = :user AND NOT u.disabled
JOIN tenants t ON t.id = u.tenant_id AND NOT t.disabled
WHERE c.id = :cid AND NOT c.cross_tenant
  AND (CAST(:seen AS BIGINT) IS NULL OR c.membership_seq <= CAST(:seen AS BIGINT))
  AND u.storage_used + CAST(:size AS BIGINT) <= COALESCE(u.quota_bytes, t.user_quota_bytes)
  AND (CAST(:session AS VARCHAR) IS NULL OR EXISTS (
    SELECT 1 FROM sessions s
    WHERE s.id = :session AND s.user_id = u.id AND s.revoked_at IS NULL
      AND (u.kind = 'bot' OR s.created_at > :issued_after)))
"""

# SQLite, a send alone in its batch: after `_PLAIN_CASE`, the writes of `_LONE_IN_ONE` one
# by one (claim the transaction id, charge the quota, take the number, store), run on the
# driver's own connection. Through SQLAlchemy, a quiet send's statements cost 0.3-0.5 ms each
# and SQLite's own work 0.02-0.05 ms: 2 of the send's 4 ms in the server (the bench's 1 msg/s
# phase). Values are bound as SQLAlchemy binds them (`_binds_for`), so the rows read the
# same through the ORM.
_SQLITE_CLAIM = """
INSERT INTO transactions (user_id, txn_id, kind, result, created_at)
VALUES (:user, :txn, 'message', :result, :now)
ON CONFLICT DO NOTHING
RETURNING user_id
"""
_SQLITE_CHARGE = """
UPDATE users SET storage_used = storage_used + :size
WHERE id = :user
  AND storage_used + :size <= COALESCE(
    quota_bytes, (SELECT user_quota_bytes FROM tenants WHERE tenants.id = users.tenant_id))
RETURNING id
"""
_SQLITE_NUMBER = """
UPDATE conversations SET last_seq = last_seq + 1 WHERE id = :cid
RETURNING last_seq, membership_seq
"""
_SQLITE_STORE = """
INSERT INTO events (conversation_id, seq, id, kind, sender_user_id, sender_device_id,
                    ciphertext, payload, created_at)
VALUES (:cid, :seq, :message_id, 'message', :user, :device, :ciphertext, :payload, :now)
"""
_STAMP = UTCDateTime()
_JSON = JSON()

# PostgreSQL, a send alone in its batch (the usual case at quiet times): the same steps as
# `_BATCH_IN_ONE`'s with scalar parameters. PostgreSQL plans it in 0.9 ms, the batch
# statement in 5.3 ms (EXPLAIN ANALYZE here), and a lone send through the batch statement
# took 6 ms more of the server's time in the bench's 1 msg/s phase. It runs on the driver's
# connection (`_lone_on_postgresql`), on its own when no transaction is open: one round trip
# instead of three (BEGIN, the statement, COMMIT) and none of SQLAlchemy's work, 0.8-0.9 ms of
# a quiet send here. So that a claim without a stored message is never committed on its own,
# `undone` then divides by zero, which fails the whole statement.
_LONE_IN_ONE = text(
    f"""
WITH ok AS ({_PLAIN_CASE}),
claim AS (
  INSERT INTO transactions (user_id, txn_id, kind, result, created_at)
  SELECT CAST(:user AS VARCHAR), CAST(:txn AS VARCHAR), 'message', CAST(:result AS JSON),
         CAST(:now AS TIMESTAMP WITH TIME ZONE)
  FROM ok
  ON CONFLICT DO NOTHING
  RETURNING user_id
),
charge AS (
  UPDATE users SET storage_used = users.storage_used + CAST(:size AS BIGINT)
  FROM claim, tenants
  WHERE users.id = claim.user_id AND tenants.id = users.tenant_id
    AND users.storage_used + CAST(:size AS BIGINT)
        <= COALESCE(users.quota_bytes, tenants.user_quota_bytes)
  RETURNING users.id
),
numbered AS (
  UPDATE conversations SET last_seq = conversations.last_seq + 1
  FROM charge
  WHERE conversations.id = :cid
  RETURNING conversations.last_seq, conversations.membership_seq
),
stored AS (
  INSERT INTO events (conversation_id, seq, id, kind, sender_user_id, sender_device_id,
                      ciphertext, payload, created_at)
  SELECT CAST(:cid AS VARCHAR), numbered.last_seq, CAST(:message_id AS VARCHAR), 'message',
         CAST(:user AS VARCHAR), CAST(:device AS VARCHAR), CAST(:ciphertext AS BYTEA),
         CAST('{{}}' AS JSON), CAST(:now AS TIMESTAMP WITH TIME ZONE)
  FROM numbered JOIN ok ON numbered.membership_seq = ok.mseq
  RETURNING seq
)
SELECT (SELECT count(*) FROM claim) AS claimed, (SELECT seq FROM stored) AS seq,
       CASE WHEN EXISTS (SELECT 1 FROM claim) AND NOT EXISTS (SELECT 1 FROM stored)
            THEN 1 / (SELECT count(*) FROM stored) END AS undone
"""  # noqa: S608 - made of this module's constants; every value is a bound parameter
).bindparams(
    bindparam("issued_after", type_=UTCDateTime()),
    bindparam("now", type_=UTCDateTime()),
    bindparam("ciphertext", type_=LargeBinary()),
)


# PostgreSQL: the batch's sends come in as arrays (`input`, in the batch's order); each step
# runs only on what the one before returned: every send passes the read (`go`) → claim the
# transaction ids → lock the senders' rows in one order (two nodes' batches charging some of
# the same users would otherwise deadlock) → charge each sender's bytes → take the numbers
# under the conversation's row lock → store. A membership change met under that lock stores
# nothing (`stored` empty); so does a sender whose charge no longer fits.
_BATCH_IN_ONE = text(
    """
WITH input AS (
  SELECT * FROM unnest(
    CAST(:users AS VARCHAR[]), CAST(:txns AS VARCHAR[]), CAST(:devices AS VARCHAR[]),
    CAST(:sizes AS BIGINT[]), CAST(:seens AS BIGINT[]), CAST(:sessions AS VARCHAR[]),
    CAST(:message_ids AS VARCHAR[]), CAST(:ciphertexts AS BYTEA[]),
    CAST(:results AS VARCHAR[]), CAST(:nows AS TIMESTAMP WITH TIME ZONE[])
  ) WITH ORDINALITY AS i(user_id, txn_id, device_id, size, seen, session_id, message_id,
                         ciphertext, result, sent_at, n)
),
totals AS (
  SELECT user_id, CAST(sum(size) AS BIGINT) AS size FROM input GROUP BY user_id
),
ok AS (
  SELECT c.membership_seq AS mseq
  FROM input i
  JOIN totals s ON s.user_id = i.user_id
  JOIN conversations c ON c.id = :cid AND NOT c.cross_tenant
  JOIN memberships m ON m.conversation_id = c.id AND m.user_id = i.user_id AND m.active
  JOIN devices d ON d.id = i.device_id AND d.user_id = i.user_id AND d.removed_at IS NULL
  JOIN users u ON u.id = i.user_id AND NOT u.disabled
  JOIN tenants t ON t.id = u.tenant_id AND NOT t.disabled
  WHERE (i.seen IS NULL OR c.membership_seq <= i.seen)
    AND u.storage_used + s.size <= COALESCE(u.quota_bytes, t.user_quota_bytes)
    AND (i.session_id IS NULL OR EXISTS (
      SELECT 1 FROM sessions x
      WHERE x.id = i.session_id AND x.user_id = u.id AND x.revoked_at IS NULL
        AND (u.kind = 'bot' OR x.created_at > :issued_after)))
),
go AS (
  SELECT max(mseq) AS mseq FROM ok HAVING count(*) = CAST(:count AS INTEGER)
),
claim AS (
  INSERT INTO transactions (user_id, txn_id, kind, result, created_at)
  SELECT i.user_id, i.txn_id, 'message', CAST(i.result AS JSON), i.sent_at
  FROM input i CROSS JOIN go
  ORDER BY i.user_id, i.txn_id
  ON CONFLICT DO NOTHING
  RETURNING user_id
),
locked AS MATERIALIZED (
  SELECT users.id FROM users
  WHERE users.id IN (SELECT user_id FROM totals)
    AND (SELECT count(*) FROM claim) = CAST(:count AS INTEGER)
  ORDER BY users.id
  FOR NO KEY UPDATE
),
charge AS (
  UPDATE users SET storage_used = users.storage_used + totals.size
  FROM totals, locked, tenants
  WHERE users.id = totals.user_id AND locked.id = users.id AND tenants.id = users.tenant_id
    AND users.storage_used + totals.size
        <= COALESCE(users.quota_bytes, tenants.user_quota_bytes)
  RETURNING users.id
),
numbered AS (
  UPDATE conversations SET last_seq = conversations.last_seq + CAST(:count AS INTEGER)
  WHERE conversations.id = :cid
    AND (SELECT count(*) FROM charge) = (SELECT count(*) FROM totals)
  RETURNING conversations.last_seq, conversations.membership_seq
),
stored AS (
  INSERT INTO events (conversation_id, seq, id, kind, sender_user_id, sender_device_id,
                      ciphertext, payload, created_at)
  SELECT CAST(:cid AS VARCHAR), numbered.last_seq - CAST(:count AS INTEGER) + i.n,
         i.message_id, 'message', i.user_id, i.device_id, i.ciphertext, CAST('{}' AS JSON),
         i.sent_at
  FROM numbered JOIN go ON numbered.membership_seq = go.mseq CROSS JOIN input i
  RETURNING seq
)
SELECT (SELECT count(*) FROM claim) AS claimed, (SELECT max(last_seq) FROM numbered) AS last,
       (SELECT count(*) FROM stored) AS stored
"""
).bindparams(bindparam("issued_after", type_=UTCDateTime()))


async def store_usual_sends(
    conn: AsyncConnection,
    conversation_id: str,
    sends: Sequence[PendingSend],
    *,
    session_ids: Sequence[str | None] | None = None,
    sessions_issued_after: dt.datetime | None = None,
) -> list[SendOutcome] | None:
    """Store the batch if every send is the usual case (see the module); one outcome per
    send, in order. None, having written nothing, when it is not. Each send's session in
    `session_ids` (None: not checked) must still be able to send (`sessions_issued_after`:
    the oldest creation time of a session that has not expired). Transaction ids must be
    distinct in a batch, as for `append_messages`."""
    sessions: list[str | None] = list(session_ids or [None] * len(sends))
    if len(sessions) != len(sends):
        raise ValueError("one session id (or None) is needed for each send")
    if not sends:
        return None
    if any(s.refusal is not None or s.attachment_ids for s in sends):
        return None
    if sessions_issued_after is None and any(s is not None for s in sessions):
        return None
    if conn.dialect.name == "postgresql":
        first = await _all_in_one(conn, conversation_id, sends, sessions, sessions_issued_after)
    elif len(sends) == 1:
        first = await _read_then_write(
            conn, conversation_id, sends[0], sessions[0], sessions_issued_after
        )
    else:
        return None  # SQLite: no round trips to save on a larger batch
    if first is None:
        return None
    outcomes = []
    for n, send in enumerate(sends):
        event = message_of(conversation_id, first + n, send)
        result = {**transaction_result(conversation_id, send), "seq": first + n}
        outcomes.append(SendOutcome(result, event=event))
    return outcomes


async def _all_in_one(
    conn: AsyncConnection,
    conversation_id: str,
    sends: Sequence[PendingSend],
    sessions: list[str | None],
    issued_after: dt.datetime | None,
) -> int | None:
    """PostgreSQL: the batch's first number, or None when nothing was written."""
    results = [json.dumps(transaction_result(conversation_id, s)) for s in sends]
    if len(sends) == 1:
        (send,) = sends
        params = {
            **_plain_params(conversation_id, send, sessions[0], issued_after),
            "txn": send.txn_id,
            "result": results[0],
            "now": send.now,
            "message_id": send.message_id,
            "ciphertext": send.ciphertext,
        }
        claimed, seq = await _lone_on_postgresql(conn, params)
        stored, first = (1, seq) if seq is not None else (0, None)
    else:
        params = {
            "cid": conversation_id,
            "count": len(sends),
            "issued_after": issued_after,
            "users": [s.user_id for s in sends],
            "txns": [s.txn_id for s in sends],
            "devices": [s.device_id for s in sends],
            "sizes": [len(s.ciphertext) for s in sends],
            "seens": [s.membership_seen for s in sends],
            "sessions": sessions,
            "message_ids": [s.message_id for s in sends],
            "ciphertexts": [s.ciphertext for s in sends],
            "results": results,
            "nows": [_utc(s.now) for s in sends],
        }
        claimed, last, stored = (await conn.execute(_BATCH_IN_ONE, params)).one()
        first = None if last is None else int(last) - len(sends) + 1
    if stored == len(sends) and first is not None:
        return int(first)
    if claimed:
        raise UsualSendsUndone("a step after the claim of the transaction ids did not hold")
    return None


async def _lone_on_postgresql(conn: AsyncConnection, params: dict[str, Any]) -> tuple[int, Any]:
    """`_LONE_IN_ONE` on asyncpg's connection (see there): how many were claimed, and the
    number stored (None: none). A driver error, the guard's included, is not answered here:
    nothing of the statement stays, and the general path decides."""
    import asyncpg  # type: ignore[import-untyped]

    raw = (await conn.get_raw_connection()).driver_connection
    if not isinstance(raw, asyncpg.Connection):
        return 0, None  # another driver (`store.engine` picks asyncpg): the general path
    sql, names = _compiled_for(conn.dialect)
    stamp, _ = _binds_for(conn.dialect)
    typed = {**params, "issued_after": stamp(params["issued_after"]), "now": stamp(params["now"])}
    try:
        row = await raw.fetchrow(sql, *(typed[name] for name in names))
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        raise UsualSendsUndone(f"PostgreSQL refused the send: {type(exc).__name__}") from exc
    assert row is not None
    return int(row["claimed"]), row["seq"]


_COMPILED: dict[type[Dialect], tuple[str, list[str]]] = {}
_BINDS: dict[type[Dialect], tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {}


def _compiled_for(dialect: Dialect) -> tuple[str, list[str]]:
    """`_LONE_IN_ONE` as SQLAlchemy would send it on this dialect, and its parameters' order."""
    found = _COMPILED.get(type(dialect))
    if found is None:
        compiled = _LONE_IN_ONE.compile(dialect=dialect)
        found = _COMPILED[type(dialect)] = (compiled.string, list(compiled.positiontup or ()))
    return found


def _binds_for(dialect: Dialect) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """How this dialect binds a `UTCDateTime` and a JSON value, for statements run on the
    driver's connection: as the dialect's own types bind them (the generic ones would leave a
    datetime to sqlite3's adapter, which writes another text than SQLAlchemy compares with)."""
    found = _BINDS.get(type(dialect))
    if found is None:
        stamp = _STAMP.dialect_impl(dialect).bind_processor(dialect)
        as_json = _JSON.dialect_impl(dialect).bind_processor(dialect)
        assert stamp is not None and as_json is not None
        found = _BINDS[type(dialect)] = (stamp, as_json)
    return found


def _plain_params(
    conversation_id: str,
    send: PendingSend,
    session_id: str | None,
    issued_after: dt.datetime | None,
) -> dict[str, Any]:
    """The parameters of `_PLAIN_CASE`, the one send's read (in both lone paths)."""
    return {
        "cid": conversation_id,
        "user": send.user_id,
        "device": send.device_id,
        "seen": send.membership_seen,
        "size": len(send.ciphertext),
        "session": session_id,
        "issued_after": issued_after,
    }


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the store")  # as UTCDateTime refuses it
    return moment.astimezone(dt.UTC)


async def _read_then_write(
    conn: AsyncConnection,
    conversation_id: str,
    send: PendingSend,
    session_id: str | None,
    issued_after: dt.datetime | None,
) -> int | None:
    """SQLite: the read, then the writes, on the driver's connection (`_SQLITE_CLAIM` …). The
    first write takes the database's write lock (or fails, as on the general path, if another
    process wrote since the read), so what the read saw still holds for the writes. A driver
    error is not answered here: the writes are undone and the general path decides."""
    raw = (await conn.get_raw_connection()).driver_connection
    if not isinstance(raw, sqlite3.Connection):
        return None  # not the inline driver (`store.engine` always picks it)
    stamp, as_json = _binds_for(conn.dialect)
    params = _plain_params(conversation_id, send, session_id, issued_after)
    params["issued_after"] = stamp(issued_after)
    size = params["size"]
    try:
        plain = await run_raw(raw, _PLAIN_CASE, params)
        if not plain:
            return None
        claim = {
            "user": send.user_id,
            "txn": send.txn_id,
            "result": as_json(transaction_result(conversation_id, send)),
            "now": stamp(send.now),
        }
        if not await run_raw(raw, _SQLITE_CLAIM, claim):
            return None  # used before: the general path answers with the first result
        if not await run_raw(raw, _SQLITE_CHARGE, {"user": send.user_id, "size": size}):
            raise UsualSendsUndone("the quota changed after the read")
        numbered = await run_raw(raw, _SQLITE_NUMBER, {"cid": conversation_id})
        if not numbered:
            raise UsualSendsUndone("the conversation went after the read")
        [(seq, membership_seq)] = numbered
        if int(membership_seq or 0) != int(plain[0][0]):
            raise UsualSendsUndone("the members changed after the read")
        stored = {
            "cid": conversation_id,
            "seq": seq,
            "message_id": send.message_id,
            "user": send.user_id,
            "device": send.device_id,
            "ciphertext": send.ciphertext,
            "payload": as_json({}),
            "now": stamp(send.now),
        }
        await run_raw(raw, _SQLITE_STORE, stored)
    except sqlite3.Error as exc:
        raise UsualSendsUndone(f"SQLite refused a write: {exc}") from exc
    return int(seq)
