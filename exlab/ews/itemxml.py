"""Items between EWS XML and the lab's props dicts, per item class, in schema element order.

Props keys are FieldURI names (``item:Subject``, ``calendar:Start``) and ``ext:`` keys for
extended properties (see ``ext_key``). Values are JSON: strings, booleans, numbers, UTC
datetimes as ``YYYY-MM-DDTHH:MM:SSZ``, and small dicts/lists for bodies, recipients,
attendees, recurrences and contact dictionaries. The field tables below follow the order of
the Exchange2010_SP2 ``types.xsd``, so serialized items validate against it.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from exlab.core.mapi import PROPERTY_TYPES, named_key, tag_key, value_from_text, value_text
from exlab.core.recurrence import PatternKind, RangeKind, Recurrence, RecurrenceError
from exlab.core.timezones import zone_by_id

T_NS = "http://schemas.microsoft.com/exchange/services/2006/types"
T = f"{{{T_NS}}}"


def t(tag: str) -> str:
    return f"{T}{tag}"


class ItemXmlError(ValueError):
    """An item element the lab cannot read (answered as ErrorSchemaValidation/InvalidRequest)."""

    def __init__(self, message: str, code: str = "ErrorInvalidPropertyRequest") -> None:
        super().__init__(message)
        self.code = code


# (element name, FieldURI, kind). Kinds drive parsing and serialization; "ro" fields are
# computed by the lab and ignored on input.
Field = tuple[str, str, str]

ITEM_FIELDS: list[Field] = [
    ("MimeContent", "item:MimeContent", "mime"),
    ("ItemId", "item:ItemId", "id"),
    ("ParentFolderId", "item:ParentFolderId", "id"),
    ("ItemClass", "item:ItemClass", "str"),
    ("Subject", "item:Subject", "str"),
    ("Sensitivity", "item:Sensitivity", "str"),
    ("Body", "item:Body", "body"),
    ("Attachments", "item:Attachments", "attachments"),
    ("DateTimeReceived", "item:DateTimeReceived", "dt"),
    ("Size", "item:Size", "int"),
    ("Categories", "item:Categories", "strings"),
    ("Importance", "item:Importance", "str"),
    ("InReplyTo", "item:InReplyTo", "str"),
    ("IsSubmitted", "item:IsSubmitted", "bool"),
    ("IsDraft", "item:IsDraft", "bool"),
    ("IsFromMe", "item:IsFromMe", "bool"),
    ("IsResend", "item:IsResend", "bool"),
    ("IsUnmodified", "item:IsUnmodified", "bool"),
    ("InternetMessageHeaders", "item:InternetMessageHeaders", "headers"),
    ("DateTimeSent", "item:DateTimeSent", "dt"),
    ("DateTimeCreated", "item:DateTimeCreated", "dt"),
    ("ReminderDueBy", "item:ReminderDueBy", "dt"),
    ("ReminderIsSet", "item:ReminderIsSet", "bool"),
    ("ReminderMinutesBeforeStart", "item:ReminderMinutesBeforeStart", "int"),
    ("DisplayCc", "item:DisplayCc", "str"),
    ("DisplayTo", "item:DisplayTo", "str"),
    ("HasAttachments", "item:HasAttachments", "bool"),
    ("ExtendedProperty", "", "ext"),
    ("Culture", "item:Culture", "str"),
    ("EffectiveRights", "item:EffectiveRights", "rights"),
    ("LastModifiedName", "item:LastModifiedName", "str"),
    ("LastModifiedTime", "item:LastModifiedTime", "dt"),
    ("IsAssociated", "item:IsAssociated", "bool"),
    ("ConversationId", "item:ConversationId", "id"),
]

MESSAGE_FIELDS: list[Field] = [
    ("Sender", "message:Sender", "mailbox"),
    ("ToRecipients", "message:ToRecipients", "mailboxes"),
    ("CcRecipients", "message:CcRecipients", "mailboxes"),
    ("BccRecipients", "message:BccRecipients", "mailboxes"),
    ("IsReadReceiptRequested", "message:IsReadReceiptRequested", "bool"),
    ("IsDeliveryReceiptRequested", "message:IsDeliveryReceiptRequested", "bool"),
    ("ConversationTopic", "message:ConversationTopic", "str"),
    ("From", "message:From", "mailbox"),
    ("InternetMessageId", "message:InternetMessageId", "str"),
    ("IsRead", "message:IsRead", "bool"),
    ("IsResponseRequested", "message:IsResponseRequested", "bool"),
    ("References", "message:References", "str"),
    ("ReplyTo", "message:ReplyTo", "mailboxes"),
    ("ReceivedBy", "message:ReceivedBy", "mailbox"),
    ("ReceivedRepresenting", "message:ReceivedRepresenting", "mailbox"),
]

_CAL_CORE: list[Field] = [
    ("Start", "calendar:Start", "dt"),
    ("End", "calendar:End", "dt"),
    ("OriginalStart", "calendar:OriginalStart", "dt"),
    ("IsAllDayEvent", "calendar:IsAllDayEvent", "bool"),
    ("LegacyFreeBusyStatus", "calendar:LegacyFreeBusyStatus", "str"),
    ("Location", "calendar:Location", "str"),
    ("When", "calendar:When", "str"),
    ("IsMeeting", "calendar:IsMeeting", "bool"),
    ("IsCancelled", "calendar:IsCancelled", "bool"),
    ("IsRecurring", "calendar:IsRecurring", "bool"),
    ("MeetingRequestWasSent", "calendar:MeetingRequestWasSent", "bool"),
    ("IsResponseRequested", "calendar:IsResponseRequested", "bool"),
    ("CalendarItemType", "calendar:CalendarItemType", "str"),
    ("MyResponseType", "calendar:MyResponseType", "str"),
    ("Organizer", "calendar:Organizer", "mailbox"),
    ("RequiredAttendees", "calendar:RequiredAttendees", "attendees"),
    ("OptionalAttendees", "calendar:OptionalAttendees", "attendees"),
    ("Resources", "calendar:Resources", "attendees"),
    ("ConflictingMeetingCount", "calendar:ConflictingMeetingCount", "int"),
    ("AdjacentMeetingCount", "calendar:AdjacentMeetingCount", "int"),
    ("Duration", "calendar:Duration", "str"),
    ("TimeZone", "calendar:TimeZone", "str"),
    ("AppointmentReplyTime", "calendar:AppointmentReplyTime", "dt"),
    ("AppointmentSequenceNumber", "calendar:AppointmentSequenceNumber", "int"),
    ("AppointmentState", "calendar:AppointmentState", "int"),
    ("Recurrence", "calendar:Recurrence", "recurrence"),
    ("FirstOccurrence", "calendar:FirstOccurrence", "occurrence"),
    ("LastOccurrence", "calendar:LastOccurrence", "occurrence"),
    ("ModifiedOccurrences", "calendar:ModifiedOccurrences", "occurrences"),
    ("DeletedOccurrences", "calendar:DeletedOccurrences", "deleted"),
    ("MeetingTimeZone", "calendar:MeetingTimeZone", "ro"),
    ("StartTimeZone", "calendar:StartTimeZone", "tz"),
    ("EndTimeZone", "calendar:EndTimeZone", "tz"),
    ("ConferenceType", "calendar:ConferenceType", "int"),
    ("AllowNewTimeProposal", "calendar:AllowNewTimeProposal", "bool"),
    ("IsOnlineMeeting", "calendar:IsOnlineMeeting", "bool"),
    ("MeetingWorkspaceUrl", "calendar:MeetingWorkspaceUrl", "str"),
    ("NetShowUrl", "calendar:NetShowUrl", "str"),
]

CALENDAR_FIELDS: list[Field] = [
    ("UID", "calendar:UID", "str"),
    ("RecurrenceId", "calendar:RecurrenceId", "dt"),
    ("DateTimeStamp", "calendar:DateTimeStamp", "dt"),
    *_CAL_CORE,
]

MEETING_MESSAGE_FIELDS: list[Field] = [
    ("AssociatedCalendarItemId", "meeting:AssociatedCalendarItemId", "id"),
    ("IsDelegated", "meeting:IsDelegated", "bool"),
    ("IsOutOfDate", "meeting:IsOutOfDate", "bool"),
    ("HasBeenProcessed", "meeting:HasBeenProcessed", "bool"),
    ("ResponseType", "meeting:ResponseType", "str"),
    ("UID", "calendar:UID", "str"),
    ("RecurrenceId", "calendar:RecurrenceId", "dt"),
    ("DateTimeStamp", "calendar:DateTimeStamp", "dt"),
]

MEETING_REQUEST_FIELDS: list[Field] = [
    ("MeetingRequestType", "meetingRequest:MeetingRequestType", "str"),
    ("IntendedFreeBusyStatus", "meetingRequest:IntendedFreeBusyStatus", "str"),
    *_CAL_CORE,
]

CONTACT_FIELDS: list[Field] = [
    ("FileAs", "contacts:FileAs", "str"),
    ("FileAsMapping", "contacts:FileAsMapping", "str"),
    ("DisplayName", "contacts:DisplayName", "str"),
    ("GivenName", "contacts:GivenName", "str"),
    ("Initials", "contacts:Initials", "str"),
    ("MiddleName", "contacts:MiddleName", "str"),
    ("Nickname", "contacts:Nickname", "str"),
    ("CompanyName", "contacts:CompanyName", "str"),
    ("EmailAddresses", "contacts:EmailAddresses", "emaildict"),
    ("PhysicalAddresses", "contacts:PhysicalAddresses", "addrdict"),
    ("PhoneNumbers", "contacts:PhoneNumbers", "phonedict"),
    ("AssistantName", "contacts:AssistantName", "str"),
    ("Birthday", "contacts:Birthday", "dt"),
    ("BusinessHomePage", "contacts:BusinessHomePage", "str"),
    ("Children", "contacts:Children", "strings"),
    ("Companies", "contacts:Companies", "strings"),
    ("ContactSource", "contacts:ContactSource", "str"),
    ("Department", "contacts:Department", "str"),
    ("Generation", "contacts:Generation", "str"),
    ("ImAddresses", "contacts:ImAddresses", "phonedict"),
    ("JobTitle", "contacts:JobTitle", "str"),
    ("Manager", "contacts:Manager", "str"),
    ("Mileage", "contacts:Mileage", "str"),
    ("OfficeLocation", "contacts:OfficeLocation", "str"),
    ("PostalAddressIndex", "contacts:PostalAddressIndex", "str"),
    ("Profession", "contacts:Profession", "str"),
    ("SpouseName", "contacts:SpouseName", "str"),
    ("Surname", "contacts:Surname", "str"),
    ("WeddingAnniversary", "contacts:WeddingAnniversary", "dt"),
    ("HasPicture", "contacts:HasPicture", "bool"),
    ("Alias", "contacts:Alias", "str"),
    ("Notes", "contacts:Notes", "str"),
]

TASK_FIELDS: list[Field] = [
    ("ActualWork", "task:ActualWork", "int"),
    ("AssignedTime", "task:AssignedTime", "dt"),
    ("BillingInformation", "task:BillingInformation", "str"),
    ("ChangeCount", "task:ChangeCount", "int"),
    ("Companies", "task:Companies", "strings"),
    ("CompleteDate", "task:CompleteDate", "dt"),
    ("Contacts", "task:Contacts", "strings"),
    ("DelegationState", "task:DelegationState", "str"),
    ("Delegator", "task:Delegator", "str"),
    ("DueDate", "task:DueDate", "dt"),
    ("IsAssignmentEditable", "task:IsAssignmentEditable", "int"),
    ("IsComplete", "task:IsComplete", "bool"),
    ("IsRecurring", "task:IsRecurring", "bool"),
    ("IsTeamTask", "task:IsTeamTask", "bool"),
    ("Mileage", "task:Mileage", "str"),
    ("Owner", "task:Owner", "str"),
    ("PercentComplete", "task:PercentComplete", "double"),
    ("Recurrence", "task:Recurrence", "ro"),
    ("StartDate", "task:StartDate", "dt"),
    ("Status", "task:Status", "str"),
    ("StatusDescription", "task:StatusDescription", "str"),
    ("TotalWork", "task:TotalWork", "int"),
]

DISTRIBUTION_LIST_FIELDS: list[Field] = [
    ("DisplayName", "contacts:DisplayName", "str"),
    ("FileAs", "contacts:FileAs", "str"),
    ("ContactSource", "contacts:ContactSource", "str"),
    ("Members", "distributionlist:Members", "members"),
]

POST_FIELDS: list[Field] = [
    ("ConversationTopic", "message:ConversationTopic", "str"),
    ("From", "message:From", "mailbox"),
    ("InternetMessageId", "message:InternetMessageId", "str"),
    ("IsRead", "message:IsRead", "bool"),
    ("PostedTime", "postitem:PostedTime", "dt"),
    ("References", "message:References", "str"),
    ("Sender", "message:Sender", "mailbox"),
]

# Element tag -> the ordered fields of that item type.
TYPES: dict[str, list[Field]] = {
    "Item": ITEM_FIELDS,
    "Message": ITEM_FIELDS + MESSAGE_FIELDS,
    "CalendarItem": ITEM_FIELDS + CALENDAR_FIELDS,
    "Contact": ITEM_FIELDS + CONTACT_FIELDS,
    "Task": ITEM_FIELDS + TASK_FIELDS,
    "PostItem": ITEM_FIELDS + POST_FIELDS,
    "DistributionList": ITEM_FIELDS + DISTRIBUTION_LIST_FIELDS,
    "MeetingRequest": ITEM_FIELDS
    + MESSAGE_FIELDS
    + MEETING_MESSAGE_FIELDS
    + MEETING_REQUEST_FIELDS,
    "MeetingResponse": ITEM_FIELDS
    + MESSAGE_FIELDS
    + MEETING_MESSAGE_FIELDS
    + [
        ("ProposedStart", "meeting:ProposedStart", "dt"),
        ("ProposedEnd", "meeting:ProposedEnd", "dt"),
    ],
    "MeetingCancellation": ITEM_FIELDS + MESSAGE_FIELDS + MEETING_MESSAGE_FIELDS,
}
DEFAULT_CLASS = {
    "Item": "IPM.Note",
    "Message": "IPM.Note",
    "CalendarItem": "IPM.Appointment",
    "Contact": "IPM.Contact",
    "Task": "IPM.Task",
    "PostItem": "IPM.Post",
    "DistributionList": "IPM.DistList",
    "MeetingRequest": "IPM.Schedule.Meeting.Request",
    "MeetingResponse": "IPM.Schedule.Meeting.Resp.Pos",
    "MeetingCancellation": "IPM.Schedule.Meeting.Canceled",
}

# Exchange's Default shape: what FindItem/GetItem return without AdditionalProperties.
DEFAULT_SHAPE: dict[str, set[str]] = {
    "Item": {
        "item:ItemId",
        "item:ParentFolderId",
        "item:ItemClass",
        "item:Subject",
        "item:Sensitivity",
        "item:DateTimeReceived",
        "item:Size",
        "item:Importance",
        "item:IsDraft",
        "item:DateTimeSent",
        "item:DateTimeCreated",
        "item:HasAttachments",
        "item:Culture",
        "item:LastModifiedTime",
        "item:Categories",
        "item:Body",
        "item:Attachments",
    },
    "Message": {
        "message:From",
        "message:Sender",
        "message:IsRead",
        "message:ToRecipients",
        "message:CcRecipients",
        "message:ConversationTopic",
        "item:DisplayTo",
        "item:DisplayCc",
    },
    "CalendarItem": {
        "calendar:Start",
        "calendar:End",
        "calendar:Location",
        "calendar:Organizer",
        "calendar:CalendarItemType",
        "calendar:IsRecurring",
        "calendar:IsAllDayEvent",
        "calendar:LegacyFreeBusyStatus",
        "calendar:MyResponseType",
        "calendar:IsMeeting",
        "calendar:IsCancelled",
        "calendar:UID",
        "calendar:RequiredAttendees",
        "calendar:OptionalAttendees",
    },
    "Contact": {
        "contacts:FileAs",
        "contacts:DisplayName",
        "contacts:GivenName",
        "contacts:Surname",
        "contacts:CompanyName",
        "contacts:EmailAddresses",
        "contacts:PhoneNumbers",
        "contacts:JobTitle",
        "contacts:Department",
    },
    "DistributionList": {"contacts:DisplayName", "contacts:FileAs"},
    "Task": {
        "task:DueDate",
        "task:StartDate",
        "task:Status",
        "task:PercentComplete",
        "task:IsComplete",
        "task:CompleteDate",
        "task:Owner",
    },
}
# Large or computed-on-demand fields that AllProperties leaves out, as Exchange does.
NOT_IN_ALL = {"item:MimeContent", "item:ConversationId"}


# ---------------------------------------------------------------------------
# extended properties


def ext_key(el: Element) -> str:
    """Normalized props key of a ``t:ExtendedFieldURI``; both ways to name a set agree."""
    prop_type = el.get("PropertyType", "")
    base = prop_type.removesuffix("Array")
    if base not in PROPERTY_TYPES:
        raise ItemXmlError(f"unknown PropertyType {prop_type!r}", "ErrorSchemaValidation")
    try:
        if el.get("PropertyTag"):
            raw = el.get("PropertyTag", "")
            tag = int(raw, 16) if raw.lower().startswith("0x") else int(raw)
            return tag_key(tag, prop_type)
        set_id = el.get("DistinguishedPropertySetId") or el.get("PropertySetId")
        if not set_id:
            raise ItemXmlError("ExtendedFieldURI names no property set", "ErrorSchemaValidation")
        if el.get("PropertyId"):
            raw = el.get("PropertyId", "")
            pid = int(raw, 16) if raw.lower().startswith("0x") else int(raw)
            return named_key(set_id, pid, prop_type)
        if el.get("PropertyName"):
            return named_key(set_id, el.get("PropertyName", ""), prop_type)
    except ValueError as exc:
        raise ItemXmlError(f"bad ExtendedFieldURI: {exc}", "ErrorSchemaValidation") from exc
    raise ItemXmlError("ExtendedFieldURI names no property", "ErrorSchemaValidation")


# ---------------------------------------------------------------------------
# scalar conversions


def norm_dt(text: str) -> str:
    """Any xs:dateTime (offset, Z or naive = UTC) as the lab's UTC form."""
    s = text.strip()
    try:
        d = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ItemXmlError(f"bad date/time {text!r}", "ErrorInvalidValueForProperty") from exc
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


NAIVE_TIMES = "__naive__"
"""Key under which `parse_item` keeps date-times given without offset: {FieldURI: text}."""
MEETING_ZONE = "__meeting_zone__"
"""Key under which `parse_item` keeps an Exchange 2007 MeetingTimeZone."""
_OFFSET = re.compile(r"(Z|[+-]\d{2}:?\d{2})$")


def is_naive(text: str) -> bool:
    """An xs:dateTime without Z or offset (a local time; its zone comes from elsewhere)."""
    value = text.strip()
    return "T" in value and _OFFSET.search(value.split("T", 1)[1]) is None


def parse_meeting_zone(el: Element) -> dict[str, Any]:
    """`t:MeetingTimeZone` (Exchange 2007): its Windows name and base offset in minutes
    (UTC minus local, as Exchange writes biases)."""
    base = _text(el.find(t("BaseOffset")))
    found = re.fullmatch(r"(-)?PT(?:(\d+)H)?(?:(\d+)M)?", base) if base else None
    minutes = 0
    if found is not None:
        minutes = int(found.group(2) or 0) * 60 + int(found.group(3) or 0)
        minutes = -minutes if found.group(1) else minutes
    return {"id": el.get("TimeZoneName") or "", "bias_minutes": minutes}


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    raise ItemXmlError(f"bad boolean {text!r}", "ErrorInvalidValueForProperty")


def _local(el: Element) -> str:
    return el.tag.rsplit("}", 1)[-1]


def _text(el: Element | None) -> str:
    return "" if el is None or el.text is None else el.text


# ---------------------------------------------------------------------------
# parsing


def parse_mailbox(el: Element) -> dict[str, str]:
    """A ``t:Mailbox`` (or its wrapper) as ``{"name", "email", "routing", "mailbox_type"}``."""
    mb = el if _local(el) == "Mailbox" else el.find(t("Mailbox"))
    if mb is None:
        return {}
    out = {"name": _text(mb.find(t("Name"))), "email": _text(mb.find(t("EmailAddress")))}
    if out["email"]:
        out["email"] = out["email"].strip()
    return {k: v for k, v in out.items() if v}


def parse_recurrence(el: Element) -> dict[str, Any]:
    """``t:Recurrence`` as stored JSON (see ``exlab.core.recurrence.Recurrence.to_json``)."""
    children = list(el)
    if len(children) != 2:
        raise ItemXmlError("Recurrence needs a pattern and a range", "ErrorSchemaValidation")
    pat, rng = children
    kinds: dict[str, PatternKind] = {
        "DailyRecurrence": "daily",
        "WeeklyRecurrence": "weekly",
        "AbsoluteMonthlyRecurrence": "absolute_monthly",
        "RelativeMonthlyRecurrence": "relative_monthly",
        "AbsoluteYearlyRecurrence": "absolute_yearly",
        "RelativeYearlyRecurrence": "relative_yearly",
    }
    ranges: dict[str, RangeKind] = {
        "NoEndRecurrence": "no_end",
        "EndDateRecurrence": "end_date",
        "NumberedRecurrence": "numbered",
    }
    kind = kinds.get(_local(pat))
    range_kind = ranges.get(_local(rng))
    if kind is None or range_kind is None:
        raise ItemXmlError(
            f"unsupported recurrence {_local(pat)}/{_local(rng)}", "ErrorCalendarInvalidRecurrence"
        )
    try:
        start = date.fromisoformat(_text(rng.find(t("StartDate")))[:10])
        end_text = _text(rng.find(t("EndDate")))
        count_text = _text(rng.find(t("NumberOfOccurrences")))
        days = _text(pat.find(t("DaysOfWeek"))).split()
        rec = Recurrence(
            kind=kind,
            start_date=start,
            range_kind=range_kind,
            interval=int(_text(pat.find(t("Interval"))) or 1),
            days_of_week=tuple(days),
            first_day_of_week=_text(pat.find(t("FirstDayOfWeek"))) or "Monday",
            day_of_month=int(_text(pat.find(t("DayOfMonth"))) or 1),
            day_of_week_index=_text(pat.find(t("DayOfWeekIndex"))) or "First",
            month=_text(pat.find(t("Month"))) or "January",
            end_date=date.fromisoformat(end_text[:10]) if end_text else None,
            count=int(count_text) if count_text else None,
        )
    except (ValueError, RecurrenceError) as exc:
        raise ItemXmlError(f"invalid recurrence: {exc}", "ErrorCalendarInvalidRecurrence") from exc
    return rec.to_json()


def _parse_value(kind: str, el: Element) -> Any:
    if kind == "str":
        return _text(el)
    if kind == "bool":
        return _bool(_text(el))
    if kind == "int":
        try:
            return int(_text(el))
        except ValueError as exc:
            raise ItemXmlError(f"bad integer in {_local(el)}", "ErrorSchemaValidation") from exc
    if kind == "double":
        try:
            return float(_text(el))
        except ValueError as exc:
            raise ItemXmlError(f"bad number in {_local(el)}", "ErrorSchemaValidation") from exc
    if kind == "dt":
        return norm_dt(_text(el))
    if kind == "strings":
        return [_text(s) for s in el.findall(t("String"))]
    if kind == "body":
        return {"type": el.get("BodyType", "Text"), "text": _text(el)}
    if kind == "mailbox":
        return parse_mailbox(el)
    if kind == "mailboxes":
        return [parse_mailbox(mb) for mb in el.findall(t("Mailbox"))]
    if kind == "attendees":
        out = []
        for att in el.findall(t("Attendee")):
            a: dict[str, Any] = parse_mailbox(att)
            a["response"] = _text(att.find(t("ResponseType"))) or "Unknown"
            last = att.find(t("LastResponseTime"))
            if last is not None and last.text:
                a["last_response_time"] = norm_dt(last.text)
            out.append(a)
        return out
    if kind == "recurrence":
        return parse_recurrence(el)
    if kind == "tz":
        return {"id": el.get("Id") or el.get("Name") or "UTC"}
    if kind == "emaildict":
        return {e.get("Key", ""): _text(e) for e in el.findall(t("Entry"))}
    if kind == "phonedict":
        return {e.get("Key", ""): _text(e) for e in el.findall(t("Entry"))}
    if kind == "addrdict":
        return {e.get("Key", ""): {_local(c): _text(c) for c in e} for e in el.findall(t("Entry"))}
    if kind == "mime":
        return _text(el)
    if kind == "members":
        members = []
        for member in el.findall(t("Member")):
            entry: dict[str, Any] = parse_mailbox(member)
            entry["status"] = _text(member.find(t("Status"))) or "Normal"
            if member.get("Key"):
                entry["key"] = member.get("Key")
            members.append(entry)
        return members
    return None


def parse_item(el: Element) -> tuple[str, dict[str, Any]]:
    """An item element from a request as (element name, props).

    Read-only and computed fields are dropped; ``ExtendedProperty`` children become ``ext:``
    keys; the item class defaults by element (``t:Message`` → ``IPM.Note``).
    """
    name = _local(el)
    fields = TYPES.get(name)
    if fields is None:
        raise ItemXmlError(f"unsupported item type {name}", "ErrorInvalidRequest")
    by_name: dict[str, Field] = {}
    for f in fields:
        by_name.setdefault(f[0], f)
    props: dict[str, Any] = {}
    for child in el:
        local = _local(child)
        if local == "ExtendedProperty":
            uri_el = child.find(t("ExtendedFieldURI"))
            if uri_el is None:
                raise ItemXmlError(
                    "ExtendedProperty without ExtendedFieldURI", "ErrorSchemaValidation"
                )
            key = ext_key(uri_el)
            prop_type = uri_el.get("PropertyType", "String")
            values = child.find(t("Values"))
            try:
                if values is not None:
                    props[key] = [value_from_text(prop_type, _text(v)) for v in values]
                else:
                    props[key] = value_from_text(prop_type, _text(child.find(t("Value"))))
            except (ValueError, ItemXmlError) as exc:
                raise ItemXmlError(f"bad value for {key}", "ErrorInvalidValueForProperty") from exc
            continue
        found = by_name.get(local)
        if found is None:
            # Newer-schema fields the lab does not keep (e.g. Exchange 2013 additions).
            continue
        _, uri, kind = found
        if uri == "calendar:MeetingTimeZone":
            props[MEETING_ZONE] = parse_meeting_zone(child)
            continue
        if kind == "dt" and is_naive(_text(child)):
            props.setdefault(NAIVE_TIMES, {})[uri] = _text(child)
        if kind in (
            "id",
            "ro",
            "rights",
            "attachments",
            "occurrence",
            "occurrences",
            "deleted",
            "headers",
        ):
            if kind == "attachments":
                props["__attachments__"] = list(child)
            continue
        props[uri] = _parse_value(kind, child)
    return name, props


# ---------------------------------------------------------------------------
# serialization


@dataclass
class Shape:
    """What to return: a base shape plus additional FieldURIs and extended properties."""

    base: str = "Default"  # IdOnly | Default | AllProperties
    uris: set[str] = field(default_factory=set)
    # key -> the ExtendedFieldURI element as the client sent it (echoed back verbatim).
    ext: dict[str, Element] = field(default_factory=dict)
    body_type: str = "Best"
    include_mime: bool = False

    def wants(self, uri: str, element: str) -> bool:
        if uri == "item:ItemId" or uri in self.uris:
            return True
        if uri == "item:MimeContent":
            return self.include_mime
        if self.base == "AllProperties":
            return uri not in NOT_IN_ALL
        if self.base == "Default":
            return (
                uri in DEFAULT_SHAPE["Item"]
                or uri in DEFAULT_SHAPE.get(element, set())
                or (
                    element in ("MeetingRequest", "MeetingResponse", "MeetingCancellation")
                    and uri in DEFAULT_SHAPE["Message"] | DEFAULT_SHAPE["CalendarItem"]
                )
            )
        return False


def _sub(parent: Element, tag: str, text: str | None = None) -> Element:
    el = SubElement(parent, t(tag))
    if text is not None:
        el.text = text
    return el


def _mailbox(parent: Element, tag: str | None, mb: Mapping[str, Any]) -> None:
    holder = _sub(parent, tag) if tag else parent
    box = _sub(holder, "Mailbox")
    if mb.get("name"):
        _sub(box, "Name", str(mb["name"]))
    if mb.get("email"):
        _sub(box, "EmailAddress", str(mb["email"]))
        _sub(box, "RoutingType", "SMTP")
    _sub(box, "MailboxType", str(mb.get("mailbox_type", "Mailbox")))


def _recurrence(parent: Element, tag: str, data: Mapping[str, Any]) -> None:
    rec = Recurrence.from_json(dict(data))
    el = _sub(parent, tag)
    names = {
        "daily": "DailyRecurrence",
        "weekly": "WeeklyRecurrence",
        "absolute_monthly": "AbsoluteMonthlyRecurrence",
        "relative_monthly": "RelativeMonthlyRecurrence",
        "absolute_yearly": "AbsoluteYearlyRecurrence",
        "relative_yearly": "RelativeYearlyRecurrence",
    }
    pat = _sub(el, names[rec.kind])
    if rec.kind == "relative_yearly":
        _sub(pat, "DaysOfWeek", rec.days_of_week[0])
        _sub(pat, "DayOfWeekIndex", rec.day_of_week_index)
        _sub(pat, "Month", rec.month)
    elif rec.kind == "absolute_yearly":
        _sub(pat, "DayOfMonth", str(rec.day_of_month))
        _sub(pat, "Month", rec.month)
    else:
        _sub(pat, "Interval", str(rec.interval))
        if rec.kind == "relative_monthly":
            _sub(pat, "DaysOfWeek", rec.days_of_week[0])
            _sub(pat, "DayOfWeekIndex", rec.day_of_week_index)
        elif rec.kind == "absolute_monthly":
            _sub(pat, "DayOfMonth", str(rec.day_of_month))
        elif rec.kind == "weekly":
            _sub(pat, "DaysOfWeek", " ".join(rec.days_of_week))
            _sub(pat, "FirstDayOfWeek", rec.first_day_of_week)
    # Exchange writes the range's dates with the offset of the item's zone (view.py adds them).
    start = rec.start_date.isoformat() + str(data.get("start_offset") or "")
    if rec.range_kind == "no_end":
        rng = _sub(el, "NoEndRecurrence")
        _sub(rng, "StartDate", start)
    elif rec.range_kind == "end_date":
        rng = _sub(el, "EndDateRecurrence")
        _sub(rng, "StartDate", start)
        end = rec.end_date.isoformat() + str(data.get("end_offset") or "") if rec.end_date else ""
        _sub(rng, "EndDate", end)
    else:
        rng = _sub(el, "NumberedRecurrence")
        _sub(rng, "StartDate", start)
        _sub(rng, "NumberOfOccurrences", str(rec.count))


def _occurrence(parent: Element, tag: str, occ: Mapping[str, Any]) -> None:
    el = _sub(parent, tag)
    iid = _sub(el, "ItemId")
    iid.set("Id", occ["id"])
    iid.set("ChangeKey", occ.get("change_key", ""))
    _sub(el, "Start", occ["start"])
    _sub(el, "End", occ["end"])
    _sub(el, "OriginalStart", occ["original_start"])


def _write_value(parent: Element, tag: str, kind: str, value: Any, body_type: str) -> None:
    if kind in ("str", "int", "double"):
        _sub(parent, tag, str(value))
    elif kind == "bool":
        _sub(parent, tag, "true" if value else "false")
    elif kind == "dt":
        _sub(parent, tag, str(value))
    elif kind == "strings":
        el = _sub(parent, tag)
        for s in value:
            _sub(el, "String", str(s))
    elif kind == "body":
        text = str(value.get("text", ""))
        btype = str(value.get("type", "Text"))
        if body_type == "Text" and btype == "HTML":
            text, btype = _strip_html(text), "Text"
        elif body_type == "HTML" and btype == "Text":
            text, btype = f"<html><body><pre>{html.escape(text)}</pre></body></html>", "HTML"
        el = _sub(parent, tag, text)
        el.set("BodyType", btype)
    elif kind == "mailbox":
        _mailbox(parent, tag, value)
    elif kind == "mailboxes":
        el = _sub(parent, tag)
        for mb in value:
            _mailbox(el, None, mb)
    elif kind == "attendees":
        el = _sub(parent, tag)
        for a in value:
            att = _sub(el, "Attendee")
            _mailbox(att, None, a)
            _sub(att, "ResponseType", str(a.get("response", "Unknown")))
            if a.get("last_response_time"):
                _sub(att, "LastResponseTime", str(a["last_response_time"]))
    elif kind == "recurrence":
        _recurrence(parent, tag, value)
    elif kind == "tz":
        el = _sub(parent, tag)
        el.set("Id", str(value.get("id", "UTC")))
        found = zone_by_id(str(value.get("id")))
        el.set("Name", found.name if found is not None else str(value.get("id", "UTC")))
    elif kind == "id":
        el = _sub(parent, tag)
        el.set("Id", str(value["id"]))
        if value.get("change_key"):
            el.set("ChangeKey", str(value["change_key"]))
    elif kind == "occurrence":
        _occurrence(parent, tag, value)
    elif kind == "occurrences":
        el = _sub(parent, tag)
        for occ in value:
            _occurrence(el, "Occurrence", occ)
    elif kind == "deleted":
        el = _sub(parent, tag)
        for start in value:
            _sub(_sub(el, "DeletedOccurrence"), "Start", str(start))
    elif kind == "rights":
        el = _sub(parent, tag)
        for name in (
            "CreateAssociated",
            "CreateContents",
            "CreateHierarchy",
            "Delete",
            "Modify",
            "Read",
            "ViewPrivateItems",
        ):
            _sub(el, name, "true" if value.get(name) else "false")
    elif kind in ("emaildict", "phonedict"):
        if value:
            el = _sub(parent, tag)
            for key, v in value.items():
                _sub(el, "Entry", str(v)).set("Key", key)
    elif kind == "addrdict":
        if value:
            el = _sub(parent, tag)
            for key, parts in value.items():
                entry = _sub(el, "Entry")
                entry.set("Key", key)
                for part in ("Street", "City", "State", "CountryOrRegion", "PostalCode"):
                    if parts.get(part):
                        _sub(entry, part, str(parts[part]))
    elif kind == "attachments":
        if value:
            el = _sub(parent, tag)
            for att in value:
                write_attachment(el, att, with_content=False)
    elif kind == "members":
        el = _sub(parent, tag)
        for index, member in enumerate(value):
            entry = _sub(el, "Member")
            entry.set("Key", str(member.get("key") or index))
            _mailbox(entry, None, {"mailbox_type": "OneOff", **member})
            _sub(entry, "Status", str(member.get("status") or "Normal"))
    elif kind == "mime":
        el = _sub(parent, tag, str(value))
        el.set("CharacterSet", "UTF-8")
    elif kind == "headers":
        el = _sub(parent, tag)
        for name, v in value:
            _sub(el, "InternetMessageHeader", str(v)).set("HeaderName", str(name))


def write_attachment(parent: Element, att: Mapping[str, Any], *, with_content: bool) -> Element:
    """``t:FileAttachment`` (or ``t:ItemAttachment`` without its item) in schema order."""
    tag = "ItemAttachment" if att.get("kind") == "item" else "FileAttachment"
    el = _sub(parent, tag)
    _sub(el, "AttachmentId").set("Id", str(att["id"]))
    _sub(el, "Name", str(att.get("name", "")))
    if att.get("content_type"):
        _sub(el, "ContentType", str(att["content_type"]))
    if att.get("content_id"):
        _sub(el, "ContentId", str(att["content_id"]))
    _sub(el, "Size", str(att.get("size", 0)))
    if att.get("last_modified"):
        _sub(el, "LastModifiedTime", str(att["last_modified"]))
    _sub(el, "IsInline", "true" if att.get("is_inline") else "false")
    if tag == "FileAttachment":
        _sub(el, "IsContactPhoto", "false")
        if with_content:
            _sub(el, "Content", base64.b64encode(bytes(att.get("content", b""))).decode())
    elif with_content and att.get("item_view"):
        element, props = att["item_view"]
        serialize_item(el, element, props, Shape(base="AllProperties"))
    return el


def _strip_html(markup: str) -> str:
    """HTML body as plain text (tags dropped, entities resolved), as BodyType=Text asks."""
    return html.unescape(re.sub(r"<[^>]+>", "", markup)).strip()


def serialize_item(
    parent: Element, element: str, props: Mapping[str, Any], shape: Shape
) -> Element:
    """Append the item element with the fields the shape asks for, in schema order."""
    el = _sub(parent, element)
    for tag, uri, kind in TYPES[element]:
        if kind == "ext":
            for key, uri_el in shape.ext.items():
                if props.get(key) is None:
                    continue
                prop = _sub(el, "ExtendedProperty")
                copy = _sub(prop, "ExtendedFieldURI")
                for a, v in uri_el.attrib.items():
                    copy.set(a, v)
                value = props[key]
                if isinstance(value, list):
                    vals = _sub(prop, "Values")
                    for v in value:
                        _sub(vals, "Value", value_text(v))
                else:
                    _sub(prop, "Value", value_text(value))
            continue
        if kind == "ro" or not shape.wants(uri, element):
            continue
        value = props.get(uri)
        if value is None or (value == [] and kind != "strings"):
            continue
        if kind == "strings" and not value:
            continue
        _write_value(el, tag, kind, value, shape.body_type)
    return el


def parse_shape(el: Element | None) -> Shape:
    """``m:ItemShape`` into a Shape; unknown FieldURIs raise ErrorInvalidPropertyRequest."""
    shape = Shape()
    if el is None:
        return shape
    base = _text(el.find(t("BaseShape"))) or "Default"
    if base not in ("IdOnly", "Default", "AllProperties"):
        raise ItemXmlError(f"unknown BaseShape {base!r}", "ErrorSchemaValidation")
    shape.base = base
    shape.include_mime = _bool(_text(el.find(t("IncludeMimeContent"))) or "false")
    shape.body_type = _text(el.find(t("BodyType"))) or "Best"
    extra = el.find(t("AdditionalProperties"))
    if extra is not None:
        for p in extra:
            local = _local(p)
            if local == "ExtendedFieldURI":
                shape.ext[ext_key(p)] = p
            elif local in ("FieldURI", "IndexedFieldURI"):
                uri = field_uri_key(p)
                if uri == "item:MimeContent":
                    shape.include_mime = True
                shape.uris.add(uri)
    return shape


# IndexedFieldURI names per dictionary field.
INDEXED = {
    "contacts:EmailAddress": "contacts:EmailAddresses",
    "contacts:PhoneNumber": "contacts:PhoneNumbers",
    "contacts:ImAddress": "contacts:ImAddresses",
}


def field_uri_key(el: Element) -> str:
    """Props key for a FieldURI / IndexedFieldURI / ExtendedFieldURI path element."""
    local = _local(el)
    if local == "ExtendedFieldURI":
        return ext_key(el)
    uri = el.get("FieldURI", "")
    if local == "IndexedFieldURI":
        if uri in INDEXED:
            return INDEXED[uri]
        if uri.startswith("contacts:PhysicalAddress"):
            return "contacts:PhysicalAddresses"
        raise ItemXmlError(
            f"unsupported indexed field {uri}", "ErrorInvalidIndexedPagingParameters"
        )
    if not uri:
        raise ItemXmlError("FieldURI without a name", "ErrorSchemaValidation")
    return uri


def restriction_key(el: Element) -> str:
    """Props key for a path in a Restriction or SortOrder: an indexed field names one entry
    (``contacts:EmailAddresses:EmailAddress1``, see ``exlab.core.items.effective_props``)."""
    if _local(el) == "IndexedFieldURI":
        base = field_uri_key(el)
        index = el.get("FieldIndex", "")
        uri = el.get("FieldURI", "")
        if uri.startswith("contacts:PhysicalAddress:"):
            return f"{base}:{index}:{uri.rsplit(':', 1)[1]}"
        return f"{base}:{index}"
    return field_uri_key(el)


def iter_paths(el: Element) -> Iterator[Element]:
    for c in el:
        if _local(c) in ("FieldURI", "IndexedFieldURI", "ExtendedFieldURI"):
            yield c
