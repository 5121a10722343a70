"""The messenger's rules over the tables: tenancy, membership, sequences, quota, retention.

Every function takes an open `AsyncSession` and leaves committing to the caller, so one request
is one transaction. Functions raise `messenger.store.errors` classes, never HTTP types; both the
server and the admin CLI use them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import secrets
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from sqlalchemy import and_, bindparam, case, delete, func, or_, select, update
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from messenger.sizes import human_size
from messenger.store.errors import (
    Conflict,
    CrossTenant,
    Forbidden,
    GroupFull,
    InvalidInput,
    MembershipChanged,
    NotFound,
    QuotaExceeded,
)
from messenger.store.models import (
    DEFAULT_USER_QUOTA,
    EXTENSION_STEP,
    MAX_GROUP_MEMBERS,
    Attachment,
    AuditExport,
    AuditRequest,
    AuditSealRow,
    Conversation,
    Device,
    Domain,
    Event,
    Invitation,
    Membership,
    OneTimePrekey,
    Receipt,
    Session,
    Tenant,
    TenantPartner,
    ToDevice,
    Transaction,
    User,
    new_id,
)

ROLES = ("user", "tenant_admin", "instance_admin")
INVITATION_TTL = dt.timedelta(days=14)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, sep, domain = email.partition("@")
    if not sep or not local or "." not in domain or len(email) > 320:
        raise InvalidInput(f"{email!r} is not an e-mail address")
    return email


# -- tenancy ---------------------------------------------------------------------------------


async def create_tenant(db: AsyncSession, name: str, now: dt.datetime) -> Tenant:
    name = name.strip()
    if not name:
        raise InvalidInput("a tenant needs a name")
    if await db.scalar(select(Tenant.id).where(Tenant.name == name)):
        raise Conflict(f"tenant {name!r} exists already")
    tenant = Tenant(id=new_id(), name=name, created_at=now, settings={})
    db.add(tenant)
    await db.flush()
    return tenant


async def tenant_by_ref(db: AsyncSession, ref: str) -> Tenant:
    """A tenant by id or by name (the CLI accepts both)."""
    tenant = await db.scalar(select(Tenant).where(or_(Tenant.id == ref, Tenant.name == ref)))
    if tenant is None:
        raise NotFound(f"no tenant {ref!r}")
    return tenant


async def add_domain(db: AsyncSession, tenant: Tenant, domain: str) -> Domain:
    domain = domain.strip().lower()
    if "." not in domain or "@" in domain:
        raise InvalidInput(f"{domain!r} is not a domain")
    owner = await db.scalar(select(Domain).where(Domain.domain == domain))
    if owner is not None:
        raise Conflict(f"domain {domain} belongs to a tenant already")
    row = Domain(domain=domain, tenant_id=tenant.id)
    db.add(row)
    await db.flush()
    return row


async def tenant_for_email(db: AsyncSession, email: str) -> Tenant:
    domain = normalise_email(email).rpartition("@")[2]
    tenant = await db.scalar(
        select(Tenant).join(Domain, Domain.tenant_id == Tenant.id).where(Domain.domain == domain)
    )
    if tenant is None:
        raise InvalidInput(f"no tenant owns the domain {domain}")
    return tenant


async def set_partner(
    db: AsyncSession, tenant: Tenant, partner: Tenant, allowed: bool, now: dt.datetime
) -> None:
    """Record (or withdraw) this tenant's consent; traffic needs the partner's consent too."""
    if tenant.id == partner.id:
        raise InvalidInput("a tenant is always its own partner")
    existing = await db.get(TenantPartner, (tenant.id, partner.id))
    if allowed and existing is None:
        db.add(TenantPartner(tenant_id=tenant.id, partner_tenant_id=partner.id, created_at=now))
    elif not allowed and existing is not None:
        await db.delete(existing)
    await db.flush()


async def set_retention_bounds(
    db: AsyncSession, tenant: Tenant, min_days: int, max_days: int
) -> Tenant:
    """The instance administrator's bounds; a retention outside them is moved inside."""
    if not 1 <= min_days <= max_days:
        raise InvalidInput("retention bounds need 1 <= minimum <= maximum days")
    tenant.retention_min_days, tenant.retention_max_days = min_days, max_days
    tenant.retention_days = min(max(tenant.retention_days, min_days), max_days)
    await db.flush()
    return tenant


async def partner_tenants(db: AsyncSession, tenant_id: str) -> set[str]:
    """Tenants whose users this tenant's users may reach: both admins have consented."""
    mine = select(TenantPartner.partner_tenant_id).where(TenantPartner.tenant_id == tenant_id)
    theirs = select(TenantPartner.tenant_id).where(TenantPartner.partner_tenant_id == tenant_id)
    rows = await db.scalars(mine.intersect(theirs))
    return set(rows)


async def visible_tenants(db: AsyncSession, tenant_id: str) -> set[str]:
    return {tenant_id} | await partner_tenants(db, tenant_id)


async def check_tenants_allowed(db: AsyncSession, tenant_ids: Iterable[str]) -> None:
    ids = sorted(set(tenant_ids))
    for a, b in itertools.combinations(ids, 2):
        if b not in await partner_tenants(db, a):
            raise CrossTenant("these users belong to tenants that have not allowed each other")


async def set_policy(
    db: AsyncSession,
    tenant: Tenant,
    *,
    retention_days: int | None = None,
    user_quota_bytes: int | None = None,
    storage_extension_steps: int | None = None,
) -> Tenant:
    if retention_days is not None:
        low, high = tenant.retention_min_days, tenant.retention_max_days
        if not low <= retention_days <= high:
            raise InvalidInput(
                f"retention must be between {low} and {high} days "
                "(bounds set by the instance administrator)"
            )
        tenant.retention_days = retention_days
    if user_quota_bytes is not None:
        if user_quota_bytes < 0:
            raise InvalidInput("a quota cannot be negative")
        tenant.user_quota_bytes = user_quota_bytes
    if storage_extension_steps is not None:
        if storage_extension_steps < 0:
            raise InvalidInput("storage extensions cannot be negative")
        tenant.storage_extension_steps = storage_extension_steps
    await db.flush()
    return tenant


# -- users -----------------------------------------------------------------------------------


async def create_user(
    db: AsyncSession,
    email: str,
    now: dt.datetime,
    *,
    role: str = "user",
    display_name: str = "",
    password_hash: str | None = None,
    phone: str | None = None,
) -> User:
    email = normalise_email(email)
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r} (one of {', '.join(ROLES)})")
    tenant = await tenant_for_email(db, email)
    if await db.scalar(select(User.id).where(User.email == email)):
        raise Conflict(f"{email} is registered already")
    user = User(
        id=new_id(),
        tenant_id=tenant.id,
        email=email,
        password_hash=password_hash,
        display_name=display_name or email.partition("@")[0],
        phone=phone,
        role=role,
        created_at=now,
    )
    db.add(user)
    await db.flush()
    return user


async def invite_user(
    db: AsyncSession, email: str, now: dt.datetime, *, role: str = "user", display_name: str = ""
) -> tuple[User, str]:
    """Create the user without a password and an invitation token that sets one."""
    user = await create_user(db, email, now, role=role, display_name=display_name)
    token = secrets.token_urlsafe(32)
    db.add(
        Invitation(
            token_hash=token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + INVITATION_TTL,
        )
    )
    await db.flush()
    return user, token


async def redeem_invitation(
    db: AsyncSession, token: str, now: dt.datetime, purpose: str = "invite"
) -> User:
    what = "invitation" if purpose == "invite" else "link"
    inv = await db.get(Invitation, token_hash(token), with_for_update=True)
    if inv is None or inv.used_at is not None or inv.expires_at < now or inv.purpose != purpose:
        raise NotFound(f"this {what} is unknown, used or expired")
    user = await db.get(User, inv.user_id)
    if user is None or user.disabled:
        raise NotFound(f"this {what} is unknown, used or expired")
    inv.used_at = now
    return user


RESET_TTL = dt.timedelta(hours=1)


async def password_reset_token(db: AsyncSession, user: User, now: dt.datetime) -> str:
    """A single-use token that sets a new password within an hour."""
    token = secrets.token_urlsafe(32)
    db.add(
        Invitation(
            token_hash=token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=now + RESET_TTL,
            purpose="reset",
        )
    )
    await db.flush()
    return token


async def domain_tenant_id(db: AsyncSession, email: str) -> str | None:
    """The tenant owning the address's domain, None when no tenant does."""
    domain = normalise_email(email).rpartition("@")[2]
    found = await db.scalar(select(Domain.tenant_id).where(Domain.domain == domain))
    return str(found) if found is not None else None


async def user_by_email(db: AsyncSession, email: str) -> User | None:
    return await db.scalar(select(User).where(User.email == email.strip().lower()))


async def visible_user(db: AsyncSession, viewer: User, user_id: str) -> User:
    """A user the viewer may see (own tenant or allowed partner), else NotFound."""
    user = await db.get(User, user_id)
    if user is None or user.disabled:
        raise NotFound("no such user")
    if user.tenant_id != viewer.tenant_id and user.tenant_id not in await partner_tenants(
        db, viewer.tenant_id
    ):
        raise NotFound("no such user")
    return user


async def directory(db: AsyncSession, viewer: User, query: str, limit: int = 50) -> list[User]:
    """Users of the visible tenants whose e-mail or display name contains `query`.

    Display names are sealed at rest, so the database cannot match them: the users are read
    in e-mail order and matched here after opening.
    """
    tenants = await visible_tenants(db, viewer.tenant_id)
    stmt = select(User).where(User.tenant_id.in_(tenants), User.disabled.is_(False))
    if not query:
        return list(await db.scalars(stmt.order_by(User.email).limit(limit)))
    needle = query.lower()
    found: list[User] = []
    for user in await db.scalars(stmt.order_by(User.email)):
        if needle in user.email.lower() or needle in user.display_name.lower():
            found.append(user)
            if len(found) >= limit:
                break
    return found


@dataclass
class Departure:
    """What a user's leaving changed; the server publishes it after the commit."""

    events: list[Event] = field(default_factory=list)
    partners: list[str] = field(default_factory=list)
    device_ids: list[str] = field(default_factory=list)


async def _depart(db: AsyncSession, user: User, now: dt.datetime) -> Departure:
    """End the user's sessions, remove its devices and take it out of every conversation, so
    nobody's sends keep addressing it."""
    departure = Departure(partners=await conversation_partners(db, user.id))
    await db.execute(
        update(Session)
        .where(Session.user_id == user.id, Session.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    for device in await devices_of(db, user.id):
        device.removed_at = now
        departure.device_ids.append(device.id)
        await ack_to_device(db, device.id, device.to_device_seq)
    for conv, _ in await conversations_of(db, user):
        departure.events += (await remove_member(db, conv, None, user.id, now)).events
    await db.flush()
    return departure


async def disable_user(db: AsyncSession, user: User, now: dt.datetime) -> Departure:
    """Disable the account: sessions end, devices go, it leaves its conversations and the
    directory. Re-enabled, it logs in again and registers a new device."""
    user.disabled = True
    return await _depart(db, user, now)


async def enable_user(db: AsyncSession, user: User) -> None:
    if user.deleted_at is not None:
        raise NotFound("no such user")
    user.disabled = False
    await db.flush()


async def delete_user(db: AsyncSession, user: User, now: dt.datetime) -> Departure:
    """Delete the account: as disabling, and its personal data is erased for good.

    The row stays (as "deleted user") so that conversations keep their sender ids.
    """
    departure = await disable_user(db, user, now)
    user.deleted_at = now
    user.email = f"deleted-{user.id}@deleted.invalid"
    user.display_name = ""
    user.phone = None
    user.password_hash = None
    await db.execute(delete(Invitation).where(Invitation.user_id == user.id))
    await db.flush()
    return departure


async def set_tenant_disabled(db: AsyncSession, tenant: Tenant, disabled: bool) -> None:
    """A disabled tenant's users cannot log in and their sessions stop working until the
    tenant is enabled again; nothing is deleted."""
    tenant.disabled = disabled
    await db.flush()


IN_LIST_SIZE = 500  # ids per IN (...) of one statement: bounds its parameters on every database


def in_slices(ids: Sequence[str]) -> Iterator[list[str]]:
    """The ids in lists of at most `IN_LIST_SIZE`, one statement each."""
    for start in range(0, len(ids), IN_LIST_SIZE):
        yield list(ids[start : start + IN_LIST_SIZE])


async def valid_sessions(
    db: AsyncSession | AsyncConnection, session_ids: Sequence[str], issued_after: dt.datetime
) -> set[str]:
    """Those of the sessions that may keep a stream open (not ended, expired, or belonging to
    a disabled user, a disabled tenant or a removed device)."""
    out: set[str] = set()
    for ids in in_slices(list(session_ids)):
        rows = await db.execute(_VALID_SESSIONS, {"ids": ids, "issued_after": issued_after})
        out.update(row[0] for row in rows)
    return out


# Run by every node twice a second for all its streams: built once, and run on a plain
# connection (no ORM), so that the check holds up the node's event loop as little as can be.
_VALID_SESSIONS = (
    select(Session.id)
    .join(User, User.id == Session.user_id)
    .join(Tenant, Tenant.id == User.tenant_id)
    .join(Device, Device.id == Session.device_id)
    .where(
        Session.id.in_(bindparam("ids", expanding=True)),
        Session.revoked_at.is_(None),
        Session.created_at > bindparam("issued_after"),
        User.disabled.is_(False),
        Tenant.disabled.is_(False),
        Device.removed_at.is_(None),
    )
)


# -- devices ---------------------------------------------------------------------------------


async def active_device(db: AsyncSession, user_id: str, device_id: str) -> Device:
    device = await db.get(Device, device_id)
    if device is None or device.user_id != user_id or device.removed_at is not None:
        raise NotFound("no such device")
    return device


async def devices_of(db: AsyncSession, user_id: str) -> list[Device]:
    rows = await db.scalars(
        select(Device)
        .where(Device.user_id == user_id, Device.removed_at.is_(None))
        .order_by(Device.created_at, Device.id)
    )
    return list(rows)


MAX_ONE_TIME_PREKEYS = 200  # published and unclaimed per device


async def publish_prekeys(
    db: AsyncSession,
    device: Device,
    signed: tuple[int, str, str] | None,
    one_time: Sequence[tuple[int, str]],
) -> int:
    """Set the device's signed prekey (if given) and add one-time prekeys; returns how many
    one-time prekeys are now unclaimed. Ids already published are refused (Conflict)."""
    if signed is not None:
        device.signed_prekey_id, device.signed_prekey, device.signed_prekey_signature = signed
    count = await one_time_prekey_count(db, device.id)
    if count + len(one_time) > MAX_ONE_TIME_PREKEYS:
        raise InvalidInput(
            f"a device keeps at most {MAX_ONE_TIME_PREKEYS} one-time prekeys; it has {count}"
        )
    ids = [key_id for key_id, _ in one_time]
    if len(set(ids)) != len(ids) or (
        ids
        and await db.scalar(
            select(func.count())
            .select_from(OneTimePrekey)
            .where(OneTimePrekey.device_id == device.id, OneTimePrekey.key_id.in_(ids))
        )
    ):
        raise Conflict("a one-time prekey with this id is published already")
    for key_id, public_key in one_time:
        db.add(OneTimePrekey(device_id=device.id, key_id=key_id, public_key=public_key))
    await db.flush()
    return count + len(one_time)


async def one_time_prekey_count(db: AsyncSession, device_id: str) -> int:
    return int(
        await db.scalar(
            select(func.count())
            .select_from(OneTimePrekey)
            .where(OneTimePrekey.device_id == device_id)
        )
        or 0
    )


async def claim_one_time_prekey(db: AsyncSession, device_id: str) -> tuple[int, str] | None:
    """Hand out one one-time prekey of the device and delete it, or None when none is left.

    The DELETE is the claim: of two concurrent claims of the same key only one deletes a row,
    the other tries the next key, so no key is ever handed out twice."""
    for _ in range(MAX_ONE_TIME_PREKEYS):
        key_id = await db.scalar(
            select(OneTimePrekey.key_id)
            .where(OneTimePrekey.device_id == device_id)
            .order_by(OneTimePrekey.key_id)
            .limit(1)
        )
        if key_id is None:
            return None
        gone = await db.execute(
            delete(OneTimePrekey)
            .where(OneTimePrekey.device_id == device_id, OneTimePrekey.key_id == key_id)
            .returning(OneTimePrekey.public_key)
        )
        row = gone.first()
        if row is not None:
            return int(key_id), str(row[0])
    return None


async def conversation_partners(db: AsyncSession, user_id: str) -> list[str]:
    """Users sharing an active conversation with this one (they track its device list)."""
    mine = select(Membership.conversation_id).where(
        Membership.user_id == user_id, Membership.active.is_(True)
    )
    rows = await db.scalars(
        select(Membership.user_id)
        .where(Membership.conversation_id.in_(mine), Membership.active.is_(True))
        .distinct()
    )
    return list(rows)


# -- conversations ---------------------------------------------------------------------------


@dataclass
class Appended:
    """Events a change appended; the server publishes them after the commit."""

    events: list[Event] = field(default_factory=list)


async def next_seq(db: AsyncSession, conversation_id: str, count: int = 1) -> int:
    """Take the next `count` numbers of the conversation's gap-free sequence; returns the last.

    The UPDATE locks the conversation row until commit, so concurrent senders are serialised
    per conversation and numbers commit in order.
    """
    return (await take_seq(db, conversation_id, count))[0]


async def take_seq(
    db: AsyncSession | AsyncConnection, conversation_id: str, count: int = 1
) -> tuple[int, int]:
    """`next_seq`, also returning the conversation's latest membership change (0: none).

    One statement takes the number, locks the row and reads what a send checks, so a sender
    holds the lock for as few round trips as possible.
    """
    result: Result[int, int]
    if isinstance(db, AsyncConnection):  # a send's batch: the statement is built once
        result = await db.execute(_TAKE_SEQ, {"cid": conversation_id, "count": count})
    else:  # through the ORM, which also brings the session's copy of the row up to date
        result = await db.execute(
            update(Conversation)
            .where(Conversation.id == conversation_id)
            .values(last_seq=Conversation.last_seq + count)
            .returning(Conversation.last_seq, Conversation.membership_seq)
        )
    row = result.first()
    if row is None:
        raise NotFound("no such conversation")
    return int(row[0]), int(row[1] or 0)


async def take_membership_seq(
    db: AsyncSession, conv: Conversation, count: int, seen: int | None
) -> int:
    """`next_seq` for membership changes: the last number taken also becomes the
    conversation's latest membership change, in the same statement. With `seen`, the change
    is refused (MembershipChanged) unless the latest change was exactly the one the client
    saw; the caller's transaction, which then rolls back, gives the numbers back."""
    taken = Conversation.last_seq + count
    latest = func.coalesce(Conversation.membership_seq, 0)
    recorded = taken if seen is None else case((latest == seen, taken), else_=latest)
    row = (
        await db.execute(
            update(Conversation)
            .where(Conversation.id == conv.id)
            .values(last_seq=taken, membership_seq=recorded)
            .returning(Conversation.last_seq, Conversation.membership_seq)
            # The session's copy takes the stored values below: SQLAlchemy's own sync would
            # evaluate the SET clauses in Python one after the other, in no fixed order, and
            # could compute the second from the first one's new value.
            .execution_options(synchronize_session=False)
        )
    ).first()
    if row is None:
        raise NotFound("no such conversation")
    last, current = int(row[0]), int(row[1] or 0)
    set_committed_value(conv, "last_seq", last)  # as read: no UPDATE of its own at flush
    set_committed_value(conv, "membership_seq", row[1])
    if current != last:  # left as it was: not the change the client saw
        refuse_unseen_membership(current, seen, exactly=True)
    return last


_TAKE_SEQ = (
    update(Conversation)
    .where(Conversation.id == bindparam("cid"))
    .values(last_seq=Conversation.last_seq + bindparam("count"))
    .returning(Conversation.last_seq, Conversation.membership_seq)
)


async def check_membership_seen(
    db: AsyncSession, conversation_id: str, seen: int | None, *, exactly: bool = False
) -> None:
    """Refuse (MembershipChanged) a client that has not seen the latest membership change.

    Call with the conversation row locked (after `next_seq` or `lock_conversation`), so no
    change can commit between this check and the caller's write."""
    if seen is None:
        return
    current = await db.scalar(
        select(Conversation.membership_seq).where(Conversation.id == conversation_id)
    )
    if current is not None:
        refuse_unseen_membership(current, seen, exactly=exactly)


def refuse_unseen_membership(current: int, seen: int | None, *, exactly: bool = False) -> None:
    """Raise MembershipChanged when the change at `current` is newer than the one `seen`."""
    if seen is not None and (current > seen or (exactly and current != seen)):
        raise MembershipChanged(
            f"the members changed at seq {current}, after the change {seen} you saw"
        )


async def membership(db: AsyncSession, conversation_id: str, user_id: str) -> Membership | None:
    return await db.get(Membership, (conversation_id, user_id))


async def conversation_and_membership(
    db: AsyncSession, conversation_id: str, user_id: str
) -> tuple[Conversation | None, Membership | None]:
    """The conversation and the user's membership of it (None where missing): one statement,
    where two lookups cost a round trip each on every route that acts in a conversation."""
    row = (
        await db.execute(
            select(Conversation, Membership)
            .outerjoin(
                Membership,
                and_(Membership.conversation_id == Conversation.id, Membership.user_id == user_id),
            )
            .where(Conversation.id == conversation_id)
        )
    ).first()
    return (None, None) if row is None else (row[0], row[1])


async def conversation_for_member(
    db: AsyncSession, user: User, conversation_id: str, *, allow_left: bool = False
) -> tuple[Conversation, Membership]:
    """The conversation if the user is (or, with allow_left, was) a member; else NotFound."""
    conv, mem = await conversation_and_membership(db, conversation_id, user.id)
    return await as_member(db, conv, mem, allow_left=allow_left)


async def as_member(
    db: AsyncSession,
    conv: Conversation | None,
    mem: Membership | None,
    *,
    allow_left: bool = False,
) -> tuple[Conversation, Membership]:
    """`conversation_for_member`'s checks on a conversation and membership already read."""
    if conv is None or mem is None or (not mem.active and not allow_left):
        raise NotFound("no such conversation")
    await check_conversation_open(db, conv)
    return conv, mem


async def check_conversation_open(db: AsyncSession, conv: Conversation) -> None:
    """Raise CrossTenant when a conversation spans tenants that no longer both consent.

    Withdrawn consent stops everything across the pair: sending, history, member lists,
    receipts, uploads and downloads.
    """
    if conv.cross_tenant:
        await check_tenants_allowed(db, await member_tenants(db, conv.id) | {conv.tenant_id})


async def lock_conversation(db: AsyncSession, conversation_id: str) -> None:
    """Hold the conversation's row until commit, so membership counts cannot race.

    A no-op UPDATE locks the row on PostgreSQL and takes the write lock on SQLite.
    """
    await db.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(last_seq=Conversation.last_seq)
    )


def in_window(mem: Membership, seq: int | None) -> bool:
    """Whether an event at `seq` lies between the member's join and its removal."""
    return (
        seq is not None and seq >= mem.joined_seq and (mem.left_seq is None or seq <= mem.left_seq)
    )


async def active_member_count(db: AsyncSession, conversation_id: str) -> int:
    return int(
        await db.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.conversation_id == conversation_id, Membership.active.is_(True))
        )
        or 0
    )


async def member_tenants(db: AsyncSession, conversation_id: str) -> set[str]:
    rows = await db.scalars(
        select(User.tenant_id)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.conversation_id == conversation_id, Membership.active.is_(True))
        .distinct()
    )
    return set(rows)


async def create_conversation(
    db: AsyncSession,
    creator: User | None,
    tenant: Tenant,
    kind: str,
    name: str,
    member_ids: Sequence[str],
    now: dt.datetime,
) -> tuple[Conversation, Appended]:
    """Create a conversation; `creator` None means an admin tool (managed groups)."""
    if kind not in ("direct", "group", "managed"):
        raise InvalidInput(f"unknown conversation kind {kind!r}")
    ids = list(dict.fromkeys(member_ids))
    if creator is not None:
        ids = [creator.id, *[i for i in ids if i != creator.id]]
    if kind == "direct" and len(ids) != 2:
        raise InvalidInput("a direct conversation has exactly two members")
    conv = Conversation(
        id=new_id(),
        tenant_id=tenant.id,
        kind=kind,
        name=name[:200],
        created_by=creator.id if creator else None,
        last_seq=0,
        cross_tenant=False,
        created_at=now,
    )
    db.add(conv)
    await db.flush()
    appended = await _add_members(
        db, conv, creator, ids, now, creator_id=creator.id if creator else None
    )
    return conv, appended


def _can_manage(conv: Conversation, actor: User | None, actor_mem: Membership | None) -> bool:
    if actor is None:  # admin tool
        return True
    if conv.kind == "direct":
        return False
    if actor.role in ("tenant_admin", "instance_admin") and conv.kind == "managed":
        # Instance administration acts on tenants, never inside another tenant's groups.
        return actor.tenant_id == conv.tenant_id
    return actor_mem is not None and actor_mem.active and actor_mem.role == "admin"


async def add_members(
    db: AsyncSession,
    conv: Conversation,
    actor: User | None,
    user_ids: Sequence[str],
    now: dt.datetime,
    statement: Statement | None = None,
) -> Appended:
    actor_mem = await membership(db, conv.id, actor.id) if actor else None
    if not _can_manage(conv, actor, actor_mem):
        raise Forbidden("only an admin of this group can change its members")
    return await _add_members(
        db, conv, actor, list(dict.fromkeys(user_ids)), now, statement=statement
    )


@dataclass(frozen=True)
class Statement:
    """The actor device's signatures over a membership change (checked by clients only)."""

    device_id: str
    after_seq: int
    signatures: dict[str, str]  # subject user id -> base64 signature

    def payload(self, user_id: str) -> dict[str, Any]:
        signature = self.signatures.get(user_id)
        if signature is None:
            return {}
        return {"device_id": self.device_id, "after_seq": self.after_seq, "signature": signature}


async def _add_members(
    db: AsyncSession,
    conv: Conversation,
    actor: User | None,
    user_ids: list[str],
    now: dt.datetime,
    creator_id: str | None = None,
    statement: Statement | None = None,
) -> Appended:
    # The users and their memberships of this conversation (rejoining is an update), at once.
    found: dict[str, User] = {}
    existing: dict[str, Membership] = {}
    for candidate, its_membership in await db.execute(
        select(User, Membership)
        .outerjoin(
            Membership,
            and_(Membership.user_id == User.id, Membership.conversation_id == conv.id),
        )
        .where(User.id.in_(user_ids))
    ):
        found[candidate.id] = candidate
        if its_membership is not None:
            existing[candidate.id] = its_membership
    allowed: set[str] | None = None
    if actor is not None:
        allowed = {actor.tenant_id}
        if {u.tenant_id for u in found.values()} - allowed:  # partners asked only when needed
            allowed = await visible_tenants(db, actor.tenant_id)
    users: list[User] = []
    for uid in user_ids:
        user = found.get(uid)
        if user is None or user.disabled or (allowed is not None and user.tenant_id not in allowed):
            raise NotFound("no such user")
        users.append(user)
    new = [u for u in users if u.id not in existing or not existing[u.id].active]
    last = 0
    if new:
        # Takes the numbers and locks the row in one statement; a refusal below rolls back both.
        last = await take_membership_seq(
            db, conv, len(new), statement.after_seq if statement else None
        )
    else:
        await lock_conversation(db, conv.id)
        if statement is not None:
            await check_membership_seen(db, conv.id, statement.after_seq, exactly=True)
    count = await active_member_count(db, conv.id)
    if count + len(new) > MAX_GROUP_MEMBERS:
        raise GroupFull(
            f"a conversation has at most {MAX_GROUP_MEMBERS} members; "
            f"it has {count}, adding {len(new)} would exceed that"
        )
    if conv.cross_tenant or any(u.tenant_id != conv.tenant_id for u in new):
        tenants = await member_tenants(db, conv.id) | {u.tenant_id for u in new}
        await check_tenants_allowed(db, tenants | {conv.tenant_id})
        conv.cross_tenant = True
    appended = Appended()
    if not new:
        return appended
    for seq, user in enumerate(new, start=last - len(new) + 1):
        role = "admin" if (user.id == creator_id and conv.kind == "group") else "member"
        mem = existing.get(user.id)
        if mem is None:
            db.add(
                Membership(
                    conversation_id=conv.id, user_id=user.id, role=role, active=True, joined_seq=seq
                )
            )
        else:
            mem.active, mem.joined_seq, mem.left_seq = True, seq, None
        event = Event(
            conversation_id=conv.id,
            seq=seq,
            id=new_id(),
            kind="membership",
            sender_user_id=actor.id if actor else None,
            payload={
                "action": "added",
                "user_id": user.id,
                **({"signed": statement.payload(user.id)} if statement else {}),
            },
            created_at=now,
        )
        db.add(event)
        appended.events.append(event)
    await db.flush()
    return appended


async def set_member_role(db: AsyncSession, conv: Conversation, user_id: str, role: str) -> None:
    mem = await membership(db, conv.id, user_id)
    if mem is None or not mem.active:
        raise NotFound("no such member")
    if role not in ("member", "admin"):
        raise InvalidInput(f"unknown member role {role!r}")
    mem.role = role
    await db.flush()


async def remove_member(
    db: AsyncSession,
    conv: Conversation,
    actor: User | None,
    user_id: str,
    now: dt.datetime,
    statement: Statement | None = None,
) -> Appended:
    actor_mem = await membership(db, conv.id, actor.id) if actor else None
    leaving = actor is not None and actor.id == user_id and conv.kind == "group"
    if not leaving and not _can_manage(conv, actor, actor_mem):
        raise Forbidden("only an admin of this group can change its members")
    mem = await membership(db, conv.id, user_id)
    if mem is None or not mem.active:
        raise NotFound("no such member")
    seq = await take_membership_seq(db, conv, 1, statement.after_seq if statement else None)
    mem.active, mem.left_seq = False, seq
    event = Event(
        conversation_id=conv.id,
        seq=seq,
        id=new_id(),
        kind="membership",
        sender_user_id=actor.id if actor else None,
        payload={
            "action": "removed",
            "user_id": user_id,
            **({"signed": statement.payload(user_id)} if statement else {}),
        },
        created_at=now,
    )
    db.add(event)
    await db.flush()
    return Appended([event])


async def conversations_of(db: AsyncSession, user: User) -> list[tuple[Conversation, Membership]]:
    rows = await db.execute(
        select(Conversation, Membership)
        .join(Membership, Membership.conversation_id == Conversation.id)
        .where(Membership.user_id == user.id, Membership.active.is_(True))
        .order_by(Conversation.created_at, Conversation.id)
    )
    return [(c, m) for c, m in rows]


async def members_of(db: AsyncSession, conversation_id: str) -> list[Membership]:
    rows = await db.scalars(
        select(Membership)
        .where(Membership.conversation_id == conversation_id, Membership.active.is_(True))
        .order_by(Membership.joined_seq)
    )
    return list(rows)


class EventRow(Protocol):
    """An event as read for delivery: the columns of `Event`, without an ORM object."""

    conversation_id: str
    seq: int
    id: str
    kind: str
    sender_user_id: str | None
    sender_device_id: str | None
    ciphertext: bytes | None
    payload: dict[str, Any]
    created_at: dt.datetime


async def events_for(
    db: AsyncSession, mem: Membership, after_seq: int, limit: int, upto: int | None = None
) -> list[EventRow]:
    """Events of the member's window (its join up to its removal) after `after_seq`.

    Plain rows, not ORM objects: a stream replaying history to many devices at once holds a
    page per device, and rows cost a fraction of the memory and time of mapped objects.
    """
    stmt = select(*Event.__table__.columns).where(
        Event.conversation_id == mem.conversation_id,
        Event.seq > max(after_seq, mem.joined_seq - 1),
    )
    if mem.left_seq is not None:
        stmt = stmt.where(Event.seq <= mem.left_seq)
    if upto is not None:
        stmt = stmt.where(Event.seq <= upto)
    rows = (await db.execute(stmt.order_by(Event.seq).limit(limit))).all()
    return cast(list[EventRow], rows)


class MembershipWindow(Protocol):
    """What decides which of a conversation's events a member's device is owed."""

    @property
    def active(self) -> bool: ...
    @property
    def joined_seq(self) -> int: ...
    @property
    def left_seq(self) -> int | None: ...


def unseen_range(
    mem: MembershipWindow, last_seq: int, cursor: int | None
) -> tuple[int, int] | None:
    """The events a device whose cursor is `cursor` has yet to be sent, as (after, up to).

    An active member is owed everything from its join (the range may be empty: the device
    still follows the conversation). A removed one is owed the rest up to its removal, and
    only if the device saw the conversation and has not had the removal yet; otherwise
    None. The one rule of catch-up (`sync_candidates`, a stream's `catch_up` and its
    `behind`) and of webhook deliveries.
    """
    if mem.active:
        return (mem.joined_seq - 1 if cursor is None else cursor), last_seq
    if cursor is None:
        return None
    end = last_seq if mem.left_seq is None else min(last_seq, mem.left_seq)
    return (cursor, end) if end > cursor else None


async def sync_candidates(
    db: AsyncSession, user_id: str, since: dict[str, int]
) -> list[tuple[Membership, int]]:
    """Memberships a device must look at, with the conversation's last seq.

    Active ones, and removals the device has not seen yet (a conversation the device never
    saw and was removed from tells it nothing). Conversations across a tenant pair whose
    consent was withdrawn are left out: nothing of them is delivered any more.
    """
    rows = await db.execute(
        select(Membership, Conversation)
        .join(Conversation, Conversation.id == Membership.conversation_id)
        .where(Membership.user_id == user_id)
    )
    out = []
    for mem, conv in rows.all():
        if (
            not mem.active
            and unseen_range(mem, conv.last_seq, since.get(mem.conversation_id)) is None
        ):
            continue
        if conv.cross_tenant:
            try:
                await check_conversation_open(db, conv)
            except CrossTenant:
                continue
        out.append((mem, int(conv.last_seq)))
    return out


@dataclass
class Horizons:
    """What the database holds for a node's streams, read in a few statements for all of them:
    per user, each membership with its conversation's last number; per device, the last
    to-device number (`stream_horizons`)."""

    memberships: dict[str, list[MembershipEnd]] = field(default_factory=dict)
    to_device: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class MembershipEnd:
    conversation_id: str
    active: bool
    joined_seq: int
    left_seq: int | None
    last_seq: int


_MEMBERSHIP_ENDS = (
    select(
        Membership.user_id,
        Membership.conversation_id,
        Membership.active,
        Membership.joined_seq,
        Membership.left_seq,
        Conversation.last_seq,
    )
    .join(Conversation, Conversation.id == Membership.conversation_id)
    .where(Membership.user_id.in_(bindparam("users", expanding=True)))
)
_TO_DEVICE_ENDS = (
    select(ToDevice.device_id, func.max(ToDevice.seq))
    .where(ToDevice.device_id.in_(bindparam("devices", expanding=True)))
    .group_by(ToDevice.device_id)
)


async def stream_horizons(
    conn: AsyncConnection, user_ids: Sequence[str], device_ids: Sequence[str]
) -> Horizons:
    """`Horizons` of these users and devices (`in_slices`)."""
    out = Horizons()
    users, devices = sorted(set(user_ids)), sorted(set(device_ids))
    for some_users in in_slices(users):
        rows = await conn.execute(_MEMBERSHIP_ENDS, {"users": some_users})
        for user_id, cid, active, joined, left, last in rows:
            out.memberships.setdefault(user_id, []).append(
                MembershipEnd(cid, bool(active), int(joined), left, int(last))
            )
    for some_devices in in_slices(devices):
        ends = await conn.execute(_TO_DEVICE_ENDS, {"devices": some_devices})
        out.to_device.update((device_id, int(seq)) for device_id, seq in ends)
    return out


# -- idempotency -----------------------------------------------------------------------------


async def claim_txn(db: AsyncSession, user_id: str, txn_id: str) -> dict[str, Any] | None:
    """The stored result of an earlier use of this transaction id, if any.

    A message's transaction is recorded before its number is taken (to keep that short), so
    its sequence number is read from the message itself.
    """
    row = await db.get(Transaction, (user_id, txn_id))
    if row is None:
        return None
    result = dict(row.result)
    if row.kind == "message" and "seq" not in result:
        result["seq"] = await db.scalar(select(Event.seq).where(Event.id == result["message_id"]))
    return result


def record_txn(
    db: AsyncSession, user_id: str, txn_id: str, kind: str, result: dict[str, Any], now: dt.datetime
) -> None:
    db.add(Transaction(user_id=user_id, txn_id=txn_id, kind=kind, result=result, created_at=now))


# -- messages --------------------------------------------------------------------------------


async def redact_message(
    db: AsyncSession, user: User, conv: Conversation, seq: int, now: dt.datetime
) -> tuple[Event, list[str]]:
    """Delete a message for everyone: its ciphertext, receipts and attachments go, and a
    `redaction` event takes the next seq. Only the message's sender deletes it (a group
    admin removes the sender instead). Returns (the redaction, blob ids to delete after
    the commit)."""
    await check_conversation_open(db, conv)
    mem = await membership(db, conv.id, user.id)
    event = await db.get(Event, (conv.id, seq))
    if event is None or event.kind != "message" or mem is None or not in_window(mem, seq):
        raise NotFound("no such message")
    if event.sender_user_id != user.id:
        raise Forbidden("only its sender deletes a message for everyone")
    if event.payload.get("deleted"):
        raise Conflict("this message is already deleted")
    await refund_users(db, [(event.sender_user_id, len(event.ciphertext or b""))])
    event.ciphertext = None
    event.payload = {"deleted": True}
    await db.execute(delete(Receipt).where(Receipt.conversation_id == conv.id, Receipt.seq == seq))
    gone = (
        await db.execute(
            delete(Attachment)
            .where(Attachment.conversation_id == conv.id, Attachment.message_seq == seq)
            .returning(Attachment.id, Attachment.owner_user_id, Attachment.size)
        )
    ).all()
    blob_ids = await _refund_attachments(db, gone)
    redaction = Event(
        conversation_id=conv.id,
        seq=await next_seq(db, conv.id),
        id=new_id(),
        kind="redaction",
        sender_user_id=user.id,
        payload={"redacts": seq},
        created_at=now,
    )
    db.add(redaction)
    await db.flush()
    return redaction, blob_ids


async def append_to_device(
    db: AsyncSession,
    sender: User,
    device: Device,
    envelopes: Sequence[tuple[str, str, bytes]],
    now: dt.datetime,
) -> list[ToDevice]:
    """Queue envelopes for exact devices; all targets are checked before anything is stored."""
    visible = await visible_tenants(db, sender.tenant_id)
    device_ids = sorted({device_id for _, device_id, _ in envelopes})
    found = {
        d.id: (d, u)
        for d, u in await db.execute(
            select(Device, User)
            .join(User, User.id == Device.user_id)
            .where(Device.id.in_(device_ids))
        )
    }
    for user_id, device_id, _ in envelopes:
        target, owner = found.get(device_id, (None, None))
        if (
            target is None
            or owner is None
            or target.user_id != user_id
            or target.removed_at is not None
            or owner.disabled
            or owner.tenant_id not in visible
        ):
            raise NotFound(f"no such device {device_id!r} of user {user_id!r}")
    # Take each device's numbers in one statement per batch size, rows in id order (so
    # concurrent batches lock devices in the same order).
    counts = Counter(device_id for _, device_id, _ in envelopes)
    next_seq_of: dict[str, int] = {}
    for step in sorted(set(counts.values())):
        ids = sorted(d for d, c in counts.items() if c == step)
        for device_id, last in await db.execute(
            update(Device)
            .where(Device.id.in_(ids))
            .values(to_device_seq=Device.to_device_seq + step)
            .returning(Device.id, Device.to_device_seq)
        ):
            next_seq_of[device_id] = int(last) - step + 1
    rows = []
    for _, device_id, ciphertext in envelopes:
        seq = next_seq_of[device_id]
        next_seq_of[device_id] = seq + 1
        rows.append(
            ToDevice(
                device_id=device_id,
                seq=seq,
                sender_user_id=sender.id,
                sender_device_id=device.id,
                ciphertext=ciphertext,
                created_at=now,
            )
        )
    db.add_all(rows)
    await db.flush()
    return rows


async def pending_to_device(
    db: AsyncSession, device_id: str, after: int, limit: int
) -> list[ToDevice]:
    rows = await db.scalars(
        select(ToDevice)
        .where(ToDevice.device_id == device_id, ToDevice.seq > after)
        .order_by(ToDevice.seq)
        .limit(limit)
    )
    return list(rows)


async def ack_to_device(db: AsyncSession, device_id: str, upto: int) -> None:
    """Drop delivered envelopes and give their bytes back to the senders' quotas."""
    gone = await db.execute(
        delete(ToDevice)
        .where(ToDevice.device_id == device_id, ToDevice.seq <= upto)
        .returning(ToDevice.sender_user_id, func.length(ToDevice.ciphertext))
    )
    await refund_users(db, [(user_id, size) for user_id, size in gone])


async def add_receipt(
    db: AsyncSession, user: User, conv: Conversation, seq: int, kind: str, now: dt.datetime
) -> tuple[Receipt | None, Event]:
    """Store a receipt once; returns (new receipt or None if repeated, the message)."""
    if kind not in ("delivered", "read"):
        raise InvalidInput("a receipt is 'delivered' or 'read'")
    mem = await membership(db, conv.id, user.id)
    event = await db.get(Event, (conv.id, seq))
    if event is None or event.kind != "message" or mem is None or not in_window(mem, seq):
        raise NotFound("no such message")
    if await db.get(Receipt, (conv.id, seq, user.id, kind)) is not None:
        return None, event
    receipt = Receipt(conversation_id=conv.id, seq=seq, user_id=user.id, kind=kind, created_at=now)
    db.add(receipt)
    await db.flush()
    return receipt, event


async def receipts_for(db: AsyncSession, conversation_id: str, seq: int) -> list[Receipt]:
    rows = await db.scalars(
        select(Receipt)
        .where(Receipt.conversation_id == conversation_id, Receipt.seq == seq)
        .order_by(Receipt.created_at, Receipt.user_id)
    )
    return list(rows)


# -- storage ---------------------------------------------------------------------------------


async def user_quota(db: AsyncSession, user: User) -> int:
    if user.quota_bytes is not None:
        return user.quota_bytes
    tenant = await db.get(Tenant, user.tenant_id)
    assert tenant is not None
    return tenant.user_quota_bytes


async def tenant_capacity(db: AsyncSession, tenant: Tenant) -> int:
    """What the tenant may store in all: 1 GB per active user plus its 500 GB extensions."""
    users = await db.scalar(
        select(func.count())
        .select_from(User)
        .where(User.tenant_id == tenant.id, User.disabled.is_(False))
    )
    return int(users or 0) * DEFAULT_USER_QUOTA + tenant.storage_extension_steps * EXTENSION_STEP


async def promised_storage(db: AsyncSession, tenant: Tenant) -> int:
    """The quotas of the tenant's active users added up (each its own or the tenant's)."""
    total = await db.scalar(
        select(func.sum(func.coalesce(User.quota_bytes, tenant.user_quota_bytes))).where(
            User.tenant_id == tenant.id, User.disabled.is_(False)
        )
    )
    return int(total or 0)


async def set_user_quota(db: AsyncSession, user: User, quota_bytes: int | None) -> int:
    """Give `user` a quota of its own (None: the tenant's per-user quota again); returns the
    quota in force.

    A quota up to the tenant's per-user quota (1 GB unless the instance administrator set
    another) is always allowed; beyond it, the quotas of all active users together must fit
    the tenant's storage (1 GB per active user plus its 500 GB extensions), so a raise is paid
    for by an extension or by lowering others. A quota below what the user already stores is
    allowed: new uploads are refused until the user has freed space.

    Raises:
        InvalidInput: a negative quota, or one the tenant's storage cannot hold.
    """
    tenant = await db.get(Tenant, user.tenant_id)
    assert tenant is not None
    if quota_bytes is not None:
        if quota_bytes < 0:
            raise InvalidInput("a quota cannot be negative")
        if quota_bytes > tenant.user_quota_bytes:
            current = user.quota_bytes if user.quota_bytes is not None else tenant.user_quota_bytes
            promised = await promised_storage(db, tenant)
            if not user.disabled:
                promised += quota_bytes - current
            capacity = await tenant_capacity(db, tenant)
            if promised > capacity:
                raise InvalidInput(
                    f"a quota of {human_size(quota_bytes)} does not fit: the users' quotas "
                    f"would add up to {human_size(promised)} of the organisation's "
                    f"{human_size(capacity)}; lower others' quotas or ask the instance "
                    "administrator for a storage extension"
                )
    user.quota_bytes = quota_bytes
    await db.flush()
    return quota_bytes if quota_bytes is not None else tenant.user_quota_bytes


async def charge_storage(db: AsyncSession, user: User, size: int) -> None:
    """Count `size` bytes against user and tenant, or raise QuotaExceeded.

    Each UPDATE checks and adds in one statement (the row stays locked until commit), so
    concurrent uploads cannot together overshoot the quota.
    """
    limit = await user_quota(db, user)
    charged = await db.scalar(
        update(User)
        .where(User.id == user.id, User.storage_used + size <= limit)
        .values(storage_used=User.storage_used + size)
        .returning(User.storage_used)
    )
    if charged is None:
        raise QuotaExceeded(
            f"this upload of {size} bytes exceeds your storage quota of {limit} bytes"
        )
    tenant = await db.get(Tenant, user.tenant_id)
    assert tenant is not None
    capacity = await tenant_capacity(db, tenant)
    charged = await db.scalar(
        update(Tenant)
        .where(Tenant.id == tenant.id, Tenant.storage_used + size <= capacity)
        .values(storage_used=Tenant.storage_used + size)
        .returning(Tenant.storage_used)
    )
    if charged is None:
        raise QuotaExceeded("your organisation's storage is full; ask your administrator")


async def charge_user(db: AsyncSession, user: User, size: int, *, reserve: int = 0) -> None:
    """Count a message's or envelope's bytes against the user's quota, or raise.

    The per-user quota covers everything the user makes the server keep; the tenant's
    capacity is checked on uploads, where the large amounts are. `reserve` bytes beyond the
    quota may be used (panic alarms have such a reserve).
    """
    tenant_quota = (
        select(Tenant.user_quota_bytes).where(Tenant.id == User.tenant_id).scalar_subquery()
    )
    charged = await db.scalar(  # one statement: check, add and lock the user's row
        update(User)
        .where(
            User.id == user.id,
            User.storage_used + size <= func.coalesce(User.quota_bytes, tenant_quota) + reserve,
        )
        .values(storage_used=User.storage_used + size)
        .returning(User.storage_used)
    )
    if charged is None:
        limit = await user_quota(db, user)
        raise QuotaExceeded(
            f"this message of {size} bytes exceeds your storage quota of {limit} bytes"
        )


async def refund_users(db: AsyncSession, sizes: Iterable[tuple[str | None, int | None]]) -> None:
    """Give back the bytes of deleted messages or envelopes to their senders."""
    per_user: Counter[str] = Counter()
    for user_id, size in sizes:
        if user_id is not None and size:
            per_user[user_id] += int(size)
    for user_id, size in sorted(per_user.items()):
        await db.execute(
            update(User).where(User.id == user_id).values(storage_used=User.storage_used - size)
        )


async def add_attachment(
    db: AsyncSession,
    user: User,
    conv: Conversation,
    attachment_id: str,
    size: int,
    now: dt.datetime,
) -> Attachment:
    await charge_storage(db, user, size)
    row = Attachment(
        id=attachment_id, conversation_id=conv.id, owner_user_id=user.id, size=size, created_at=now
    )
    db.add(row)
    await db.flush()
    return row


async def attachment_for_member(db: AsyncSession, user: User, attachment_id: str) -> Attachment:
    row = await db.get(Attachment, attachment_id)
    if row is None:
        raise NotFound("no such attachment")
    mem = await membership(db, row.conversation_id, user.id)
    if mem is None or not mem.active:
        raise NotFound("no such attachment")
    if row.owner_user_id != user.id and not in_window(mem, row.message_seq):
        raise NotFound("no such attachment")
    conv = await db.get(Conversation, row.conversation_id)
    assert conv is not None
    await check_conversation_open(db, conv)
    return row


# -- retention -------------------------------------------------------------------------------


@dataclass
class PurgeResult:
    events: int = 0
    attachments: int = 0
    to_device: int = 0
    receipts: int = 0
    transactions: int = 0
    audit_seals: int = 0
    audit_exports: int = 0
    alarms: int = 0
    attachment_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "events": self.events,
            "attachments": self.attachments,
            "to_device": self.to_device,
            "receipts": self.receipts,
            "transactions": self.transactions,
            "audit_seals": self.audit_seals,
            "audit_exports": self.audit_exports,
            "alarms": self.alarms,
        }


async def purge(db: AsyncSession, now: dt.datetime) -> PurgeResult:
    """Delete what is older than each tenant's retention; returns what went (blob ids included).

    A conversation follows the retention of the tenant that owns it; to-device envelopes and
    transaction ids follow their user's tenant; closed alarms follow their tenant's. The caller
    deletes blobs after the commit.
    """
    from messenger.store import alarms  # the alarm rules build on this module

    result = PurgeResult()
    result.alarms, result.attachment_ids = await alarms.purge(db, now)
    for tenant in list(await db.scalars(select(Tenant))):
        cutoff = now - dt.timedelta(days=tenant.retention_days)
        convs = select(Conversation.id).where(Conversation.tenant_id == tenant.id)
        users = select(User.id).where(User.tenant_id == tenant.id)
        # DELETE ... RETURNING: of two concurrent purges (two nodes), each row is charged back
        # by the one that actually deleted it.
        gone = (
            await db.execute(
                delete(Attachment)
                .where(Attachment.conversation_id.in_(convs), Attachment.created_at < cutoff)
                .returning(Attachment.id, Attachment.owner_user_id, Attachment.size)
            )
        ).all()
        result.attachment_ids += await _refund_attachments(db, gone)
        result.attachments += len(gone)
        events = (
            await db.execute(
                delete(Event)
                .where(Event.conversation_id.in_(convs), Event.created_at < cutoff)
                .returning(Event.sender_user_id, func.length(Event.ciphertext))
            )
        ).all()
        await refund_users(db, [(user_id, size) for user_id, size in events])
        result.events += len(events)
        result.receipts += _count(
            await db.execute(
                delete(Receipt).where(
                    Receipt.conversation_id.in_(convs), Receipt.created_at < cutoff
                )
            )
        )
        devices = select(Device.id).where(Device.user_id.in_(users))
        envelopes = (
            await db.execute(
                delete(ToDevice)
                .where(ToDevice.device_id.in_(devices), ToDevice.created_at < cutoff)
                .returning(ToDevice.sender_user_id, func.length(ToDevice.ciphertext))
            )
        ).all()
        await refund_users(db, [(user_id, size) for user_id, size in envelopes])
        result.to_device += len(envelopes)
        result.transactions += _count(
            await db.execute(
                delete(Transaction).where(
                    and_(Transaction.user_id.in_(users), Transaction.created_at < cutoff)
                )
            )
        )
        # A sealed chain lives at most 7 days: seals older than that before the cutoff can
        # only open messages that are gone. Exports not taken within the retention go too.
        seal_cutoff = cutoff - dt.timedelta(days=7)
        result.audit_seals += _count(
            await db.execute(
                delete(AuditSealRow).where(
                    AuditSealRow.conversation_id.in_(convs), AuditSealRow.created_at < seal_cutoff
                )
            )
        )
        requests = select(AuditRequest.id).where(AuditRequest.tenant_id == tenant.id)
        result.audit_exports += _count(
            await db.execute(
                update(AuditExport)
                .where(
                    AuditExport.request_id.in_(requests),
                    AuditExport.created_at < cutoff,
                    AuditExport.sealed.is_not(None),
                )
                .values(sealed=None)
            )
        )
    await db.flush()
    return result


async def _refund_attachments(db: AsyncSession, gone: Iterable[Any]) -> list[str]:
    """Give the bytes of deleted attachment rows (id, owner, size) back to owner and tenant;
    returns their ids (the caller deletes the blobs after the commit)."""
    ids = []
    for att_id, owner_id, size in gone:
        await db.execute(
            update(User).where(User.id == owner_id).values(storage_used=User.storage_used - size)
        )
        await db.execute(
            update(Tenant)
            .where(Tenant.id == select(User.tenant_id).where(User.id == owner_id).scalar_subquery())
            .values(storage_used=Tenant.storage_used - size)
        )
        ids.append(att_id)
    return ids


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
