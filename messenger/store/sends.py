"""Messages appended in batches: one transaction, one lock and one sequence grant per batch.

Concurrent sends to one conversation would otherwise queue one by one behind the row lock
that keeps sequence numbers gap-free. `append_messages` takes a batch of sends (to one
conversation), checks each as a single send is checked, in the same order (an earlier use
of the transaction id, membership, device, the request's own input, quota, attachments, the
membership change the sender saw), and stores those that pass with consecutive numbers.
A send that fails gets its own error; the others in its batch are stored. Every check reads
the whole batch with one statement (SQLAlchemy Core on a plain connection: no ORM session or
objects on this path).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Insert, Table, and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from messenger.store import repo
from messenger.store.errors import MembershipChanged, NotFound, QuotaExceeded
from messenger.store.models import (
    Attachment,
    Conversation,
    Device,
    Event,
    Membership,
    Tenant,
    Transaction,
    User,
)

_TXNS: Table = Transaction.__table__  # type: ignore[assignment]
_EVENTS: Table = Event.__table__  # type: ignore[assignment]


@dataclass
class PendingSend:
    """One send request, as the batch needs it. `refusal` is an error in the request's own
    input (its ciphertext), raised at the point a single send would have found it."""

    user_id: str
    txn_id: str
    device_id: str
    ciphertext: bytes
    attachment_ids: list[str]
    membership_seen: int | None
    message_id: str
    now: dt.datetime
    refusal: Exception | None = None


@dataclass
class StoredMessage:
    """A message's row as stored (the columns `wire.conversation_event` reads)."""

    conversation_id: str
    seq: int
    id: str
    sender_user_id: str | None
    sender_device_id: str | None
    ciphertext: bytes | None
    created_at: dt.datetime
    payload: dict[str, Any] = field(default_factory=dict)
    kind: str = "message"


@dataclass
class SendOutcome:
    """The answer to one send: its result (with `seq`), or an error.

    `event` is set when this batch stored the message (publish it); a duplicate has none."""

    result: dict[str, Any] | None = None
    duplicate: bool = False
    event: StoredMessage | None = None
    error: Exception | None = None


def transaction_result(conversation_id: str, send: PendingSend) -> dict[str, Any]:
    """A send's answer as its transaction id stores it (the number is read from the message)."""
    return {
        "message_id": send.message_id,
        "conversation_id": conversation_id,
        "ts": send.now.isoformat(),
    }


def message_of(conversation_id: str, seq: int, send: PendingSend) -> StoredMessage:
    """The row a send stores under its number."""
    return StoredMessage(
        conversation_id=conversation_id,
        seq=seq,
        id=send.message_id,
        sender_user_id=send.user_id,
        sender_device_id=send.device_id,
        ciphertext=send.ciphertext,
        created_at=send.now,
        payload={"attachment_ids": send.attachment_ids} if send.attachment_ids else {},
    )


async def insert_messages(conn: AsyncConnection, messages: Sequence[StoredMessage]) -> None:
    await conn.execute(
        _EVENTS.insert(),
        [
            {
                "conversation_id": m.conversation_id,
                "seq": m.seq,
                "id": m.id,
                "kind": m.kind,
                "sender_user_id": m.sender_user_id,
                "sender_device_id": m.sender_device_id,
                "ciphertext": m.ciphertext,
                "payload": m.payload,
                "created_at": m.created_at,
            }
            for m in messages
        ],
    )


def claim_of(conversation_id: str, send: PendingSend) -> dict[str, Any]:
    """The transaction id's row a send claims (see `_claims`)."""
    return {
        "user_id": send.user_id,
        "txn_id": send.txn_id,
        "kind": "message",
        "result": transaction_result(conversation_id, send),
        "created_at": send.now,
    }


def _claims(conn: AsyncConnection) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING of transaction ids, for this connection's dialect.

    Run with a list of rows (not `.values(rows)`): a multi-row VALUES statement has no cache
    key, so SQLAlchemy would build and compile it again for every batch."""
    return _CLAIMS_PG if conn.dialect.name == "postgresql" else _CLAIMS_SQLITE


_CLAIMS_PG = (
    postgresql.insert(_TXNS).on_conflict_do_nothing().returning(_TXNS.c.user_id, _TXNS.c.txn_id)
)
_CLAIMS_SQLITE = (
    sqlite.insert(_TXNS).on_conflict_do_nothing().returning(_TXNS.c.user_id, _TXNS.c.txn_id)
)


# Built once: the statements of every batch (SQLAlchemy then only binds and runs them).
_EARLIER = select(
    Transaction.user_id, Transaction.txn_id, Transaction.kind, Transaction.result
).where(
    Transaction.user_id.in_(bindparam("users", expanding=True)),
    Transaction.txn_id.in_(bindparam("txns", expanding=True)),
)
_SEQS_OF = select(Event.id, Event.seq).where(Event.id.in_(bindparam("ids", expanding=True)))
_SENDERS = (
    select(
        Conversation.cross_tenant,
        Conversation.tenant_id,
        Conversation.membership_seq,
        Device.id.label("device_id"),
        Device.user_id.label("owner"),
        Membership.active,
    )
    .select_from(Conversation)
    .outerjoin(
        Device,
        and_(Device.id.in_(bindparam("devices", expanding=True)), Device.removed_at.is_(None)),
    )
    .outerjoin(
        Membership,
        and_(Membership.conversation_id == Conversation.id, Membership.user_id == Device.user_id),
    )
    .where(Conversation.id == bindparam("cid"))
)
_MEMBERS = select(Membership.user_id, Membership.active).where(
    Membership.conversation_id == bindparam("cid"),
    Membership.user_id.in_(bindparam("users", expanding=True)),
)
_LOCK_USERS = (
    select(User.id)
    .where(User.id.in_(bindparam("users", expanding=True)))
    .order_by(User.id)
    .with_for_update(key_share=True)
)


async def earlier_results(
    conn: AsyncConnection, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored results of earlier uses of these (user id, transaction id) pairs.

    A message's transaction is recorded without its number, which is read from the message."""
    if not keys:
        return {}
    wanted = set(keys)
    rows = await conn.execute(
        _EARLIER, {"users": sorted({u for u, _ in keys}), "txns": sorted({t for _, t in keys})}
    )
    found: dict[tuple[str, str], dict[str, Any]] = {}
    unnumbered: dict[str, tuple[str, str]] = {}
    for user_id, txn_id, kind, result in rows:
        key = (user_id, txn_id)
        if key not in wanted:
            continue
        found[key] = dict(result)
        if kind == "message" and "seq" not in result:
            unnumbered[result["message_id"]] = key
    if unnumbered:
        seqs = await conn.execute(_SEQS_OF, {"ids": list(unnumbered)})
        numbered: dict[str, int] = {row[0]: row[1] for row in seqs}
        for message_id, key in unnumbered.items():
            found[key]["seq"] = numbered.get(message_id)
    return found


_TENANT_QUOTA = select(Tenant.user_quota_bytes).where(Tenant.id == User.tenant_id).scalar_subquery()


_CHARGE_ONE = (
    update(User)
    .where(
        User.id == bindparam("charged_user"),
        User.storage_used + bindparam("charge") <= func.coalesce(User.quota_bytes, _TENANT_QUOTA),
    )
    .values(storage_used=User.storage_used + bindparam("charge"))
    .returning(User.id)
)


async def _charge(conn: AsyncConnection, sizes: dict[str, int]) -> set[str]:
    """Add each user's message bytes to their storage where the quota allows, in one
    statement (`repo.charge_user` for many users); returns the users charged."""
    if len(sizes) == 1:  # the usual batch: one sender (a statement built once)
        ((user, size_of_one),) = sizes.items()
        one = await conn.execute(_CHARGE_ONE, {"charged_user": user, "charge": size_of_one})
        return {row[0] for row in one}
    size = case(sizes, value=User.id, else_=0)
    charged = await conn.execute(
        update(User)
        .where(
            User.id.in_(sizes),
            User.storage_used + size <= func.coalesce(User.quota_bytes, _TENANT_QUOTA),
        )
        .values(storage_used=User.storage_used + size)
        .returning(User.id)
    )
    return {row[0] for row in charged}


async def _refund(conn: AsyncConnection, user_id: str, size: int) -> None:
    await conn.execute(
        update(User).where(User.id == user_id).values(storage_used=User.storage_used - size)
    )


async def _over_quota(conn: AsyncConnection, user_id: str, size: int) -> QuotaExceeded:
    row = (
        await conn.execute(
            select(User.quota_bytes, Tenant.user_quota_bytes)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(User.id == user_id)
        )
    ).first()
    limit = 0 if row is None else (row[0] if row[0] is not None else row[1])
    return QuotaExceeded(
        f"this message of {size} bytes exceeds your storage quota of {limit} bytes"
    )


class _Batch:
    """The sends of one batch, each either still going or answered."""

    def __init__(self, conversation_id: str, sends: Sequence[PendingSend]) -> None:
        self.conversation_id = conversation_id
        self.sends = list(sends)
        self.outcomes = [SendOutcome() for _ in sends]
        self.charged: set[int] = set()
        self.recorded: set[int] = set()

    def going(self) -> list[int]:
        return [i for i, o in enumerate(self.outcomes) if o.error is None and o.result is None]

    def fail(self, i: int, error: Exception) -> None:
        self.outcomes[i].error = error

    def result(self, i: int) -> dict[str, Any]:
        return transaction_result(self.conversation_id, self.sends[i])

    async def undo(self, conn: AsyncConnection, i: int) -> None:
        """Give back the quota a send that failed late took (its claim goes at the end)."""
        send = self.sends[i]
        if i in self.charged:
            await _refund(conn, send.user_id, len(send.ciphertext))
            self.charged.discard(i)


async def append_messages(
    conn: AsyncConnection, conversation_id: str, sends: Sequence[PendingSend]
) -> list[SendOutcome]:
    """Store a batch of sends to one conversation in the connection's transaction (the caller
    commits); one outcome per send, in order. Transaction ids must be distinct in a batch.

    The transaction ids are recorded first: one statement both finds earlier uses (answered
    as duplicates before any other check, as a single send is) and claims the new ones; the
    claims of sends that fail a later check are withdrawn before the commit."""
    batch = _Batch(conversation_id, sends)
    await _record(conn, batch)
    if batch.going():
        membership_seq = await _check_senders(conn, batch)
        for i in batch.going():
            refusal = sends[i].refusal
            if refusal is not None:
                batch.fail(i, refusal)
        await _charge_batch(conn, batch)
        await _check_attachments(conn, batch)
        await _refuse_unseen(conn, batch, membership_seq)
        going = batch.going()
        if going:
            await _number_and_store(conn, batch, going, membership_seq)
    await _withdraw_failed(conn, batch)
    return batch.outcomes


async def _charge_batch(conn: AsyncConnection, batch: _Batch) -> None:
    """Charge every going send's bytes: senders with one send in the batch in one statement,
    a sender with several one send at a time, in order (each fits or not on its own)."""
    by_user: dict[str, list[int]] = {}
    for i in batch.going():
        by_user.setdefault(batch.sends[i].user_id, []).append(i)
    if len(by_user) > 1 and conn.dialect.name == "postgresql":
        # Lock the senders' rows in one order first: batches of two conversations charging
        # some of the same users would otherwise lock them in different orders (deadlock).
        # FOR NO KEY UPDATE, as the charge's UPDATE takes: the transaction ids' foreign keys
        # hold KEY SHARE locks on the same rows, which FOR UPDATE would wait for.
        await conn.execute(_LOCK_USERS, {"users": sorted(by_user)})
    single = {user: i for user, (i,) in ((u, s) for u, s in by_user.items() if len(s) == 1)}
    rounds = [single] if single else []
    for user, sends in by_user.items():
        if len(sends) > 1:
            rounds.extend({user: i} for i in sends)
    for round_ in rounds:
        sizes = {user: len(batch.sends[i].ciphertext) for user, i in round_.items()}
        charged = await _charge(conn, sizes)
        for user, i in round_.items():
            if user in charged:
                batch.charged.add(i)
            else:
                batch.fail(i, await _over_quota(conn, user, sizes[user]))


async def _check_senders(conn: AsyncConnection, batch: _Batch) -> int:
    """Refuse senders who are not active members (as `repo.conversation_for_member`), then
    sends from a device that is not the sender's (as `repo.active_device`); one statement
    reads the conversation, the devices and their owners' memberships. Returns the
    conversation's latest membership change as read (not locked) now."""
    going = batch.going()
    devices = sorted({batch.sends[i].device_id for i in going})
    rows = (await conn.execute(_SENDERS, {"devices": devices, "cid": batch.conversation_id})).all()
    if not rows:
        for i in going:
            batch.fail(i, NotFound("no such conversation"))
        return 0
    owners = {row.device_id: (row.owner, bool(row.active)) for row in rows if row.device_id}
    unknown = {
        batch.sends[i].user_id
        for i in going
        if owners.get(batch.sends[i].device_id, ("", False))[0] != batch.sends[i].user_id
    }
    active = {owner for owner, is_active in owners.values() if is_active}
    if unknown:  # a device not the sender's: is the sender a member at least? (rare)
        found = await conn.execute(
            _MEMBERS, {"users": sorted(unknown), "cid": batch.conversation_id}
        )
        active |= {row.user_id for row in found if row.active}
    for i in going:
        send = batch.sends[i]
        if send.user_id not in active:
            batch.fail(i, NotFound("no such conversation"))
        elif owners.get(send.device_id, ("", False))[0] != send.user_id:
            batch.fail(i, NotFound("no such device"))
    cross_tenant, tenant_id, membership_seq = rows[0][:3]
    if cross_tenant and batch.going():
        try:
            async with AsyncSession(bind=conn) as db:  # joins the batch's transaction
                tenants = await repo.member_tenants(db, batch.conversation_id) | {tenant_id}
                await repo.check_tenants_allowed(db, tenants)
        except Exception as exc:
            for i in batch.going():
                batch.fail(i, exc)
    return int(membership_seq or 0)


async def _check_attachments(conn: AsyncConnection, batch: _Batch) -> None:
    for i in batch.going():
        ids = batch.sends[i].attachment_ids
        if not ids:
            continue
        found = set(
            await conn.scalars(
                select(Attachment.id).where(
                    Attachment.id.in_(ids), Attachment.conversation_id == batch.conversation_id
                )
            )
        )
        if found != set(ids):
            await batch.undo(conn, i)
            batch.fail(i, NotFound("an attachment is unknown or belongs to another conversation"))


async def _refuse_unseen(conn: AsyncConnection, batch: _Batch, membership_seq: int) -> None:
    for i in batch.going():
        try:
            repo.refuse_unseen_membership(membership_seq, batch.sends[i].membership_seen)
        except MembershipChanged as exc:
            await batch.undo(conn, i)
            batch.fail(i, exc)


async def _record(conn: AsyncConnection, batch: _Batch) -> None:
    """Claim the transaction ids; one recorded before (or by another request meanwhile, the
    race a single send met as an IntegrityError) answers with its result. Rows go in key
    order, so concurrent batches claim (and lock) them in the same order."""
    going = sorted(batch.going(), key=lambda i: (batch.sends[i].user_id, batch.sends[i].txn_id))
    if not going:
        return
    rows = [claim_of(batch.conversation_id, batch.sends[i]) for i in going]
    won = {(r[0], r[1]) for r in await conn.execute(_claims(conn), rows)}
    lost = [i for i in going if (batch.sends[i].user_id, batch.sends[i].txn_id) not in won]
    batch.recorded.update(i for i in going if i not in lost)
    if not lost:
        return
    earlier = await earlier_results(
        conn, [(batch.sends[i].user_id, batch.sends[i].txn_id) for i in lost]
    )
    for i in lost:
        found = earlier.get((batch.sends[i].user_id, batch.sends[i].txn_id))
        if found is None:  # recorded and gone again (purged): refuse like the race did
            batch.fail(i, NotFound("this transaction id was used by a request that failed"))
        else:
            batch.outcomes[i] = SendOutcome(found, duplicate=True)


async def _withdraw_failed(conn: AsyncConnection, batch: _Batch) -> None:
    """Delete the claims of sends that failed after claiming, as if never made (rare)."""
    failed = [i for i in sorted(batch.recorded) if batch.outcomes[i].error is not None]
    if failed:
        await conn.execute(
            delete(Transaction).where(
                or_(
                    *(
                        and_(
                            Transaction.user_id == batch.sends[i].user_id,
                            Transaction.txn_id == batch.sends[i].txn_id,
                        )
                        for i in failed
                    )
                )
            )
        )


async def _number_and_store(
    conn: AsyncConnection, batch: _Batch, going: list[int], membership_seq: int
) -> None:
    """Take consecutive numbers for the batch (locking the conversation's row) and store it."""
    last, current = await repo.take_seq(conn, batch.conversation_id, len(going))
    if current != membership_seq:
        # The members changed since they were read: refuse the sends that did not see it and
        # give back their numbers (the row is locked now, so nothing took any after them).
        await _refuse_unseen(conn, batch, current)
        still = batch.going()
        if len(still) != len(going):
            last -= len(going) - len(still)
            await conn.execute(
                update(Conversation)
                .where(Conversation.id == batch.conversation_id)
                .values(last_seq=last)
            )
            going = still
    if not going:
        return
    first = last - len(going) + 1
    events = [
        message_of(batch.conversation_id, first + n, batch.sends[i]) for n, i in enumerate(going)
    ]
    await insert_messages(conn, events)
    for i, event in zip(going, events, strict=True):
        if batch.sends[i].attachment_ids:
            await conn.execute(
                update(Attachment)
                .where(
                    Attachment.id.in_(batch.sends[i].attachment_ids),
                    Attachment.message_seq.is_(None),
                )
                .values(message_seq=event.seq)
            )
        batch.outcomes[i] = SendOutcome({**batch.result(i), "seq": event.seq}, event=event)
