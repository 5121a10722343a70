"""med sessions against the lab: a delegate at work in the boss's and the team's mailboxes
(display names, tasks completed for the boss, team calendar rights, copies in Sent Items)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from med import (
    Address,
    DelegateSession,
    EditScope,
    Event,
    ItemQuery,
    MailboxKind,
    Message,
    OutgoingAttachment,
    SendOptions,
    Task,
    TaskStatus,
)
from med.errors import AccessDenied
from tests.e2e.conftest import ASSISTENZ, CHEF, POSTSTELLE, SACHBEARBEITUNG, TEAMKALENDER


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


async def test_team_calendar_rights_are_author_and_a_colleague_entry_is_refused_before_sending(
    session_for: Callable[..., DelegateSession],
) -> None:
    """Default Author on the team calendar: edit and delete own entries only, as enforced."""
    tom = session_for(ASSISTENZ, (f"shared:{TEAMKALENDER}",))
    lena = session_for(SACHBEARBEITUNG, (f"shared:{TEAMKALENDER}",))
    start = datetime(2026, 12, 11, 10, tzinfo=UTC)
    toms = await tom.create(
        await tom.default_folder(TEAMKALENDER, "calendar"),
        Event(subject="QA von Tom", start=start, end=start + timedelta(hours=1)),
    )
    team = await lena.default_folder(TEAMKALENDER, "calendar")
    rights = await lena.effective_rights(team)
    assert rights is not None and rights.create_items
    assert (rights.edit, rights.delete) == (EditScope.OWN, EditScope.OWN)
    mine = await lena.create(
        team, Event(subject="Lenas Termin", start=start, end=start + timedelta(hours=1))
    )
    await lena.update(dataclasses.replace(mine, subject="Lenas Termin (verschoben)"), ["subject"])
    theirs = await lena.get(toms.id)
    with pytest.raises(AccessDenied, match="only items you created"):
        await lena.update(dataclasses.replace(theirs, subject="geändert von Lena"), ["subject"])
    assert (await tom.get(toms.id)).subject == "QA von Tom"


async def test_the_copy_in_the_boss_sent_items_is_filed_as_read(
    session_for: Callable[..., DelegateSession],
) -> None:
    assistenz = session_for(ASSISTENZ, (CHEF,))
    for subject, attachments in (
        ("Zusage Empfang", ()),
        ("Zusage mit Anlage", (OutgoingAttachment("plan.txt", b"Plan", "text/plain"),)),
    ):
        await assistenz.send(
            Message(
                subject=subject,
                body="Gern.",
                to=(Address(SACHBEARBEITUNG),),
                new_attachments=attachments,
            ),
            SendOptions(from_mailbox=CHEF),
        )
    lena = session_for(SACHBEARBEITUNG)
    await lena.send(Message(subject="Rückfrage", body="?", to=(Address(CHEF),)))
    inbox = await assistenz.default_folder(CHEF, "inbox")
    question = next(
        m for m in (await assistenz.items(inbox, ItemQuery())).items if m.subject == "Rückfrage"
    )
    assert isinstance(question, Message)
    await assistenz.reply(question, "Antwort folgt.", options=SendOptions(from_mailbox=CHEF))
    await assistenz.forward(
        question,
        [Address(SACHBEARBEITUNG)],
        "Zur Kenntnis.",
        options=SendOptions(from_mailbox=CHEF),
    )
    chef = session_for(CHEF)
    copies = []
    for session, box in ((chef, CHEF), (assistenz, ASSISTENZ)):
        sent = await session.default_folder(box, "sentitems")
        copies += [
            m
            for m in (await session.items(sent, ItemQuery(limit=50))).items
            if m.subject.startswith("Zusage") or m.subject.endswith("Rückfrage")
        ]
    assert len(copies) == 8
    assert all(isinstance(m, Message) and m.is_read for m in copies), [
        (m.subject, getattr(m, "is_read", None)) for m in copies
    ]
