"""A lone send, in as few statements as the database allows.

At a quiet moment each send is a batch of one (`server.sending`), and the batch's general
path (`sends.append_messages`) costs up to eight round trips to PostgreSQL: the session check,
the transaction id's claim, the sender check, the quota charge, the sequence number, the
insert, begin and commit. Here the usual send (a member's own device, no attachments, no
tenant pair to check, quota to spare, a new transaction id) is one statement on PostgreSQL
(data-modifying CTEs chained by what each returns) and one read plus the four writes on
SQLite, which has no such CTEs but no round trips either.

This path answers only the send that would be stored. Anything else is handed back (None):
the general path then gives the refusal, the duplicate's stored answer or the tenant-pair
check, so every error keeps one source. Nothing is written when None is returned; when a
write was made and a later step did not hold (a membership change or a charge that raced
in), `LoneSendUndone` asks the caller to roll the transaction back and take the general path.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import LargeBinary, bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from messenger.store import repo
from messenger.store.models import UTCDateTime
from messenger.store.sends import (
    _CHARGE_ONE,
    PendingSend,
    SendOutcome,
    _claims,
    claim_of,
    insert_messages,
    message_of,
    transaction_result,
)


class LoneSendUndone(Exception):
    """A write of the lone path was made and a later step did not hold: roll back and send
    through the general path."""


# The usual case, as one read: the sender is an active member sending from an own device,
# the conversation needs no tenant-pair check, the sender has seen its latest membership
# change (or does not say), the quota has room, and the session (when one is given) may
# still send: not ended, not expired (a bot's does not expire), user and tenant enabled.
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

_TYPES = (
    bindparam("issued_after", type_=UTCDateTime()),
    bindparam("now", type_=UTCDateTime()),
    bindparam("ciphertext", type_=LargeBinary()),
)

_PLAIN = text(_PLAIN_CASE).bindparams(bindparam("issued_after", type_=UTCDateTime()))

# PostgreSQL: each step runs only on what the one before returned (claim → charge → number →
# store); the read of `ok` and the writes share one statement and one round trip. A new
# membership change met under the conversation's row lock stores nothing (`stored` empty).
_ALL_IN_ONE = text(
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
SELECT (SELECT count(*) FROM claim) AS claimed, (SELECT seq FROM stored) AS seq
"""  # noqa: S608 - made of this module's constants; every value is a bound parameter
).bindparams(*_TYPES)


async def store_lone_send(
    conn: AsyncConnection,
    conversation_id: str,
    send: PendingSend,
    *,
    session_id: str | None = None,
    sessions_issued_after: dt.datetime | None = None,
) -> SendOutcome | None:
    """Store the send if it is the usual case (see the module); None, having written
    nothing, when it is not. With `session_id`, that session must still be able to send
    (`sessions_issued_after`: the oldest creation time of a session that has not expired)."""
    if send.refusal is not None or send.attachment_ids:
        return None
    if session_id is not None and sessions_issued_after is None:
        return None
    params: dict[str, Any] = {
        "cid": conversation_id,
        "user": send.user_id,
        "device": send.device_id,
        "seen": send.membership_seen,
        "size": len(send.ciphertext),
        "session": session_id,
        "issued_after": sessions_issued_after,
    }
    if conn.dialect.name == "postgresql":
        seq = await _all_in_one(conn, conversation_id, send, params)
    else:
        seq = await _read_then_write(conn, conversation_id, send, params)
    if seq is None:
        return None
    event = message_of(conversation_id, seq, send)
    return SendOutcome({**transaction_result(conversation_id, send), "seq": seq}, event=event)


async def _all_in_one(
    conn: AsyncConnection, conversation_id: str, send: PendingSend, params: dict[str, Any]
) -> int | None:
    row = (
        await conn.execute(
            _ALL_IN_ONE,
            {
                **params,
                "txn": send.txn_id,
                "result": json.dumps(transaction_result(conversation_id, send)),
                "now": send.now,
                "message_id": send.message_id,
                "ciphertext": send.ciphertext,
            },
        )
    ).one()
    claimed, seq = row
    if seq is not None:
        return int(seq)
    if claimed:
        raise LoneSendUndone("the send changed its mind after claiming its transaction id")
    return None


async def _read_then_write(
    conn: AsyncConnection, conversation_id: str, send: PendingSend, params: dict[str, Any]
) -> int | None:
    """SQLite: the read, then the writes. The first write takes the database's write lock
    (or fails, as on the general path, if another process wrote since the read), so what
    the read saw still holds for the writes."""
    plain = (await conn.execute(_PLAIN, params)).first()
    if plain is None:
        return None
    if not (await conn.execute(_claims(conn), [claim_of(conversation_id, send)])).first():
        return None  # used before: the general path answers with the first result
    size = len(send.ciphertext)
    charged = await conn.execute(_CHARGE_ONE, {"charged_user": send.user_id, "charge": size})
    if charged.first() is None:
        raise LoneSendUndone("the quota changed after the read")
    seq, membership_seq = await repo.take_seq(conn, conversation_id, 1)
    if membership_seq != int(plain.mseq):
        raise LoneSendUndone("the members changed after the read")
    await insert_messages(conn, [message_of(conversation_id, seq, send)])
    return seq
