"""Items between the lab's props (EWS FieldURI keys) and Graph's JSON resources.

The store keeps one representation (see `exlab.core.items`); this module is the Graph face's view
of it: `message`, `event` and `contact` resources out, and property changes in. Times are
stored in UTC; events are written in the time zone the client prefers (`Prefer:
outlook.timezone`), as Graph does. Unknown or read-only properties in a request are a 400.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from exlab.core.items import (
    PID_LID_TASK_DUE,
    PID_LID_TASK_START,
    PR_FLAG_COMPLETE_TIME,
    PR_FLAG_STATUS,
)
from exlab.core.recurrence import MONTHS
from exlab.core.timezones import known, windows_id_of, zone_info
from exlab.graph.extended import MULTI, SINGLE, extended_in
from exlab.graph.input_error import GraphInputError as GraphInputError

Props = dict[str, Any]
Json = dict[str, Any]


# -- ids ----------------------------------------------------------------------------------------


def graph_id(ews_id: str) -> str:
    """Graph ids are the same opaque blob in the URL-safe alphabet (they travel in paths)."""
    return ews_id.replace("+", "-").replace("/", "_")


def ews_id(graph: str) -> str:
    return graph.replace("-", "+").replace("_", "/")


# -- time ---------------------------------------------------------------------------------------


def zone(name: str | None) -> tuple[ZoneInfo, str]:
    """(zone, the name to echo) for a Windows or IANA time-zone name; UTC when absent."""
    if not name:
        return ZoneInfo("UTC"), "UTC"
    if known(name):
        return zone_info(name), name
    raise GraphInputError(
        f"A valid TimeZone value must be specified. The following TimeZone value is not"
        f" supported: '{name}'.",
        "TimeZoneNotSupportedException",
    )


def parse_utc(text: str) -> datetime:
    value = text.strip().replace("Z", "+00:00")
    if "." in value:
        head, _, tail = value.partition(".")
        frac = "".join(c for c in tail if c.isdigit())
        rest = tail[len(frac) :]
        value = f"{head}.{frac[:6].ljust(6, '0')}{rest}"
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dttz_out(stored: str | None, tz: ZoneInfo, tzname: str) -> Json | None:
    """Graph's dateTimeTimeZone for a stored UTC time."""
    if not stored:
        return None
    local = parse_utc(stored).astimezone(tz)
    return {"dateTime": local.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": tzname}


def dttz_in(value: Any, field: str) -> tuple[str, str]:
    """(stored UTC text, Windows zone name) of a dateTimeTimeZone in a request."""
    if not isinstance(value, Mapping) or "dateTime" not in value:
        raise GraphInputError(f"'{field}' needs dateTime and timeZone.")
    tz, name = zone(str(value.get("timeZone") or "UTC"))
    try:
        moment = datetime.fromisoformat(str(value["dateTime"]).split(".")[0].rstrip("Z"))
    except ValueError:
        raise GraphInputError(f"'{field}' has an invalid dateTime.") from None
    local = moment.replace(tzinfo=tz)
    return utc_text(local), windows_id_of(name) or "UTC"


# -- small pieces ---------------------------------------------------------------------------------


def address_out(mb: Mapping[str, Any] | None) -> Json | None:
    if not mb:
        return None
    return {
        "emailAddress": {
            "name": mb.get("name") or mb.get("email", ""),
            "address": mb.get("email", ""),
        }
    }


def address_in(value: Any, field: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not isinstance(value.get("emailAddress"), Mapping):
        raise GraphInputError(f"'{field}' needs an emailAddress.")
    email = str(value["emailAddress"].get("address", "")).strip()
    if "@" not in email:
        raise GraphInputError(
            f"'{field}' has an invalid address '{email}'.", "ErrorInvalidRecipients"
        )
    out = {"email": email}
    name = value["emailAddress"].get("name")
    if name:
        out["name"] = str(name)
    return out


def addresses_in(value: Any, field: str) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise GraphInputError(f"'{field}' must be a list of recipients.")
    return [address_in(v, field) for v in value]


def body_out(body: Mapping[str, Any] | None) -> Json:
    body = body or {}
    kind = "html" if str(body.get("type", "Text")).lower() == "html" else "text"
    return {"contentType": kind, "content": body.get("text", "")}


def body_in(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise GraphInputError("'body' needs contentType and content.")
    kind = "HTML" if str(value.get("contentType", "text")).lower() == "html" else "Text"
    return {"type": kind, "text": str(value.get("content", ""))}


def preview(body: Mapping[str, Any] | None) -> str:
    text = str((body or {}).get("text", ""))
    if str((body or {}).get("type", "")).lower() == "html":
        import re

        text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(text.split())[:255]


def _lower(value: Any, default: str) -> str:
    return str(value or default)[:1].lower() + str(value or default)[1:]


def _choice(value: Any, allowed: Mapping[str, str], field: str) -> str:
    key = str(value)
    for k, v in allowed.items():
        if k.lower() == key.lower():
            return v
    raise GraphInputError(f"'{value}' is not a valid value for '{field}'.")


IMPORTANCE_IN = {"low": "Low", "normal": "Normal", "high": "High"}
SENSITIVITY_IN = {
    "normal": "Normal",
    "personal": "Personal",
    "private": "Private",
    "confidential": "Confidential",
}
SHOW_AS_OUT = {
    "Free": "free",
    "Tentative": "tentative",
    "Busy": "busy",
    "OOF": "oof",
    "WorkingElsewhere": "workingElsewhere",
    "NoData": "unknown",
}
SHOW_AS_IN = {v: k for k, v in SHOW_AS_OUT.items()}
RESPONSE_OUT = {
    "Unknown": "none",
    "Organizer": "organizer",
    "Tentative": "tentativelyAccepted",
    "Accept": "accepted",
    "Decline": "declined",
    "NoResponseReceived": "notResponded",
}
ITEM_TYPE_OUT = {
    "Single": "singleInstance",
    "Occurrence": "occurrence",
    "Exception": "exception",
    "RecurringMaster": "seriesMaster",
}
FLAG_OUT = {0: "notFlagged", 1: "complete", 2: "flagged"}
FLAG_IN = {v: k for k, v in FLAG_OUT.items()}
NEVER = "0001-01-01T00:00:00Z"


# -- flag -----------------------------------------------------------------------------------------


def flag_out(p: Mapping[str, Any]) -> Json:
    status = FLAG_OUT.get(int(p.get(PR_FLAG_STATUS) or 0), "notFlagged")
    out: Json = {"flagStatus": status}
    utc = ZoneInfo("UTC")
    for key, name in (
        (PID_LID_TASK_START, "startDateTime"),
        (PID_LID_TASK_DUE, "dueDateTime"),
        (PR_FLAG_COMPLETE_TIME, "completedDateTime"),
    ):
        if p.get(key):
            out[name] = dttz_out(str(p[key]), utc, "UTC")
    return out


def flag_in(value: Any) -> Props:
    if not isinstance(value, Mapping):
        raise GraphInputError("'flag' must be an object.")
    changes: Props = {}
    if "flagStatus" in value:
        status = _choice(value["flagStatus"], {k: k for k in FLAG_IN}, "flagStatus")
        changes[PR_FLAG_STATUS] = FLAG_IN[status] or None
        if status == "notFlagged":
            changes.update(
                {PID_LID_TASK_START: None, PID_LID_TASK_DUE: None, PR_FLAG_COMPLETE_TIME: None}
            )
    for key, name in (
        (PID_LID_TASK_START, "startDateTime"),
        (PID_LID_TASK_DUE, "dueDateTime"),
        (PR_FLAG_COMPLETE_TIME, "completedDateTime"),
    ):
        if value.get(name):
            changes[key] = dttz_in(value[name], f"flag/{name}")[0]
    return changes


# -- messages -------------------------------------------------------------------------------------


def message_out(p: Mapping[str, Any], item_id: str, folder_id: str, change_key: str) -> Json:
    """A `microsoft.graph.message` from an item's output props."""
    body = p.get("item:Body")
    return {
        "@odata.etag": f'W/"{change_key}"',
        "id": item_id,
        "createdDateTime": p.get("item:DateTimeCreated"),
        "lastModifiedDateTime": p.get("item:LastModifiedTime"),
        "changeKey": change_key,
        "categories": list(p.get("item:Categories") or []),
        "receivedDateTime": p.get("item:DateTimeReceived") or p.get("item:DateTimeCreated"),
        "sentDateTime": p.get("item:DateTimeSent"),
        "hasAttachments": bool(p.get("item:HasAttachments")),
        "internetMessageId": p.get("message:InternetMessageId"),
        "subject": p.get("item:Subject", ""),
        "bodyPreview": preview(body),
        "importance": _lower(p.get("item:Importance"), "Normal"),
        "parentFolderId": folder_id,
        "conversationId": (p.get("item:ConversationId") or {}).get("id")
        if isinstance(p.get("item:ConversationId"), Mapping)
        else p.get("item:ConversationId"),
        "isDeliveryReceiptRequested": bool(p.get("message:IsDeliveryReceiptRequested")),
        "isReadReceiptRequested": bool(p.get("message:IsReadReceiptRequested")),
        "isRead": bool(p.get("message:IsRead")),
        "isDraft": bool(p.get("item:IsDraft")),
        "inferenceClassification": "focused",
        "body": body_out(body),
        "sender": address_out(p.get("message:Sender")),
        "from": address_out(p.get("message:From")),
        "toRecipients": [address_out(a) for a in p.get("message:ToRecipients") or []],
        "ccRecipients": [address_out(a) for a in p.get("message:CcRecipients") or []],
        "bccRecipients": [address_out(a) for a in p.get("message:BccRecipients") or []],
        "replyTo": [address_out(a) for a in p.get("message:ReplyTo") or []],
        "flag": flag_out(p),
    }


MESSAGE_READ_ONLY = {
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "hasAttachments",
    "parentFolderId",
    "conversationId",
    "bodyPreview",
    "webLink",
    "inferenceClassification",
    "isDraft",
    "sentDateTime",
    "receivedDateTime",
}


def message_in(body: Mapping[str, Any], *, creating: bool) -> Props:
    """Property changes for a message create or PATCH (None deletes a property)."""
    p: Props = {}
    for key, value in body.items():
        if key.startswith("@odata") or key == "attachments":
            continue
        if key == "subject":
            p["item:Subject"] = "" if value is None else str(value)
        elif key == "body":
            p["item:Body"] = body_in(value)
        elif key == "importance":
            p["item:Importance"] = _choice(value, IMPORTANCE_IN, key)
        elif key == "categories":
            p["item:Categories"] = [str(c) for c in value or []]
        elif key == "isRead":
            p["message:IsRead"] = bool(value)
        elif key == "isDeliveryReceiptRequested":
            p["message:IsDeliveryReceiptRequested"] = bool(value)
        elif key == "isReadReceiptRequested":
            p["message:IsReadReceiptRequested"] = bool(value)
        elif key in ("toRecipients", "ccRecipients", "bccRecipients", "replyTo"):
            name = {"replyTo": "message:ReplyTo"}.get(key, f"message:{key[0].upper()}{key[1:]}")
            p[name] = addresses_in(value, key)
        elif key == "from":
            p["message:From"] = address_in(value, key)
        elif key == "sender":
            p["message:Sender"] = address_in(value, key)
        elif key == "flag":
            p.update(flag_in(value))
        elif key == "internetMessageId" and creating:
            p["message:InternetMessageId"] = str(value)
        elif key in (SINGLE, MULTI):
            p.update(extended_in(key, value))
        elif key in MESSAGE_READ_ONLY:
            continue  # Graph ignores read-only properties in a body, it does not refuse them
        else:
            raise GraphInputError(
                f"The property '{key}' does not exist on type 'microsoft.graph.message'."
                " Make sure to only use property names that are defined by the type.",
            )
    return p


def attachment_out(att: Mapping[str, Any], att_id: str, *, with_content: bool) -> Json:
    out: Json = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "id": att_id,
        "lastModifiedDateTime": att.get("last_modified"),
        "name": att.get("name"),
        "contentType": att.get("content_type"),
        "size": att.get("size"),
        "isInline": bool(att.get("is_inline")),
        "contentId": att.get("content_id"),
    }
    if with_content:
        out["contentBytes"] = base64.b64encode(att.get("content") or b"").decode("ascii")
    return out


# -- events ---------------------------------------------------------------------------------------

PATTERN_OUT = {
    "daily": "daily",
    "weekly": "weekly",
    "absolute_monthly": "absoluteMonthly",
    "relative_monthly": "relativeMonthly",
    "absolute_yearly": "absoluteYearly",
    "relative_yearly": "relativeYearly",
}
PATTERN_IN = {v: k for k, v in PATTERN_OUT.items()}
RANGE_OUT = {"no_end": "noEnd", "end_date": "endDate", "numbered": "numbered"}
RANGE_IN = {v: k for k, v in RANGE_OUT.items()}


def recurrence_out(rec: Mapping[str, Any], tzname: str) -> Json:
    pattern: Json = {
        "type": PATTERN_OUT.get(str(rec.get("kind")), "daily"),
        "interval": int(rec.get("interval", 1)),
        "month": 0,
        "dayOfMonth": 0,
        "firstDayOfWeek": str(rec.get("first_day_of_week", "Sunday")).lower(),
        "index": "first",
    }
    if rec.get("days_of_week"):
        pattern["daysOfWeek"] = [str(d).lower() for d in rec["days_of_week"]]
    if rec.get("day_of_month"):
        pattern["dayOfMonth"] = int(rec["day_of_month"])
    if rec.get("month"):
        pattern["month"] = MONTHS.index(str(rec["month"])) + 1
    if rec.get("day_of_week_index"):
        pattern["index"] = str(rec["day_of_week_index"]).lower()
    rng: Json = {
        "type": RANGE_OUT.get(str(rec.get("range_kind")), "noEnd"),
        "startDate": rec.get("start_date"),
        "endDate": rec.get("end_date") or "0001-01-01",
        "recurrenceTimeZone": tzname,
        "numberOfOccurrences": int(rec.get("count") or 0),
    }
    return {"pattern": pattern, "range": rng}


def recurrence_in(value: Any) -> Json | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise GraphInputError("'recurrence' must be an object.")
    pattern = value.get("pattern") or {}
    rng = value.get("range") or {}
    kind = PATTERN_IN.get(str(pattern.get("type")))
    range_kind = RANGE_IN.get(str(rng.get("type")))
    if kind is None or range_kind is None or not rng.get("startDate"):
        raise GraphInputError(
            "The recurrence needs pattern.type, range.type and range.startDate.",
            "ErrorPropertyValidationFailure",
        )
    out: Json = {
        "kind": kind,
        "interval": int(pattern.get("interval") or 1),
        "start_date": str(rng["startDate"]),
        "range_kind": range_kind,
    }
    days = [str(d).capitalize() for d in pattern.get("daysOfWeek") or []]
    if kind == "weekly":
        out["days_of_week"] = days
        out["first_day_of_week"] = str(pattern.get("firstDayOfWeek") or "sunday").capitalize()
    if kind in ("relative_monthly", "relative_yearly"):
        out["days_of_week"] = days[:1]
        out["day_of_week_index"] = str(pattern.get("index") or "first").capitalize()
    if kind in ("absolute_monthly", "absolute_yearly"):
        out["day_of_month"] = int(pattern.get("dayOfMonth") or 1)
    if kind in ("absolute_yearly", "relative_yearly"):
        month = int(pattern.get("month") or 1)
        if not 1 <= month <= 12:
            raise GraphInputError("pattern.month must be 1..12.", "ErrorPropertyValidationFailure")
        out["month"] = MONTHS[month - 1]
    if range_kind == "end_date":
        out["end_date"] = str(rng.get("endDate"))
    if range_kind == "numbered":
        out["count"] = int(rng.get("numberOfOccurrences") or 0)
    from exlab.core.recurrence import Recurrence, RecurrenceError

    try:
        Recurrence.from_json(out)
    except (RecurrenceError, ValueError, KeyError) as exc:
        raise GraphInputError(
            f"Invalid recurrence: {exc}", "ErrorPropertyValidationFailure"
        ) from None
    return out


def _attendees_out(p: Mapping[str, Any]) -> list[Json]:
    out = []
    for key, kind in (
        ("calendar:RequiredAttendees", "required"),
        ("calendar:OptionalAttendees", "optional"),
        ("calendar:Resources", "resource"),
    ):
        for a in p.get(key) or []:
            out.append(
                {
                    "type": kind,
                    "status": {
                        "response": RESPONSE_OUT.get(str(a.get("response", "Unknown")), "none"),
                        "time": a.get("last_response_time") or NEVER,
                    },
                    "emailAddress": {
                        "name": a.get("name") or a.get("email", ""),
                        "address": a.get("email", ""),
                    },
                }
            )
    return out


def event_out(
    p: Mapping[str, Any],
    *,
    item_id: str,
    change_key: str,
    series_master_id: str | None,
    tz: ZoneInfo,
    tzname: str,
    owner: str,
) -> Json:
    """A `microsoft.graph.event` from an item's output props."""
    body = p.get("item:Body")
    organizer = p.get("calendar:Organizer") or {"email": owner, "name": owner}
    start_zone = (p.get("calendar:StartTimeZone") or {}).get("id") or "UTC"
    item_type = ITEM_TYPE_OUT.get(
        str(p.get("calendar:CalendarItemType", "Single")), "singleInstance"
    )
    out: Json = {
        "@odata.etag": f'W/"{change_key}"',
        "id": item_id,
        "createdDateTime": p.get("item:DateTimeCreated"),
        "lastModifiedDateTime": p.get("item:LastModifiedTime"),
        "changeKey": change_key,
        "categories": list(p.get("item:Categories") or []),
        "originalStartTimeZone": start_zone,
        "originalEndTimeZone": (p.get("calendar:EndTimeZone") or {}).get("id") or start_zone,
        "iCalUId": p.get("calendar:UID"),
        "reminderMinutesBeforeStart": int(p.get("item:ReminderMinutesBeforeStart") or 15),
        "isReminderOn": bool(p.get("item:ReminderIsSet")),
        "hasAttachments": bool(p.get("item:HasAttachments")),
        "subject": p.get("item:Subject", ""),
        "bodyPreview": preview(body),
        "importance": _lower(p.get("item:Importance"), "Normal"),
        "sensitivity": _lower(p.get("item:Sensitivity"), "Normal"),
        "isAllDay": bool(p.get("calendar:IsAllDayEvent")),
        "isCancelled": bool(p.get("calendar:IsCancelled")),
        "isOrganizer": str(organizer.get("email", "")).lower() == owner,
        "responseRequested": bool(p.get("calendar:IsResponseRequested", True)),
        "seriesMasterId": series_master_id,
        "showAs": SHOW_AS_OUT.get(str(p.get("calendar:LegacyFreeBusyStatus", "Busy")), "busy"),
        "type": item_type,
        "responseStatus": {
            "response": RESPONSE_OUT.get(
                str(p.get("calendar:MyResponseType", "Organizer")), "none"
            ),
            "time": p.get("calendar:AppointmentReplyTime") or NEVER,
        },
        "body": body_out(body),
        "start": dttz_out(p.get("calendar:Start"), tz, tzname),
        "end": dttz_out(p.get("calendar:End") or p.get("calendar:Start"), tz, tzname),
        "location": {"displayName": p.get("calendar:Location", ""), "locationType": "default"},
        "locations": [{"displayName": p["calendar:Location"]}]
        if p.get("calendar:Location")
        else [],
        "recurrence": recurrence_out(p["calendar:Recurrence"], start_zone)
        if item_type == "seriesMaster" and p.get("calendar:Recurrence")
        else None,
        "attendees": _attendees_out(p),
        "organizer": address_out(organizer),
    }
    if p.get("calendar:OriginalStart") and item_type in ("occurrence", "exception"):
        out["originalStart"] = p["calendar:OriginalStart"]
    return out


EVENT_READ_ONLY = {
    "id",
    "createdDateTime",
    "lastModifiedDateTime",
    "changeKey",
    "hasAttachments",
    "bodyPreview",
    "iCalUId",
    "isOrganizer",
    "seriesMasterId",
    "type",
    "webLink",
    "responseStatus",
    "originalStartTimeZone",
    "originalEndTimeZone",
    "isCancelled",
    "organizer",
    "onlineMeeting",
    "onlineMeetingUrl",
    "onlineMeetingProvider",
    "isOnlineMeeting",
    "allowNewTimeProposals",
    "hideAttendees",
    "transactionId",
}


def event_in(body: Mapping[str, Any]) -> Props:
    p: Props = {}
    for key, value in body.items():
        if key.startswith("@odata") or key == "attachments":
            continue
        if key in (SINGLE, MULTI):
            p.update(extended_in(key, value))
        elif key == "subject":
            p["item:Subject"] = "" if value is None else str(value)
        elif key == "body":
            p["item:Body"] = body_in(value)
        elif key == "importance":
            p["item:Importance"] = _choice(value, IMPORTANCE_IN, key)
        elif key == "sensitivity":
            p["item:Sensitivity"] = _choice(value, SENSITIVITY_IN, key)
        elif key == "categories":
            p["item:Categories"] = [str(c) for c in value or []]
        elif key in ("start", "end"):
            stored, zone_name = dttz_in(value, key)
            p[f"calendar:{key.capitalize()}"] = stored
            p[f"calendar:{key.capitalize()}TimeZone"] = {"id": zone_name}
        elif key == "isAllDay":
            p["calendar:IsAllDayEvent"] = bool(value)
        elif key == "location":
            p["calendar:Location"] = str((value or {}).get("displayName", ""))
        elif key == "locations":
            if value and "calendar:Location" not in p:
                p["calendar:Location"] = str(value[0].get("displayName", ""))
        elif key == "showAs":
            p["calendar:LegacyFreeBusyStatus"] = _choice(value, SHOW_AS_IN, key)
        elif key == "responseRequested":
            p["calendar:IsResponseRequested"] = bool(value)
        elif key == "reminderMinutesBeforeStart":
            p["item:ReminderMinutesBeforeStart"] = int(value)
        elif key == "isReminderOn":
            p["item:ReminderIsSet"] = bool(value)
        elif key == "recurrence":
            p["calendar:Recurrence"] = recurrence_in(value)
        elif key == "attendees":
            groups: dict[str, list[dict[str, Any]]] = {
                "calendar:RequiredAttendees": [],
                "calendar:OptionalAttendees": [],
                "calendar:Resources": [],
            }
            for a in value or []:
                kind = str(a.get("type", "required")).lower()
                target = {
                    "required": "calendar:RequiredAttendees",
                    "optional": "calendar:OptionalAttendees",
                    "resource": "calendar:Resources",
                }.get(kind)
                if target is None:
                    raise GraphInputError(f"'{kind}' is not a valid attendee type.")
                entry: dict[str, Any] = address_in(a, "attendees")
                entry["response"] = "Unknown"
                groups[target].append(entry)
            p.update(groups)
        elif key in EVENT_READ_ONLY:
            continue
        else:
            raise GraphInputError(
                f"The property '{key}' does not exist on type 'microsoft.graph.event'."
                " Make sure to only use property names that are defined by the type.",
            )
    return p


# -- contacts -------------------------------------------------------------------------------------

PHONE_KEYS = {
    "businessPhones": ("BusinessPhone", "BusinessPhone2"),
    "homePhones": ("HomePhone", "HomePhone2"),
}


def contact_out(p: Mapping[str, Any], item_id: str, folder_id: str, change_key: str) -> Json:
    emails = p.get("contacts:EmailAddresses") or {}
    phones = p.get("contacts:PhoneNumbers") or {}
    return {
        "@odata.etag": f'W/"{change_key}"',
        "id": item_id,
        "createdDateTime": p.get("item:DateTimeCreated"),
        "lastModifiedDateTime": p.get("item:LastModifiedTime"),
        "changeKey": change_key,
        "categories": list(p.get("item:Categories") or []),
        "parentFolderId": folder_id,
        "fileAs": p.get("contacts:FileAs", ""),
        "displayName": p.get("contacts:DisplayName", ""),
        "givenName": p.get("contacts:GivenName"),
        "surname": p.get("contacts:Surname"),
        "companyName": p.get("contacts:CompanyName"),
        "department": p.get("contacts:Department"),
        "jobTitle": p.get("contacts:JobTitle"),
        "personalNotes": p.get("contacts:Notes", ""),
        "emailAddresses": [
            {"name": p.get("contacts:DisplayName", ""), "address": emails[k]}
            for k in ("EmailAddress1", "EmailAddress2", "EmailAddress3")
            if emails.get(k)
        ],
        "businessPhones": [phones[k] for k in PHONE_KEYS["businessPhones"] if phones.get(k)],
        "homePhones": [phones[k] for k in PHONE_KEYS["homePhones"] if phones.get(k)],
        "mobilePhone": phones.get("MobilePhone"),
    }


def contact_in(body: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> Props:
    p: Props = {}
    phones = dict((current or {}).get("contacts:PhoneNumbers") or {})
    simple = {
        "fileAs": "contacts:FileAs",
        "displayName": "contacts:DisplayName",
        "givenName": "contacts:GivenName",
        "surname": "contacts:Surname",
        "companyName": "contacts:CompanyName",
        "department": "contacts:Department",
        "jobTitle": "contacts:JobTitle",
        "personalNotes": "contacts:Notes",
    }
    for key, value in body.items():
        if key.startswith("@odata") or key in (
            "id",
            "changeKey",
            "createdDateTime",
            "lastModifiedDateTime",
            "parentFolderId",
        ):
            continue
        if key in simple:
            p[simple[key]] = None if value is None else str(value)
        elif key == "categories":
            p["item:Categories"] = [str(c) for c in value or []]
        elif key == "emailAddresses":
            if not isinstance(value, list):
                raise GraphInputError("'emailAddresses' must be a list.")
            p["contacts:EmailAddresses"] = {
                f"EmailAddress{i + 1}": str(e.get("address", "")) for i, e in enumerate(value[:3])
            }
        elif key in PHONE_KEYS:
            for slot in PHONE_KEYS[key]:
                phones.pop(slot, None)
            for slot, number in zip(PHONE_KEYS[key], value or [], strict=False):
                phones[slot] = str(number)
            p["contacts:PhoneNumbers"] = phones
        elif key == "mobilePhone":
            if value:
                phones["MobilePhone"] = str(value)
            else:
                phones.pop("MobilePhone", None)
            p["contacts:PhoneNumbers"] = phones
        else:
            raise GraphInputError(
                f"The property '{key}' does not exist on type 'microsoft.graph.contact'."
                " Make sure to only use property names that are defined by the type.",
            )
    if "contacts:DisplayName" not in p and ("contacts:GivenName" in p or "contacts:Surname" in p):
        given = p.get("contacts:GivenName") or (current or {}).get("contacts:GivenName") or ""
        surname = p.get("contacts:Surname") or (current or {}).get("contacts:Surname") or ""
        p["contacts:DisplayName"] = f"{given} {surname}".strip()
    return p


# -- To Do tasks ----------------------------------------------------------------------------------

TASK_STATUS_OUT = {
    "NotStarted": "notStarted",
    "InProgress": "inProgress",
    "Completed": "completed",
    "WaitingOnOthers": "waitingOnOthers",
    "Deferred": "deferred",
}
TASK_STATUS_IN = {v: k for k, v in TASK_STATUS_OUT.items()}


def task_out(p: Mapping[str, Any], item_id: str, change_key: str) -> Json:
    """A `microsoft.graph.todoTask` from a task item's props."""
    utc = ZoneInfo("UTC")
    body = p.get("item:Body") or {}
    return {
        "@odata.etag": f'W/"{change_key}"',
        "id": item_id,
        "title": p.get("item:Subject", ""),
        "status": TASK_STATUS_OUT.get(str(p.get("task:Status", "NotStarted")), "notStarted"),
        "importance": _lower(p.get("item:Importance"), "Normal"),
        "isReminderOn": bool(p.get("item:ReminderIsSet")),
        "createdDateTime": p.get("item:DateTimeCreated"),
        "lastModifiedDateTime": p.get("item:LastModifiedTime"),
        "categories": list(p.get("item:Categories") or []),
        "body": {
            "contentType": "html" if str(body.get("type", "")).lower() == "html" else "text",
            "content": body.get("text", ""),
        },
        "startDateTime": dttz_out(p.get("task:StartDate"), utc, "UTC"),
        "dueDateTime": dttz_out(p.get("task:DueDate"), utc, "UTC"),
        "completedDateTime": dttz_out(p.get("task:CompleteDate"), utc, "UTC"),
        "reminderDateTime": dttz_out(p.get("item:ReminderDueBy"), utc, "UTC")
        if p.get("item:ReminderIsSet")
        else None,
    }


def task_in(body: Mapping[str, Any]) -> Props:
    p: Props = {}
    for key, value in body.items():
        if key.startswith("@odata") or key in ("id", "createdDateTime", "lastModifiedDateTime"):
            continue
        if key == "title":
            p["item:Subject"] = "" if value is None else str(value)
        elif key == "body":
            p["item:Body"] = body_in(value)
        elif key == "importance":
            p["item:Importance"] = _choice(value, IMPORTANCE_IN, key)
        elif key == "categories":
            p["item:Categories"] = [str(c) for c in value or []]
        elif key == "status":
            status = TASK_STATUS_IN.get(str(value))
            if status is None:
                raise GraphInputError(f"'{value}' is not a valid value for 'status'.")
            p["task:Status"] = status
            p["task:IsComplete"] = status == "Completed"
            if status == "Completed":
                p["task:PercentComplete"] = 100.0
        elif key in ("startDateTime", "dueDateTime", "completedDateTime"):
            target = {
                "startDateTime": "task:StartDate",
                "dueDateTime": "task:DueDate",
                "completedDateTime": "task:CompleteDate",
            }[key]
            p[target] = None if value is None else dttz_in(value, key)[0]
        elif key == "isReminderOn":
            p["item:ReminderIsSet"] = bool(value)
        elif key == "reminderDateTime":
            p["item:ReminderDueBy"] = None if value is None else dttz_in(value, key)[0]
        else:
            raise GraphInputError(
                f"The property '{key}' does not exist on type 'microsoft.graph.todoTask'."
                " Make sure to only use property names that are defined by the type.",
            )
    return p
