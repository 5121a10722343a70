"""Meetings: invitations to attendees (and their delegates), responses, cancellations.

As Exchange's calendar assistant does it: an invitation puts a meeting request in each
attendee's Inbox and a tentative item in their calendar; delegates who receive meeting
messages get a copy marked IsDelegated, and the owner's own copy follows the mailbox's
delivery setting (DelegatesOnly, DelegatesAndMe, DelegatesAndSendInformationToMe). A
response updates the attendee's calendar item and the organizer's attendee list, and goes
to the organizer as a response message (sent on behalf when a delegate answers).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from exlab.core import items as store_items
from exlab.core.caller import Caller
from exlab.core.delivery import display, may_send_for, owner_kind, send_message
from exlab.core.errors import ExchangeError, denied
from exlab.core.items import Item
from exlab.core.store import utc_text
from exlab.core.targets import (
    Target,
    check_delete,
    check_edit,
    check_read,
    distinguished,
    item_ews_id,
)

RESPONSE_CLASSES = {
    "AcceptItem": ("IPM.Schedule.Meeting.Resp.Pos", "Accept", "Busy"),
    "TentativelyAcceptItem": ("IPM.Schedule.Meeting.Resp.Tent", "Tentative", "Tentative"),
    "DeclineItem": ("IPM.Schedule.Meeting.Resp.Neg", "Decline", "Free"),
}


RESPONSE_NAMES = {
    "AcceptItem": "Accept",
    "TentativelyAcceptItem": "Tentative",
    "DeclineItem": "Decline",
}
"""How Exchange's response codes name each answer (ErrorCalendarIsOrganizerForAccept, ...)."""


def invite(caller: Caller, item: Item, now: datetime) -> None:
    """Meeting requests to attendees' and rooms' inboxes (and their delegates, per delivery
    setting)."""
    attendees = (
        item.props.get("calendar:RequiredAttendees", [])
        + item.props.get("calendar:OptionalAttendees", [])
        + item.props.get("calendar:Resources", [])
    )
    organizer = (item.props.get("calendar:Organizer") or {}).get("email", caller.user)
    for att in attendees:
        address = str(att.get("email", "")).lower()
        if (
            not address
            or address == organizer
            or owner_kind(caller, address) not in ("user", "room", "shared")
        ):
            continue
        _deliver_request(caller, item, address, now)


def _meeting_props(
    item: Item, organizer: dict[str, Any], sender: dict[str, Any], recipient: dict[str, Any]
) -> dict[str, Any]:
    keep = {
        k: v
        for k, v in item.props.items()
        if k.startswith("calendar:")
        or k
        in ("item:Subject", "item:Body", "item:Importance", "item:Sensitivity", "item:Categories")
    }
    keep.pop("calendar:MyResponseType", None)
    keep.update(
        {
            "message:From": organizer,
            "message:Sender": sender,
            "message:ToRecipients": [recipient],
            "message:IsRead": False,
            "item:IsDraft": False,
            "meeting:ResponseType": "NoResponseReceived",
            "meetingRequest:MeetingRequestType": "NewMeetingRequest",
            "meetingRequest:IntendedFreeBusyStatus": item.props.get(
                "calendar:LegacyFreeBusyStatus", "Busy"
            ),
            "calendar:MyResponseType": "NoResponseReceived",
            "calendar:IsMeeting": True,
        }
    )
    return keep


def _deliver_request(caller: Caller, item: Item, address: str, now: datetime) -> None:
    store = caller.lab.store
    organizer = item.props.get("calendar:Organizer") or display(caller, caller.user)
    stamp = utc_text(now)
    # The attendee's tentative calendar item, as Exchange's calendar assistant creates it.
    cal = distinguished(caller, address, "calendar")
    cal_props = {k: v for k, v in item.props.items() if not k.startswith("lab:")}
    # A room books itself (Exchange's resource booking attendant, AutomateProcessing
    # AutoAccept): the slot is busy at once; people hold it tentatively until they answer.
    room = owner_kind(caller, address) == "room"
    cal_props.update(
        {
            "calendar:MyResponseType": "Accept" if room else "NoResponseReceived",
            "calendar:LegacyFreeBusyStatus": "Busy" if room else "Tentative",
            "calendar:MeetingRequestWasSent": False,
        }
    )
    own_cal = store_items.create_item(
        caller.lab.store,
        cal,
        item.item_class,
        cal_props,
        created_by=organizer.get("email", caller.user),
        now=now,
    )
    mb = store.mailbox(address)
    delivery = mb.meeting_delivery if mb else "DelegatesAndMe"
    delegates = [
        row["delegate"] for row in store.delegates(address) if row["receive_meeting_copies"]
    ]
    recipient = display(caller, address)
    base = _meeting_props(item, organizer, display(caller, caller.user), recipient)
    base["meeting:AssociatedCalendarItemId"] = {
        "id": item_ews_id(own_cal),
        "change_key": own_cal.change_key,
    }
    base["item:DateTimeReceived"] = stamp
    base["lab:calendar_item"] = own_cal.id
    targets: list[tuple[str, dict[str, Any]]] = []
    if not delegates or delivery != "DelegatesOnly":
        mine = dict(base)
        if delegates and delivery == "DelegatesAndSendInformationToMe":
            mine["meetingRequest:MeetingRequestType"] = "PrincipalWantsCopy"
        targets.append((address, mine))
    for delegate in delegates:
        copy = dict(base)
        copy["meeting:IsDelegated"] = True
        copy["message:ReceivedRepresenting"] = recipient
        targets.append((delegate, copy))
    for inbox_owner, props in targets:
        inbox = distinguished(caller, inbox_owner, "inbox")
        store_items.create_item(
            caller.lab.store,
            inbox,
            "IPM.Schedule.Meeting.Request",
            props,
            created_by=organizer.get("email", caller.user),
            now=now,
            event="newmail",
        )


def respond(
    caller: Caller,
    target: Target,
    kind: str,
    body: dict[str, str] | None,
    proposal: tuple[str, str] | None = None,
) -> Item | None:
    """Accept, tentatively accept or decline a meeting request or calendar item.

    `kind` is AcceptItem, TentativelyAcceptItem or DeclineItem; `body` the response's text;
    `proposal` a new (start, end) in UTC text, which the organizer's response message carries
    (Exchange 2013: only with a tentative answer or a decline, and only if the meeting allows it).
    Answers the attendee's calendar item (None when declined: it is removed, as in Exchange).
    """
    check_read(caller, target)
    if proposal is not None:
        if kind == "AcceptItem":
            raise ExchangeError(
                "ErrorInvalidRequest",
                "A new time is proposed with tentative or decline.",
            )
        if proposal[1] <= proposal[0]:
            raise ExchangeError(
                "ErrorCalendarEndDateIsEarlierThanStartDate",
                "The proposed end is not after the proposed start.",
            )
    now = caller.lab.now()
    resp_class, response_type, busy = RESPONSE_CLASSES[kind]
    source = target.item
    cal_target: Target | None
    if source.item_class.startswith("IPM.Schedule.Meeting.Request"):
        cal_key = source.props.get("lab:calendar_item")
        cal_item = store_items.get_item(caller.lab.store, cal_key) if cal_key else None
        if cal_item is None:
            raise ExchangeError(
                "ErrorItemNotFound", "The meeting's calendar item no longer exists."
            )
        cal_folder = caller.lab.store.folder(cal_item.folder_id)
        assert cal_folder is not None
        cal_target = Target(cal_item, cal_folder)
    elif source.item_class.startswith("IPM.Appointment"):
        cal_target = target
    else:
        raise ExchangeError("ErrorInvalidReferenceItem", "The item is not a meeting.")
    check_edit(caller, cal_target)
    cal = cal_target.item
    owner = cal.mailbox
    organizer = cal.props.get("calendar:Organizer") or {}
    answer = RESPONSE_NAMES[kind]
    if str(organizer.get("email", "")).lower() == owner:
        raise ExchangeError(
            f"ErrorCalendarIsOrganizerFor{answer}",
            f"{kind} is invalid for the organizer's calendar item.",
        )
    if cal.props.get("calendar:IsCancelled"):
        raise ExchangeError(
            f"ErrorCalendarIsCancelledFor{answer}", "The meeting has been cancelled."
        )
    if owner != caller.user and not may_send_for(caller, owner):
        raise denied()
    if proposal is not None and cal.props.get("calendar:AllowNewTimeProposal") is False:
        raise ExchangeError("ErrorInvalidRequest", "The organizer accepts no new time proposals.")
    cal.props["calendar:MyResponseType"] = response_type
    cal.props["calendar:LegacyFreeBusyStatus"] = busy
    cal.props["calendar:AppointmentReplyTime"] = utc_text(now)
    # The response message to the organizer, sent on behalf when a delegate answers.
    reply: dict[str, Any] = {
        "item:Subject": {
            "Accept": "Zugesagt: ",
            "Tentative": "Mit Vorbehalt angenommen: ",
            "Decline": "Abgelehnt: ",
        }[response_type]
        + str(cal.props.get("item:Subject", "")),
        "message:From": display(caller, owner),
        "message:Sender": display(caller, caller.user),
        "message:ToRecipients": [organizer] if organizer else [],
        "meeting:ResponseType": response_type,
        "calendar:UID": cal.props.get("calendar:UID"),
        "item:DateTimeSent": utc_text(now),
    }
    if body is not None:
        reply["item:Body"] = body
    if proposal is not None:
        reply["meeting:ProposedStart"], reply["meeting:ProposedEnd"] = proposal
    if organizer.get("email"):
        _record_response(caller, cal, owner, response_type, now)
        send_message(caller, reply, resp_class, [], now)
    if source is not cal:
        source.props["meeting:HasBeenProcessed"] = True
        source.props["meeting:ResponseType"] = response_type
        store_items.save_item(caller.lab.store, source, now)
        deleted_items = distinguished(caller, source.mailbox, "deleteditems")
        store_items.move_item(caller.lab.store, source, deleted_items, now)
    if response_type == "Decline":
        # Declined: the meeting leaves the calendar for Deleted Items, as in Exchange.
        store_items.save_item(caller.lab.store, cal, now)
        bin_folder = distinguished(caller, owner, "deleteditems")
        store_items.move_item(caller.lab.store, cal, bin_folder, now)
        return None
    store_items.save_item(caller.lab.store, cal, now)
    return cal


def _record_response(
    caller: Caller, cal: Item, attendee: str, response_type: str, now: datetime
) -> None:
    """Update the attendee's answer on the organizer's calendar item (same UID)."""
    uid = cal.props.get("calendar:UID")
    organizer = str((cal.props.get("calendar:Organizer") or {}).get("email", "")).lower()
    org_cal = caller.lab.store.distinguished_folder(organizer, "calendar") if organizer else None
    if org_cal is None or not uid:
        return
    for item in store_items.items_in(caller.lab.store, org_cal.id):
        if item.props.get("calendar:UID") != uid:
            continue
        for key in ("calendar:RequiredAttendees", "calendar:OptionalAttendees"):
            for a in item.props.get(key, []):
                if str(a.get("email", "")).lower() == attendee:
                    a["response"] = response_type
                    a["last_response_time"] = utc_text(now)
        store_items.save_item(caller.lab.store, item, now)


SEND_TO_ATTENDEES = frozenset(
    {"SendOnlyToAll", "SendToAllAndSaveCopy", "SendOnlyToChanged", "SendToChangedAndSaveCopy"}
)


def organized_here(item: Item) -> bool:
    """A meeting whose organizer is the mailbox it lives in (only then are updates sent)."""
    organizer = str((item.props.get("calendar:Organizer") or {}).get("email", "")).lower()
    return bool(item.props.get("calendar:IsMeeting")) and organizer == item.mailbox


def _attendees(item: Item) -> list[str]:
    out = []
    for key in ("calendar:RequiredAttendees", "calendar:OptionalAttendees"):
        for a in item.props.get(key, []):
            address = str(a.get("email", "")).lower()
            if address and address != item.mailbox and address not in out:
                out.append(address)
    return out


def _copies_of(caller: Caller, mailbox: str, uid: str) -> list[Item]:
    """The attendee's calendar items of this meeting (same UID)."""
    folder = caller.lab.store.distinguished_folder(mailbox, "calendar")
    if folder is None:
        return []
    return [
        i
        for i in store_items.items_in(caller.lab.store, folder.id)
        if i.props.get("calendar:UID") == uid
    ]


def _notify(
    caller: Caller, item: Item, address: str, item_class: str, kind: str, now: datetime
) -> None:
    """A meeting message about ``item`` to an attendee (and delegates, per their setting)."""
    store = caller.lab.store
    organizer = item.props.get("calendar:Organizer") or display(caller, item.mailbox)
    recipient = display(caller, address)
    props = _meeting_props(item, organizer, display(caller, caller.user), recipient)
    props["meetingRequest:MeetingRequestType"] = kind
    props["item:DateTimeReceived"] = utc_text(now)
    mb = store.mailbox(address)
    delivery = mb.meeting_delivery if mb else "DelegatesAndMe"
    delegates = [r["delegate"] for r in store.delegates(address) if r["receive_meeting_copies"]]
    targets = [] if delegates and delivery == "DelegatesOnly" else [address]
    targets += delegates
    for owner in targets:
        inbox = distinguished(caller, owner, "inbox")
        store_items.create_item(
            store,
            inbox,
            item_class,
            props,
            created_by=str(organizer.get("email", caller.user)),
            now=now,
            event="newmail",
        )


def send_update(caller: Caller, item: Item, now: datetime) -> None:
    """The organizer changed the meeting: attendees' copies follow, with an update request."""
    uid = str(item.props.get("calendar:UID", ""))
    carried = (
        "item:Subject",
        "item:Body",
        "calendar:Start",
        "calendar:End",
        "calendar:Location",
        "calendar:Recurrence",
        "calendar:IsAllDayEvent",
        "calendar:StartTimeZone",
        "calendar:EndTimeZone",
    )
    for address in _attendees(item):
        if owner_kind(caller, address) not in ("user", "room", "shared"):
            continue
        for copy in _copies_of(caller, address, uid):
            for key in carried:
                if key in item.props:
                    copy.props[key] = item.props[key]
                else:
                    copy.props.pop(key, None)
            copy.props["calendar:MyResponseType"] = "NoResponseReceived"
            store_items.save_item(caller.lab.store, copy, now)
        _notify(caller, item, address, "IPM.Schedule.Meeting.Request", "FullUpdate", now)


def send_cancellation(caller: Caller, item: Item, now: datetime) -> None:
    """The organizer deleted the meeting: attendees' copies are marked cancelled."""
    uid = str(item.props.get("calendar:UID", ""))
    for address in _attendees(item):
        if owner_kind(caller, address) not in ("user", "room", "shared"):
            continue
        for copy in _copies_of(caller, address, uid):
            copy.props["calendar:IsCancelled"] = True
            copy.props["calendar:LegacyFreeBusyStatus"] = "Free"
            store_items.save_item(caller.lab.store, copy, now)
        _notify(caller, item, address, "IPM.Schedule.Meeting.Canceled", "None", now)


def cancel(caller: Caller, target: Target, body: dict[str, str] | None, *, save_copy: bool) -> None:
    """CancelCalendarItem: the organizer calls the meeting off. Attendees get a cancellation
    (their copies are marked cancelled), the meeting leaves the organizer's calendar for
    Deleted Items, and with `save_copy` the cancellation is filed in Sent Items."""
    check_delete(caller, target)
    item = target.item
    if target.is_virtual or item.master_id is not None:
        raise ExchangeError(
            "ErrorCalendarCannotMoveOrCopyOccurrence", "Cancel the series, not one occurrence."
        )
    if not item.item_class.startswith("IPM.Appointment"):
        raise ExchangeError("ErrorInvalidReferenceItem", "Only a meeting can be cancelled.")
    organizer = str((item.props.get("calendar:Organizer") or {}).get("email", "")).lower()
    if organizer and organizer != item.mailbox:
        raise ExchangeError(
            "ErrorCalendarIsNotOrganizer", "Only the meeting organizer can cancel the meeting."
        )
    now = caller.lab.now()
    if body is not None:
        item.props["item:Body"] = body
    item.props["calendar:IsCancelled"] = True
    store_items.save_item(caller.lab.store, item, now)
    send_cancellation(caller, item, now)
    if save_copy and _attendees(item):
        sent = distinguished(caller, item.mailbox, "sentitems")
        props = _meeting_props(
            item,
            item.props.get("calendar:Organizer") or display(caller, item.mailbox),
            display(caller, caller.user),
            {},
        )
        props["message:ToRecipients"] = [display(caller, a) for a in _attendees(item)]
        props["message:IsRead"] = True
        props["meetingRequest:MeetingRequestType"] = "None"
        store_items.create_item(
            caller.lab.store,
            sent,
            "IPM.Schedule.Meeting.Canceled",
            props,
            created_by=caller.user,
            now=now,
        )
    store_items.move_item(
        caller.lab.store, item, distinguished(caller, item.mailbox, "deleteditems"), now
    )
