"""How med's domain objects read on screen: list rows, reader text, rights and mailbox labels.

Pure functions of `med.model` values (no widgets), so they are tested without a terminal.
"""

from __future__ import annotations

from datetime import datetime

from med.model import (
    Contact,
    EditScope,
    Event,
    FlagStatus,
    Folder,
    Importance,
    Item,
    LastVerb,
    Mailbox,
    MailboxKind,
    Message,
    Note,
    ReadAccess,
    Recurrence,
    Rights,
    Task,
    TaskStatus,
    Voicemail,
)
from tui.htmltext import html_to_text

MAILBOX_KIND_LABEL = {
    MailboxKind.OWN: "own",
    MailboxKind.DELEGATED: "delegated",
    MailboxKind.FUNCTIONAL: "functional",
    MailboxKind.SHARED: "team",
    MailboxKind.ROOM: "room",
    MailboxKind.PUBLIC: "public folders",
    MailboxKind.ARCHIVE: "archive",
}


def mailbox_label(mailbox: Mailbox) -> str:
    kind = MAILBOX_KIND_LABEL.get(mailbox.kind, mailbox.kind.value)
    if mailbox.kind is MailboxKind.PUBLIC:
        return "Public folders"
    return f"{mailbox.display_name} ({kind})"


def rights_summary(rights: Rights | None) -> str:
    """A short line naming what the user may do here, as the header shows it."""
    if rights is None:
        return "rights unknown (server decides)"
    if rights.folder_owner and rights.edit is EditScope.ALL and rights.delete is EditScope.ALL:
        return "owner: all rights"
    parts: list[str] = []
    if rights.read is ReadAccess.FULL:
        parts.append("read")
    elif rights.read is ReadAccess.FREEBUSY_DETAILED:
        parts.append("free/busy with details")
    elif rights.read is ReadAccess.FREEBUSY_TIME:
        parts.append("free/busy only")
    if rights.create_items:
        parts.append("create")
    if rights.edit is not EditScope.NONE:
        parts.append(f"edit {rights.edit.value}")
    if rights.delete is not EditScope.NONE:
        parts.append(f"delete {rights.delete.value}")
    if not parts:
        return "no access"
    if parts == ["read"]:
        return "read only"
    return ", ".join(parts)


def short_time(value: datetime | None, now: datetime) -> str:
    if value is None:
        return ""
    local = value.astimezone(now.tzinfo)
    if local.date() == now.date():
        return local.strftime("%H:%M")
    if local.year == now.year:
        return local.strftime("%d.%m.")
    return local.strftime("%d.%m.%y")


#: What the list's status columns show, in column order (the help screen prints it).
STATUS_LEGEND: tuple[tuple[str, str], ...] = (
    ("N", "unread"),
    ("r", "replied (to all: a)"),
    ("f", "forwarded"),
    ("F", "flagged for follow-up"),
    ("✓", "follow-up complete (tasks: done)"),
    ("!", "high importance"),
    ("↓", "low importance"),
    ("@", "has attachments"),
    ("♪", "voicemail"),
)


_VERB_MARKS: dict[LastVerb | None, str] = {
    LastVerb.REPLIED: "r",
    LastVerb.REPLIED_ALL: "a",
    LastVerb.FORWARDED: "f",
}


def flags_of(item: Item) -> str:
    """Four status columns: unread or answered, flag, importance, attachment (STATUS_LEGEND)."""
    unread = " "
    if isinstance(item, Message):
        unread = "N" if not item.is_read else _VERB_MARKS.get(item.last_verb, " ")
    if item.flag.status is FlagStatus.FLAGGED:
        flag = "F"
    elif item.flag.status is FlagStatus.COMPLETE:
        flag = "✓"
    else:
        flag = " "
    importance = {Importance.HIGH: "!", Importance.LOW: "↓"}.get(item.importance, " ")
    attach = "@" if item.has_attachments else " "
    if isinstance(item, Voicemail):
        attach = "♪"
    return unread + flag + importance + attach


def row_columns(item: Item, now: datetime) -> tuple[str, str, str, str]:
    """(flags, when, who, what) for one list row."""
    if isinstance(item, Message):
        who = item.from_.name or item.from_.email if item.from_ else ""
        return flags_of(item), short_time(item.received or item.sent, now), who, item.subject
    if isinstance(item, Event):
        return flags_of(item), short_time(item.start, now), item.location, item.subject
    if isinstance(item, Task):
        done = "✓" if item.status is TaskStatus.COMPLETED else " "
        return done + flags_of(item)[1:], short_time(item.due, now), item.owner, item.subject
    if isinstance(item, Contact):
        email = item.emails[0] if item.emails else ""
        return "    ", "", item.company, f"{item.display_name}  {email}".strip()
    return flags_of(item), short_time(item.last_modified, now), "", item.subject


def body_text(item: Item) -> str:
    if not item.body:
        return ""
    return html_to_text(item.body) if item.body_is_html else item.body.strip()


def _fmt(value: datetime | None) -> str:
    return value.strftime("%a %d.%m.%Y %H:%M") if value else ""


def recurrence_text(rec: Recurrence) -> str:
    pattern = rec.pattern
    name = type(pattern).__name__
    interval = getattr(pattern, "interval", 1)
    words = {
        "Daily": "day",
        "Weekly": "week",
        "MonthlyByDate": "month",
        "MonthlyByWeekday": "month",
        "YearlyByDate": "year",
        "YearlyByWeekday": "year",
    }
    unit = words.get(name, name)
    every = f"every {unit}" if interval == 1 else f"every {interval} {unit}s"
    weekdays = getattr(pattern, "weekdays", ())
    if weekdays:
        every += " on " + ", ".join(d.value.capitalize() for d in weekdays)
    if rec.end:
        return f"{every} until {rec.end:%d.%m.%Y}"
    if rec.count:
        return f"{every}, {rec.count} times"
    return f"{every}, no end"


def header_lines(item: Item) -> list[tuple[str, str]]:
    """Label/value pairs shown above the reader's body."""
    rows: list[tuple[str, str]] = []
    if isinstance(item, Message):
        if item.from_:
            rows.append(("From", str(item.from_)))
        if item.sender and item.from_ and item.sender.email != item.from_.email:
            rows.append(
                ("Sender", f"{item.sender} on behalf of {item.from_.name or item.from_.email}")
            )
        if item.to:
            rows.append(("To", ", ".join(str(a) for a in item.to)))
        if item.cc:
            rows.append(("Cc", ", ".join(str(a) for a in item.cc)))
        rows.append(("Date", _fmt(item.received or item.sent)))
        if isinstance(item, Voicemail):
            caller = item.caller or ""
            length = f"{item.duration_s} s" if item.duration_s else ""
            rows.append(("Voicemail", " ".join(p for p in (caller, length) if p)))
    elif isinstance(item, Event):
        rows.append(("When", f"{_fmt(item.start)} – {item.end:%H:%M}"))
        if item.location:
            rows.append(("Where", item.location))
        if item.organizer:
            rows.append(("Organizer", str(item.organizer)))
        if item.attendees:
            rows.append(
                (
                    "Attendees",
                    ", ".join(f"{a.address} ({a.response.value})" for a in item.attendees),
                )
            )
        if item.recurrence:
            rows.append(("Repeats", recurrence_text(item.recurrence)))
    elif isinstance(item, Task):
        rows.append(
            ("Status", f"{item.status.value.replace('_', ' ')} ({item.percent_complete} %)")
        )
        if item.due:
            rows.append(("Due", _fmt(item.due)))
    elif isinstance(item, Contact):
        if item.company:
            rows.append(("Company", item.company))
        if item.job_title:
            rows.append(("Title", item.job_title))
        for email in item.emails:
            rows.append(("E-mail", email))
        for label, phone in item.phones.items():
            rows.append((label.capitalize(), phone))
    if item.flag.status is FlagStatus.FLAGGED:
        due = f", due {item.flag.due:%d.%m.%Y}" if item.flag.due else ""
        rows.append(("Flag", f"follow up{due}"))
    if item.importance is not Importance.NORMAL:
        rows.append(("Importance", item.importance.value))
    if item.categories:
        rows.append(("Categories", ", ".join(item.categories)))
    if item.attachments:
        rows.append(
            ("Attachments", ", ".join(a.name for a in item.attachments if not a.is_inline) or "-")
        )
    return rows


def item_title(item: Item) -> str:
    if isinstance(item, Contact):
        return item.display_name or item.subject
    if isinstance(item, Note):
        return item.subject or (item.body or "").split("\n", 1)[0]
    return item.subject or "(no subject)"


def folder_label(folder: Folder) -> str:
    if folder.unread_count:
        return f"{folder.name} ({folder.unread_count})"
    return folder.name
