"""Alarm lists and alarms: the rules, for the REST API, the admin CLI and the admin portal.

Like `messenger.store.repo`, every function takes an open `AsyncSession` and leaves committing
to the caller. An `actor` of None is an administration tool acting for the instance (the CLI).

An alarm moves raised → notifying → acknowledged | exhausted → closed; each transition and each
answer lands in `alarm_log`. The content is ciphertext the server cannot read: one blob, and its
key sealed pairwise to every recipient device by the sender. The server decides who is alarmed
when: tier 1 at once, unanswered recipients again every `repeat_seconds`, the next tier after
`escalation_seconds`; `step` does that work for the scheduler, under a lease on the alarm's row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from messenger.store.errors import Conflict, Forbidden, InvalidInput, NotFound
from messenger.store.models import (
    MAX_GROUP_MEMBERS,
    Alarm,
    AlarmAttachment,
    AlarmKey,
    AlarmList,
    AlarmListMember,
    AlarmLog,
    AlarmRecipient,
    Device,
    Tenant,
    User,
    new_id,
)
from messenger.store.repo import charge_user, in_slices, refund_users

LEVELS = ("info", "urgent", "alarm", "panic")
OPEN_STATES = ("raised", "notifying", "exhausted")
ANSWERS = ("delivered", "seen", "acknowledged", "declined")
MEMBER_ROLES = ("member", "admin")
MAX_LIST_MEMBERS = MAX_GROUP_MEMBERS
# Bytes a user may store beyond the quota for panic alarms, so a full quota never drops one.
PANIC_RESERVE = 64 * 1024 * 1024
MIN_INTERVAL = 1
MAX_INTERVAL = 7 * 24 * 3600


# -- alarm lists -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MemberSpec:
    user_id: str
    tier: int = 1
    role: str = "member"


def _is_tenant_admin(actor: User | None, tenant_id: str) -> bool:
    if actor is None:
        return True
    return actor.role in ("tenant_admin", "instance_admin") and actor.tenant_id == tenant_id


def _require_tenant_admin(actor: User | None, tenant_id: str) -> None:
    if not _is_tenant_admin(actor, tenant_id):
        raise Forbidden("alarm lists are managed by the tenant's administrators")


def _check_timing(repeat_seconds: int, escalation_seconds: int, ack_needed: int) -> None:
    for what, value in (("repeat interval", repeat_seconds), ("escalation", escalation_seconds)):
        if not MIN_INTERVAL <= value <= MAX_INTERVAL:
            raise InvalidInput(f"the {what} must be {MIN_INTERVAL} to {MAX_INTERVAL} seconds")
    if ack_needed < 1:
        raise InvalidInput("an alarm needs at least one acknowledgement to close")


async def _clear_emergency(db: AsyncSession, tenant_id: str, keep: str) -> None:
    await db.execute(
        update(AlarmList)
        .where(AlarmList.tenant_id == tenant_id, AlarmList.id != keep)
        .values(emergency=False)
    )


async def create_list(
    db: AsyncSession,
    actor: User | None,
    tenant: Tenant,
    name: str,
    now: dt.datetime,
    *,
    repeat_seconds: int = 60,
    escalation_seconds: int = 300,
    ack_needed: int = 1,
    emergency: bool = False,
    members: Sequence[MemberSpec] = (),
) -> AlarmList:
    """A new alarm list of the tenant; `emergency` makes it the tenant's panic target."""
    _require_tenant_admin(actor, tenant.id)
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidInput("an alarm list needs a name of at most 200 characters")
    _check_timing(repeat_seconds, escalation_seconds, ack_needed)
    if await db.scalar(
        select(AlarmList.id).where(AlarmList.tenant_id == tenant.id, AlarmList.name == name)
    ):
        raise Conflict(f"the alarm list {name!r} exists already")
    row = AlarmList(
        id=new_id(),
        tenant_id=tenant.id,
        name=name,
        repeat_seconds=repeat_seconds,
        escalation_seconds=escalation_seconds,
        ack_needed=ack_needed,
        emergency=emergency,
        created_at=now,
    )
    db.add(row)
    await db.flush()
    if emergency:
        await _clear_emergency(db, tenant.id, row.id)
    await set_members(db, actor, row, members)
    return row


async def list_for_admin(db: AsyncSession, actor: User | None, list_id: str) -> AlarmList:
    """The list if the actor administers its tenant; another tenant's list is not found."""
    row = await db.get(AlarmList, list_id)
    if row is None or (actor is not None and actor.tenant_id != row.tenant_id):
        raise NotFound("no such alarm list")
    _require_tenant_admin(actor, row.tenant_id)
    return row


async def update_list(
    db: AsyncSession,
    actor: User | None,
    row: AlarmList,
    *,
    name: str | None = None,
    repeat_seconds: int | None = None,
    escalation_seconds: int | None = None,
    ack_needed: int | None = None,
    emergency: bool | None = None,
) -> AlarmList:
    """Change settings; alarms already raised keep running with the new timing."""
    _require_tenant_admin(actor, row.tenant_id)
    _check_timing(
        repeat_seconds if repeat_seconds is not None else row.repeat_seconds,
        escalation_seconds if escalation_seconds is not None else row.escalation_seconds,
        ack_needed if ack_needed is not None else row.ack_needed,
    )
    if name is not None and name.strip() != row.name:
        name = name.strip()
        if not name or len(name) > 200:
            raise InvalidInput("an alarm list needs a name of at most 200 characters")
        if await db.scalar(
            select(AlarmList.id).where(AlarmList.tenant_id == row.tenant_id, AlarmList.name == name)
        ):
            raise Conflict(f"the alarm list {name!r} exists already")
        row.name = name
    if repeat_seconds is not None:
        row.repeat_seconds = repeat_seconds
    if escalation_seconds is not None:
        row.escalation_seconds = escalation_seconds
    if ack_needed is not None:
        row.ack_needed = ack_needed
    if emergency is not None:
        row.emergency = emergency
        if emergency:
            await _clear_emergency(db, row.tenant_id, row.id)
    await db.flush()
    return row


async def set_members(
    db: AsyncSession, actor: User | None, row: AlarmList, members: Sequence[MemberSpec]
) -> None:
    """Add members or change their tier and role; all are checked before anything changes."""
    _require_tenant_admin(actor, row.tenant_id)
    if not members:
        return
    ids = [m.user_id for m in members]
    if len(set(ids)) != len(ids):
        raise InvalidInput("a user appears twice in the member list")
    for m in members:
        if m.tier < 1 or m.tier > 100:
            raise InvalidInput("a tier is a number from 1 to 100")
        if m.role not in MEMBER_ROLES:
            raise InvalidInput(f"unknown alarm list role {m.role!r}")
    users = {
        u.id: u
        for u in await db.scalars(
            select(User).where(User.id.in_(ids), User.tenant_id == row.tenant_id)
        )
    }
    for uid in ids:
        user = users.get(uid)
        if user is None or user.deleted_at is not None:
            raise NotFound(f"no user {uid} in this tenant")
    existing = {
        m.user_id: m
        for m in await db.scalars(
            select(AlarmListMember).where(
                AlarmListMember.list_id == row.id, AlarmListMember.user_id.in_(ids)
            )
        )
    }
    count = await _member_count(db, row.id)
    new = [m for m in members if m.user_id not in existing]
    if count + len(new) > MAX_LIST_MEMBERS:
        raise InvalidInput(f"an alarm list has at most {MAX_LIST_MEMBERS} members")
    for m in members:
        mem = existing.get(m.user_id)
        if mem is None:
            db.add(AlarmListMember(list_id=row.id, user_id=m.user_id, tier=m.tier, role=m.role))
        else:
            mem.tier, mem.role = m.tier, m.role
    await db.flush()


async def _member_count(db: AsyncSession, list_id: str) -> int:
    return int(
        await db.scalar(
            select(func.count())
            .select_from(AlarmListMember)
            .where(AlarmListMember.list_id == list_id)
        )
        or 0
    )


async def remove_member(db: AsyncSession, actor: User | None, row: AlarmList, user_id: str) -> None:
    _require_tenant_admin(actor, row.tenant_id)
    gone = await db.execute(
        delete(AlarmListMember).where(
            AlarmListMember.list_id == row.id, AlarmListMember.user_id == user_id
        )
    )
    if not getattr(gone, "rowcount", 0):
        raise NotFound("no such member of this alarm list")
    await db.flush()


async def delete_list(db: AsyncSession, actor: User | None, row: AlarmList) -> None:
    """Delete a list with its closed alarms; refused while one of its alarms is open."""
    _require_tenant_admin(actor, row.tenant_id)
    if await db.scalar(
        select(Alarm.id).where(Alarm.list_id == row.id, Alarm.state.in_(OPEN_STATES)).limit(1)
    ):
        raise Conflict("this list has an open alarm; end it first")
    await db.delete(row)
    await db.flush()


async def list_members(db: AsyncSession, list_id: str) -> list[AlarmListMember]:
    rows = await db.scalars(
        select(AlarmListMember)
        .where(AlarmListMember.list_id == list_id)
        .order_by(AlarmListMember.tier, AlarmListMember.user_id)
    )
    return list(rows)


async def lists_of_tenant(db: AsyncSession, tenant_id: str) -> list[AlarmList]:
    rows = await db.scalars(
        select(AlarmList).where(AlarmList.tenant_id == tenant_id).order_by(AlarmList.name)
    )
    return list(rows)


async def emergency_list(db: AsyncSession, tenant_id: str) -> AlarmList:
    row = await db.scalar(
        select(AlarmList).where(AlarmList.tenant_id == tenant_id, AlarmList.emergency.is_(True))
    )
    if row is None:
        raise NotFound("this tenant has no emergency list; ask your administrator")
    return row


async def list_by_ref(db: AsyncSession, tenant_id: str, ref: str) -> AlarmList:
    """A list of the tenant by id or by name (the CLI accepts both)."""
    row = await db.scalar(
        select(AlarmList).where(
            AlarmList.tenant_id == tenant_id, or_(AlarmList.id == ref, AlarmList.name == ref)
        )
    )
    if row is None:
        raise NotFound(f"no alarm list {ref!r}")
    return row


async def list_json(db: AsyncSession, row: AlarmList, *, members: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "list_id": row.id,
        "tenant_id": row.tenant_id,
        "name": row.name,
        "repeat_seconds": row.repeat_seconds,
        "escalation_seconds": row.escalation_seconds,
        "ack_needed": row.ack_needed,
        "emergency": row.emergency,
    }
    if members:
        out["members"] = [
            {"user_id": m.user_id, "tier": m.tier, "role": m.role}
            for m in await list_members(db, row.id)
        ]
    return out


async def raiseable_list(db: AsyncSession, user: User, list_id: str) -> AlarmList:
    """A list the user may alarm: any list of the user's own tenant."""
    row = await db.get(AlarmList, list_id)
    if row is None or row.tenant_id != user.tenant_id:
        raise NotFound("no such alarm list")
    return row


async def recipient_devices(db: AsyncSession, list_id: str) -> list[tuple[str, Device]]:
    """(user id, device) of every active device of the list's enabled members."""
    rows = await db.execute(
        select(AlarmListMember.user_id, Device)
        .join(User, User.id == AlarmListMember.user_id)
        .join(Device, Device.user_id == User.id)
        .where(
            AlarmListMember.list_id == list_id,
            User.disabled.is_(False),
            Device.removed_at.is_(None),
        )
        .order_by(AlarmListMember.user_id, Device.id)
    )
    return [(uid, dev) for uid, dev in rows]


# -- raising ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a change means for connected devices; the server publishes it after the commit.

    `deliveries`: recipients alarmed now (their `rounds` counted up), to push to their devices;
    `status`: answers and state changes for the sender, the list's admins and (state only)
    the alarmed recipients.
    """

    alarm: Alarm
    deliveries: list[AlarmRecipient] = field(default_factory=list)
    status: list[dict[str, Any]] = field(default_factory=list)


async def charge(db: AsyncSession, user: User, size: int, level: str) -> None:
    """Count bytes against the user's quota; a panic alarm may use `PANIC_RESERVE` beyond it."""
    await charge_user(db, user, size, reserve=PANIC_RESERVE if level == "panic" else 0)


async def add_attachment(
    db: AsyncSession, user: User, attachment_id: str, size: int, level: str, now: dt.datetime
) -> AlarmAttachment:
    if level not in LEVELS:
        raise InvalidInput(f"unknown alarm level {level!r} (one of {', '.join(LEVELS)})")
    await charge(db, user, size, level)
    row = AlarmAttachment(
        id=attachment_id, owner_user_id=user.id, level=level, size=size, created_at=now
    )
    db.add(row)
    await db.flush()
    return row


async def raise_alarm(
    db: AsyncSession,
    sender: User,
    device: Device,
    row: AlarmList,
    level: str,
    ciphertext: bytes,
    keys: Sequence[tuple[str, str, bytes]],
    attachment_ids: Sequence[str],
    now: dt.datetime,
) -> Outcome:
    """Store the alarm, its sealed keys and recipients, and alarm the first tier at once.

    `keys` are (user id, device id, sealed key); every one must be a current device of a
    member (devices the sender did not know of get nothing: they cannot read it anyway).
    """
    if level not in LEVELS:
        raise InvalidInput(f"unknown alarm level {level!r} (one of {', '.join(LEVELS)})")
    members = await list_members(db, row.id)
    if not members:
        raise InvalidInput("this alarm list has no members")
    devices = {(uid, d.id) for uid, d in await recipient_devices(db, row.id)}
    seen: set[str] = set()
    for user_id, device_id, _ in keys:
        if (user_id, device_id) not in devices or device_id in seen:
            raise NotFound(f"device {device_id!r} of user {user_id!r} is not a recipient")
        seen.add(device_id)
    attachments = list(
        await db.scalars(select(AlarmAttachment).where(AlarmAttachment.id.in_(attachment_ids)))
    )
    if len(attachments) != len(set(attachment_ids)) or any(
        a.owner_user_id != sender.id or a.alarm_id is not None or a.level != level
        for a in attachments
    ):
        raise NotFound("an attachment is unknown, used, or uploaded for another level")
    await charge(db, sender, len(ciphertext) + sum(len(k) for _, _, k in keys), level)
    alarm = Alarm(
        id=new_id(),
        tenant_id=row.tenant_id,
        list_id=row.id,
        sender_user_id=sender.id,
        sender_device_id=device.id,
        level=level,
        state="raised",
        ciphertext=ciphertext,
        tier=0,
        log_seq=0,
        created_at=now,
    )
    db.add(alarm)
    await db.flush()
    for a in attachments:
        a.alarm_id = alarm.id
    db.add_all(
        AlarmKey(alarm_id=alarm.id, device_id=d, user_id=u, ciphertext=k) for u, d, k in keys
    )
    db.add_all(
        AlarmRecipient(alarm_id=alarm.id, user_id=m.user_id, tier=m.tier, rounds=0) for m in members
    )
    await db.flush()
    outcome = Outcome(alarm)
    _log(db, alarm, "raised", sender.id, now, {"level": level, "list_id": row.id})
    await _escalate(db, alarm, row, now, outcome)
    return outcome


def _log(
    db: AsyncSession,
    alarm: Alarm,
    kind: str,
    user_id: str | None,
    now: dt.datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    alarm.log_seq += 1
    db.add(
        AlarmLog(
            alarm_id=alarm.id,
            seq=alarm.log_seq,
            kind=kind,
            state=alarm.state,
            user_id=user_id,
            detail=detail or {},
            created_at=now,
        )
    )


def _transition(
    db: AsyncSession, alarm: Alarm, state: str, user_id: str | None, now: dt.datetime
) -> dict[str, Any]:
    previous, alarm.state = alarm.state, state
    _log(db, alarm, "state", user_id, now, {"from": previous, "to": state})
    return {"alarm_id": alarm.id, "kind": "state", "state": state, "from": previous}


async def _tiers(db: AsyncSession, alarm_id: str) -> list[int]:
    rows = await db.scalars(
        select(AlarmRecipient.tier).where(AlarmRecipient.alarm_id == alarm_id).distinct()
    )
    return sorted(set(rows))


def _notify(recipients: Sequence[AlarmRecipient], now: dt.datetime) -> None:
    for r in recipients:
        r.rounds += 1
        r.notified_at = r.notified_at or now


async def _escalate(
    db: AsyncSession, alarm: Alarm, row: AlarmList, now: dt.datetime, outcome: Outcome
) -> bool:
    """Alarm the next tier; False when there is none."""
    later = [t for t in await _tiers(db, alarm.id) if t > alarm.tier]
    if not later:
        return False
    previous, alarm.tier = alarm.tier, later[0]
    alarm.tier_started_at = alarm.round_at = now
    tier_rows = list(
        await db.scalars(
            select(AlarmRecipient).where(
                AlarmRecipient.alarm_id == alarm.id, AlarmRecipient.tier == alarm.tier
            )
        )
    )
    _notify(tier_rows, now)
    outcome.deliveries.extend(tier_rows)
    kind = "notified" if previous == 0 else "escalated"
    _log(db, alarm, kind, None, now, {"tier": alarm.tier, "recipients": len(tier_rows)})
    outcome.status.append({"alarm_id": alarm.id, "kind": kind, "tier": alarm.tier})
    if alarm.state == "raised":
        outcome.status.append(_transition(db, alarm, "notifying", None, now))
    _schedule(alarm, row)
    return True


def _schedule(alarm: Alarm, row: AlarmList) -> None:
    """When the scheduler looks next: the next repeat or the escalation, whichever is first."""
    if alarm.state != "notifying" or alarm.round_at is None or alarm.tier_started_at is None:
        alarm.next_due_at = None
        return
    alarm.next_due_at = min(
        alarm.round_at + dt.timedelta(seconds=row.repeat_seconds),
        alarm.tier_started_at + dt.timedelta(seconds=row.escalation_seconds),
    )


# -- the scheduler's work --------------------------------------------------------------------


async def due_alarms(
    db: AsyncSession | AsyncConnection, now: dt.datetime, limit: int = 100
) -> list[str]:
    """Alarms whose next repeat or escalation is due and that no live lease covers (every
    node asks every second: on a plain connection, without the ORM, it costs the least)."""
    rows = await db.scalars(
        select(Alarm.id)
        .where(
            Alarm.state == "notifying",
            Alarm.next_due_at <= now,
            or_(Alarm.lease_until.is_(None), Alarm.lease_until <= now),
        )
        .order_by(Alarm.next_due_at)
        .limit(limit)
    )
    return list(rows)


async def claim(
    db: AsyncSession, alarm_id: str, node: str, now: dt.datetime, lease: dt.timedelta
) -> bool:
    """Take the lease on a due alarm; one node wins (the UPDATE checks and sets at once)."""
    taken = await db.execute(
        update(Alarm)
        .where(
            Alarm.id == alarm_id,
            Alarm.state == "notifying",
            Alarm.next_due_at <= now,
            or_(Alarm.lease_until.is_(None), Alarm.lease_until <= now),
        )
        .values(lease_owner=node, lease_until=now + lease)
    )
    return bool(getattr(taken, "rowcount", 0))


async def _lock(db: AsyncSession, alarm_id: str) -> Alarm:
    """The alarm with its row held until commit (a no-op UPDATE locks it on every backend)."""
    await db.execute(update(Alarm).where(Alarm.id == alarm_id).values(log_seq=Alarm.log_seq))
    alarm = await db.get(Alarm, alarm_id, populate_existing=True)
    if alarm is None:
        raise NotFound("no such alarm")
    return alarm


async def step(db: AsyncSession, alarm_id: str, node: str, now: dt.datetime) -> Outcome | None:
    """Do what is due for an alarm this node holds the lease of, and release the lease.

    The work and the release commit together, so a crash before the commit leaves the alarm
    due (another node takes it when the lease ends) and a commit does it exactly once.
    """
    alarm = await _lock(db, alarm_id)
    if alarm.lease_owner != node or alarm.state != "notifying":
        return None
    alarm.lease_owner, alarm.lease_until = None, None
    row = await db.get(AlarmList, alarm.list_id)
    assert row is not None
    outcome = Outcome(alarm)
    assert alarm.tier_started_at is not None and alarm.round_at is not None
    escalate_at = alarm.tier_started_at + dt.timedelta(seconds=row.escalation_seconds)
    if now >= escalate_at and not await _escalate(db, alarm, row, now, outcome):
        outcome.status.append(_transition(db, alarm, "exhausted", None, now))
        _schedule(alarm, row)
        return outcome
    if now >= alarm.round_at + dt.timedelta(seconds=row.repeat_seconds):
        just = {r.user_id for r in outcome.deliveries}
        again = [r for r in await _unanswered(db, alarm.id) if r.user_id not in just]
        _notify(again, now)
        outcome.deliveries.extend(again)
        alarm.round_at = now
        if again:
            _log(db, alarm, "repeated", None, now, {"recipients": len(again)})
            outcome.status.append({"alarm_id": alarm.id, "kind": "repeated", "count": len(again)})
    _schedule(alarm, row)
    return outcome


async def _unanswered(db: AsyncSession, alarm_id: str) -> list[AlarmRecipient]:
    rows = await db.scalars(
        select(AlarmRecipient).where(
            AlarmRecipient.alarm_id == alarm_id,
            AlarmRecipient.rounds > 0,
            AlarmRecipient.acknowledged_at.is_(None),
            AlarmRecipient.declined_at.is_(None),
        )
    )
    return list(rows)


# -- answers and ending ----------------------------------------------------------------------


async def answer(
    db: AsyncSession,
    user: User,
    alarm_id: str,
    kind: str,
    now: dt.datetime,
    reason: str | None = None,
) -> Outcome | None:
    """A recipient's delivered / seen / acknowledged / declined; None when nothing changed.

    Each answer counts once per recipient (a repeat or a second device changes nothing);
    acknowledged and declined exclude each other.
    """
    if kind not in ANSWERS:
        raise InvalidInput(f"an answer is one of {', '.join(ANSWERS)}")
    alarm = await _lock(db, alarm_id)
    rec = await db.get(AlarmRecipient, (alarm_id, user.id))
    if alarm.tenant_id != user.tenant_id or rec is None or rec.rounds == 0:
        raise NotFound("no such alarm")
    if kind == "declined" and not (reason and reason.strip()):
        raise InvalidInput("declining needs a reason")
    column = f"{kind}_at"
    if getattr(rec, column) is not None:
        return None
    if kind in ("acknowledged", "declined"):
        if rec.acknowledged_at is not None or rec.declined_at is not None:
            raise Conflict("this alarm was answered already")
        if alarm.state not in OPEN_STATES:
            raise Conflict(f"this alarm is {alarm.state}")
    setattr(rec, column, now)
    if kind == "declined":
        rec.decline_reason = (reason or "").strip()[:500]
    detail = {"reason": rec.decline_reason} if kind == "declined" else {}
    _log(db, alarm, kind, user.id, now, detail)
    outcome = Outcome(alarm)
    outcome.status.append({"alarm_id": alarm.id, "kind": kind, "user_id": user.id, **detail})
    if kind == "acknowledged":
        row = await db.get(AlarmList, alarm.list_id)
        assert row is not None
        acks = await db.scalar(
            select(func.count())
            .select_from(AlarmRecipient)
            .where(AlarmRecipient.alarm_id == alarm.id, AlarmRecipient.acknowledged_at.is_not(None))
        )
        if int(acks or 0) >= row.ack_needed and alarm.state in OPEN_STATES:
            outcome.status.append(_transition(db, alarm, "acknowledged", user.id, now))
            outcome.status.append(_close(db, alarm, user.id, now, "acknowledged"))
    await db.flush()
    return outcome


def _close(
    db: AsyncSession, alarm: Alarm, user_id: str | None, now: dt.datetime, why: str
) -> dict[str, Any]:
    event = _transition(db, alarm, "closed", user_id, now)
    event["reason"] = why
    alarm.closed_at = now
    alarm.next_due_at = None
    alarm.lease_owner = alarm.lease_until = None
    return event


async def end_alarm(db: AsyncSession, actor: User, alarm_id: str, now: dt.datetime) -> Outcome:
    """The sender (or a list or tenant admin) ends the alarm: it closes, re-alarms stop."""
    alarm = await _lock(db, alarm_id)
    if not await may_watch(db, actor, alarm):
        raise NotFound("no such alarm")
    if alarm.state == "closed":
        raise Conflict("this alarm is closed already")
    outcome = Outcome(alarm)
    outcome.status.append(_close(db, alarm, actor.id, now, "ended"))
    await db.flush()
    return outcome


# -- reading ---------------------------------------------------------------------------------


async def list_admins(db: AsyncSession, list_id: str) -> list[str]:
    rows = await db.scalars(
        select(AlarmListMember.user_id).where(
            AlarmListMember.list_id == list_id, AlarmListMember.role == "admin"
        )
    )
    return list(rows)


async def watchers(db: AsyncSession, alarm: Alarm) -> list[str]:
    """Who sees every answer live: the sender and the list's admins."""
    return sorted({alarm.sender_user_id, *await list_admins(db, alarm.list_id)})


async def alarmed_users(db: AsyncSession, alarm_id: str) -> list[str]:
    rows = await db.scalars(
        select(AlarmRecipient.user_id).where(
            AlarmRecipient.alarm_id == alarm_id, AlarmRecipient.rounds > 0
        )
    )
    return list(rows)


async def may_watch(db: AsyncSession, user: User, alarm: Alarm) -> bool:
    if alarm.tenant_id != user.tenant_id:
        return False
    if alarm.sender_user_id == user.id or _is_tenant_admin(user, alarm.tenant_id):
        return True
    return user.id in await list_admins(db, alarm.list_id)


async def alarm_for_watcher(db: AsyncSession, user: User, alarm_id: str) -> Alarm:
    alarm = await db.get(Alarm, alarm_id)
    if alarm is None or not await may_watch(db, user, alarm):
        raise NotFound("no such alarm")
    return alarm


async def status_json(db: AsyncSession, alarm: Alarm) -> dict[str, Any]:
    # The log first: under READ COMMITTED, recipients read after it show at least its changes.
    log = list(
        await db.scalars(
            select(AlarmLog).where(AlarmLog.alarm_id == alarm.id).order_by(AlarmLog.seq)
        )
    )
    recipients = list(
        await db.scalars(
            select(AlarmRecipient)
            .where(AlarmRecipient.alarm_id == alarm.id)
            .order_by(AlarmRecipient.tier, AlarmRecipient.user_id)
        )
    )

    def ts(value: dt.datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "alarm_id": alarm.id,
        "list_id": alarm.list_id,
        "level": alarm.level,
        "state": alarm.state,
        "tier": alarm.tier,
        "sender_user_id": alarm.sender_user_id,
        "raised_at": alarm.created_at.isoformat(),
        "closed_at": ts(alarm.closed_at),
        "recipients": [
            {
                "user_id": r.user_id,
                "tier": r.tier,
                "rounds": r.rounds,
                "notified_at": ts(r.notified_at),
                "delivered_at": ts(r.delivered_at),
                "seen_at": ts(r.seen_at),
                "acknowledged_at": ts(r.acknowledged_at),
                "declined_at": ts(r.declined_at),
                "decline_reason": r.decline_reason,
            }
            for r in recipients
        ],
        "log": [
            {
                "seq": e.seq,
                "kind": e.kind,
                "state": e.state,
                "user_id": e.user_id,
                "detail": e.detail,
                "ts": e.created_at.isoformat(),
            }
            for e in log
        ],
    }


# An alarm a recipient was alarmed with (a round sent) and has not answered, still open.
_UNANSWERED = (
    AlarmRecipient.rounds > 0,
    AlarmRecipient.acknowledged_at.is_(None),
    AlarmRecipient.declined_at.is_(None),
    Alarm.state.in_(OPEN_STATES),
)


async def deliveries_for_device(
    db: AsyncSession, user_id: str, device_id: str
) -> list[tuple[Alarm, AlarmRecipient, AlarmKey]]:
    """Open alarms this device was alarmed with and its user has not answered yet."""
    rows = await db.execute(
        select(Alarm, AlarmRecipient, AlarmKey)
        .join(AlarmRecipient, AlarmRecipient.alarm_id == Alarm.id)
        .join(
            AlarmKey,
            and_(AlarmKey.alarm_id == Alarm.id, AlarmKey.device_id == device_id),
        )
        .where(AlarmRecipient.user_id == user_id, *_UNANSWERED)
        .order_by(Alarm.created_at)
    )
    return [(a, r, k) for a, r, k in rows]


async def open_rounds(
    conn: AsyncConnection, device_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Per device, the rounds of the open alarms it was alarmed with and its user has not
    answered (`deliveries_for_device` for many devices, without the alarms themselves)."""
    out: dict[str, dict[str, int]] = {}
    for devices in in_slices(sorted(set(device_ids))):
        rows = await conn.execute(
            select(AlarmKey.device_id, AlarmRecipient.alarm_id, AlarmRecipient.rounds)
            .join(
                AlarmRecipient,
                and_(
                    AlarmRecipient.alarm_id == AlarmKey.alarm_id,
                    AlarmRecipient.user_id == AlarmKey.user_id,
                ),
            )
            .join(Alarm, Alarm.id == AlarmKey.alarm_id)
            .where(AlarmKey.device_id.in_(devices), *_UNANSWERED)
        )
        for device_id, alarm_id, rounds in rows:
            out.setdefault(device_id, {})[alarm_id] = int(rounds)
    return out


async def keys_for(db: AsyncSession, alarm_id: str, user_ids: Sequence[str]) -> list[AlarmKey]:
    rows = await db.scalars(
        select(AlarmKey).where(AlarmKey.alarm_id == alarm_id, AlarmKey.user_id.in_(user_ids))
    )
    return list(rows)


async def attachment_for(db: AsyncSession, user: User, attachment_id: str) -> AlarmAttachment:
    """An alarm attachment its owner, a watcher or an alarmed recipient may fetch."""
    row = await db.get(AlarmAttachment, attachment_id)
    if row is None:
        raise NotFound("no such attachment")
    if row.owner_user_id == user.id:
        return row
    alarm = await db.get(Alarm, row.alarm_id) if row.alarm_id else None
    if alarm is None:
        raise NotFound("no such attachment")
    rec = await db.get(AlarmRecipient, (alarm.id, user.id))
    if (rec is None or rec.rounds == 0) and not await may_watch(db, user, alarm):
        raise NotFound("no such attachment")
    return row


# -- retention -------------------------------------------------------------------------------


async def purge(db: AsyncSession, now: dt.datetime) -> tuple[int, list[str]]:
    """Delete closed alarms (and unused alarm attachments) older than their tenant's retention.

    Returns (alarms deleted, attachment ids whose blobs the caller deletes after the commit);
    the bytes go back to the senders' quotas. Open alarms are kept however old they are.
    """
    count, blob_ids = 0, []
    for tenant in list(await db.scalars(select(Tenant))):
        cutoff = now - dt.timedelta(days=tenant.retention_days)
        old = select(Alarm.id).where(
            Alarm.tenant_id == tenant.id, Alarm.state == "closed", Alarm.created_at < cutoff
        )
        owners = select(User.id).where(User.tenant_id == tenant.id)
        files = (
            await db.execute(
                delete(AlarmAttachment)
                .where(
                    or_(
                        AlarmAttachment.alarm_id.in_(old),
                        and_(
                            AlarmAttachment.alarm_id.is_(None),
                            AlarmAttachment.owner_user_id.in_(owners),
                            AlarmAttachment.created_at < cutoff,
                        ),
                    )
                )
                .returning(AlarmAttachment.id, AlarmAttachment.owner_user_id, AlarmAttachment.size)
            )
        ).all()
        sizes: list[tuple[str | None, int | None]] = [(o, s) for _, o, s in files]
        blob_ids += [i for i, _, _ in files]
        keys = (
            await db.execute(
                select(Alarm.sender_user_id, func.length(AlarmKey.ciphertext))
                .join(AlarmKey, AlarmKey.alarm_id == Alarm.id)
                .where(Alarm.id.in_(old))
            )
        ).all()
        sizes += [(u, s) for u, s in keys]
        gone = (
            await db.execute(
                delete(Alarm)
                .where(Alarm.id.in_(old))
                .returning(Alarm.sender_user_id, func.length(Alarm.ciphertext))
            )
        ).all()
        sizes += [(u, s) for u, s in gone]
        await refund_users(db, sizes)
        count += len(gone)
    await db.flush()
    return count, blob_ids
