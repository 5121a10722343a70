"""Reminders coming due reach the messenger once per occurrence or task, also across a restart;
a reminder of an event or task that moved is withdrawn and scheduled anew, that of a completed
task too (the lab and a real messenger)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bridge.notify import BridgeWorker
from med import DelegateSession, Event, Task, TaskStatus
from tests.e2e.bridge_harness import (
    ASSISTENZ,
    CHEF,
    REMINDERS_TO_ASSISTENZ,
    BridgeRig,
    until,
    until_async,
    wait_until_watching,
)

WATCH_CALENDAR = (
    f'[[watch]]\nmailbox = "{CHEF}"\nfolders = ["calendar"]\n'
    'identity = "assistenz"\nrights_identity = "chef"\n'
)
WATCH_TASKS = (
    f'[[watch]]\nmailbox = "{CHEF}"\nfolders = ["tasks"]\n'
    'identity = "assistenz"\nrights_identity = "chef"\n'
)


async def reminder_rows(rig: BridgeRig, item_id: str) -> list[tuple[str, str]]:
    """(key, state) of the outbox rows of one event's reminders (the demo has others)."""
    store = await rig.store()
    try:
        async with store.engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT dedup_key, state FROM outbox "
                        "WHERE dedup_key LIKE 'reminder:%' ORDER BY id"
                    )
                )
            ).all()
    finally:
        await store.close()
    return [(str(r[0]), str(r[1])) for r in rows if f":{item_id}:" in str(r[0])]


async def scans_after(worker: BridgeWorker, more: int) -> None:
    """Wait until the worker has scanned the reminders `more` times from now."""
    start = worker.board.counters.get("reminder_scans", 0)
    await until(lambda: worker.board.counters.get("reminder_scans", 0) >= start + more, 30)


async def test_a_reminder_is_posted_once_when_due_also_across_a_restart(
    rig: BridgeRig, session_for: Callable[..., DelegateSession]
) -> None:
    assistenz = await rig.chat_user(ASSISTENZ)
    config = rig.write_config(
        rules=REMINDERS_TO_ASSISTENZ, watches=WATCH_CALENDAR, mode="pull", poll_seconds=0.3
    )
    chef = session_for(CHEF)
    calendar = await chef.default_folder(CHEF, "calendar")
    async with rig.worker(config, "w1"):
        await wait_until_watching(rig, CHEF, "calendar")
        # Its reminder (one minute before the start) comes due a few seconds from now.
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1, seconds=8)
        event = await chef.create(
            calendar,
            Event(
                subject="Zahnarzt Dr. Berg",
                start=start,
                end=start + timedelta(minutes=30),
                location="Praxis am Markt",
                reminder_minutes=1,
            ),
            send_invitations=False,
        )

        async def scheduled() -> bool:
            return [s for _, s in await reminder_rows(rig, event.id)] == ["pending"]

        await until_async(scheduled, 30)
        assert not assistenz.containing("Zahnarzt")  # scheduled, not posted before its time
    # The worker stopped before the reminder came due; a new one posts it, once.
    async with rig.worker(config, "w2") as worker:
        [note] = await assistenz.wait_for("Zahnarzt Dr. Berg")
        await scans_after(worker, 3)
    assert note.body.startswith("[Reminder #")
    assert f"Starts: {start.isoformat()}" in note.body
    assert "Where: Praxis am Markt" in note.body
    assert not note.actions
    async with rig.worker(config, "w3") as worker:
        await scans_after(worker, 3)
    assert len(assistenz.containing("Zahnarzt Dr. Berg")) == 1
    [(key, state)] = await reminder_rows(rig, event.id)
    assert state == "sent" and start.isoformat() in key


async def test_a_moved_event_gets_its_reminder_rescheduled_and_the_old_one_withdrawn(
    rig: BridgeRig, session_for: Callable[..., DelegateSession]
) -> None:
    config = rig.write_config(
        rules=REMINDERS_TO_ASSISTENZ, watches=WATCH_CALENDAR, mode="pull", poll_seconds=0.3
    )
    chef = session_for(CHEF)
    calendar = await chef.default_folder(CHEF, "calendar")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    async with rig.worker(config) as worker:
        await wait_until_watching(rig, CHEF, "calendar")
        event = await chef.create(
            calendar,
            Event(
                subject="Kreisausschuss",
                start=start,
                end=start + timedelta(hours=1),
                reminder_minutes=15,
            ),
            send_invitations=False,
        )

        async def one_pending() -> bool:
            return [s for _, s in await reminder_rows(rig, event.id)] == ["pending"]

        await until_async(one_pending, 30)
        assert isinstance(event, Event)
        later = start + timedelta(days=1)
        await chef.update(
            dataclasses.replace(event, start=later, end=later + timedelta(hours=1)),
            ["start", "end"],
            send_updates=False,
        )

        async def moved() -> bool:
            return [s for _, s in await reminder_rows(rig, event.id)] == ["cancelled", "pending"]

        await until_async(moved, 30)
        await scans_after(worker, 2)
    rows = await reminder_rows(rig, event.id)
    assert start.isoformat() in rows[0][0] and later.isoformat() in rows[1][0]
    assert [s for _, s in rows] == ["cancelled", "pending"]


async def test_a_delegated_task_reminder_is_posted_once_when_due_also_across_a_restart(
    rig: BridgeRig, session_for: Callable[..., DelegateSession]
) -> None:
    assistenz = await rig.chat_user(ASSISTENZ)
    config = rig.write_config(
        rules=REMINDERS_TO_ASSISTENZ, watches=WATCH_TASKS, mode="pull", poll_seconds=0.3
    )
    chef = session_for(CHEF)
    tasks = await chef.default_folder(CHEF, "tasks")
    due_day = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    async with rig.worker(config, "w1"):
        await wait_until_watching(rig, CHEF, "tasks")
        remind_at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
        task = await chef.create(
            tasks,
            Task(subject="Haushaltsrede korrigieren", due=due_day, reminder_at=remind_at),
        )
        silent = await chef.create(tasks, Task(subject="Ohne Erinnerung", due=due_day))

        async def scheduled() -> bool:
            return [s for _, s in await reminder_rows(rig, task.id)] == ["pending"]

        await until_async(scheduled, 30)
        assert not assistenz.containing("Haushaltsrede")  # scheduled, not posted before its time
    # The worker stopped before the reminder came due; a new one posts it, once.
    async with rig.worker(config, "w2") as worker:
        [note] = await assistenz.wait_for("Haushaltsrede korrigieren")
        await scans_after(worker, 3)
    assert note.body.startswith("[Reminder #")
    assert f"{CHEF} ›" in note.body
    assert f"Task due: {due_day.date().isoformat()}" in note.body
    assert not note.actions
    async with rig.worker(config, "w3") as worker:
        await scans_after(worker, 3)
    assert len(assistenz.containing("Haushaltsrede korrigieren")) == 1
    [(key, state)] = await reminder_rows(rig, task.id)
    assert state == "sent" and remind_at.isoformat() in key
    assert await reminder_rows(rig, silent.id) == []
    assert not assistenz.containing("Ohne Erinnerung")


async def test_a_task_reminder_moved_or_completed_is_withdrawn(
    rig: BridgeRig, session_for: Callable[..., DelegateSession]
) -> None:
    config = rig.write_config(
        rules=REMINDERS_TO_ASSISTENZ, watches=WATCH_TASKS, mode="pull", poll_seconds=0.3
    )
    chef = session_for(CHEF)
    tasks = await chef.default_folder(CHEF, "tasks")
    remind_at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    async with rig.worker(config) as worker:
        await wait_until_watching(rig, CHEF, "tasks")
        task = await chef.create(tasks, Task(subject="Förderantrag", reminder_at=remind_at))

        async def states(expected: list[str]) -> None:
            async def reached() -> bool:
                return [s for _, s in await reminder_rows(rig, task.id)] == expected

            await until_async(reached, 30)

        await states(["pending"])
        assert isinstance(task, Task)
        later = remind_at + timedelta(days=1)
        task = await chef.update(
            dataclasses.replace(task, reminder_at=later), ["reminder_at"], send_updates=False
        )
        await states(["cancelled", "pending"])
        assert isinstance(task, Task)
        await chef.update(
            dataclasses.replace(task, status=TaskStatus.COMPLETED),
            ["status"],
            send_updates=False,
        )
        await states(["cancelled", "cancelled"])
        await scans_after(worker, 2)
    rows = await reminder_rows(rig, task.id)
    assert remind_at.isoformat() in rows[0][0] and later.isoformat() in rows[1][0]
