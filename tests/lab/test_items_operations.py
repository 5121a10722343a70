"""More item operations through exchangelib over HTTP: attachments and SendItem, move, copy,
archive, Author rights on a shared calendar, tasks, series masters."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from exchangelib import EWSDateTime, EWSTimeZone, FileAttachment, Mailbox, Message
from exchangelib.errors import ErrorAccessDenied
from exchangelib.folders import VoiceMail
from exchangelib.items import CalendarItem, Task
from exchangelib.recurrence import DailyPattern, Recurrence

from tests.lab.conftest import LabServer

CHEF = "chef@musterstadt.example"
ASSISTENZ = "assistenz@musterstadt.example"
SACHBEARBEITUNG = "sachbearbeitung@musterstadt.example"
TEAMKALENDER = "teamkalender@musterstadt.example"
BERLIN = EWSTimeZone("Europe/Berlin")


def test_draft_with_attachment_is_sent_with_send_item(lab: LabServer) -> None:
    chef = lab.account("chef")
    draft = Message(
        account=chef,
        folder=chef.drafts,
        subject="Vorlage Kreistag",
        body="Anbei die Vorlage.",
        to_recipients=[Mailbox(email_address=SACHBEARBEITUNG)],
    )
    draft.save()
    draft.attach(
        FileAttachment(name="vorlage.pdf", content=b"%PDF-1.4 lab", content_type="application/pdf")
    )
    draft.send()
    assert not chef.drafts.filter(subject="Vorlage Kreistag").exists()
    assert chef.sent.filter(subject="Vorlage Kreistag").exists()
    received = lab.account("sachbearbeitung").inbox.get(subject="Vorlage Kreistag")
    assert received.has_attachments
    [attachment] = received.attachments
    assert attachment.name == "vorlage.pdf"
    assert attachment.content == b"%PDF-1.4 lab"


def test_voicemail_recording_can_be_downloaded(lab: LabServer) -> None:
    chef = lab.account("chef")
    voicemail = chef.root.get_default_folder(VoiceMail)
    item = voicemail.all().order_by("-datetime_received")[0]
    assert item.item_class == "IPM.Note.Microsoft.Voicemail.UM.CA"
    [recording] = item.attachments
    assert recording.content_type == "audio/wav"
    assert recording.content[:4] == b"RIFF"


def test_move_copy_and_archive(lab: LabServer) -> None:
    chef = lab.account("chef")
    folder = chef.inbox / "Vorgänge"
    before = folder.all().count()
    message = chef.inbox.all().order_by("-datetime_received")[3]
    message.move(folder)
    assert folder.all().count() == before + 1
    copy_id = message.copy(chef.inbox)
    assert chef.inbox.get(id=copy_id[0]).subject == message.subject
    archived_before = chef.archive_inbox.all().count()
    oldest = chef.inbox.all().order_by("datetime_received")[0]
    oldest.archive(chef.inbox)
    assert chef.archive_inbox.all().count() == archived_before + 1
    assert not chef.inbox.filter(
        subject=oldest.subject, datetime_received=oldest.datetime_received
    ).exists()


def test_author_on_team_calendar_edits_own_items_only(lab: LabServer) -> None:
    tom = lab.account("assistenz", "teamkalender")
    start = EWSDateTime(2027, 5, 3, 8, 0, tzinfo=BERLIN)
    mine = CalendarItem(
        account=tom,
        folder=tom.calendar,
        subject="Dienstreise Tom",
        start=start,
        end=start + timedelta(hours=8),
    )
    mine.save()
    mine.location = "Berlin"
    mine.save(update_fields=["location"])
    theirs = tom.calendar.get(subject="Fortbildung Lena Koch")
    theirs.location = "Anderswo"
    with pytest.raises(ErrorAccessDenied):
        theirs.save(update_fields=["location"])
    with pytest.raises(ErrorAccessDenied):
        theirs.delete()
    assert tom.calendar.get(id=theirs.id).location != "Anderswo"
    mine.delete()


def test_delegate_completes_a_task_for_chef(lab: LabServer) -> None:
    tom = lab.account("assistenz", "chef")
    task = tom.tasks.get(subject="Stellungnahme Nahverkehrsplan abzeichnen")
    assert task.status == "NotStarted"
    task.status = "Completed"
    task.percent_complete = Decimal(100)
    task.save(update_fields=["status", "percent_complete"])
    done = tom.tasks.get(id=task.id)
    assert done.status == "Completed"
    new = Task(
        account=tom,
        folder=tom.tasks,
        subject="Reise buchen",
        due_date=EWSDateTime(2027, 1, 15, tzinfo=BERLIN).date(),
    )
    new.save()
    assert tom.tasks.filter(subject="Reise buchen").count() == 1


def test_changing_the_series_master_changes_every_occurrence(lab: LabServer) -> None:
    tom = lab.account("assistenz", "chef")
    start = EWSDateTime(2027, 6, 7, 7, 30, tzinfo=BERLIN)
    master = CalendarItem(
        account=tom,
        folder=tom.calendar,
        subject="Frühlage",
        start=start,
        end=start + timedelta(minutes=15),
        recurrence=Recurrence(pattern=DailyPattern(interval=1), start=start.date(), number=5),
    )
    master.save()
    window = (EWSDateTime(2027, 6, 1, tzinfo=BERLIN), EWSDateTime(2027, 6, 30, tzinfo=BERLIN))
    occurrence = next(o for o in tom.calendar.view(*window) if o.subject == "Frühlage")
    series = occurrence.recurring_master()
    series.subject = "Frühlage Leitstelle"
    series.save(update_fields=["subject"])
    subjects = [o.subject for o in tom.calendar.view(*window) if o.subject.startswith("Frühlage")]
    assert subjects == ["Frühlage Leitstelle"] * 5


def test_delegate_replies_and_forwards_for_chef(lab: LabServer) -> None:
    sender = lab.account("sachbearbeitung")
    original = Message(
        account=sender,
        subject="Frage zur Vorlage",
        body="Können wir die Vorlage bis Montag haben?",
        to_recipients=[Mailbox(email_address=CHEF)],
    )
    original.send(save_copy=False)
    tom = lab.account("assistenz", "chef")
    received = tom.inbox.get(subject="Frage zur Vorlage")
    received.attach(
        FileAttachment(name="entwurf.txt", content=b"Entwurf", content_type="text/plain")
    )
    # Without rights on chef's Sent Items a delegate sends without saving a copy itself;
    # the server files the copy in chef's Sent Items.
    received.create_reply(subject=None, body="Ja, bis Montag.").send(save_copy=False)
    received.create_forward(
        subject="WG: Frage zur Vorlage",
        body="Zur Kenntnis.",
        to_recipients=[Mailbox(email_address=ASSISTENZ)],
    ).send(save_copy=False)
    answer = sender.inbox.get(subject="RE: Frage zur Vorlage")
    assert answer.author.email_address == CHEF
    assert answer.sender.email_address == ASSISTENZ
    assert answer.body.startswith("Ja, bis Montag.")
    assert "Können wir die Vorlage" in answer.body
    forwarded = lab.account("assistenz").inbox.get(subject="WG: Frage zur Vorlage")
    assert [a.name for a in forwarded.attachments] == ["entwurf.txt"]
    chef_sent = lab.account("chef").sent
    assert chef_sent.filter(subject="RE: Frage zur Vorlage").exists()
