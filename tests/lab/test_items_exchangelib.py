"""Items in the lab through the unmodified exchangelib over HTTP, as a delegate would use them.

assistenz@ works in chef@'s mailbox with delegate access (Editor on Inbox, Calendar, Tasks;
Reviewer on Contacts; no ViewPrivateItems); sachbearbeitung@ has no rights on chef@.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from exchangelib import EWSDateTime, EWSTimeZone, ExtendedProperty, Mailbox, Message
from exchangelib.errors import ErrorAccessDenied
from exchangelib.items import CalendarItem, Contact, MeetingRequest
from exchangelib.recurrence import Recurrence, WeeklyPattern

import exlab.core.items as store_items
from tests.lab.conftest import LabServer

CHEF = "chef@musterstadt.example"
ASSISTENZ = "assistenz@musterstadt.example"
SACHBEARBEITUNG = "sachbearbeitung@musterstadt.example"
BERLIN = EWSTimeZone("Europe/Berlin")


class FlagStatus(ExtendedProperty):
    """PR_FLAG_STATUS, as Outlook sets it (2 = flagged, 1 = complete)."""

    property_tag = 0x1090
    property_type = "Integer"


Message.register("flag_status", FlagStatus)


def private_count(lab: LabServer, mailbox: str, folder: str) -> tuple[int, int]:
    store = lab.lab.store
    found = store.distinguished_folder(mailbox, folder)
    assert found is not None
    items = store_items.items_in(store, found.id)
    return len(items), sum(1 for i in items if i.is_private)


def test_delegate_pages_through_inbox_sorted_without_private_items(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    total, private = private_count(lab, CHEF, "inbox")
    assert total >= 250 and private >= 1
    qs = account.inbox.all().order_by("-datetime_received").only("subject", "datetime_received")
    qs.page_size = 37  # forces many IndexedPageItemView round trips
    items = list(qs)
    assert len(items) == total - private
    assert len({i.id for i in items}) == len(items)
    received = [i.datetime_received for i in items]
    assert received == sorted(received, reverse=True)
    owner = lab.account("chef")
    assert owner.inbox.all().count() == total


def test_private_item_is_denied_to_delegate_but_readable_by_owner(lab: LabServer) -> None:
    owner = lab.account("chef")
    private = owner.inbox.filter(sensitivity="Private")
    first = private[0]
    assert first.sensitivity == "Private"
    delegate = lab.account("assistenz", "chef")
    assert not delegate.inbox.filter(sensitivity="Private").exists()
    with pytest.raises(ErrorAccessDenied):
        list(delegate.fetch(ids=[(first.id, first.changekey)]))


def test_delegate_creates_updates_flags_and_deletes_in_chefs_inbox(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    before = account.inbox.all().count()
    msg = Message(
        account=account,
        folder=account.inbox,
        subject="Wiedervorlage Haushalt",
        body="Bitte bis Freitag prüfen.",
        importance="High",
        categories=["Rot"],
    )
    msg.save()
    assert account.inbox.all().count() == before + 1
    msg.subject = "Wiedervorlage Haushalt (dringend)"
    msg.flag_status = 2
    msg.save(update_fields=["subject", "flag_status"])
    fetched = account.inbox.get(id=msg.id)
    assert fetched.subject == "Wiedervorlage Haushalt (dringend)"
    assert fetched.flag_status == 2
    assert fetched.importance == "High" and fetched.categories == ["Rot"]
    flagged = account.inbox.filter(flag_status=2, subject__contains="Wiedervorlage")
    assert [m.id for m in flagged] == [msg.id]
    msg.delete()
    assert account.inbox.all().count() == before


def test_send_on_behalf_sets_from_owner_sender_delegate_and_copies_to_owners_sent_items(
    lab: LabServer,
) -> None:
    account = lab.account("assistenz", "chef")
    msg = Message(
        account=account,
        author=Mailbox(email_address=CHEF),
        subject="Terminbestätigung Kreisausschuss",
        body="Frau Dr. Berg nimmt teil.",
        to_recipients=[Mailbox(email_address=SACHBEARBEITUNG)],
    )
    msg.send(save_copy=False)
    owner = lab.account("chef")
    sent = owner.sent.get(subject="Terminbestätigung Kreisausschuss")
    assert sent.author.email_address == CHEF
    assert sent.sender.email_address == ASSISTENZ
    received = lab.account("sachbearbeitung").inbox.get(subject="Terminbestätigung Kreisausschuss")
    assert received.author.email_address == CHEF
    assert received.sender.email_address == ASSISTENZ
    assert received.is_read is False


def test_delegate_finds_a_request_in_the_boss_inbox_but_answers_into_own_sent_items(
    lab: LabServer,
) -> None:
    """Editor on the boss's Inbox lets the delegate list it (FindItem), not open her Sent
    Items: exchangelib's `request.accept()` in the boss's Account saves the answer there and
    is refused, as in Exchange; an answer from the delegate's own account goes through."""
    from exchangelib.items import AcceptItem
    from exchangelib.properties import ReferenceItemId

    lena = lab.account("sachbearbeitung")
    start = EWSDateTime.now(BERLIN).replace(microsecond=0) + timedelta(days=3)
    CalendarItem(
        account=lena,
        folder=lena.calendar,
        subject="Abstimmung Stellenplan",
        start=start,
        end=start + timedelta(hours=1),
        required_attendees=[CHEF],
    ).save(send_meeting_invitations="SendToAllAndSaveCopy")
    boss = lab.account("assistenz", "chef")
    request = boss.inbox.filter(subject="Abstimmung Stellenplan").only("subject")[0]
    assert isinstance(request, MeetingRequest)
    with pytest.raises(ErrorAccessDenied):
        _ = boss.sent
    with pytest.raises(ErrorAccessDenied):
        request.accept()
    meeting = boss.calendar.get(subject="Abstimmung Stellenplan")
    assert meeting.my_response_type != "Accept"  # the refused answer changed nothing
    me = lab.account("assistenz")
    AcceptItem(
        account=me,
        reference_item_id=ReferenceItemId(id=request.id, changekey=request.changekey),
    ).send()
    meeting = boss.calendar.get(subject="Abstimmung Stellenplan")
    assert meeting.my_response_type == "Accept"


def test_the_owners_sent_copy_of_mail_sent_on_behalf_is_filed_as_read(lab: LabServer) -> None:
    """Exchange files sent copies as read, whatever IsRead the client sent."""
    account = lab.account("assistenz")
    for subject in ("Direkt gesendet", "Aus dem Entwurf"):
        msg = Message(
            account=account,
            folder=account.drafts if subject == "Aus dem Entwurf" else None,
            author=Mailbox(email_address=CHEF),
            subject=subject,
            body="Gern.",
            to_recipients=[Mailbox(email_address=SACHBEARBEITUNG)],
        )
        if subject == "Aus dem Entwurf":
            msg.save()  # SendItem of a stored draft
        msg.send(save_copy=False)
    owner = lab.account("chef")
    for subject in ("Direkt gesendet", "Aus dem Entwurf"):
        assert owner.sent.get(subject=subject).is_read is True
    received = lab.account("sachbearbeitung").inbox.get(subject="Aus dem Entwurf")
    assert received.is_read is False


def test_reviewer_cannot_write_chefs_contacts_and_nothing_changes(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    before = account.contacts.all().count()
    assert before > 0
    with pytest.raises(ErrorAccessDenied):
        Contact(
            account=account, folder=account.contacts, display_name="Eva Neu", surname="Neu"
        ).save()
    existing = account.contacts.all()[0]
    existing.job_title = "Geändert"
    with pytest.raises(ErrorAccessDenied):
        existing.save(update_fields=["job_title"])
    assert account.contacts.all().count() == before
    assert account.contacts.get(id=existing.id).job_title != "Geändert"


def test_user_without_rights_cannot_touch_chefs_mailbox(lab: LabServer) -> None:
    account = lab.account("sachbearbeitung", "chef")
    with pytest.raises(ErrorAccessDenied):
        account.inbox.all().count()
    own = lab.account("assistenz", "chef")
    target = own.inbox.all().order_by("-datetime_received")[0]
    with pytest.raises(ErrorAccessDenied):
        list(account.bulk_delete(ids=[(target.id, target.changekey)]))
    assert own.inbox.get(id=target.id).subject == target.subject


def test_incremental_sync_reports_only_new_changes(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    folder = account.inbox
    creates = 0
    for change_type, _item in folder.sync_items(max_changes_returned=100, only_fields=["subject"]):
        assert change_type == "create"
        creates += 1
    assert creates == folder.all().count()
    state = folder.item_sync_state
    msg = Message(account=account, folder=folder, subject="Neu nach dem Sync")
    msg.save()
    msg.is_read = True
    msg.save(update_fields=["is_read"])
    old = folder.all().order_by("datetime_received")[0]
    old.delete()
    changes = list(folder.sync_items(sync_state=state, only_fields=["subject"]))
    kinds = sorted(kind for kind, _ in changes)
    assert kinds == ["create", "delete"]
    created = next(item for kind, item in changes if kind == "create")
    assert created.subject == "Neu nach dem Sync"
    assert list(folder.sync_items(sync_state=folder.item_sync_state)) == []


def test_streaming_subscription_sees_new_mail(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    subscription = account.inbox.subscribe_to_streaming()
    sender = lab.account("sachbearbeitung")
    Message(
        account=sender,
        subject="Eilt: Unterschrift benötigt",
        to_recipients=[Mailbox(email_address=CHEF)],
    ).send()
    events = []
    for notification in account.inbox.get_streaming_events(subscription, connection_timeout=1):
        events.extend(notification.events)
        break
    names = {type(e).__name__ for e in events}
    assert "NewMailEvent" in names
    new_id = next(e.item_id.id for e in events if type(e).__name__ == "NewMailEvent")
    assert account.inbox.get(id=new_id).subject == "Eilt: Unterschrift benötigt"
    account.inbox.unsubscribe(subscription)


def test_pull_subscription_reports_created_and_deleted(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    subscription, watermark = account.inbox.subscribe_to_pull()
    msg = Message(account=account, folder=account.inbox, subject="Pull-Test")
    msg.save()
    msg.delete()
    seen = []
    for notification in account.inbox.get_events(subscription, watermark):
        seen.extend(type(e).__name__ for e in notification.events)
    assert "CreatedEvent" in seen and "DeletedEvent" in seen
    account.inbox.unsubscribe(subscription)


def test_recurring_series_with_modified_and_deleted_occurrence_in_calendar_view(
    lab: LabServer,
) -> None:
    account = lab.account("assistenz", "chef")
    start = EWSDateTime(2027, 3, 1, 9, 0, tzinfo=BERLIN)  # a Monday
    master = CalendarItem(
        account=account,
        folder=account.calendar,
        subject="Abteilungsrunde",
        start=start,
        end=start + timedelta(hours=1),
        recurrence=Recurrence(
            pattern=WeeklyPattern(interval=1, weekdays=[1, 3]), start=start.date(), number=6
        ),
    )
    master.save()
    window = (EWSDateTime(2027, 2, 28, tzinfo=BERLIN), EWSDateTime(2027, 3, 31, tzinfo=BERLIN))
    occurrences = [o for o in account.calendar.view(*window) if o.subject == "Abteilungsrunde"]
    assert [o.start.astimezone(BERLIN).day for o in occurrences] == [1, 3, 8, 10, 15, 17]
    assert all(o.type == "Occurrence" for o in occurrences)
    moved = occurrences[1]
    moved.start += timedelta(hours=2)
    moved.end += timedelta(hours=2)
    moved.save(update_fields=["start", "end"])
    occurrences[2].delete()
    after = [o for o in account.calendar.view(*window) if o.subject == "Abteilungsrunde"]
    assert len(after) == 5
    assert [
        (o.start.astimezone(BERLIN).day, o.start.astimezone(BERLIN).hour, o.type) for o in after
    ][:3] == [(1, 9, "Occurrence"), (3, 11, "Exception"), (10, 9, "Occurrence")]
    fresh = account.calendar.get(id=master.id)
    assert fresh.type == "RecurringMaster"
    assert len(fresh.modified_occurrences) == 1
    assert len(fresh.deleted_occurrences) == 1


def test_delegate_accepts_meeting_for_chef(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    request = next(
        i
        for i in account.inbox.filter(subject="Abstimmung Fördermittel Breitband")
        if isinstance(i, MeetingRequest)
    )
    # Without rights on chef's Sent Items, a delegate answers with SendOnly.
    request.accept(message_disposition="SendOnly", body="Frau Dr. Berg kommt.")
    organizer = lab.account("sachbearbeitung")
    meeting = organizer.calendar.get(subject="Abstimmung Fördermittel Breitband")
    answers = {a.mailbox.email_address: a.response_type for a in meeting.required_attendees}
    assert answers[CHEF] == "Accept"
    reply = organizer.inbox.get(subject__startswith="Zugesagt")
    assert reply.author.email_address == CHEF
    assert reply.sender.email_address == ASSISTENZ
    chef_meeting = account.calendar.get(subject="Abstimmung Fördermittel Breitband")
    assert chef_meeting.my_response_type == "Accept"
