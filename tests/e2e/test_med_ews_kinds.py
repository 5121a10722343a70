"""All item kinds, voicemail, functional mailboxes and free/busy over EWS against the lab."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from med import (
    Address,
    Contact,
    Daily,
    Event,
    FolderKind,
    ItemQuery,
    Message,
    Note,
    Recurrence,
    SendOptions,
    Task,
    TaskStatus,
    Voicemail,
)
from tests.e2e.conftest import ASSISTENZ, CHEF, POSTSTELLE, SACHBEARBEITUNG, TEAMKALENDER


async def test_contact_task_and_note_round_trip(assistenz) -> None:
    contacts = await assistenz.default_folder(ASSISTENZ, "contacts")
    contact = await assistenz.create(
        contacts,
        Contact(
            display_name="Erika Muster",
            given_name="Erika",
            surname="Muster",
            company="Klinikum",
            emails=("erika.muster@klinikum.example",),
            phones={"BusinessPhone": "+49 6151 1000"},
        ),
    )
    got = await assistenz.get(contact.id)
    assert isinstance(got, Contact)
    assert (got.display_name, got.company, got.emails) == (
        "Erika Muster",
        "Klinikum",
        ("erika.muster@klinikum.example",),
    )
    assert got.phones["BusinessPhone"] == "+49 6151 1000"
    await assistenz.update(dataclasses.replace(got, job_title="Pflegedirektion"), ["job_title"])
    assert (await assistenz.get(contact.id)).job_title == "Pflegedirektion"  # type: ignore[attr-defined]

    tasks = await assistenz.default_folder(CHEF, "tasks")
    due = datetime(2026, 12, 4, tzinfo=UTC)
    task = await assistenz.create(
        tasks,
        Task(subject="Akte Müller", due=due, status=TaskStatus.IN_PROGRESS, percent_complete=40),
    )
    got_task = await assistenz.get(task.id)
    assert isinstance(got_task, Task)
    assert got_task.due is not None and got_task.due.date() == due.date()
    assert (got_task.status, got_task.percent_complete) == (TaskStatus.IN_PROGRESS, 40)

    notes = await assistenz.default_folder(ASSISTENZ, "notes")
    assert notes.kind is FolderKind.NOTES
    note = await assistenz.create(notes, Note(subject="Rückruf Herr Meier", body="Tel. 123"))
    got_note = await assistenz.get(note.id)
    assert isinstance(got_note, Note) and got_note.item_class == "IPM.StickyNote"
    listed = await assistenz.items(notes)
    assert note.id in {n.id for n in listed.items}


async def test_voicemail_recording_is_exported(session_for) -> None:
    chef = session_for(CHEF)
    folder = await chef.default_folder(CHEF, "voicemail")
    page = await chef.items(folder)
    voicemail = next(v for v in page.items if isinstance(v, Voicemail))
    audio = await chef.voicemail_audio(voicemail)
    assert audio.attachment.content_type == "audio/wav"
    assert audio.content[:4] == b"RIFF" and len(audio.content) == audio.attachment.size


async def test_send_from_functional_mailbox(assistenz, session_for) -> None:
    await assistenz.send(
        Message(
            subject="Eingangsbestätigung",
            body="Ihr Antrag ist eingegangen.",
            to=(Address(SACHBEARBEITUNG),),
        ),
        SendOptions(from_mailbox=POSTSTELLE),
    )
    lena = session_for(SACHBEARBEITUNG)
    inbox = await lena.default_folder(SACHBEARBEITUNG, "inbox")
    got = next(
        m
        for m in (await lena.items(inbox, ItemQuery(limit=10))).items
        if m.subject == "Eingangsbestätigung"
    )
    assert isinstance(got, Message) and got.from_ and got.from_.email == POSTSTELLE


async def test_editing_the_series_from_an_occurrence_changes_every_occurrence(assistenz) -> None:
    cal = await assistenz.default_folder(CHEF, "calendar")
    first = datetime(2027, 2, 1, 8, tzinfo=UTC)
    await assistenz.create(
        cal,
        Event(
            subject="Frühbesprechung",
            start=first,
            end=first + timedelta(hours=1),
            recurrence=Recurrence(Daily(), first.date(), count=3),
        ),
    )
    window = (first - timedelta(days=1), first + timedelta(days=5))
    occ = [
        e for e in await assistenz.calendar_view([cal], *window) if e.subject == "Frühbesprechung"
    ]
    await assistenz.update(
        dataclasses.replace(occ[1], subject="Frühbesprechung (Klinik)"), ["subject"], series=True
    )
    subjects = [
        e.subject
        for e in await assistenz.calendar_view([cal], *window)
        if e.subject.startswith("Frühbesprechung")
    ]
    assert subjects == ["Frühbesprechung (Klinik)"] * 3


async def test_free_busy_of_several_people(assistenz) -> None:
    start = datetime(2026, 11, 23, tzinfo=UTC)
    result = await assistenz.free_busy([CHEF, TEAMKALENDER], start, start + timedelta(days=7))
    by_address = {fb.address: fb for fb in result}
    assert set(by_address) == {CHEF, TEAMKALENDER}
    chef = by_address[CHEF]
    assert chef.error is None and chef.slots
    assert all(s.end > s.start for s in chef.slots)


async def test_move_and_copy_between_folders_of_the_boss(assistenz) -> None:
    tree = await assistenz.folder_tree(CHEF)
    inbox = next(f for f in tree.walk() if f.distinguished == "inbox")
    sub = next(f for f in tree.walk() if f.parent_id == inbox.id)
    (msg,) = (await assistenz.items(inbox, ItemQuery(limit=1))).items
    copy_id = await assistenz.copy(msg, sub)
    assert copy_id and copy_id != msg.id
    moved_id = await assistenz.move(msg, sub)
    in_sub = {m.id for m in (await assistenz.items(sub, ItemQuery(limit=100))).items}
    assert {copy_id, moved_id} <= in_sub
    in_inbox = {m.id for m in (await assistenz.items(inbox, ItemQuery(limit=100))).items}
    assert msg.id not in in_inbox


async def test_draft_for_the_boss_keeps_from_and_is_saved(assistenz, session_for) -> None:
    draft = await assistenz.save_draft(
        Message(
            subject="Entwurf Grußwort", body="Sehr geehrte ...", to=(Address(SACHBEARBEITUNG),)
        ),
        SendOptions(from_mailbox=CHEF),
    )
    got = await assistenz.get(draft.id)
    assert isinstance(got, Message) and got.is_draft
    assert got.from_ is not None and got.from_.email == CHEF
    chef = session_for(CHEF)
    own = await chef.save_draft(Message(subject="Notiz an mich", body="x"))
    drafts = await chef.default_folder(CHEF, "drafts")
    assert own.id in {m.id for m in (await chef.items(drafts, ItemQuery(limit=100))).items}
