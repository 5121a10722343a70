"""med sessions against the lab: behaviour found wanting in use and fixed since."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from med import DelegateSession, ItemQuery, MailboxKind, Task, TaskStatus
from tests.e2e.conftest import CHEF, POSTSTELLE, TEAMKALENDER


async def test_configured_mailboxes_show_their_display_names(assistenz: DelegateSession) -> None:
    boxes = {b.address: b for b in await assistenz.mailboxes()}
    for address, kind in ((POSTSTELLE, MailboxKind.FUNCTIONAL), (TEAMKALENDER, MailboxKind.SHARED)):
        assert boxes[address].kind is kind
        assert boxes[address].display_name and boxes[address].display_name != address
    assert boxes[CHEF].display_name == "Dr. Anna Berg"
    again = {b.address: b for b in await assistenz.mailboxes(refresh=True)}
    assert again[POSTSTELLE].display_name == boxes[POSTSTELLE].display_name


async def test_a_delegate_completes_the_boss_task_and_the_server_stamps_the_completion(
    assistenz: DelegateSession,
) -> None:
    tasks = await assistenz.default_folder(CHEF, "tasks")
    task = next(
        t
        for t in (await assistenz.items(tasks, ItemQuery())).items
        if t.subject == "Antwort an Bürgerbeauftragten"
    )
    assert isinstance(task, Task) and task.status is TaskStatus.IN_PROGRESS
    await assistenz.update(
        dataclasses.replace(
            task, status=TaskStatus.COMPLETED, percent_complete=100, completed=datetime.now(UTC)
        ),
        ["status", "percent_complete", "completed"],
    )
    done = await assistenz.get(task.id)
    assert isinstance(done, Task)
    assert (done.status, done.percent_complete) == (TaskStatus.COMPLETED, 100)
    assert done.completed is not None


async def test_setting_a_task_to_completed_makes_it_100_percent(
    assistenz: DelegateSession,
) -> None:
    tasks = await assistenz.default_folder(CHEF, "tasks")
    task = await assistenz.create(tasks, Task(subject="Akte abschließen"))
    await assistenz.update(dataclasses.replace(task, status=TaskStatus.COMPLETED), ["status"])
    done = await assistenz.get(task.id)
    assert isinstance(done, Task)
    assert (done.status, done.percent_complete) == (TaskStatus.COMPLETED, 100)
    assert done.completed is not None
