"""Graph JSON <-> `med.model` values, and the ids med hands out for Graph objects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from med.errors import (
    InvalidInput,
)
from med.model import (
    Address,
    Attachment,
    Attendee,
    AttendeeKind,
    BusyStatus,
    Contact,
    Daily,
    Event,
    EventKind,
    Flag,
    FlagStatus,
    FolderNode,
    Importance,
    Message,
    MonthlyByDate,
    MonthlyByWeekday,
    Recurrence,
    ResponseType,
    Sensitivity,
    Task,
    TaskStatus,
    Weekday,
    Weekly,
    YearlyByDate,
    YearlyByWeekday,
)

TASK_STATUS = {
    "notStarted": TaskStatus.NOT_STARTED,
    "inProgress": TaskStatus.IN_PROGRESS,
    "completed": TaskStatus.COMPLETED,
    "waitingOnOthers": TaskStatus.WAITING,
    "deferred": TaskStatus.DEFERRED,
}

TASK_STATUS_OUT = {v: k for k, v in TASK_STATUS.items()}

SENSITIVITY_BY_MAPI = {
    "0": Sensitivity.NORMAL,
    "1": Sensitivity.PERSONAL,
    "2": Sensitivity.PRIVATE,
    "3": Sensitivity.CONFIDENTIAL,
}

MEETING_MESSAGE_CLASSES = {
    "meetingRequest": "IPM.Schedule.Meeting.Request",
    "meetingAccepted": "IPM.Schedule.Meeting.Resp.Pos",
    "meetingTenativelyAccepted": "IPM.Schedule.Meeting.Resp.Tent",
    "meetingDeclined": "IPM.Schedule.Meeting.Resp.Neg",
    "meetingCancelled": "IPM.Schedule.Meeting.Canceled",
}


# -- ids ----------------------------------------------------------------------------------------


def _make_id(kind: str, mailbox: str, graph_id: str) -> str:
    return f"{kind}:{mailbox}:{graph_id}"


def _split_id(value: str, kinds: str) -> tuple[str, str, str]:
    kind, _, rest = value.partition(":")
    mailbox, _, graph_id = rest.partition(":")
    if kind not in kinds or not mailbox or not graph_id:
        raise InvalidInput(f"'{value}' is not an id of the Graph backend.", item=value)
    return kind, mailbox, graph_id


# -- conversions --------------------------------------------------------------------------------


def _dt(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, Mapping):
        text = str(value.get("dateTime") or "")
        if not text:
            return None
        zone = str(value.get("timeZone") or "UTC")
        moment = _parse(text)
        if zone.upper() in ("UTC", "COORDINATED UNIVERSAL TIME"):
            return moment.replace(tzinfo=UTC)
        return moment.replace(tzinfo=UTC)  # we ask for UTC (Prefer); anything else is UTC too
    if str(value).startswith("0001-01-01"):
        return None
    return _parse(str(value)).astimezone(UTC)


def _parse(text: str) -> datetime:
    value = text.strip().replace("Z", "+00:00")
    if "." in value:
        head, _, tail = value.partition(".")
        frac = "".join(c for c in tail if c.isdigit())
        value = f"{head}.{frac[:6].ljust(6, '0')}{tail[len(frac) :]}"
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _dttz(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def _address(value: Any) -> Address | None:
    if not isinstance(value, Mapping) or not isinstance(value.get("emailAddress"), Mapping):
        return None
    ea = value["emailAddress"]
    return Address(str(ea.get("address") or "").lower(), str(ea.get("name") or ""))


def _addresses(values: Any) -> tuple[Address, ...]:
    return tuple(a for a in (_address(v) for v in values or []) if a is not None)


def _recipient(address: Address) -> dict[str, Any]:
    out: dict[str, Any] = {"address": address.email}
    if address.name:
        out["name"] = address.name
    return {"emailAddress": out}


FLAG_IN = {
    "notFlagged": FlagStatus.NOT_FLAGGED,
    "flagged": FlagStatus.FLAGGED,
    "complete": FlagStatus.COMPLETE,
}
FLAG_OUT = {v: k for k, v in FLAG_IN.items()}
SHOW_AS = {
    "free": BusyStatus.FREE,
    "tentative": BusyStatus.TENTATIVE,
    "busy": BusyStatus.BUSY,
    "oof": BusyStatus.OOF,
    "workingElsewhere": BusyStatus.WORKING_ELSEWHERE,
    "unknown": BusyStatus.NO_DATA,
}
RESPONSE_IN = {
    "none": ResponseType.UNKNOWN,
    "organizer": ResponseType.ORGANIZER,
    "tentativelyAccepted": ResponseType.TENTATIVE,
    "accepted": ResponseType.ACCEPT,
    "declined": ResponseType.DECLINE,
    "notResponded": ResponseType.NO_RESPONSE,
}
EVENT_KIND = {
    "singleInstance": EventKind.SINGLE,
    "occurrence": EventKind.OCCURRENCE,
    "exception": EventKind.EXCEPTION,
    "seriesMaster": EventKind.SERIES,
}
WEEKDAYS = {d.value.lower(): d for d in Weekday}


def _flag(value: Any) -> Flag:
    value = value if isinstance(value, Mapping) else {}
    return Flag(
        FLAG_IN.get(str(value.get("flagStatus", "notFlagged")), FlagStatus.NOT_FLAGGED),
        start=_dt(value.get("startDateTime")),
        due=_dt(value.get("dueDateTime")),
        completed=_dt(value.get("completedDateTime")),
    )


def _flag_out(flag: Flag) -> dict[str, Any]:
    out: dict[str, Any] = {"flagStatus": FLAG_OUT[flag.status]}
    if flag.start:
        out["startDateTime"] = _dttz(flag.start)
    if flag.due:
        out["dueDateTime"] = _dttz(flag.due)
    if flag.completed:
        out["completedDateTime"] = _dttz(flag.completed)
    return out


def _body(value: Any) -> tuple[str | None, bool]:
    if not isinstance(value, Mapping):
        return None, False
    return str(value.get("content") or ""), str(value.get("contentType", "text")).lower() == "html"


def _common(
    data: Mapping[str, Any], mailbox: str, kind: str, folder_id: str | None
) -> dict[str, Any]:
    body, is_html = _body(data.get("body"))
    return {
        "id": _make_id(kind, mailbox, str(data["id"])),
        "change_key": data.get("changeKey"),
        "folder_id": folder_id,
        "mailbox": mailbox,
        "subject": str(data.get("subject") or ""),
        "body": body,
        "body_is_html": is_html,
        "importance": Importance(str(data.get("importance") or "normal").lower()),
        "categories": tuple(str(c) for c in data.get("categories") or ()),
        "created": _dt(data.get("createdDateTime")),
        "last_modified": _dt(data.get("lastModifiedDateTime")),
        "has_attachments": bool(data.get("hasAttachments")),
    }


def _message(data: Mapping[str, Any], mailbox: str) -> Message:
    folder = data.get("parentFolderId")
    sensitivity = Sensitivity.NORMAL
    for prop in data.get("singleValueExtendedProperties") or ():
        if str(prop.get("id", "")).lower() in ("integer 0x36", "integer 0x0036"):
            sensitivity = SENSITIVITY_BY_MAPI.get(str(prop.get("value")), Sensitivity.NORMAL)
    item_class = MEETING_MESSAGE_CLASSES.get(str(data.get("meetingMessageType")), "IPM.Note")
    return Message(
        **_common(data, mailbox, "m", _make_id("M", mailbox, str(folder)) if folder else None),
        item_class=item_class,
        sensitivity=sensitivity,
        is_meeting_request=item_class == "IPM.Schedule.Meeting.Request",
        flag=_flag(data.get("flag")),
        from_=_address(data.get("from")),
        sender=_address(data.get("sender")),
        to=_addresses(data.get("toRecipients")),
        cc=_addresses(data.get("ccRecipients")),
        bcc=_addresses(data.get("bccRecipients")),
        reply_to=_addresses(data.get("replyTo")),
        received=_dt(data.get("receivedDateTime")),
        sent=_dt(data.get("sentDateTime")),
        is_read=bool(data.get("isRead")),
        is_draft=bool(data.get("isDraft")),
        internet_message_id=data.get("internetMessageId"),
        conversation_id=data.get("conversationId"),
    )


def _recurrence(value: Any) -> Recurrence | None:
    if not isinstance(value, Mapping):
        return None
    pattern, rng = value.get("pattern") or {}, value.get("range") or {}
    kind = pattern.get("type")
    interval = int(pattern.get("interval") or 1)
    days = tuple(
        WEEKDAYS[d.lower()] for d in pattern.get("daysOfWeek") or () if d.lower() in WEEKDAYS
    )
    index = str(pattern.get("index") or "first").capitalize()
    week = index if index in ("First", "Second", "Third", "Fourth", "Last") else "First"
    month = int(pattern.get("month") or 1)
    day = int(pattern.get("dayOfMonth") or 1)
    built: Any
    if kind == "daily":
        built = Daily(interval)
    elif kind == "weekly":
        first = WEEKDAYS.get(str(pattern.get("firstDayOfWeek") or "monday").lower(), Weekday.MONDAY)
        built = Weekly(days, interval, first)
    elif kind == "absoluteMonthly":
        built = MonthlyByDate(day, interval)
    elif kind == "relativeMonthly":
        built = MonthlyByWeekday(days[0], week, interval)  # type: ignore[arg-type]
    elif kind == "absoluteYearly":
        built = YearlyByDate(month, day)
    elif kind == "relativeYearly":
        built = YearlyByWeekday(month, days[0], week)  # type: ignore[arg-type]
    else:
        return None
    start = date.fromisoformat(str(rng.get("startDate")))
    end = rng.get("endDate")
    return Recurrence(
        built,
        start,
        end=date.fromisoformat(str(end)) if rng.get("type") == "endDate" and end else None,
        count=int(rng.get("numberOfOccurrences") or 0) if rng.get("type") == "numbered" else None,
    )


def _recurrence_out(rec: Recurrence) -> dict[str, Any]:
    p = rec.pattern
    pattern: dict[str, Any]
    if isinstance(p, Daily):
        pattern = {"type": "daily", "interval": p.interval}
    elif isinstance(p, Weekly):
        pattern = {
            "type": "weekly",
            "interval": p.interval,
            "daysOfWeek": [d.value.lower() for d in p.weekdays],
            "firstDayOfWeek": p.first_day_of_week.value.lower(),
        }
    elif isinstance(p, MonthlyByDate):
        pattern = {"type": "absoluteMonthly", "interval": p.interval, "dayOfMonth": p.day_of_month}
    elif isinstance(p, MonthlyByWeekday):
        pattern = {
            "type": "relativeMonthly",
            "interval": p.interval,
            "daysOfWeek": [p.weekday.value.lower()],
            "index": str(p.week).lower(),
        }
    elif isinstance(p, YearlyByDate):
        pattern = {
            "type": "absoluteYearly",
            "interval": 1,
            "month": p.month,
            "dayOfMonth": p.day_of_month,
        }
    else:
        pattern = {
            "type": "relativeYearly",
            "interval": 1,
            "month": p.month,
            "daysOfWeek": [p.weekday.value.lower()],
            "index": str(p.week).lower(),
        }
    rng: dict[str, Any] = {"startDate": rec.start.isoformat(), "type": "noEnd"}
    if rec.end is not None:
        rng.update(type="endDate", endDate=rec.end.isoformat())
    elif rec.count is not None:
        rng.update(type="numbered", numberOfOccurrences=rec.count)
    return {"pattern": pattern, "range": rng}


def _event(data: Mapping[str, Any], mailbox: str, folder_id: str | None) -> Event:
    attendees = []
    for a in data.get("attendees") or ():
        address = _address(a)
        if address is None:
            continue
        attendees.append(
            Attendee(
                address,
                AttendeeKind(str(a.get("type") or "required").lower()),
                RESPONSE_IN.get(str((a.get("status") or {}).get("response")), ResponseType.UNKNOWN),
            )
        )
    master = data.get("seriesMasterId")
    start = _dt(data.get("start")) or datetime.now(UTC)
    return Event(
        **_common(data, mailbox, "e", folder_id),
        item_class="IPM.Appointment",
        sensitivity=Sensitivity(str(data.get("sensitivity") or "normal").lower()),
        start=start,
        end=_dt(data.get("end")) or start,
        is_all_day=bool(data.get("isAllDay")),
        location=str((data.get("location") or {}).get("displayName") or ""),
        organizer=_address(data.get("organizer")),
        attendees=tuple(attendees),
        event_kind=EVENT_KIND.get(str(data.get("type")), EventKind.SINGLE),
        series_id=_make_id("e", mailbox, str(master)) if master else None,
        recurrence=_recurrence(data.get("recurrence")),
        show_as=SHOW_AS.get(str(data.get("showAs")), BusyStatus.BUSY),
        my_response=RESPONSE_IN.get(
            str((data.get("responseStatus") or {}).get("response")), ResponseType.UNKNOWN
        ),
        is_meeting=bool(data.get("attendees")),
        is_cancelled=bool(data.get("isCancelled")),
        uid=data.get("iCalUId"),
        original_start=_dt(data.get("originalStart")),
        reminder_minutes=int(data["reminderMinutesBeforeStart"])
        if data.get("isReminderOn")
        else None,
    )


def _contact(data: Mapping[str, Any], mailbox: str) -> Contact:
    folder = data.get("parentFolderId")
    phones: dict[str, str] = {}
    for i, number in enumerate(data.get("businessPhones") or ()):
        phones["business" if i == 0 else f"business{i + 1}"] = str(number)
    for i, number in enumerate(data.get("homePhones") or ()):
        phones["home" if i == 0 else f"home{i + 1}"] = str(number)
    if data.get("mobilePhone"):
        phones["mobile"] = str(data["mobilePhone"])
    return Contact(
        **_common(data, mailbox, "c", _make_id("P", mailbox, str(folder)) if folder else None),
        item_class="IPM.Contact",
        display_name=str(data.get("displayName") or ""),
        given_name=str(data.get("givenName") or ""),
        surname=str(data.get("surname") or ""),
        company=str(data.get("companyName") or ""),
        department=str(data.get("department") or ""),
        job_title=str(data.get("jobTitle") or ""),
        emails=tuple(
            str(e.get("address")) for e in data.get("emailAddresses") or () if e.get("address")
        ),
        phones=phones,
    )


def _task(data: Mapping[str, Any], mailbox: str, list_id: str) -> Task:
    body, is_html = _body(data.get("body"))
    return Task(
        id=_make_id("t", mailbox, f"{list_id}/{data['id']}"),
        change_key=data.get("@odata.etag"),
        folder_id=_make_id("T", mailbox, list_id),
        mailbox=mailbox,
        item_class="IPM.Task",
        subject=str(data.get("title") or ""),
        body=body,
        body_is_html=is_html,
        importance=Importance(str(data.get("importance") or "normal").lower()),
        categories=tuple(str(c) for c in data.get("categories") or ()),
        created=_dt(data.get("createdDateTime")),
        last_modified=_dt(data.get("lastModifiedDateTime")),
        start=_dt(data.get("startDateTime")),
        due=_dt(data.get("dueDateTime")),
        completed=_dt(data.get("completedDateTime")),
        status=TASK_STATUS.get(str(data.get("status")), TaskStatus.NOT_STARTED),
        percent_complete=100 if data.get("status") == "completed" else 0,
        reminder_at=_dt(data.get("reminderDateTime")) if data.get("isReminderOn") else None,
    )


def _task_out(task: Task, fields: Sequence[str] | None = None) -> dict[str, Any]:
    every = fields is None
    want = set(fields or ())
    out: dict[str, Any] = {}
    if every or "subject" in want:
        out["title"] = task.subject
    if (every or "body" in want) and task.body is not None:
        out["body"] = {"contentType": "html" if task.body_is_html else "text", "content": task.body}
    if every or "importance" in want:
        out["importance"] = task.importance.value
    if every or "categories" in want:
        out["categories"] = list(task.categories)
    if every or "status" in want:
        out["status"] = TASK_STATUS_OUT[task.status]
    for name, key in (
        ("start", "startDateTime"),
        ("due", "dueDateTime"),
        ("completed", "completedDateTime"),
    ):
        value = getattr(task, name)
        if (every and value is not None) or name in want:
            out[key] = _dttz(value) if value is not None else None
    if every or "reminder_at" in want:
        out["isReminderOn"] = task.reminder_at is not None
        if task.reminder_at is not None:
            out["reminderDateTime"] = _dttz(task.reminder_at)
    return out


def _attachment(data: Mapping[str, Any], item_id: str) -> Attachment:
    kind, mailbox, graph_item = _split_id(item_id, "mec")
    return Attachment(
        id=_make_id("a", mailbox, f"{kind}/{graph_item}/{data['id']}"),
        name=str(data.get("name") or ""),
        content_type=str(data.get("contentType") or "application/octet-stream"),
        size=data.get("size"),
        is_inline=bool(data.get("isInline")),
        is_item=data.get("@odata.type") == "#microsoft.graph.itemAttachment",
        content_id=data.get("contentId"),
    )


def _message_out(message: Message, fields: Sequence[str] | None = None) -> dict[str, Any]:
    every = fields is None
    want = set(fields or ())
    out: dict[str, Any] = {}
    if every or "subject" in want:
        out["subject"] = message.subject
    if (every or "body" in want) and message.body is not None:
        out["body"] = {
            "contentType": "html" if message.body_is_html else "text",
            "content": message.body,
        }
    if every or "importance" in want:
        out["importance"] = message.importance.value
    if every or "categories" in want:
        out["categories"] = list(message.categories)
    if every or "flag" in want:
        out["flag"] = _flag_out(message.flag)
    if every or "is_read" in want:
        out["isRead"] = message.is_read
    for name, key in (
        ("to", "toRecipients"),
        ("cc", "ccRecipients"),
        ("bcc", "bccRecipients"),
        ("reply_to", "replyTo"),
    ):
        if every or name in want:
            out[key] = [_recipient(a) for a in getattr(message, name)]
    if (every or "from_" in want) and message.from_ is not None:
        out["from"] = _recipient(message.from_)
    return out


def _event_out(event: Event, fields: Sequence[str] | None = None) -> dict[str, Any]:
    every = fields is None
    want = set(fields or ())
    out: dict[str, Any] = {}
    if every or "subject" in want:
        out["subject"] = event.subject
    if (every or "body" in want) and event.body is not None:
        out["body"] = {
            "contentType": "html" if event.body_is_html else "text",
            "content": event.body,
        }
    if every or "start" in want:
        out["start"] = _dttz(event.start)
    if every or "end" in want:
        out["end"] = _dttz(event.end)
    if every or "is_all_day" in want:
        out["isAllDay"] = event.is_all_day
    if every or "location" in want:
        out["location"] = {"displayName": event.location}
    if every or "importance" in want:
        out["importance"] = event.importance.value
    if every or "sensitivity" in want:
        out["sensitivity"] = event.sensitivity.value
    if every or "categories" in want:
        out["categories"] = list(event.categories)
    if every or "show_as" in want:
        out["showAs"] = next(k for k, v in SHOW_AS.items() if v == event.show_as)
    if every or "reminder_minutes" in want:
        out["isReminderOn"] = event.reminder_minutes is not None
        if event.reminder_minutes is not None:
            out["reminderMinutesBeforeStart"] = event.reminder_minutes
    if (every and event.recurrence is not None) or "recurrence" in want:
        out["recurrence"] = _recurrence_out(event.recurrence) if event.recurrence else None
    if every or "attendees" in want:
        out["attendees"] = [
            {"type": a.kind.value, **_recipient(a.address)} for a in event.attendees
        ]
    return out


def _contact_out(contact: Contact) -> dict[str, Any]:
    phones = dict(contact.phones)
    return {
        "displayName": contact.display_name or f"{contact.given_name} {contact.surname}".strip(),
        "givenName": contact.given_name,
        "surname": contact.surname,
        "companyName": contact.company,
        "department": contact.department,
        "jobTitle": contact.job_title,
        "emailAddresses": [{"address": e} for e in contact.emails],
        "businessPhones": [v for k, v in sorted(phones.items()) if k.startswith("business")],
        "homePhones": [v for k, v in sorted(phones.items()) if k.startswith("home")],
        "mobilePhone": phones.get("mobile"),
        "categories": list(contact.categories),
    }


def _named(node: FolderNode, names: Mapping[str, str]) -> FolderNode:
    """The mail folder tree with the well-known folders' names filled in."""
    _, _, gid = _split_id(node.folder.id, "M")
    folder = node.folder
    if gid in names and folder.distinguished is None:
        folder = replace(folder, distinguished=names[gid])
    return FolderNode(folder, tuple(_named(child, names) for child in node.children))


def _odata_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# -- the backend --------------------------------------------------------------------------------
