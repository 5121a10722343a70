"""Conversion between exchangelib's items, folders and properties and `med.model` values."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any, cast

from exchangelib import errors as exerr
from exchangelib.attachments import ItemAttachment
from exchangelib.ewsdatetime import EWSDate, EWSDateTime, EWSTimeZone
from exchangelib.fields import CharField
from exchangelib.folders import Folder as ExFolder
from exchangelib.items import Message as ExMessage
from exchangelib.properties import (
    Attendee as ExAttendee,
)
from exchangelib.properties import Mailbox as ExMailbox
from exchangelib.properties import Permission as ExPermission
from exchangelib.properties import (
    UserId,
)
from exchangelib.recurrence import (
    AbsoluteMonthlyPattern,
    AbsoluteYearlyPattern,
    DailyPattern,
    EndDatePattern,
    NoEndPattern,
    NumberedPattern,
    RelativeMonthlyPattern,
    RelativeYearlyPattern,
    WeeklyPattern,
)
from exchangelib.recurrence import Recurrence as ExRecurrence

from med.model import (
    Address,
    Attachment,
    AttendeeKind,
    BusyStatus,
    Daily,
    EditScope,
    Event,
    EventKind,
    Flag,
    FlagStatus,
    FolderKind,
    Importance,
    LastVerb,
    MeetingDelivery,
    MonthlyByDate,
    MonthlyByWeekday,
    Permission,
    ReadAccess,
    Recurrence,
    RecurrencePattern,
    ResponseType,
    Rights,
    Role,
    Sensitivity,
    TaskStatus,
    Weekday,
    Weekly,
    YearlyByDate,
    YearlyByWeekday,
)
from med.permissions import rights_for_role, role_for_rights


class CalendarFolder(ExFolder):  # type: ignore[misc]
    """A calendar as UpdateFolder must name it: its permission set has calendar levels
    (exchangelib's Calendar class is sent as a plain Folder)."""

    ELEMENT_NAME = "CalendarFolder"
    __slots__ = ()


class StickyNote(ExMessage):  # type: ignore[misc]
    """A message whose ItemClass is written on create: sticky notes are IPM.StickyNote."""

    __slots__ = ()


StickyNote.FIELDS = type(ExMessage.FIELDS)(
    *[
        CharField("item_class", field_uri="item:ItemClass") if f.name == "item_class" else f
        for f in ExMessage.FIELDS
    ]
)

# --------------------------------------------------------------------------- value maps

IMPORTANCE = {"Low": Importance.LOW, "Normal": Importance.NORMAL, "High": Importance.HIGH}
IMPORTANCE_BACK = {v: k for k, v in IMPORTANCE.items()}
SENSITIVITY = {
    "Normal": Sensitivity.NORMAL,
    "Personal": Sensitivity.PERSONAL,
    "Private": Sensitivity.PRIVATE,
    "Confidential": Sensitivity.CONFIDENTIAL,
}
SENSITIVITY_BACK = {v: k for k, v in SENSITIVITY.items()}
RESPONSE = {
    "Unknown": ResponseType.UNKNOWN,
    "Organizer": ResponseType.ORGANIZER,
    "Tentative": ResponseType.TENTATIVE,
    "Accept": ResponseType.ACCEPT,
    "Decline": ResponseType.DECLINE,
    "NoResponseReceived": ResponseType.NO_RESPONSE,
}
BUSY = {
    "Free": BusyStatus.FREE,
    "Tentative": BusyStatus.TENTATIVE,
    "Busy": BusyStatus.BUSY,
    "OOF": BusyStatus.OOF,
    "WorkingElsewhere": BusyStatus.WORKING_ELSEWHERE,
    "NoData": BusyStatus.NO_DATA,
}
BUSY_BACK = {v: k for k, v in BUSY.items()}
EVENT_KIND = {
    "Single": EventKind.SINGLE,
    "Occurrence": EventKind.OCCURRENCE,
    "Exception": EventKind.EXCEPTION,
    "RecurringMaster": EventKind.SERIES,
}
TASK_STATUS = {
    "NotStarted": TaskStatus.NOT_STARTED,
    "InProgress": TaskStatus.IN_PROGRESS,
    "Completed": TaskStatus.COMPLETED,
    "WaitingOnOthers": TaskStatus.WAITING,
    "Deferred": TaskStatus.DEFERRED,
}
TASK_STATUS_BACK = {v: k for k, v in TASK_STATUS.items()}
_FLAG_CODES = {0: FlagStatus.NOT_FLAGGED, 1: FlagStatus.COMPLETE, 2: FlagStatus.FLAGGED}
_FLAG_CODES_BACK = {v: k for k, v in _FLAG_CODES.items()}
#: PR_LAST_VERB_EXECUTED values (MS-OXOMSG 2.2.1.25) that mark a message in the list.
LAST_VERBS = {102: LastVerb.REPLIED, 103: LastVerb.REPLIED_ALL, 104: LastVerb.FORWARDED}
LAST_VERB_CODES = {verb: code for code, verb in LAST_VERBS.items()}
_WEEKDAY_NAMES = [d.value for d in Weekday]
_WEEK_NAMES = ["first", "second", "third", "fourth", "last"]
DELEGATE_FOLDER_FIELDS = {
    "calendar": "calendar_folder_permission_level",
    "tasks": "tasks_folder_permission_level",
    "inbox": "inbox_folder_permission_level",
    "contacts": "contacts_folder_permission_level",
    "notes": "notes_folder_permission_level",
    "journal": "journal_folder_permission_level",
}
DELIVERY = {
    "DelegatesOnly": MeetingDelivery.DELEGATES_ONLY,
    "DelegatesAndMe": MeetingDelivery.DELEGATES_AND_ME,
    "DelegatesAndSendInformationToMe": MeetingDelivery.DELEGATES_AND_INFO_TO_ME,
    "NoForward": MeetingDelivery.NO_FORWARD,
}
SORT_FIELDS = {
    "received": "datetime_received",
    "sent": "datetime_sent",
    "subject": "subject",
    "importance": "importance",
    "start": "start",
    "due": "due_date",
    "modified": "last_modified_time",
    "created": "datetime_created",
    "size": "size",
    "name": "display_name",
}
LIST_FIELDS: dict[FolderKind, tuple[str, ...]] = {
    FolderKind.MAIL: (
        "subject",
        "importance",
        "sensitivity",
        "categories",
        "datetime_received",
        "datetime_sent",
        "author",
        "sender",
        "is_read",
        "has_attachments",
        "size",
        "item_class",
        "is_draft",
        "datetime_created",
        "last_modified_time",
        "med_flag_status",
        "med_flag_due",
        "med_flag_start",
        "med_last_verb",
    ),
    FolderKind.CALENDAR: (
        "subject",
        "importance",
        "sensitivity",
        "categories",
        "start",
        "end",
        "is_all_day",
        "location",
        "organizer",
        "type",
        "legacy_free_busy_status",
        "my_response_type",
        "is_meeting",
        "is_cancelled",
        "reminder_is_set",  # views show when each occurrence's reminder fires
        "reminder_minutes_before_start",
        "has_attachments",
        "item_class",
        "uid",
        "last_modified_time",
        "datetime_created",
    ),
    FolderKind.CONTACTS: (
        "subject",
        "display_name",
        "given_name",
        "surname",
        "company_name",
        "job_title",
        "department",
        "email_addresses",
        "categories",
        "item_class",
        "last_modified_time",
    ),
    FolderKind.TASKS: (
        "subject",
        "importance",
        "sensitivity",
        "categories",
        "start_date",
        "due_date",
        "complete_date",
        "status",
        "percent_complete",
        "reminder_is_set",  # the bridge schedules task reminders from lists
        "reminder_due_by",
        "item_class",
        "last_modified_time",
        "has_attachments",
    ),
    FolderKind.NOTES: (
        "subject",
        "categories",
        "item_class",
        "datetime_created",
        "last_modified_time",
        "sensitivity",
    ),
}
LIST_FIELDS[FolderKind.OTHER] = LIST_FIELDS[FolderKind.MAIL]


def aware_datetime(value: Any) -> datetime | None:
    """An aware stdlib datetime from EWSDateTime/EWSDate/None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return datetime.fromtimestamp(value.timestamp(), tz=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def ews_datetime(value: datetime, zone_name: str | None = None) -> EWSDateTime:
    """An EWSDateTime, in the IANA zone `zone_name` when given and known (else UTC).

    Events are sent in their own zone so that series keep their local time across DST.
    """
    zone = EWSTimeZone("UTC")
    if zone_name:
        with contextlib.suppress(exerr.UnknownTimeZone, ValueError, KeyError):
            zone = EWSTimeZone(zone_name)
    return EWSDateTime.from_datetime(value.astimezone(UTC)).astimezone(zone)


def zone_name_of(zone: Any) -> str | None:
    key = getattr(zone, "key", None)
    return str(key) if key and key != "UTC" else None


def to_address(mb: Any) -> Address | None:
    if mb is None or not getattr(mb, "email_address", None):
        return None
    return Address(str(mb.email_address).lower(), str(mb.name or ""))


def to_addresses(mbs: Any) -> tuple[Address, ...]:
    out = []
    for mb in mbs or ():
        addr = to_address(mb)
        if addr is not None:
            out.append(addr)
    return tuple(out)


def ex_mailboxes(addrs: Sequence[Address]) -> list[ExMailbox] | None:
    if not addrs:
        return None
    return [ExMailbox(email_address=a.email, name=a.name or None) for a in addrs]


def rights_from_effective(
    eff: Any, *, own: bool, user: str = "", permission_set: Any = None
) -> Rights | None:
    if own:
        return Rights.full()
    if eff is None:
        return None
    # A folder's EffectiveRights has no edit/delete scope for its items (Author and Editor
    # look alike there); our entry in the permission set, else its Default entry, has it.
    # Without a readable permission set, roles without CreateContents have no edit or delete
    # right and the others are left to the server (ALL = not refused here).
    can_create = bool(eff.create_contents)
    read = ReadAccess.FULL if eff.read else ReadAccess.NONE
    edit = delete = EditScope.ALL if can_create else EditScope.NONE
    granted = _granted_entry(permission_set, user)
    # The entry is the source only if it explains what the server grants: FullAccess to a
    # shared mailbox (or a group's entry) grants more than our entry or Default, and then
    # edit and delete reach every item, as they do in Outlook.
    if granted is not None and _explains(granted.rights, eff):
        edit, delete = granted.rights.edit, granted.rights.delete
    return Rights(
        read=read,
        create_items=can_create,
        create_subfolders=bool(eff.create_hierarchy),
        edit=edit,
        delete=delete,
        folder_owner=bool(eff.modify and eff.delete and eff.create_hierarchy),
        folder_visible=True,
        view_private=bool(eff.view_private_items),
    )


def _explains(entry: Rights, eff: Any) -> bool:
    """Whether a permission entry grants at least what the folder's EffectiveRights show."""
    reads = entry.read is not ReadAccess.NONE or not eff.read
    creates = entry.create_items or not eff.create_contents
    return reads and creates


def _granted_entry(permission_set: Any, user: str) -> Permission | None:
    """The permission entry that applies to `user` (a named entry replaces Default)."""
    if permission_set is None:
        return None
    raw = list(permission_set.permissions or ()) + list(permission_set.calendar_permissions or ())
    entries = {e.principal: e for e in (from_ex_permission(p) for p in raw)}
    return entries.get(user.lower(), entries.get("default"))


# --------------------------------------------------------------------------- helpers

UPDATE_FIELDS: dict[str, tuple[str, ...]] = {
    "last_verb": ("med_last_verb",),
    "flag": ("med_flag_status", "med_flag_start", "med_flag_due", "med_flag_complete"),
    "reminder_minutes": ("reminder_is_set", "reminder_minutes_before_start"),
    "reminder_at": ("reminder_is_set", "reminder_due_by"),
    "to": ("to_recipients",),
    "cc": ("cc_recipients",),
    "bcc": ("bcc_recipients",),
    "from_": ("author",),
    "show_as": ("legacy_free_busy_status",),
    "attendees": ("required_attendees", "optional_attendees", "resources"),
    "company": ("company_name",),
    "emails": ("email_addresses",),
    "phones": ("phone_numbers",),
    "start": ("start", "start_date"),
    "due": ("due_date",),
    # CompleteDate is read-only: the server stamps it when the status becomes Completed.
    "completed": ("status", "percent_complete"),
}


def flag_of(ex: Any) -> Flag:
    code = getattr(ex, "med_flag_status", None)
    status = _FLAG_CODES.get(int(code) if code is not None else 0, FlagStatus.NOT_FLAGGED)
    return Flag(
        status=status,
        start=aware_datetime(getattr(ex, "med_flag_start", None)),
        due=aware_datetime(getattr(ex, "med_flag_due", None)),
        completed=aware_datetime(getattr(ex, "med_flag_complete", None)),
    )


def apply_flag(msg: Any, flag: Flag) -> None:
    msg.med_flag_status = _FLAG_CODES_BACK[flag.status]
    msg.med_flag_start = ews_datetime(flag.start) if flag.start else None
    msg.med_flag_due = ews_datetime(flag.due) if flag.due else None
    msg.med_flag_complete = ews_datetime(flag.completed) if flag.completed else None


def to_attachment(a: Any) -> Attachment:
    att_id = getattr(getattr(a, "attachment_id", None), "id", None) or ""
    return Attachment(
        id=str(att_id),
        name=str(getattr(a, "name", None) or "attachment"),
        content_type=str(getattr(a, "content_type", None) or "application/octet-stream"),
        size=getattr(a, "size", None),
        is_inline=bool(getattr(a, "is_inline", False)),
        is_item=isinstance(a, ItemAttachment),
        content_id=getattr(a, "content_id", None),
    )


def from_ex_recurrence(rec: Any) -> Recurrence | None:
    if rec is None or rec.pattern is None or rec.boundary is None:
        return None
    p = rec.pattern
    pattern: RecurrencePattern
    if isinstance(p, DailyPattern):
        pattern = Daily(int(p.interval or 1))
    elif isinstance(p, WeeklyPattern):
        days = p.weekdays if isinstance(p.weekdays, list | tuple) else [p.weekdays]
        pattern = Weekly(
            tuple(Weekday(_WEEKDAY_NAMES[int(d) - 1]) for d in days),
            int(p.interval or 1),
            Weekday(_WEEKDAY_NAMES[int(p.first_day_of_week or 1) - 1]),
        )
    elif isinstance(p, AbsoluteMonthlyPattern):
        pattern = MonthlyByDate(int(p.day_of_month), int(p.interval or 1))
    elif isinstance(p, RelativeMonthlyPattern):
        pattern = MonthlyByWeekday(
            Weekday(_WEEKDAY_NAMES[int(p.weekday) - 1]),
            cast(Any, _WEEK_NAMES[int(p.week_number) - 1]),
            int(p.interval or 1),
        )
    elif isinstance(p, AbsoluteYearlyPattern):
        pattern = YearlyByDate(int(p.month), int(p.day_of_month))
    elif isinstance(p, RelativeYearlyPattern):
        pattern = YearlyByWeekday(
            int(p.month),
            Weekday(_WEEKDAY_NAMES[int(p.weekday) - 1]),
            cast(Any, _WEEK_NAMES[int(p.week_number) - 1]),
        )
    else:
        return None
    b = rec.boundary
    start = b.start if isinstance(b.start, date) else date.today()
    if isinstance(start, datetime):
        start = start.date()
    if isinstance(b, EndDatePattern):
        end = b.end.date() if isinstance(b.end, datetime) else b.end
        return Recurrence(
            pattern,
            date(start.year, start.month, start.day),
            end=date(end.year, end.month, end.day),
        )
    if isinstance(b, NumberedPattern):
        return Recurrence(pattern, date(start.year, start.month, start.day), count=int(b.number))
    return Recurrence(pattern, date(start.year, start.month, start.day))


def to_ex_recurrence(rec: Recurrence) -> Any:
    p = rec.pattern

    def wd(day: Weekday) -> int:
        return _WEEKDAY_NAMES.index(day.value) + 1

    if isinstance(p, Daily):
        pattern = DailyPattern(interval=p.interval)
    elif isinstance(p, Weekly):
        pattern = WeeklyPattern(
            interval=p.interval,
            weekdays=[wd(d) for d in p.weekdays],
            first_day_of_week=wd(p.first_day_of_week),
        )
    elif isinstance(p, MonthlyByDate):
        pattern = AbsoluteMonthlyPattern(interval=p.interval, day_of_month=p.day_of_month)
    elif isinstance(p, MonthlyByWeekday):
        pattern = RelativeMonthlyPattern(
            interval=p.interval, weekday=wd(p.weekday), week_number=_WEEK_NAMES.index(p.week) + 1
        )
    elif isinstance(p, YearlyByDate):
        pattern = AbsoluteYearlyPattern(month=p.month, day_of_month=p.day_of_month)
    else:
        pattern = RelativeYearlyPattern(
            month=p.month, weekday=wd(p.weekday), week_number=_WEEK_NAMES.index(p.week) + 1
        )
    start = EWSDate.from_date(rec.start)
    if rec.count is not None:
        boundary = NumberedPattern(start=start, number=rec.count)
    elif rec.end is not None:
        boundary = EndDatePattern(start=start, end=EWSDate.from_date(rec.end))
    else:
        boundary = NoEndPattern(start=start)
    return ExRecurrence(pattern=pattern, boundary=boundary)


_LEVEL_FIXES = {"NoneditingAuthor": Role.NON_EDITING_AUTHOR}


def ex_attendees(event: Event, kind: AttendeeKind) -> list[Any] | None:
    """The event's attendees of one kind as exchangelib wants them (None for none)."""
    return [
        ExAttendee(
            mailbox=ExMailbox(email_address=a.address.email, name=a.address.name or None),
            response_type="Unknown",
        )
        for a in event.attendees
        if a.kind is kind
    ] or None


def from_ex_permission(p: Any) -> Permission:
    user = p.user_id
    if user is not None and user.distinguished_user:
        principal = str(user.distinguished_user).lower()
    else:
        principal = str(getattr(user, "primary_smtp_address", "") or "").lower()
    scope = {"None": EditScope.NONE, "Owned": EditScope.OWN, "All": EditScope.ALL}
    rights = Rights(
        read=ReadAccess.FULL if p.read_items == "FullDetails" else ReadAccess.NONE,
        create_items=bool(p.can_create_items),
        create_subfolders=bool(p.can_create_subfolders),
        edit=scope.get(p.edit_items or "None", EditScope.NONE),
        delete=scope.get(p.delete_items or "None", EditScope.NONE),
        folder_owner=bool(p.is_folder_owner),
        folder_contact=bool(p.is_folder_contact),
        folder_visible=bool(p.is_folder_visible),
    )
    level = getattr(p, "calendar_permission_level", None) or getattr(p, "permission_level", None)
    role = _LEVEL_FIXES.get(str(level))
    if role is None:
        try:
            role = Role(str(level))
        except ValueError:
            role = Role.CUSTOM
    if role is Role.FREE_BUSY_TIME_ONLY:
        rights = dataclasses.replace(rights, read=ReadAccess.FREEBUSY_TIME)
    elif role is Role.FREE_BUSY_TIME_AND_SUBJECT_AND_LOCATION:
        rights = dataclasses.replace(rights, read=ReadAccess.FREEBUSY_DETAILED)
    elif role is Role.CUSTOM:
        role = role_for_rights(rights)
    display = str(getattr(user, "display_name", None) or "")
    return Permission(principal, role, rights, display)


def to_ex_permission(p: Permission, *, calendar: bool) -> Any:
    from exchangelib.properties import CalendarPermission

    rights = p.rights if p.role is Role.CUSTOM else rights_for_role(p.role)
    scope = {EditScope.NONE: "None", EditScope.OWN: "Owned", EditScope.ALL: "All"}
    if p.principal in ("default", "anonymous"):
        user = UserId(distinguished_user=p.principal.capitalize())
    else:
        user = UserId(primary_smtp_address=p.principal)
    level = "NoneditingAuthor" if p.role is Role.NON_EDITING_AUTHOR else p.role.value
    common = {
        "user_id": user,
        "can_create_items": rights.create_items,
        "can_create_subfolders": rights.create_subfolders,
        "is_folder_owner": rights.folder_owner,
        "is_folder_visible": rights.folder_visible,
        "is_folder_contact": rights.folder_contact,
        "edit_items": scope[rights.edit],
        "delete_items": scope[rights.delete],
        "read_items": "FullDetails" if rights.read is ReadAccess.FULL else "None",
    }
    if calendar:
        # exchangelib knows only FullDetails/None for ReadItems; the level carries free/busy.
        return CalendarPermission(calendar_permission_level=level, **common)
    if level in ("FreeBusyTimeOnly", "FreeBusyTimeAndSubjectAndLocation"):
        level = "None"
    return ExPermission(permission_level=level, **common)
