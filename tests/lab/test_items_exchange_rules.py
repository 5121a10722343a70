"""Item rules as Exchange applies them, over HTTP with exchangelib and raw SOAP.

Sent copies, moves, cut subjects, meeting answers Exchange refuses, subscription ids and
affinity, and SyncFolderItems with ids it does not know.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest
from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone, Mailbox, Message
from exchangelib.errors import ErrorItemNotFound

from tests.lab.conftest import LabServer
from tests.lab.schema import assert_valid_ews

CHEF = "chef@musterstadt.example"
ASSISTENZ = "assistenz@musterstadt.example"
SACHBEARBEITUNG = "sachbearbeitung@musterstadt.example"
M = "{http://schemas.microsoft.com/exchange/services/2006/messages}"
T = "{http://schemas.microsoft.com/exchange/services/2006/types}"
BERLIN = EWSTimeZone("Europe/Berlin")


def answer(response: httpx.Response, *, validate: bool = True) -> ET.Element:
    """The ResponseMessages of a schema-valid answer (`validate=False` for operations newer
    than the reference schemas)."""
    assert response.status_code == 200, response.text[:500]
    if validate:
        assert_valid_ews(response.content)
    found = ET.fromstring(response.content).find(f".//{M}ResponseMessages")
    assert found is not None
    return found


def code_of(messages: ET.Element) -> str:
    return messages[0].findtext(f"{M}ResponseCode", "")


def test_send_and_save_copy_answers_without_an_item_and_files_the_copy(lab: LabServer) -> None:
    messages = answer(
        lab.soap(
            "chef",
            '<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:SavedItemFolderId>'
            '<t:DistinguishedFolderId Id="sentitems"/></m:SavedItemFolderId><m:Items>'
            "<t:Message><t:Subject>Gesendet mit Kopie</t:Subject><t:ToRecipients><t:Mailbox>"
            f"<t:EmailAddress>{ASSISTENZ}</t:EmailAddress></t:Mailbox></t:ToRecipients>"
            "</t:Message></m:Items></m:CreateItem>",
        )
    )
    assert code_of(messages) == "NoError"
    items = messages[0].find(f"{M}Items")
    assert items is not None and len(items) == 0
    chef = lab.account("chef")
    assert chef.sent.filter(subject="Gesendet mit Kopie").count() == 1
    assert lab.account("assistenz").inbox.filter(subject="Gesendet mit Kopie").count() == 1


def test_the_recipient_copy_carries_no_sender_categories(lab: LabServer) -> None:
    chef = lab.account("chef")
    Message(
        account=chef,
        folder=chef.sent,
        subject="Mit Kategorien",
        body="Nur für mich farbig.",
        categories=["Rot", "Haushalt"],
        to_recipients=[Mailbox(email_address=ASSISTENZ)],
    ).send_and_save()
    received = lab.account("assistenz").inbox.get(subject="Mit Kategorien")
    assert received.categories is None
    sent = chef.sent.get(subject="Mit Kategorien")
    assert sent.categories == ["Rot", "Haushalt"]


def test_a_moved_item_gets_a_new_id_and_the_old_one_stops_resolving(lab: LabServer) -> None:
    chef = lab.account("chef")
    message = Message(account=chef, folder=chef.drafts, subject="Umzug")
    message.save()
    old_id, old_key = message.id, message.changekey
    message.move(chef.inbox)
    assert message.id != old_id
    [moved] = chef.fetch(ids=[(message.id, message.changekey)])
    assert moved.subject == "Umzug"
    [gone] = chef.fetch(ids=[(old_id, old_key)])
    assert isinstance(gone, ErrorItemNotFound)


def test_a_subject_is_cut_at_255_characters_without_splitting_a_character(
    lab: LabServer,
) -> None:
    long_subject = "Ä" * 254 + "😀" + "rest"  # the emoji needs two UTF-16 units: it cannot fit
    messages = answer(
        lab.soap(
            "chef",
            '<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message>'
            f"<t:Subject>{long_subject}</t:Subject></t:Message></m:Items></m:CreateItem>",
        )
    )
    item_id = messages[0].find(f"{M}Items/{T}Message/{T}ItemId")
    assert item_id is not None
    [item] = lab.account("chef").fetch(ids=[(item_id.get("Id"), item_id.get("ChangeKey"))])
    assert item.subject == "Ä" * 254


def _meeting(lab: LabServer, subject: str) -> CalendarItem:
    """sachbearbeitung@ invites chef@ (tomorrow 10:00 Berlin); the organizer's item."""
    organizer = lab.account("sachbearbeitung")
    start = EWSDateTime(2027, 3, 3, 10, 0, tzinfo=BERLIN)
    meeting = CalendarItem(
        account=organizer,
        folder=organizer.calendar,
        subject=subject,
        start=start,
        end=start.replace(hour=11),
        required_attendees=[CHEF],
    )
    meeting.save(send_meeting_invitations="SendToAllAndSaveCopy")
    return meeting


def _accept(lab: LabServer, user: str, item_id: str, kind: str, disposition: str = "") -> str:
    attribute = f' MessageDisposition="{disposition}"' if disposition else ""
    messages = answer(
        lab.soap(
            user,
            f"<m:CreateItem{attribute}><m:Items><t:{kind}>"
            f'<t:ReferenceItemId Id="{item_id}"/></t:{kind}></m:Items></m:CreateItem>',
        )
    )
    return code_of(messages)


def test_the_organizer_cannot_accept_or_decline_their_own_meeting(lab: LabServer) -> None:
    meeting = _meeting(lab, "Eigene Besprechung")
    for kind, answer_name in (
        ("AcceptItem", "Accept"),
        ("DeclineItem", "Decline"),
        ("TentativelyAcceptItem", "Tentative"),
    ):
        code = _accept(lab, "sachbearbeitung", meeting.id, kind, "SendAndSaveCopy")
        assert code == f"ErrorCalendarIsOrganizerFor{answer_name}"


def test_a_meeting_answer_needs_a_message_disposition(lab: LabServer) -> None:
    _meeting(lab, "Ohne Disposition")
    request = lab.account("chef").inbox.get(subject="Ohne Disposition")
    assert _accept(lab, "chef", request.id, "AcceptItem") == "ErrorMessageDispositionRequired"
    assert _accept(lab, "chef", request.id, "AcceptItem", "SendOnly") == "NoError"


def test_a_cancelled_meeting_cannot_be_accepted(lab: LabServer) -> None:
    meeting = _meeting(lab, "Abgesagt")
    meeting.delete(send_meeting_cancellations="SendToAllAndSaveCopy")
    chef = lab.account("chef")
    copy = chef.calendar.get(subject="Abgesagt")
    assert copy.is_cancelled
    code = _accept(lab, "chef", copy.id, "AcceptItem", "SendAndSaveCopy")
    assert code == "ErrorCalendarIsCancelledForAccept"
    code = _accept(lab, "chef", copy.id, "TentativelyAcceptItem", "SendAndSaveCopy")
    assert code == "ErrorCalendarIsCancelledForTentative"


def test_a_declined_meeting_moves_to_deleted_items(lab: LabServer) -> None:
    _meeting(lab, "Ablehnen")
    chef = lab.account("chef")
    request = chef.inbox.get(subject="Ablehnen")
    assert _accept(lab, "chef", request.id, "DeclineItem", "SendAndSaveCopy") == "NoError"
    assert not chef.calendar.filter(subject="Ablehnen").exists()
    binned = [i for i in chef.trash.filter(subject="Ablehnen") if isinstance(i, CalendarItem)]
    assert len(binned) == 1  # the calendar item itself, next to the answered request


@pytest.mark.parametrize("operation", ["GetEvents", "Unsubscribe"])
@pytest.mark.parametrize("bad_id", ["not-a-subscription", "AAMkADk0ZjFiZTcxLTk0NjItNDkwZC1i"])
def test_an_invalid_subscription_id_answers_error_invalid_subscription(
    lab: LabServer, operation: str, bad_id: str
) -> None:
    watermark = "<m:Watermark>AQAAAA==</m:Watermark>" if operation == "GetEvents" else ""
    messages = answer(
        lab.soap(
            "chef",
            f"<m:{operation}><m:SubscriptionId>{bad_id}</m:SubscriptionId>{watermark}"
            f"</m:{operation}>",
        )
    )
    assert code_of(messages) == "ErrorInvalidSubscription"


STREAMING = (
    "<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds>"
    '<t:DistinguishedFolderId Id="inbox"/></t:FolderIds><t:EventTypes>'
    "<t:EventType>NewMailEvent</t:EventType></t:EventTypes>"
    "</m:StreamingSubscriptionRequest></m:Subscribe>"
)


def test_streaming_subscribe_with_affinity_headers_sets_the_backend_cookie(
    lab: LabServer,
) -> None:
    response = lab.soap(
        "chef",
        STREAMING,
        headers={"X-AnchorMailbox": CHEF, "X-PreferServerAffinity": "true"},
    )
    assert code_of(answer(response)) == "NoError"
    cookie = response.cookies.get("X-BackEndOverrideCookie")
    assert cookie
    # The same anchor mailbox is routed to the same server every time.
    again = lab.soap(
        "chef", STREAMING, headers={"X-AnchorMailbox": CHEF, "X-PreferServerAffinity": "true"}
    )
    assert again.cookies.get("X-BackEndOverrideCookie") == cookie
    plain = lab.soap("chef", STREAMING)
    assert "X-BackEndOverrideCookie" not in plain.cookies


def test_sync_folder_items_ignoring_unknown_ids_still_answers_a_sync_state(
    lab: LabServer,
) -> None:
    messages = answer(
        lab.soap(
            "chef",
            "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
            '<m:SyncFolderId><t:DistinguishedFolderId Id="inbox"/></m:SyncFolderId>'
            '<m:Ignore><t:ItemId Id="AAMkADk0ZjFiZTcxLTk0NjItNDkwZC1iYzQ2LWI3ZTU="/>'
            '<t:ItemId Id="nonsense"/></m:Ignore>'
            "<m:MaxChangesReturned>5</m:MaxChangesReturned></m:SyncFolderItems>",
        )
    )
    assert code_of(messages) == "NoError"
    assert messages[0].findtext(f"{M}SyncState")


def test_get_server_time_zones_answers_every_windows_zone(lab: LabServer) -> None:
    messages = answer(lab.soap("chef", "<m:GetServerTimeZones/>", version="Exchange2010_SP2"))
    zones = {
        el.get("Id"): el
        for el in messages[0].findall(f"{M}TimeZoneDefinitions/{T}TimeZoneDefinition")
    }
    assert len(zones) >= 135
    for windows_id in (
        "Dateline Standard Time",
        "India Standard Time",
        "Line Islands Standard Time",
    ):
        assert windows_id in zones
    sydney = zones["AUS Eastern Standard Time"]
    assert sydney.get("Name") == "(UTC+10:00) Canberra, Melbourne, Sydney"
    months = {
        t.findtext(f"{T}To"): t.findtext(f"{T}Month")
        for t in sydney.iter(f"{T}RecurringDayTransition")
    }
    assert months == {"Dlt/1": "10", "Std": "4"}  # southern summer time
    protocol = lab.account("chef").protocol
    assert len(list(protocol.get_timezones(return_full_timezone_data=False))) == len(zones)


def test_aqs_query_string_searches_subject_body_and_sender(lab: LabServer) -> None:
    from exchangelib import Folder

    chef = lab.account("chef")
    folder = Folder(parent=chef.inbox, name="AQS-Suche")
    folder.save()
    for subject, body, sender in (
        ("Quartalsbericht Zebra", "Inhalt Alpha", "anna@extern.example"),
        ("Einladung", "Wir besprechen den Quartalsbericht.", "zeta@extern.example"),
        ("Sonstiges", "nichts", "quartal@extern.example"),
    ):
        Message(
            account=chef,
            folder=folder,
            subject=subject,
            body=body,
            author=Mailbox(email_address=sender),
        ).save()

    def found(query: str) -> set[str]:
        return {m.subject for m in folder.filter(query).only("subject")}

    assert found("subject:Quartalsbericht") == {"Quartalsbericht Zebra"}
    assert found("body:quartalsbericht") == {"Einladung"}
    assert found("Quartalsbericht") == {"Quartalsbericht Zebra", "Einladung"}
    assert found("quartal") == {"Quartalsbericht Zebra", "Einladung", "Sonstiges"}
    assert found("from:zeta@extern.example") == {"Einladung"}
    assert found("subject:Zebra OR subject:Einladung") == {"Quartalsbericht Zebra", "Einladung"}
    assert found("Quartalsbericht NOT body:besprechen") == {"Quartalsbericht Zebra"}
    assert found('"Inhalt Alpha"') == {"Quartalsbericht Zebra"}
    assert found('"Alpha Inhalt"') == set()


def test_the_organizer_cancels_a_meeting_with_cancel_calendar_item(lab: LabServer) -> None:
    meeting = _meeting(lab, "Absage per Cancel")
    meeting.cancel(new_body="Fällt leider aus.")
    organizer = lab.account("sachbearbeitung")
    assert not organizer.calendar.filter(subject="Absage per Cancel").exists()
    assert organizer.sent.filter(subject="Absage per Cancel").exists()
    chef = lab.account("chef")
    assert chef.calendar.get(subject="Absage per Cancel").is_cancelled
    notices = [
        i.item_class for i in chef.inbox.filter(subject="Absage per Cancel").only("item_class")
    ]
    assert "IPM.Schedule.Meeting.Canceled" in notices


def test_only_the_organizer_may_cancel_a_meeting(lab: LabServer) -> None:
    _meeting(lab, "Nicht meine")
    copy = lab.account("chef").calendar.get(subject="Nicht meine")
    messages = answer(
        lab.soap(
            "chef",
            '<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:CancelCalendarItem>'
            f'<t:ReferenceItemId Id="{copy.id}"/></t:CancelCalendarItem></m:Items>'
            "</m:CreateItem>",
        )
    )
    assert code_of(messages) == "ErrorCalendarIsNotOrganizer"


def test_a_distribution_list_keeps_its_members(lab: LabServer) -> None:
    from exchangelib.items import DistributionList
    from exchangelib.properties import Member

    chef = lab.account("chef")
    group = DistributionList(
        account=chef,
        folder=chef.contacts,
        display_name="Amtsleitung",
        members=[
            Member(mailbox=Mailbox(name="Tom Weber", email_address=ASSISTENZ)),
            Member(mailbox=Mailbox(name="Extern", email_address="extern@partner.example")),
        ],
    )
    group.save()
    [stored] = chef.fetch(ids=[(group.id, group.changekey)])
    assert isinstance(stored, DistributionList)
    assert stored.item_class == "IPM.DistList"
    assert stored.display_name == "Amtsleitung"
    assert {m.mailbox.email_address for m in stored.members} == {
        ASSISTENZ,
        "extern@partner.example",
    }
    listed = [i for i in chef.contacts.all() if isinstance(i, DistributionList)]
    assert [i.display_name for i in listed] == ["Amtsleitung"]


def test_a_message_carries_attached_items_with_their_own_attachments(lab: LabServer) -> None:
    from exchangelib import FileAttachment, ItemAttachment

    note = "VGFnZXNvcmRudW5n"  # base64 of b"Tagesordnung"
    messages = answer(
        lab.soap(
            "chef",
            '<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:Message>'
            "<t:Subject>Unterlagen als Anhang</t:Subject>"
            "<t:Attachments>"
            "<t:ItemAttachment><t:Name>Weitergeleitet</t:Name><t:Message>"
            "<t:Subject>Ursprüngliche Nachricht</t:Subject>"
            '<t:Body BodyType="Text">Siehe Anlage.</t:Body>'
            "<t:Attachments><t:FileAttachment><t:Name>tagesordnung.txt</t:Name>"
            f"<t:ContentType>text/plain</t:ContentType><t:Content>{note}</t:Content>"
            "</t:FileAttachment></t:Attachments></t:Message></t:ItemAttachment>"
            "<t:ItemAttachment><t:Name>Termin</t:Name><t:CalendarItem>"
            "<t:Subject>Ortstermin</t:Subject><t:Start>2027-02-02T09:00:00Z</t:Start>"
            "<t:End>2027-02-02T10:00:00Z</t:End></t:CalendarItem></t:ItemAttachment>"
            "</t:Attachments><t:ToRecipients><t:Mailbox>"
            f"<t:EmailAddress>{ASSISTENZ}</t:EmailAddress></t:Mailbox></t:ToRecipients>"
            "</t:Message></m:Items></m:CreateItem>",
        )
    )
    assert code_of(messages) == "NoError"
    received = lab.account("assistenz").inbox.get(subject="Unterlagen als Anhang")
    attached = {a.name: a for a in received.attachments}
    assert set(attached) == {"Weitergeleitet", "Termin"}
    forwarded = attached["Weitergeleitet"]
    assert isinstance(forwarded, ItemAttachment)
    assert isinstance(forwarded.item, Message)
    assert forwarded.item.subject == "Ursprüngliche Nachricht"
    [inner] = forwarded.item.attachments
    assert isinstance(inner, FileAttachment)
    assert inner.name == "tagesordnung.txt"
    assert inner.content == b"Tagesordnung"
    event = attached["Termin"].item
    assert isinstance(event, CalendarItem)
    assert event.subject == "Ortstermin"
    assert event.start == EWSDateTime(2027, 2, 2, 9, 0, tzinfo=EWSTimeZone("UTC"))


def test_exchangelib_attaches_an_event_to_a_saved_message(lab: LabServer) -> None:
    from exchangelib import ItemAttachment

    chef = lab.account("chef")
    start = EWSDateTime(2027, 4, 1, 14, 0, tzinfo=BERLIN)
    message = Message(account=chef, folder=chef.drafts, subject="Mit Termin")
    message.save()
    message.attach(
        ItemAttachment(
            name="Klausur",
            item=CalendarItem(subject="Klausurtagung", start=start, end=start.replace(hour=17)),
        )
    )
    [stored] = chef.fetch(ids=[(message.id, None)])
    [attachment] = stored.attachments
    assert attachment.item.subject == "Klausurtagung"
    assert attachment.item.start == start


def _archive(lab: LabServer, folder_id: str, item_id: str) -> str:
    return code_of(
        answer(
            lab.soap(
                "chef",
                f'<m:ArchiveItem><m:ArchiveSourceFolderId><t:FolderId Id="{folder_id}"/>'
                f'</m:ArchiveSourceFolderId><m:ItemIds><t:ItemId Id="{item_id}"/>'
                "</m:ItemIds></m:ArchiveItem>",
                version="Exchange2013",
            ),
            validate=False,  # ArchiveItem is newer than the reference schemas
        )
    )


def test_archive_item_keeps_the_folder_path_in_the_archive(lab: LabServer) -> None:
    chef = lab.account("chef")
    cases = chef.inbox / "Vorgänge"
    message = Message(account=chef, folder=cases, subject="Akte Brückenbau")
    message.save()
    message.archive(cases)
    archived_cases = chef.archive_inbox / "Vorgänge"
    archived = archived_cases.get(subject="Akte Brückenbau")
    assert not cases.filter(subject="Akte Brückenbau").exists()
    event = chef.calendar.all().order_by("start")[0]
    code = _archive(lab, chef.calendar.id, event.id)
    assert code == "ErrorCannotArchiveCalendarContactTaskFolderException"
    assert (
        _archive(lab, archived_cases.id, archived.id) == "ErrorCannotArchiveItemsInArchiveMailbox"
    )
