"""DelegateSession over the EWS backend against the lab over HTTP, as the demo users."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from med import (
    AccessDenied,
    Address,
    BadCredentials,
    EditScope,
    Event,
    EventKind,
    FlagStatus,
    FolderKind,
    ItemQuery,
    LastVerb,
    Mailbox,
    MailboxEventKind,
    MailboxKind,
    Message,
    Recurrence,
    ResponseType,
    Role,
    SendOptions,
    Sensitivity,
    SyncChange,
    SyncChangeKind,
    SyncCheckpoint,
    Task,
    Throttled,
    Unreachable,
    Weekday,
    Weekly,
)
from tests.e2e.conftest import (
    ASSISTENZ,
    CHEF,
    POSTSTELLE,
    SACHBEARBEITUNG,
    TEAMKALENDER,
    backend_for,
)

CHEF_BOX = Mailbox(CHEF, "Dr. Anna Berg", MailboxKind.DELEGATED)


def week_of(now: datetime) -> tuple[datetime, datetime]:
    start = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=now.weekday())
    return start, start + timedelta(days=7)


async def test_assistant_sees_own_delegated_functional_shared_and_public(assistenz) -> None:
    boxes = {(b.address, b.kind) for b in await assistenz.mailboxes()}
    assert (ASSISTENZ, MailboxKind.OWN) in boxes
    assert (CHEF, MailboxKind.DELEGATED) in boxes
    assert (POSTSTELLE, MailboxKind.FUNCTIONAL) in boxes
    assert (TEAMKALENDER, MailboxKind.SHARED) in boxes
    assert ("public", MailboxKind.PUBLIC) in boxes
    # The boss's archive is not shared with the assistant; only the boss sees it.
    assert (CHEF, MailboxKind.ARCHIVE) not in boxes


async def test_boss_sees_own_archive_tree(session_for) -> None:
    chef = session_for(CHEF)
    boxes = await chef.mailboxes()
    archive = next(b for b in boxes if b.kind is MailboxKind.ARCHIVE)
    tree = await chef.folder_tree(archive)
    assert tree.folder.archive and len(tree.walk()) > 1


async def test_delegate_folder_tree_marks_folders_and_rights(assistenz) -> None:
    tree = await assistenz.folder_tree(CHEF_BOX)
    by_name = {f.distinguished: f for f in tree.walk() if f.distinguished}
    inbox, contacts = by_name["inbox"], by_name["contacts"]
    assert by_name["calendar"].kind is FolderKind.CALENDAR
    assert inbox.rights is not None and inbox.rights.create_items and inbox.rights.can_read_items
    assert contacts.rights is not None and contacts.rights.can_read_items
    assert not contacts.rights.create_items  # Reviewer
    assert not inbox.rights.view_private
    subfolders = [f for f in tree.walk() if f.parent_id == inbox.id]
    assert subfolders, "the boss's inbox subfolders are visible to the delegate"


async def test_public_folder_tree_has_all_five_kinds(assistenz) -> None:
    tree = await assistenz.folder_tree(Mailbox("public", "Public Folders", MailboxKind.PUBLIC))
    kinds = {f.kind for f in tree.walk()}
    assert {
        FolderKind.MAIL,
        FolderKind.CALENDAR,
        FolderKind.CONTACTS,
        FolderKind.TASKS,
        FolderKind.NOTES,
    } <= kinds
    names = {f.name for f in tree.walk()}
    assert {"Verwaltung", "Termine Kreistag", "Adressen extern"} <= names


async def test_pages_are_newest_first_and_do_not_overlap(assistenz) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    first = await assistenz.items(inbox, ItemQuery(limit=50))
    second = await assistenz.items(inbox, ItemQuery(offset=50, limit=50))
    assert len(first.items) == 50 and first.more
    received = [m.received for m in first.items]
    assert received == sorted(received, reverse=True)
    assert not {m.id for m in first.items} & {m.id for m in second.items}
    assert first.items[-1].received >= second.items[0].received


async def test_delegate_without_view_private_items_sees_no_private_mail(
    assistenz, session_for
) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    seen = [m async for m in assistenz.iter_items(inbox, ItemQuery(limit=200))]
    assert all(m.sensitivity is not Sensitivity.PRIVATE for m in seen)
    chef = session_for(CHEF)
    own_inbox = await chef.default_folder(CHEF, "inbox")
    mine = [m async for m in chef.iter_items(own_inbox, ItemQuery(limit=200))]
    assert any(m.sensitivity is Sensitivity.PRIVATE for m in mine)


async def test_filters_unread_and_search(assistenz) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    unread = await assistenz.items(inbox, ItemQuery(unread_only=True, limit=20))
    assert unread.items and all(not m.is_read for m in unread.items)
    found = await assistenz.items(inbox, ItemQuery(search="Kreistag", limit=20))
    assert found.items and all(
        "kreistag" in (m.subject + (m.body or "")).lower() for m in found.items
    )


async def test_full_read_attachments_to_disk_and_mime(assistenz, tmp_path: Path) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    page = await assistenz.items(inbox, ItemQuery(limit=100))
    listed = next(m for m in page.items if m.has_attachments)
    assert listed.body is None  # lists carry no bodies
    full = await assistenz.get(listed.id)
    assert full.body and full.attachments
    saved = await assistenz.save_attachment(full.attachments[0], tmp_path)
    content = await assistenz.attachment(full.attachments[0])
    assert saved.read_bytes() == content.content and content.content
    mime = await assistenz.export_mime(full)
    assert b"Subject:" in mime and b"From:" in mime


async def test_flag_due_complete_clear_categories_and_read(assistenz) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    (msg,) = (await assistenz.items(inbox, ItemQuery(limit=1))).items
    due = datetime(2026, 12, 1, 9, tzinfo=UTC)
    await assistenz.set_flag(msg, FlagStatus.FLAGGED, due=due)
    flagged = await assistenz.get(msg.id)
    assert flagged.flag.status is FlagStatus.FLAGGED and flagged.flag.due == due
    assert msg.id in {
        m.id for m in (await assistenz.items(inbox, ItemQuery(flagged_only=True, limit=200))).items
    }
    await assistenz.set_flag(flagged, FlagStatus.COMPLETE)
    assert (await assistenz.get(msg.id)).flag.status is FlagStatus.COMPLETE
    await assistenz.set_flag(await assistenz.get(msg.id), FlagStatus.NOT_FLAGGED)
    assert (await assistenz.get(msg.id)).flag.status is FlagStatus.NOT_FLAGGED
    await assistenz.set_categories(await assistenz.get(msg.id), ["Wiedervorlage", "Kreistag"])
    assert (await assistenz.get(msg.id)).categories == ("Wiedervorlage", "Kreistag")
    current = await assistenz.get(msg.id)
    assert isinstance(current, Message)
    await assistenz.mark_read(current, not current.is_read)
    assert (await assistenz.get(msg.id)).is_read is (not current.is_read)


async def test_appointment_create_edit_delete_in_boss_calendar(assistenz) -> None:
    cal = await assistenz.default_folder(CHEF, "calendar")
    start = datetime(2026, 12, 3, 10, tzinfo=UTC)
    created = await assistenz.create(
        cal,
        Event(
            subject="Ortstermin Schule",
            start=start,
            end=start + timedelta(hours=1),
            location="Gymnasium",
        ),
    )
    await assistenz.update(
        dataclasses.replace(created, subject="Ortstermin Gymnasium"), ["subject"]
    )
    view = await assistenz.calendar_view(
        [cal], start - timedelta(hours=1), start + timedelta(hours=2)
    )
    assert [e.subject for e in view if e.id == created.id] == ["Ortstermin Gymnasium"]
    await assistenz.delete(created)
    view = await assistenz.calendar_view(
        [cal], start - timedelta(hours=1), start + timedelta(hours=2)
    )
    assert created.id not in {e.id for e in view}


async def test_series_expands_one_occurrence_edited_then_series_deleted(assistenz) -> None:
    cal = await assistenz.default_folder(CHEF, "calendar")
    first = datetime(2027, 1, 4, 7, tzinfo=UTC)  # a Monday
    series = Event(
        subject="Jour fixe Klinik",
        start=first,
        end=first + timedelta(minutes=30),
        recurrence=Recurrence(Weekly((Weekday.MONDAY,)), first.date(), count=4),
    )
    await assistenz.create(cal, series)
    window = (first - timedelta(days=1), first + timedelta(days=35))
    occurrences = [
        e
        for e in await assistenz.calendar_view([cal], *window)
        if e.subject.startswith("Jour fixe Klinik")
    ]
    assert [o.start.date() for o in occurrences] == [
        date(2027, 1, 4) + timedelta(weeks=i) for i in range(4)
    ]
    assert all(o.event_kind is EventKind.OCCURRENCE for o in occurrences)
    await assistenz.update(
        dataclasses.replace(occurrences[1], subject="Jour fixe Klinik (Raum 2)"), ["subject"]
    )
    after = sorted(
        (
            e
            for e in await assistenz.calendar_view([cal], *window)
            if e.subject.startswith("Jour fixe Klinik")
        ),
        key=lambda e: e.start,
    )
    assert [e.subject for e in after] == [
        "Jour fixe Klinik",
        "Jour fixe Klinik (Raum 2)",
        "Jour fixe Klinik",
        "Jour fixe Klinik",
    ]
    await assistenz.delete(after[0], series=True)
    assert not [
        e
        for e in await assistenz.calendar_view([cal], *window)
        if e.subject.startswith("Jour fixe Klinik")
    ]


async def test_calendars_overlay_boss_and_team(assistenz) -> None:
    boss = await assistenz.default_folder(CHEF, "calendar")
    team = await assistenz.default_folder(TEAMKALENDER, "calendar")
    start = datetime(2026, 12, 7, 9, tzinfo=UTC)
    await assistenz.create(
        team, Event(subject="Teamrunde", start=start, end=start + timedelta(hours=1))
    )
    await assistenz.create(
        boss, Event(subject="Bürgersprechstunde", start=start, end=start + timedelta(hours=2))
    )
    events = await assistenz.calendar_view([boss, team], start, start + timedelta(hours=3))
    assert {(e.subject, e.mailbox) for e in events} >= {
        ("Teamrunde", TEAMKALENDER),
        ("Bürgersprechstunde", CHEF),
    }


async def test_reviewer_folder_refuses_create_before_the_server(assistenz) -> None:
    tree = await assistenz.folder_tree(CHEF_BOX)
    contacts = next(f for f in tree.walk() if f.distinguished == "contacts")
    before = contacts.total_count
    from med import Contact

    with pytest.raises(AccessDenied, match=r"Kontakte|contacts"):
        await assistenz.create(contacts, Contact(display_name="Neu", subject="Neu"))
    assert (await assistenz.folder(contacts.id, refresh=True)).total_count == before


async def test_user_without_rights_gets_access_denied_from_the_server(sachbearbeitung) -> None:
    with pytest.raises(AccessDenied) as err:
        await sachbearbeitung.default_folder(CHEF, "inbox")
    assert err.value.code == "ErrorAccessDenied" and err.value.mailbox == CHEF
    with pytest.raises(AccessDenied):
        await sachbearbeitung.folder_tree(CHEF_BOX)


async def test_send_on_behalf_sets_from_and_sender(assistenz, session_for) -> None:
    await assistenz.send(
        Message(subject="Termin bestätigt", body="Gruß", to=(Address(SACHBEARBEITUNG),)),
        SendOptions(from_mailbox=CHEF),
    )
    lena = session_for(SACHBEARBEITUNG)
    inbox = await lena.default_folder(SACHBEARBEITUNG, "inbox")
    got = next(
        m
        for m in (await lena.items(inbox, ItemQuery(limit=10))).items
        if m.subject == "Termin bestätigt"
    )
    assert isinstance(got, Message)
    assert got.from_ and got.from_.email == CHEF
    assert got.sender and got.sender.email == ASSISTENZ
    chef = session_for(CHEF)
    sent = await chef.default_folder(CHEF, "sentitems")
    assert "Termin bestätigt" in {m.subject for m in (await chef.items(sent, ItemQuery())).items}


async def test_reply_on_behalf_reaches_the_original_sender(assistenz, session_for) -> None:
    lena = session_for(SACHBEARBEITUNG)
    await lena.send(Message(subject="Frage zur Vorlage", body="?", to=(Address(CHEF),)))
    inbox = await assistenz.default_folder(CHEF, "inbox")
    question = next(
        m
        for m in (await assistenz.items(inbox, ItemQuery(limit=10))).items
        if m.subject == "Frage zur Vorlage"
    )
    await assistenz.reply(question, "Antwort folgt.", options=SendOptions(from_mailbox=CHEF))
    lena_inbox = await lena.default_folder(SACHBEARBEITUNG, "inbox")
    answer = next(
        m
        for m in (await lena.items(lena_inbox, ItemQuery(limit=10))).items
        if "Frage zur Vorlage" in m.subject and m.subject != "Frage zur Vorlage"
    )
    assert answer.from_ and answer.from_.email == CHEF


async def test_sending_for_a_mailbox_without_rights_is_denied(sachbearbeitung) -> None:
    with pytest.raises(AccessDenied):
        await sachbearbeitung.send(
            Message(subject="x", body="x", to=(Address(ASSISTENZ),)), SendOptions(from_mailbox=CHEF)
        )


async def test_respond_to_meeting_request_on_behalf(assistenz) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    requests = [
        m
        for m in (await assistenz.items(inbox, ItemQuery(limit=200))).items
        if (m.item_class or "").startswith("IPM.Schedule.Meeting.Request")
    ]
    assert requests, "the demo inbox holds meeting requests"
    await assistenz.respond(requests[0].id, ResponseType.TENTATIVE, "Wird geprüft")


async def test_owner_sets_and_reads_folder_permissions(session_for) -> None:
    chef = session_for(CHEF)
    cal = await chef.default_folder(CHEF, "calendar")
    await chef.set_permission(cal, SACHBEARBEITUNG, Role.REVIEWER)
    perms = {p.principal: p.role for p in await chef.permissions(cal)}
    assert perms[SACHBEARBEITUNG] is Role.REVIEWER
    assert perms[ASSISTENZ] is Role.EDITOR


async def test_delegate_cannot_change_boss_permissions(assistenz) -> None:
    cal = await assistenz.default_folder(CHEF, "calendar")
    with pytest.raises(AccessDenied):
        await assistenz.set_permission(cal, SACHBEARBEITUNG, Role.OWNER)


async def test_owner_sees_delegates(session_for) -> None:
    chef = session_for(CHEF)
    delegates, _delivery = await chef.delegates(CHEF)
    tom = next(d for d in delegates if d.address == ASSISTENZ)
    assert tom.levels["calendar"].value == "Editor" and tom.levels["contacts"].value == "Reviewer"
    assert not tom.view_private


async def test_incremental_sync_reports_new_item_and_nothing_after(assistenz) -> None:
    tasks = await assistenz.default_folder(CHEF, "tasks")
    state = None
    initial = 0
    async for event in assistenz.sync(tasks):
        if isinstance(event, SyncChange):
            initial += 1
        else:
            state = event.state
    assert initial == tasks.total_count
    created = await assistenz.create(tasks, Task(subject="Akte Müller anfordern"))
    events = [e async for e in assistenz.sync(tasks, state)]
    changes = [e for e in events if isinstance(e, SyncChange)]
    assert [(c.kind, c.item_id) for c in changes] == [(SyncChangeKind.CREATED, created.id)]
    last = events[-1]
    assert isinstance(last, SyncCheckpoint) and last.done
    assert [e async for e in assistenz.sync(tasks, last.state)] == [
        SyncCheckpoint(state=last.state, done=True)
    ]


async def test_subscription_reports_new_mail(assistenz, session_for) -> None:
    inbox = await assistenz.default_folder(CHEF, "inbox")
    stream = assistenz.subscribe([inbox])
    lena = session_for(SACHBEARBEITUNG)

    async def first_item_event():
        async for event in stream:
            if event.kind in (MailboxEventKind.NEW_MAIL, MailboxEventKind.CREATED):
                return event
        return None

    waiter = asyncio.create_task(first_item_event())
    await asyncio.sleep(0.5)
    await lena.send(Message(subject="Eilt", body="!", to=(Address(CHEF),)))
    event = await asyncio.wait_for(waiter, timeout=30)
    await stream.aclose()
    assert event is not None and event.item_id


async def test_throttling_back_off_is_honoured_then_succeeds(lab, session_for) -> None:
    knobs = lab.lab.knobs
    # Five requests against a budget of three in a window they cannot outlast on a slow machine.
    knobs.throttle_window_s = 3.0
    knobs.throttle_back_off_ms = 200
    knobs.throttle_budget = {ASSISTENZ: 3}
    session = session_for(ASSISTENZ, max_wait_s=8.0)
    inbox = await session.default_folder(CHEF, "inbox")
    for _ in range(4):
        await session.items(inbox, ItemQuery(limit=5))
    assert knobs.throttled >= 1


async def test_throttling_beyond_patience_raises_throttled_with_retry_after(
    lab, session_for
) -> None:
    knobs = lab.lab.knobs
    knobs.throttle_window_s = 30.0
    knobs.throttle_back_off_ms = 5000
    knobs.throttle_budget = {ASSISTENZ: 2}
    session = session_for(ASSISTENZ, max_wait_s=1.0)
    inbox = await session.default_folder(CHEF, "inbox")
    with pytest.raises(Throttled) as err:
        for _ in range(4):
            await session.items(inbox, ItemQuery(limit=5))
    assert err.value.retry_after is not None and err.value.retry_after >= 1


async def test_outage_is_unreachable_and_recovers_after_restart(lab, session_for) -> None:
    session = session_for(ASSISTENZ, max_wait_s=1.0)
    inbox = await session.default_folder(CHEF, "inbox")
    lab.lab.knobs.outage = True
    with pytest.raises(Unreachable):
        await session.items(inbox, ItemQuery(limit=5))
    lab.lab.knobs.outage = False
    lab.restart()
    page = await session.items(inbox, ItemQuery(limit=5))
    assert len(page.items) == 5


async def test_wrong_password_fails_at_once_as_bad_credentials(lab) -> None:
    backend = backend_for(lab, ASSISTENZ, password="falsch", max_wait_s=60.0)
    loop = asyncio.get_running_loop()
    with pytest.raises(BadCredentials):
        await asyncio.wait_for(loop.run_in_executor(None, backend.own_mailbox), timeout=20)
    backend.close()


async def test_replied_and_forwarded_mail_is_marked_in_the_list(assistenz, session_for) -> None:
    lena = session_for(SACHBEARBEITUNG)
    for subject in ("Zu beantworten", "Weiterzuleiten", "Nur gelesen"):
        await lena.send(Message(subject=subject, body="?", to=(Address(CHEF),)))
    inbox = await assistenz.default_folder(CHEF, "inbox")

    async def listed() -> dict[str, Message]:
        page = await assistenz.items(inbox, ItemQuery(limit=20))
        return {m.subject: m for m in page.items if isinstance(m, Message)}

    mails = await listed()
    on_behalf = SendOptions(from_mailbox=CHEF)
    await assistenz.reply(mails["Zu beantworten"], "Erledigt.", options=on_behalf)
    await assistenz.forward(
        mails["Weiterzuleiten"], [SACHBEARBEITUNG], "Bitte übernehmen.", options=on_behalf
    )
    mails = await listed()
    assert mails["Zu beantworten"].last_verb is LastVerb.REPLIED
    assert mails["Weiterzuleiten"].last_verb is LastVerb.FORWARDED
    assert mails["Nur gelesen"].last_verb is None


async def test_full_access_to_a_shared_mailbox_edits_and_deletes_every_item(assistenz) -> None:
    # The team's FullAccess is a mailbox permission: no folder entry names assistenz, and the
    # folders' Default entry grants nothing, yet the server lets her change every item.
    inbox = await assistenz.default_folder(POSTSTELLE, "inbox")
    assert inbox.rights is not None
    assert inbox.rights.edit is EditScope.ALL and inbox.rights.delete is EditScope.ALL
    mail = (await assistenz.items(inbox, ItemQuery(limit=1))).items[0]
    await assistenz.delete(mail)
    remaining = (await assistenz.items(inbox, ItemQuery(limit=50))).items
    assert mail.id not in {m.id for m in remaining}
