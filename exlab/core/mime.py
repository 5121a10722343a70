"""MimeContent: an item as an RFC 5322 message (what GetItem returns) and back (CreateItem).

Only what a mail client needs: headers (From, Sender, To, Cc, Subject, Date, Message-ID,
Importance, Sensitivity, Keywords), the body as text or HTML, and file attachments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, getaddresses, parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

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


def _rule_day(moment: datetime) -> str:
    """BYDAY of a yearly switch: the n-th (or last) weekday of its month."""
    day = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")[moment.weekday()]
    nth = (moment.day - 1) // 7 + 1
    following = moment + timedelta(days=7)
    return f"-1{day}" if following.month != moment.month else f"{nth}{day}"


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta(0)).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def vtimezone(label: str, iana: str, year: int) -> list[str]:
    """A VTIMEZONE for `label` (the Windows name Exchange writes as TZID) from the zone's rules
    in `year`: one STANDARD and, where the zone has summer time, one DAYLIGHT with RRULEs."""
    zone = ZoneInfo(iana)
    switches: list[tuple[datetime, timedelta | None, timedelta | None]] = []
    moment = datetime(year, 1, 1, tzinfo=UTC)
    before = moment.astimezone(zone).utcoffset()
    while moment.year == year:
        after_moment = moment + timedelta(hours=1)
        after = after_moment.astimezone(zone).utcoffset()
        if after != before:
            local = moment.astimezone(zone).replace(tzinfo=None) + timedelta(hours=1)
            switches.append((local, before, after))
            before = after
        moment = after_moment
    lines = ["BEGIN:VTIMEZONE", f"TZID:{label}"]
    if not switches:
        offset = _offset(before)
        lines += [
            "BEGIN:STANDARD",
            "DTSTART:16010101T000000",
            f"TZOFFSETFROM:{offset}",
            f"TZOFFSETTO:{offset}",
            "END:STANDARD",
        ]
    for local, old, new in switches:
        kind = "DAYLIGHT" if (new or timedelta(0)) > (old or timedelta(0)) else "STANDARD"
        lines += [
            f"BEGIN:{kind}",
            f"DTSTART:16010101T{local.strftime('%H%M%S')}",
            f"RRULE:FREQ=YEARLY;BYMONTH={local.month};BYDAY={_rule_day(local)}",
            f"TZOFFSETFROM:{_offset(old)}",
            f"TZOFFSETTO:{_offset(new)}",
            f"END:{kind}",
        ]
    lines.append("END:VTIMEZONE")
    return lines


def calendar_mime(props: Mapping[str, Any], iana: str, label: str) -> bytes:
    """A calendar item's MimeContent as Exchange gives it: the bare iCalendar object, times in
    the item's zone (TZID by its Windows name) and that zone's VTIMEZONE."""
    return icalendar(props, iana, label=label).encode("utf-8")


def icalendar(props: Mapping[str, Any], tzid: str, *, label: str | None = None) -> str:
    """A VCALENDAR with the appointment.

    Without `label` (a mail's text/calendar part) a recurring series is written in its own
    zone with TZID by IANA name, a single one in UTC; with `label` every time is local with
    TZID=`label` and a VTIMEZONE describing it.
    """

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
    ]
    if label is not None:
        start = props.get("calendar:Start")
        year = int(str(start)[:4]) if start else datetime.now(UTC).year
        lines += vtimezone(label, tzid, year)
    lines.append("BEGIN:VEVENT")
    lines.append(f"UID:{props.get('calendar:UID', '')}")
    lines.append(f"SUMMARY:{_ical_text(props.get('item:Subject', ''))}")
    recurring = "calendar:Recurrence" in props
    zone_name = label if label is not None else tzid
    for key, name in (("calendar:Start", "DTSTART"), ("calendar:End", "DTEND")):
        if props.get(key):
            stamp = str(props[key])
            lines.append(
                f"{name};TZID={zone_name}:{local(stamp)}"
                if recurring or label is not None
                else f"{name}:{utc(stamp)}"
            )
    if recurring:
        lines.append(f"RRULE:{rrule(props['calendar:Recurrence'])}")
        for start in props.get("calendar:DeletedOccurrences", []):
            lines.append(f"EXDATE;TZID={zone_name}:{local(str(start))}")
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
