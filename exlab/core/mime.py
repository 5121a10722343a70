"""MimeContent: an item as an RFC 5322 message (what GetItem returns) and back (CreateItem).

Only what a mail client needs: headers (From, Sender, To, Cc, Subject, Date, Message-ID,
Importance, Sensitivity, Keywords), the body as text or HTML, and file attachments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from exlab.core.recurrence import MONTHS

if TYPE_CHECKING:
    from exlab.core.items import Attachment


class MimeError(ValueError):
    """The MIME content cannot be read as a message."""


def _address(mb: Mapping[str, Any]) -> str:
    email = str(mb.get("email", ""))
    name = str(mb.get("name", ""))
    if "@" not in email:
        return name or email
    user, _, domain = email.partition("@")
    return str(Address(display_name=name, username=user, domain=domain))


_DAY = {
    "Monday": "MO",
    "Tuesday": "TU",
    "Wednesday": "WE",
    "Thursday": "TH",
    "Friday": "FR",
    "Saturday": "SA",
    "Sunday": "SU",
}
_GROUP = {
    "Day": list(_DAY.values()),
    "Weekday": ["MO", "TU", "WE", "TH", "FR"],
    "WeekendDay": ["SA", "SU"],
}
_POS = {"First": 1, "Second": 2, "Third": 3, "Fourth": 4, "Last": -1}


def _ical_text(value: object) -> str:
    return (
        str(value)
        .replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\n", "\\n")
    )


def _days(names: Sequence[str]) -> str:
    out: list[str] = []
    for name in names:
        out += _GROUP.get(name, [_DAY.get(name, "MO")])
    return ",".join(out)


def rrule(rec: Mapping[str, Any]) -> str:
    """An iCalendar RRULE for a stored recurrence (see exlab.core.recurrence)."""
    kind = rec["kind"]
    parts = []
    if kind == "daily":
        parts = ["FREQ=DAILY", f"INTERVAL={rec.get('interval', 1)}"]
    elif kind == "weekly":
        parts = [
            "FREQ=WEEKLY",
            f"INTERVAL={rec.get('interval', 1)}",
            f"BYDAY={_days(rec.get('days_of_week', []))}",
            f"WKST={_DAY.get(rec.get('first_day_of_week', 'Monday'), 'MO')}",
        ]
    elif kind == "absolute_monthly":
        parts = [
            "FREQ=MONTHLY",
            f"INTERVAL={rec.get('interval', 1)}",
            f"BYMONTHDAY={rec.get('day_of_month', 1)}",
        ]
    elif kind == "relative_monthly":
        parts = [
            "FREQ=MONTHLY",
            f"INTERVAL={rec.get('interval', 1)}",
            f"BYDAY={_days(rec.get('days_of_week', []))}",
            f"BYSETPOS={_POS[rec.get('day_of_week_index', 'First')]}",
        ]
    elif kind == "absolute_yearly":
        parts = [
            "FREQ=YEARLY",
            f"BYMONTH={MONTHS.index(rec['month']) + 1}",
            f"BYMONTHDAY={rec.get('day_of_month', 1)}",
        ]
    else:
        parts = [
            "FREQ=YEARLY",
            f"BYMONTH={MONTHS.index(rec['month']) + 1}",
            f"BYDAY={_days(rec.get('days_of_week', []))}",
            f"BYSETPOS={_POS[rec.get('day_of_week_index', 'First')]}",
        ]
    if rec.get("range_kind") == "numbered":
        parts.append(f"COUNT={rec['count']}")
    elif rec.get("range_kind") == "end_date":
        parts.append(f"UNTIL={str(rec['end_date']).replace('-', '')}T235959Z")
    return ";".join(parts)


def icalendar(props: Mapping[str, Any], tzid: str) -> str:
    """A VCALENDAR with the appointment (recurring series in their own zone, TZID by name)."""

    def local(stamp: str) -> str:
        from zoneinfo import ZoneInfo

        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(ZoneInfo(tzid))
        return moment.strftime("%Y%m%dT%H%M%S")

    def utc(stamp: str) -> str:
        return stamp.replace("-", "").replace(":", "")

    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//medbridge//Exchange lab//DE",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
    ]
    lines.append(f"UID:{props.get('calendar:UID', '')}")
    lines.append(f"SUMMARY:{_ical_text(props.get('item:Subject', ''))}")
    recurring = "calendar:Recurrence" in props
    for key, name in (("calendar:Start", "DTSTART"), ("calendar:End", "DTEND")):
        if props.get(key):
            stamp = str(props[key])
            lines.append(
                f"{name};TZID={tzid}:{local(stamp)}" if recurring else f"{name}:{utc(stamp)}"
            )
    if recurring:
        lines.append(f"RRULE:{rrule(props['calendar:Recurrence'])}")
        for start in props.get("calendar:DeletedOccurrences", []):
            lines.append(f"EXDATE;TZID={tzid}:{local(str(start))}")
    if props.get("calendar:Location"):
        lines.append(f"LOCATION:{_ical_text(props['calendar:Location'])}")
    if props.get("item:Sensitivity") == "Private":
        lines.append("CLASS:PRIVATE")
    organizer = props.get("calendar:Organizer")
    if organizer and organizer.get("email"):
        lines.append(
            f"ORGANIZER;CN={_ical_text(organizer.get('name', ''))}:mailto:{organizer['email']}"
        )
    for key, role in (
        ("calendar:RequiredAttendees", "REQ-PARTICIPANT"),
        ("calendar:OptionalAttendees", "OPT-PARTICIPANT"),
    ):
        for a in props.get(key, []):
            state = {"Accept": "ACCEPTED", "Tentative": "TENTATIVE", "Decline": "DECLINED"}.get(
                str(a.get("response")), "NEEDS-ACTION"
            )
            lines.append(f"ATTENDEE;ROLE={role};PARTSTAT={state}:mailto:{a.get('email', '')}")
    body = (props.get("item:Body") or {}).get("text")
    if body:
        lines.append(f"DESCRIPTION:{_ical_text(body)}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(lines) + "\r\n"


def to_mime(
    props: Mapping[str, Any], attachments: Sequence[Attachment] = (), *, tzid: str = "UTC"
) -> bytes:
    """The item as a MIME message (UTF-8, CRLF line ends as Exchange sends them);
    appointments carry their iCalendar form as a text/calendar part."""
    msg = EmailMessage(policy=policy.SMTP)
    if props.get("message:From"):
        msg["From"] = _address(props["message:From"])
    sender = props.get("message:Sender")
    if sender and sender != props.get("message:From"):
        msg["Sender"] = _address(sender)
    for key, header in (("message:ToRecipients", "To"), ("message:CcRecipients", "Cc")):
        if props.get(key):
            msg[header] = ", ".join(_address(r) for r in props[key])
    msg["Subject"] = str(props.get("item:Subject", ""))
    when = props.get("item:DateTimeSent") or props.get("item:DateTimeReceived")
    if when:
        msg["Date"] = format_datetime(datetime.fromisoformat(str(when).replace("Z", "+00:00")))
    if props.get("message:InternetMessageId"):
        msg["Message-ID"] = str(props["message:InternetMessageId"])
    if props.get("item:Importance") and props["item:Importance"] != "Normal":
        msg["Importance"] = str(props["item:Importance"]).lower()
    if props.get("item:Sensitivity") and props["item:Sensitivity"] != "Normal":
        msg["Sensitivity"] = {"Private": "Private", "Personal": "Personal"}.get(
            str(props["item:Sensitivity"]), "Company-Confidential"
        )
    if props.get("item:Categories"):
        msg["Keywords"] = ", ".join(props["item:Categories"])
    body = props.get("item:Body") or {"type": "Text", "text": ""}
    subtype = "html" if body.get("type") == "HTML" else "plain"
    msg.set_content(str(body.get("text", "")), subtype=subtype, charset="utf-8")
    if str(props.get("item:ItemClass", "")).startswith("IPM.Appointment"):
        msg.add_alternative(icalendar(props, tzid), subtype="calendar", charset="utf-8")
    for att in attachments:
        maintype, _, subtype_ = att.content_type.partition("/")
        msg.add_attachment(
            att.content,
            maintype=maintype or "application",
            subtype=subtype_ or "octet-stream",
            filename=att.name,
        )
    return msg.as_bytes()


def _mailboxes(value: str | None) -> list[dict[str, str]]:
    if not value:
        return []
    return [
        {k: v for k, v in (("name", name), ("email", addr.lower())) if v}
        for name, addr in getaddresses([value])
        if addr
    ]


def from_mime(data: bytes) -> dict[str, Any]:
    """Props from a MIME message (attachments are left to the caller's attachment call)."""
    try:
        msg = BytesParser(policy=policy.default).parsebytes(data)
    except (ValueError, TypeError) as exc:
        raise MimeError(str(exc)) from exc
    props: dict[str, Any] = {"item:Subject": str(msg.get("Subject", ""))}
    sender = _mailboxes(msg.get("From"))
    if sender:
        props["message:From"] = sender[0]
    for header, key in (("To", "message:ToRecipients"), ("Cc", "message:CcRecipients")):
        found = _mailboxes(msg.get(header))
        if found:
            props[key] = found
    if msg.get("Message-ID"):
        props["message:InternetMessageId"] = str(msg["Message-ID"])
    if msg.get("Date"):
        try:
            when = parsedate_to_datetime(str(msg["Date"]))
            props["item:DateTimeSent"] = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        except (TypeError, ValueError):
            pass
    importance = str(msg.get("Importance", "")).lower()
    if importance in ("high", "low"):
        props["item:Importance"] = importance.capitalize()
    part = msg.get_body(preferencelist=("html", "plain")) if msg.is_multipart() else msg
    if part is not None:
        content = part.get_content() if hasattr(part, "get_content") else ""
        kind = "HTML" if part.get_content_type() == "text/html" else "Text"
        props["item:Body"] = {"type": kind, "text": str(content).replace("\r\n", "\n")}
    return props
