"""All item kinds, voicemail, functional mailboxes and free/busy over EWS against the lab."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, date, datetime, timedelta

import pytest

from med import (
    Address,
    Attendee,
    Contact,
    Daily,
    Event,
    FolderKind,
    InvalidInput,
    ItemQuery,
    MailboxEventKind,
    Message,
    MonthlyByDate,
    MonthlyByWeekday,
    Note,
    Recurrence,
    ResponseType,
    SendOptions,
    Task,
    TaskStatus,
    Voicemail,
    Weekday,
    Weekly,
    YearlyByDate,
    YearlyByWeekday,
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


async def test_stale_change_key_is_a_conflict(assistenz) -> None:
    from med import Conflict

    inbox = await assistenz.default_folder(CHEF, "inbox")
    (listed,) = (await assistenz.items(inbox, ItemQuery(limit=1))).items
    first = await assistenz.get(listed.id)
    await assistenz.set_categories(first, ["Erste"])
    with pytest.raises(Conflict, match="reload"):
        await assistenz.set_categories(first, ["Zweite"])  # still the old change key
    fresh = await assistenz.get(listed.id)
    assert fresh.categories == ("Erste",)
    await assistenz.set_categories(fresh, ["Zweite"])
    assert (await assistenz.get(listed.id)).categories == ("Zweite",)


async def _first_new_item_event(stream, send) -> object:
    async def first():
        async for event in stream:
            if event.kind in (MailboxEventKind.NEW_MAIL, MailboxEventKind.CREATED):
                return event
        return None

    waiter = asyncio.create_task(first())
    await asyncio.sleep(0.3)
    await send()
    try:
        return await asyncio.wait_for(waiter, timeout=30)
    finally:
        await stream.aclose()


async def test_pull_notifications_when_streaming_is_off(session_for) -> None:
    pulling = session_for(ASSISTENZ, (CHEF,), streaming=False)
    inbox = await pulling.default_folder(CHEF, "inbox")
    lena = session_for(SACHBEARBEITUNG)
    event = await _first_new_item_event(
        pulling.subscribe([inbox]),
        lambda: lena.send(Message(subject="Per Pull", body="x", to=(Address(CHEF),))),
    )
    assert event is not None and event.item_id


async def test_lost_subscription_is_renewed_and_reported(lab, session_for) -> None:
    pulling = session_for(ASSISTENZ, (CHEF,), streaming=False)
    inbox = await pulling.default_folder(CHEF, "inbox")
    stream = pulling.subscribe([inbox])
    await asyncio.wait_for(anext(stream), timeout=30)  # subscribed: the first poll's status
    with lab.lab.store.transaction() as conn:  # the server forgets every subscription
        conn.execute("DELETE FROM item_subscriptions")
    event = await asyncio.wait_for(anext(stream), timeout=30)
    while event.kind is MailboxEventKind.STATUS:
        event = await asyncio.wait_for(anext(stream), timeout=30)
    await stream.aclose()
    assert event.kind is MailboxEventKind.RESUBSCRIBED


SERIES = [
    (Recurrence(Daily(2), date(2027, 3, 1), count=3), 3),
    (
        Recurrence(
            Weekly((Weekday.MONDAY, Weekday.WEDNESDAY)), date(2027, 3, 1), end=date(2027, 3, 14)
        ),
        4,
    ),
    (Recurrence(MonthlyByDate(1), date(2027, 3, 1), count=2), 2),
    (Recurrence(MonthlyByWeekday(Weekday.MONDAY, "first"), date(2027, 3, 1), count=2), 2),
    (Recurrence(YearlyByDate(3, 1), date(2027, 3, 1)), 1),
    (Recurrence(YearlyByWeekday(3, Weekday.MONDAY, "first"), date(2027, 3, 1), count=5), 1),
]


@pytest.mark.parametrize(
    ("recurrence", "expected"),
    SERIES,
    ids=[
        "daily-count",
        "weekly-until",
        "monthly-date",
        "monthly-weekday",
        "yearly-noend",
        "yearly-weekday",
    ],
)
async def test_every_pattern_expands_in_the_boss_calendar(assistenz, recurrence, expected) -> None:
    cal = await assistenz.default_folder(CHEF, "calendar")
    start = datetime(2027, 3, 1, 9, tzinfo=UTC)  # a Monday
    created = await assistenz.create(
        cal,
        Event(
            subject="Musterserie",
            start=start,
            end=start + timedelta(hours=1),
            recurrence=recurrence,
        ),
    )
    master = await assistenz.get(created.id)
    assert isinstance(master, Event) and master.recurrence == recurrence
    view = await assistenz.calendar_view(
        [cal], start - timedelta(days=1), datetime(2027, 5, 31, tzinfo=UTC)
    )
    assert len([e for e in view if e.subject == "Musterserie"]) == expected


async def test_meeting_with_attendees_is_sent_and_answered(assistenz, session_for) -> None:
    cal = await assistenz.default_folder(CHEF, "calendar")
    start = datetime(2026, 12, 9, 13, tzinfo=UTC)
    meeting = await assistenz.create(
        cal,
        Event(
            subject="Abstimmung Haushalt",
            start=start,
            end=start + timedelta(hours=1),
            attendees=(Attendee(Address(SACHBEARBEITUNG)),),
            is_meeting=True,
        ),
    )
    got = await assistenz.get(meeting.id)
    assert isinstance(got, Event) and got.is_meeting
    assert [a.address.email for a in got.attendees] == [SACHBEARBEITUNG]
    lena = session_for(SACHBEARBEITUNG)
    inbox = await lena.default_folder(SACHBEARBEITUNG, "inbox")
    request = next(
        m
        for m in (await lena.items(inbox, ItemQuery(limit=20))).items
        if m.subject == "Abstimmung Haushalt"
    )
    assert isinstance(request, Message) and request.is_meeting_request
    await lena.respond(request.id, ResponseType.ACCEPT, "Passt")


async def test_forward_carries_attachments_and_reply_all_reaches_everyone(
    assistenz, session_for
) -> None:
    from med import OutgoingAttachment

    lena = session_for(SACHBEARBEITUNG)
    await lena.send(
        Message(
            subject="Unterlagen Bauantrag",
            body="Anbei.",
            to=(Address(CHEF),),
            cc=(Address(POSTSTELLE),),
            new_attachments=(OutgoingAttachment("plan.pdf", b"%PDF-1.7 plan", "application/pdf"),),
        )
    )
    inbox = await assistenz.default_folder(CHEF, "inbox")
    original = next(
        m
        for m in (await assistenz.items(inbox, ItemQuery(limit=10))).items
        if m.subject == "Unterlagen Bauantrag"
    )
    await assistenz.forward(
        original, [ASSISTENZ], "Zur Kenntnis", options=SendOptions(from_mailbox=CHEF)
    )
    own = await assistenz.default_folder(ASSISTENZ, "inbox")
    forwarded = next(
        m
        for m in (await assistenz.items(own, ItemQuery(limit=10))).items
        if "Unterlagen Bauantrag" in m.subject
    )
    full = await assistenz.get(forwarded.id)
    assert [a.name for a in full.attachments] == ["plan.pdf"]
    await assistenz.reply(
        original, "Danke, wir prüfen.", reply_all=True, options=SendOptions(from_mailbox=CHEF)
    )
    lena_inbox = await lena.default_folder(SACHBEARBEITUNG, "inbox")
    assert any(
        "Unterlagen Bauantrag" in m.subject and m.subject != "Unterlagen Bauantrag"
        for m in (await lena.items(lena_inbox, ItemQuery(limit=10))).items
    )
    post = await session_for(ASSISTENZ).default_folder(POSTSTELLE, "inbox")
    assert any(
        "Unterlagen Bauantrag" in m.subject and m.subject != "Unterlagen Bauantrag"
        for m in (await assistenz.items(post, ItemQuery(limit=20))).items
    )


async def test_series_in_berlin_time_keeps_nine_oclock_across_dst(assistenz) -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    cal = await assistenz.default_folder(CHEF, "calendar")
    start = datetime(2027, 3, 15, 9, tzinfo=berlin)  # DST begins on 28 March 2027
    created = await assistenz.create(
        cal,
        Event(
            subject="Lagebesprechung",
            start=start,
            end=start + timedelta(hours=1),
            timezone="Europe/Berlin",
            recurrence=Recurrence(Weekly((Weekday.MONDAY,)), start.date(), count=4),
        ),
    )
    assert (await assistenz.get(created.id)).timezone == "Europe/Berlin"  # type: ignore[attr-defined]
    view = await assistenz.calendar_view(
        [cal], start - timedelta(days=1), start + timedelta(days=30)
    )
    local = [e.start.astimezone(berlin) for e in view if e.subject == "Lagebesprechung"]
    assert [(t.month, t.day, t.hour) for t in local] == [
        (3, 15, 9),
        (3, 22, 9),
        (3, 29, 9),
        (4, 5, 9),
    ]


async def test_one_occurrence_moved_to_another_hour(assistenz) -> None:
    cal = await assistenz.default_folder(CHEF, "calendar")
    first = datetime(2027, 4, 5, 8, tzinfo=UTC)
    await assistenz.create(
        cal,
        Event(
            subject="Sprechstunde",
            start=first,
            end=first + timedelta(hours=1),
            recurrence=Recurrence(Daily(), first.date(), count=3),
        ),
    )
    window = (first - timedelta(days=1), first + timedelta(days=4))
    occ = [e for e in await assistenz.calendar_view([cal], *window) if e.subject == "Sprechstunde"]
    moved = dataclasses.replace(
        occ[1], start=occ[1].start + timedelta(hours=3), end=occ[1].end + timedelta(hours=3)
    )
    await assistenz.update(moved, ["start", "end"])
    hours = [
        e.start.hour
        for e in await assistenz.calendar_view([cal], *window)
        if e.subject == "Sprechstunde"
    ]
    assert sorted(hours) == [8, 8, 11]


async def test_task_start_and_due_can_be_changed(assistenz) -> None:
    tasks = await assistenz.default_folder(CHEF, "tasks")
    task = await assistenz.create(tasks, Task(subject="Vorlage prüfen"))
    due = datetime(2026, 12, 18, tzinfo=UTC)
    await assistenz.update(
        dataclasses.replace(task, start=due - timedelta(days=2), due=due), ["start", "due"]
    )
    got = await assistenz.get(task.id)
    assert isinstance(got, Task) and got.due is not None and got.due.date() == due.date()


async def test_attendee_proposes_a_new_time_and_the_organizer_sees_it(
    assistenz, session_for
) -> None:
    cal = await assistenz.default_folder(CHEF, "calendar")
    start = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) + timedelta(days=8)
    await assistenz.create(
        cal,
        Event(
            subject="Termin Stadtwerke",
            start=start,
            end=start + timedelta(hours=1),
            attendees=(Attendee(Address(SACHBEARBEITUNG)),),
            is_meeting=True,
        ),
    )
    lena = session_for(SACHBEARBEITUNG)
    inbox = await lena.default_folder(SACHBEARBEITUNG, "inbox")
    request = next(
        m
        for m in (await lena.items(inbox, ItemQuery(limit=20))).items
        if m.subject == "Termin Stadtwerke"
    )
    later = (start + timedelta(days=1), start + timedelta(days=1, hours=1))
    with pytest.raises(InvalidInput, match="tentative or decline"):
        await lena.respond(request.id, ResponseType.ACCEPT, proposal=later)
    past = (start - timedelta(days=30), start - timedelta(days=30, minutes=-30))
    with pytest.raises(InvalidInput, match="past"):
        await lena.respond(request.id, ResponseType.TENTATIVE, proposal=past)

    await lena.respond(request.id, ResponseType.TENTATIVE, "Geht erst morgen", proposal=later)

    boss_inbox = await assistenz.default_folder(CHEF, "inbox")
    answer = next(
        m
        for m in (await assistenz.items(boss_inbox, ItemQuery(limit=30))).items
        if m.subject.endswith("Termin Stadtwerke") and m.subject != "Termin Stadtwerke"
    )
    full = await assistenz.get(answer.id)
    assert isinstance(full, Message)
    assert full.proposed_time == later
