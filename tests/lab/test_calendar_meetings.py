"""Meeting invitations, delegate delivery settings and responses, in process over SOAP."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest

from exlab import Lab
from exlab.core import items as store_items
from tests.lab.items_soap import ASSISTENZ, CHEF, M, T, call, codes, demo_lab, folder_of

SACHBEARBEITUNG = "sachbearbeitung@musterstadt.example"
LEITSTELLE = "leitstelle@musterstadt.example"


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from demo_lab()


def invite(lab: Lab, subject: str, attendees: list[str]) -> str:
    people = "".join(
        f"<t:Attendee><t:Mailbox><t:EmailAddress>{a}</t:EmailAddress></t:Mailbox></t:Attendee>"
        for a in attendees
    )
    messages = call(
        lab,
        SACHBEARBEITUNG,
        '<m:CreateItem SendMeetingInvitations="SendToAllAndSaveCopy"><m:Items><t:CalendarItem>'
        f"<t:Subject>{subject}</t:Subject><t:Start>2027-02-01T09:00:00Z</t:Start>"
        f"<t:End>2027-02-01T10:00:00Z</t:End><t:RequiredAttendees>{people}"
        "</t:RequiredAttendees></t:CalendarItem></m:Items></m:CreateItem>",
    )
    assert codes(messages) == ["NoError"]
    item_id = messages[0].find(f"{M}Items/{T}CalendarItem/{T}ItemId")
    assert item_id is not None
    return str(item_id.get("Id"))


def requests_in(lab: Lab, mailbox: str, subject: str) -> list[store_items.Item]:
    inbox = folder_of(lab, mailbox, "inbox")
    return [
        i
        for i in store_items.items_in(lab.store, inbox)
        if i.item_class == "IPM.Schedule.Meeting.Request" and i.props["item:Subject"] == subject
    ]


def test_invitation_reaches_attendee_delegate_and_owner_copy(lab: Lab) -> None:
    invite(lab, "Haushaltsklausur", [CHEF, LEITSTELLE])
    chef_copy = requests_in(lab, CHEF, "Haushaltsklausur")
    delegate_copy = requests_in(lab, ASSISTENZ, "Haushaltsklausur")
    assert len(chef_copy) == 1 and len(delegate_copy) == 1
    # chef's setting is "delegates, and send information to me".
    assert chef_copy[0].props["meetingRequest:MeetingRequestType"] == "PrincipalWantsCopy"
    assert delegate_copy[0].props["meeting:IsDelegated"] is True
    assert delegate_copy[0].props["message:ReceivedRepresenting"]["email"] == CHEF
    assert len(requests_in(lab, LEITSTELLE, "Haushaltsklausur")) == 1
    chef_calendar = folder_of(lab, CHEF, "calendar")
    tentative = [
        i
        for i in store_items.items_in(lab.store, chef_calendar)
        if i.props.get("item:Subject") == "Haushaltsklausur"
    ]
    assert tentative[0].props["calendar:LegacyFreeBusyStatus"] == "Tentative"


def test_delegates_only_setting_keeps_requests_out_of_owners_inbox(lab: Lab) -> None:
    lab.store.update_mailbox(CHEF, meeting_delivery="DelegatesOnly")
    invite(lab, "Nur Vertretung", [CHEF])
    assert requests_in(lab, CHEF, "Nur Vertretung") == []
    assert len(requests_in(lab, ASSISTENZ, "Nur Vertretung")) == 1


def test_decline_by_delegate_removes_meeting_and_tells_organizer(lab: Lab) -> None:
    invite(lab, "Ablehnen bitte", [CHEF])
    request = requests_in(lab, ASSISTENZ, "Ablehnen bitte")[0]
    from exlab.core.targets import item_ews_id

    messages = call(
        lab,
        ASSISTENZ,
        '<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:DeclineItem>'
        f'<t:ReferenceItemId Id="{item_ews_id(request)}"/></t:DeclineItem></m:Items>'
        "</m:CreateItem>",
    )
    assert codes(messages) == ["NoError"]
    chef_calendar = folder_of(lab, CHEF, "calendar")
    assert not any(
        i.props.get("item:Subject") == "Ablehnen bitte"
        for i in store_items.items_in(lab.store, chef_calendar)
    )
    organizer_cal = folder_of(lab, SACHBEARBEITUNG, "calendar")
    meeting = next(
        i
        for i in store_items.items_in(lab.store, organizer_cal)
        if i.props.get("item:Subject") == "Ablehnen bitte"
    )
    answers = {a["email"]: a["response"] for a in meeting.props["calendar:RequiredAttendees"]}
    assert answers[CHEF] == "Decline"
    replies = [
        i
        for i in store_items.items_in(lab.store, folder_of(lab, SACHBEARBEITUNG, "inbox"))
        if i.item_class == "IPM.Schedule.Meeting.Resp.Neg"
    ]
    assert replies[0].props["message:From"]["email"] == CHEF
    assert replies[0].props["message:Sender"]["email"] == ASSISTENZ


def test_user_without_rights_cannot_answer_for_chef(lab: Lab) -> None:
    invite(lab, "Fremde Antwort", [CHEF])
    request = requests_in(lab, CHEF, "Fremde Antwort")[0]
    from exlab.core.targets import item_ews_id

    messages = call(
        lab,
        SACHBEARBEITUNG,
        '<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:AcceptItem>'
        f'<t:ReferenceItemId Id="{item_ews_id(request)}"/></t:AcceptItem></m:Items>'
        "</m:CreateItem>",
    )
    assert codes(messages) == ["ErrorAccessDenied"]


def test_conflict_resolution_never_overwrite_refuses_a_stale_change_key(lab: Lab) -> None:
    inbox = folder_of(lab, CHEF, "inbox")
    item = store_items.items_in(lab.store, inbox)[0]
    from exlab.core.targets import item_ews_id

    def update(key: str, mode: str) -> list[str]:
        return codes(
            call(
                lab,
                CHEF,
                f'<m:UpdateItem ConflictResolution="{mode}" MessageDisposition="SaveOnly">'
                f'<m:ItemChanges><t:ItemChange><t:ItemId Id="{item_ews_id(item)}" '
                f'ChangeKey="{key}"/><t:Updates><t:SetItemField>'
                '<t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>true</t:IsRead>'
                "</t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges>"
                "</m:UpdateItem>",
            )
        )

    assert update(item.change_key, "NeverOverwrite") == ["NoError"]
    assert update(item.change_key, "NeverOverwrite") == ["ErrorIrresolvableConflict"]
    assert update(item.change_key, "AlwaysOverwrite") == ["NoError"]


def test_move_to_deleted_items_and_soft_delete(lab: Lab) -> None:
    inbox = folder_of(lab, CHEF, "inbox")
    bin_ = folder_of(lab, CHEF, "deleteditems")
    first, second = store_items.items_in(lab.store, inbox)[:2]
    from exlab.core.targets import item_ews_id

    for item, mode in ((first, "MoveToDeletedItems"), (second, "SoftDelete")):
        messages = call(
            lab,
            ASSISTENZ,
            f'<m:DeleteItem DeleteType="{mode}"><m:ItemIds>'
            f'<t:ItemId Id="{item_ews_id(item)}"/></m:ItemIds></m:DeleteItem>',
        )
        assert codes(messages) == ["NoError"]
    # Moved to Deleted Items under a new id, as Exchange moves items; the old id is gone.
    assert store_items.get_item(lab.store, first.id) is None
    binned = [i.props.get("item:Subject") for i in store_items.items_in(lab.store, bin_)]
    assert first.props.get("item:Subject") in binned
    assert store_items.get_item(lab.store, second.id) is None


def organizer_meeting(lab: Lab, subject: str) -> store_items.Item:
    calendar = folder_of(lab, SACHBEARBEITUNG, "calendar")
    return next(
        i
        for i in store_items.items_in(lab.store, calendar)
        if i.props.get("item:Subject") == subject
    )


def attendee_copy(lab: Lab, mailbox: str, subject: str) -> store_items.Item:
    calendar = folder_of(lab, mailbox, "calendar")
    return next(
        i
        for i in store_items.items_in(lab.store, calendar)
        if i.props.get("item:Subject") == subject
    )


def test_organizer_moving_the_meeting_updates_attendees(lab: Lab) -> None:
    from exlab.core.targets import item_ews_id

    invite(lab, "Verlegbar", [CHEF])
    meeting = organizer_meeting(lab, "Verlegbar")
    messages = call(
        lab,
        SACHBEARBEITUNG,
        '<m:UpdateItem ConflictResolution="AlwaysOverwrite" '
        'SendMeetingInvitationsOrCancellations="SendToAllAndSaveCopy"><m:ItemChanges>'
        f'<t:ItemChange><t:ItemId Id="{item_ews_id(meeting)}"/><t:Updates>'
        '<t:SetItemField><t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem>'
        "<t:Start>2027-02-01T13:00:00Z</t:Start></t:CalendarItem></t:SetItemField>"
        '<t:SetItemField><t:FieldURI FieldURI="calendar:End"/><t:CalendarItem>'
        "<t:End>2027-02-01T14:00:00Z</t:End></t:CalendarItem></t:SetItemField>"
        "</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>",
    )
    assert codes(messages) == ["NoError"]
    copy = attendee_copy(lab, CHEF, "Verlegbar")
    assert copy.props["calendar:Start"] == "2027-02-01T13:00:00Z"
    updates = [
        r
        for r in requests_in(lab, ASSISTENZ, "Verlegbar")
        if r.props["meetingRequest:MeetingRequestType"] == "FullUpdate"
    ]
    assert len(updates) == 1


def test_organizer_deleting_the_meeting_cancels_it_for_attendees(lab: Lab) -> None:
    from exlab.core.targets import item_ews_id

    invite(lab, "Fällt aus", [CHEF])
    meeting = organizer_meeting(lab, "Fällt aus")
    messages = call(
        lab,
        SACHBEARBEITUNG,
        '<m:DeleteItem DeleteType="MoveToDeletedItems" '
        'SendMeetingCancellations="SendToAllAndSaveCopy"><m:ItemIds>'
        f'<t:ItemId Id="{item_ews_id(meeting)}"/></m:ItemIds></m:DeleteItem>',
    )
    assert codes(messages) == ["NoError"]
    assert attendee_copy(lab, CHEF, "Fällt aus").props["calendar:IsCancelled"] is True
    inbox = folder_of(lab, ASSISTENZ, "inbox")
    assert any(
        i.item_class == "IPM.Schedule.Meeting.Canceled"
        for i in store_items.items_in(lab.store, inbox)
    )


def test_occurrence_item_id_addresses_one_instance_for_update_and_delete(lab: Lab) -> None:
    from exlab.core.targets import item_ews_id

    calendar = folder_of(lab, CHEF, "calendar")
    daily = next(
        i
        for i in store_items.items_in(lab.store, calendar)
        if i.props.get("item:Subject") == "Haushaltsberatung"
    )
    master_id = item_ews_id(daily)
    messages = call(
        lab,
        ASSISTENZ,
        '<m:UpdateItem ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange>'
        f'<t:OccurrenceItemId RecurringMasterId="{master_id}" InstanceIndex="3"/><t:Updates>'
        '<t:SetItemField><t:FieldURI FieldURI="calendar:Location"/><t:CalendarItem>'
        "<t:Location>Kämmerei</t:Location></t:CalendarItem></t:SetItemField>"
        "</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>",
    )
    assert codes(messages) == ["NoError"]
    deleted = call(
        lab,
        ASSISTENZ,
        '<m:DeleteItem DeleteType="HardDelete"><m:ItemIds>'
        f'<t:OccurrenceItemId RecurringMasterId="{master_id}" InstanceIndex="4"/>'
        "</m:ItemIds></m:DeleteItem>",
    )
    assert codes(deleted) == ["NoError"]
    out_of_range = call(
        lab,
        ASSISTENZ,
        '<m:DeleteItem DeleteType="HardDelete"><m:ItemIds>'
        f'<t:OccurrenceItemId RecurringMasterId="{master_id}" InstanceIndex="11"/>'
        "</m:ItemIds></m:DeleteItem>",
    )
    assert codes(out_of_range) == ["ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange"]
    [exception] = store_items.exceptions_of(lab.store, daily.id)
    assert exception.props["calendar:Location"] == "Kämmerei"
    master = store_items.get_item(lab.store, daily.id)
    assert master is not None and master.props["lab:deleted"] == [4]
    via_master = call(
        lab,
        ASSISTENZ,
        '<m:UpdateItem ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange>'
        f'<t:RecurringMasterItemId OccurrenceId="{item_ews_id(exception)}"/><t:Updates>'
        '<t:SetItemField><t:FieldURI FieldURI="item:Subject"/><t:CalendarItem>'
        "<t:Subject>Haushalt 2028</t:Subject></t:CalendarItem></t:SetItemField>"
        "</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>",
    )
    assert codes(via_master) == ["NoError"]
    master = store_items.get_item(lab.store, daily.id)
    assert master is not None and master.props["item:Subject"] == "Haushalt 2028"


def answer(lab: Lab, kind: str, request: store_items.Item, extra: str, version: str) -> list[str]:
    from exlab.core.targets import item_ews_id
    from exlab.ews import soap
    from tests.lab.items_soap import envelope

    body = (
        f'<m:CreateItem MessageDisposition="SendAndSaveCopy"><m:Items><t:{kind}>'
        f'<t:ReferenceItemId Id="{item_ews_id(request)}"/>{extra}</t:{kind}></m:Items>'
        "</m:CreateItem>"
    )
    result = soap.handle(lab, ASSISTENZ, envelope(body, version))
    assert result.status == 200
    return codes(ET.fromstring(result.body).find(f".//{M}ResponseMessages"))  # type: ignore[arg-type]


def test_a_new_time_proposed_for_the_boss_reaches_the_organizer(lab: Lab) -> None:
    invite(lab, "Neuer Termin bitte", [CHEF])
    request = requests_in(lab, ASSISTENZ, "Neuer Termin bitte")[0]
    proposal = (
        "<t:ProposedStart>2027-02-02T09:00:00Z</t:ProposedStart>"
        "<t:ProposedEnd>2027-02-02T10:00:00Z</t:ProposedEnd>"
    )
    assert answer(lab, "TentativelyAcceptItem", request, proposal, "Exchange2010_SP2") == [
        "ErrorInvalidServerVersion"
    ]
    assert answer(lab, "AcceptItem", request, proposal, "Exchange2013") == ["ErrorInvalidRequest"]
    assert answer(lab, "DeclineItem", request, proposal, "Exchange2013") == ["NoError"]
    (reply,) = [
        i
        for i in store_items.items_in(lab.store, folder_of(lab, SACHBEARBEITUNG, "inbox"))
        if i.item_class == "IPM.Schedule.Meeting.Resp.Neg"
        and "Neuer Termin bitte" in i.props["item:Subject"]
    ]
    assert reply.props["meeting:ProposedStart"] == "2027-02-02T09:00:00Z"
    assert reply.props["meeting:ProposedEnd"] == "2027-02-02T10:00:00Z"
