"""The alarm scheduler and the fan-out of alarm changes to devices.

Every node runs the scheduler. It finds alarms whose repeat or escalation is due, takes a lease
on each in the database (one node wins), does the work and releases the lease in one
transaction, then publishes. Nothing lives in memory between ticks: a restarted node or a
second node picks up exactly where the database says, and a node dying mid-way leaves the
alarm to another one once its lease runs out.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from messenger.server.state import AppState
from messenger.server.wire import alarm_event, alarm_status_event
from messenger.store import alarms

log = logging.getLogger("messenger.server.alarms")

LEASE = dt.timedelta(seconds=60)


async def outcome_items(db: AsyncSession, outcome: alarms.Outcome, now: dt.datetime) -> list[Any]:
    """Hub items for an outcome: the alarm to each device of the alarmed recipients, status
    changes to the watchers (state changes to the alarmed recipients as well).

    Call before the commit (it reads the sealed keys); publish after it.
    """
    alarm = outcome.alarm
    items: list[dict[str, Any]] = []
    if outcome.deliveries:
        recipients = {r.user_id: r for r in outcome.deliveries}
        for key in await alarms.keys_for(db, alarm.id, list(recipients)):
            event = alarm_event(alarm, recipients[key.user_id], key)
            items.append({"device_ids": [key.device_id], "event": event})
    if outcome.status:
        watchers = await alarms.watchers(db, alarm)
        alarmed = await alarms.alarmed_users(db, alarm.id)
        ts = now.isoformat()
        for change in outcome.status:
            users = set(watchers)
            if change["kind"] == "state":
                users.update(alarmed)
            elif change["kind"] in ("acknowledged", "declined"):
                users.add(change["user_id"])  # the answering user's other devices
            items.append(
                {"user_ids": sorted(users), "event": alarm_status_event(change, alarm, ts)}
            )
    return items


async def tick(state: AppState) -> int:
    """One scheduler pass: every due alarm this node wins the lease of; returns how many."""
    now = state.now()
    node = state.settings.node_name
    async with state.reads.connect() as conn:
        due = await alarms.due_alarms(conn, now)
    done = 0
    for alarm_id in due:
        lease = f"{node}:{secrets.token_hex(6)}"  # this claim's own name, even if nodes share one
        async with state.sessions() as db:
            if not await alarms.claim(db, alarm_id, lease, now, LEASE):
                await db.rollback()
                continue
            await db.commit()
        async with state.sessions() as db:
            outcome = await alarms.step(db, alarm_id, lease, now)
            if outcome is None:
                await db.rollback()
                continue
            items = await outcome_items(db, outcome, now)
            await db.commit()
        await state.publish(items)
        done += 1
    return done


async def scheduler(state: AppState, interval: float) -> None:
    """Run `tick` every `interval` seconds until cancelled; a failed pass is retried."""
    while True:
        try:
            await tick(state)
        except (SQLAlchemyError, OSError):
            log.exception("alarm scheduler pass failed; next attempt in %.1f s", interval)
        await asyncio.sleep(interval)
