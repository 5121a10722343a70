"""Typed domain objects of med: what callers get and give, whatever the backend.

All values are frozen dataclasses or string enums; datetimes are timezone-aware. Backends
convert their library's types to these at their edge, so nothing of exchangelib or O365 leaks.
Item ids are opaque strings; `change_key` (where the backend has one) lets an update detect
that the item changed meanwhile (`Conflict`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "Address",
    "Attachment",
    "AttachmentContent",
    "Attendee",
    "AttendeeKind",
    "AuthMethod",
    "BusySlot",
    "BusyStatus",
    "Contact",
    "Daily",
    "Delegate",
    "DelegateLevel",
    "EditScope",
    "Event",
    "EventKind",
    "Feature",
    "Flag",
    "FlagStatus",
    "Folder",
    "FolderKind",
    "FolderNode",
    "FreeBusy",
    "Importance",
    "Item",
    "ItemKind",
    "ItemQuery",
    "LastVerb",
    "Mailbox",
    "MailboxEvent",
    "MailboxEventKind",
    "MailboxKind",
    "MeetingDelivery",
    "Message",
    "MonthlyByDate",
    "MonthlyByWeekday",
    "Note",
    "OutgoingAttachment",
    "Page",
    "Permission",
    "Profile",
    "ReadAccess",
    "Recurrence",
    "RecurrencePattern",
    "ResponseType",
    "Rights",
    "Role",
    "SendOptions",
    "Sensitivity",
    "SortField",
    "SyncChange",
    "SyncChangeKind",
    "SyncCheckpoint",
    "SyncEvent",
    "Task",
    "TaskStatus",
    "Voicemail",
    "Weekday",
    "Weekly",
    "WellKnownFolder",
    "YearlyByDate",
    "YearlyByWeekday",
    "to_jsonable",
]


# --------------------------------------------------------------------------- connection


class AuthMethod(enum.StrEnum):
    """How the backend proves who we are."""

    BASIC = "basic"
    NTLM = "ntlm"
    KERBEROS = "kerberos"  # Negotiate with a Kerberos ticket from the credential cache
    OAUTH = "oauth"  # Graph only


@dataclass(frozen=True, slots=True)
class Profile:
    """Where and as whom to connect; the password is never part of a profile.

    `server` is the EWS endpoint URL (or the Graph base URL); with `autodiscover` the backend
    asks `server`'s Autodiscover service for the user's EWS URL, or without a `server` finds
    it from `user`'s address. `ca_bundle` adds a CA file for TLS
    verification, which is always on unless `verify_tls` is False (labs only).
    """

    name: str
    server: str
    user: str
    auth: AuthMethod = AuthMethod.NTLM
    backend: Literal["ews", "graph"] = "ews"
    username: str | None = None  # login name when it differs from the address (DOMAIN\\user)
    version: str | None = None  # e.g. "Exchange2016"; None = ask the server once
    autodiscover: bool = False
    ca_bundle: str | None = None
    verify_tls: bool = True
    timeout_s: float = 60.0
    max_wait_s: float = 60.0  # how long the one retry layer may wait for a busy server
    mailboxes: tuple[str, ...] = ()  # extra mailboxes the user works in (delegated, functional)


class Feature(enum.StrEnum):
    """Names in `Backend.capabilities`; the UI asks before offering an action."""

    PUBLIC_FOLDERS = "public_folders"
    ARCHIVE = "archive"
    DELEGATES = "delegates"
    FOLDER_PERMISSIONS = "folder_permissions"  # read and change folder permissions
    VOICEMAIL = "voicemail"
    MIME_EXPORT = "mime_export"
    MASTER_CATEGORIES = "master_categories"
    FREE_BUSY = "free_busy"
    SYNC = "sync"
    STREAMING = "streaming"
    PULL_NOTIFICATIONS = "pull_notifications"
    RESOLVE_NAMES = "resolve_names"
    SEND_ON_BEHALF = "send_on_behalf"
    MEETING_RESPONSES = "meeting_responses"


# --------------------------------------------------------------------------- mailboxes & folders


class MailboxKind(enum.StrEnum):
    OWN = "own"
    DELEGATED = "delegated"  # another person's mailbox we have delegate access to
    FUNCTIONAL = "functional"  # shared/functional mailbox without own login (poststelle@)
    SHARED = "shared"  # team calendar or other shared mailbox
    ROOM = "room"
    PUBLIC = "public"  # the public folder tree
    ARCHIVE = "archive"  # an archive mailbox (own or delegated)


@dataclass(frozen=True, slots=True)
class Address:
    """An e-mail address with optional display name."""

    email: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email

    @property
    def looks_valid(self) -> bool:
        """Shaped like an address (local@domain.tld, no spaces): what is refused before any
        server is asked; whether it exists is the server's answer."""
        local, _, domain = self.email.partition("@")
        return bool(local) and "." in domain and " " not in self.email


@dataclass(frozen=True, slots=True)
class Mailbox:
    """A mailbox the user can open. `address` is "public" for the public folder tree.

    An archive mailbox has the owner's address and kind ARCHIVE.
    """

    address: str
    display_name: str
    kind: MailboxKind

    @property
    def key(self) -> str:
        """Unique among a session's mailboxes (the archive shares its owner's address)."""
        return f"archive:{self.address}" if self.kind is MailboxKind.ARCHIVE else self.address


class FolderKind(enum.StrEnum):
    MAIL = "mail"
    CALENDAR = "calendar"
    CONTACTS = "contacts"
    TASKS = "tasks"
    NOTES = "notes"
    OTHER = "other"

    @classmethod
    def from_container_class(cls, container_class: str | None) -> FolderKind:
        """Map an Exchange folder class (IPF.Note, IPF.Appointment ...) to a kind."""
        value = (container_class or "").lower()
        for prefix, kind in _CONTAINER_CLASS_KINDS:
            if value == prefix or value.startswith(prefix + "."):
                return kind
        return cls.OTHER


_CONTAINER_CLASS_KINDS = (
    ("ipf.note", FolderKind.MAIL),
    ("ipf.appointment", FolderKind.CALENDAR),
    ("ipf.contact", FolderKind.CONTACTS),
    ("ipf.task", FolderKind.TASKS),
    ("ipf.stickynote", FolderKind.NOTES),
)


class WellKnownFolder(enum.StrEnum):
    """Exchange's well-known (distinguished) folder names: `DelegateSession.default_folder`
    takes them for any mailbox, whatever the folders' display names in its language."""

    INBOX = "inbox"
    CALENDAR = "calendar"
    CONTACTS = "contacts"
    TASKS = "tasks"
    NOTES = "notes"
    JOURNAL = "journal"
    DRAFTS = "drafts"
    SENT_ITEMS = "sentitems"
    DELETED_ITEMS = "deleteditems"
    JUNK_EMAIL = "junkemail"
    OUTBOX = "outbox"
    VOICEMAIL = "voicemail"
    MSG_FOLDER_ROOT = "msgfolderroot"
    PUBLIC_FOLDERS_ROOT = "publicfoldersroot"
    ARCHIVE_MSG_FOLDER_ROOT = "archivemsgfolderroot"
    ARCHIVE_INBOX = "archiveinbox"
    ARCHIVE_DELETED_ITEMS = "archivedeleteditems"


#: A mailbox's default folders, in the order a folder tree marks them.
DEFAULT_FOLDERS = (
    WellKnownFolder.INBOX,
    WellKnownFolder.CALENDAR,
    WellKnownFolder.CONTACTS,
    WellKnownFolder.TASKS,
    WellKnownFolder.NOTES,
    WellKnownFolder.DRAFTS,
    WellKnownFolder.SENT_ITEMS,
    WellKnownFolder.DELETED_ITEMS,
    WellKnownFolder.OUTBOX,
    WellKnownFolder.JUNK_EMAIL,
    WellKnownFolder.VOICEMAIL,
)
#: The default folders that hold mail.
MAIL_FOLDERS = frozenset(
    {
        WellKnownFolder.INBOX,
        WellKnownFolder.DRAFTS,
        WellKnownFolder.SENT_ITEMS,
        WellKnownFolder.DELETED_ITEMS,
        WellKnownFolder.JUNK_EMAIL,
        WellKnownFolder.OUTBOX,
    }
)
#: An archive mailbox's well-known folders below its root.
ARCHIVE_FOLDERS = (WellKnownFolder.ARCHIVE_INBOX, WellKnownFolder.ARCHIVE_DELETED_ITEMS)


class ReadAccess(enum.StrEnum):
    NONE = "none"
    FREEBUSY_TIME = "freebusy_time"
    FREEBUSY_DETAILED = "freebusy_detailed"
    FULL = "full"


class EditScope(enum.StrEnum):
    NONE = "none"
    OWN = "own"
    ALL = "all"


@dataclass(frozen=True, slots=True)
class Rights:
    """What a user may do in one folder (Exchange folder rights plus ViewPrivateItems)."""

    read: ReadAccess = ReadAccess.NONE
    create_items: bool = False
    create_subfolders: bool = False
    edit: EditScope = EditScope.NONE
    delete: EditScope = EditScope.NONE
    folder_owner: bool = False
    folder_contact: bool = False
    folder_visible: bool = False
    view_private: bool = False

    @classmethod
    def full(cls) -> Rights:
        """The owner's rights on their own folders."""
        return cls(
            read=ReadAccess.FULL,
            create_items=True,
            create_subfolders=True,
            edit=EditScope.ALL,
            delete=EditScope.ALL,
            folder_owner=True,
            folder_contact=True,
            folder_visible=True,
            view_private=True,
        )

    @property
    def can_read_items(self) -> bool:
        return self.read is ReadAccess.FULL

    @property
    def can_see_free_busy(self) -> bool:
        return self.read is not ReadAccess.NONE


class Role(enum.StrEnum):
    """Outlook's permission levels; CUSTOM when the rights match none of them."""

    OWNER = "Owner"
    PUBLISHING_EDITOR = "PublishingEditor"
    EDITOR = "Editor"
    PUBLISHING_AUTHOR = "PublishingAuthor"
    AUTHOR = "Author"
    NON_EDITING_AUTHOR = "NonEditingAuthor"
    REVIEWER = "Reviewer"
    CONTRIBUTOR = "Contributor"
    FREE_BUSY_TIME_ONLY = "FreeBusyTimeOnly"
    FREE_BUSY_TIME_AND_SUBJECT_AND_LOCATION = "FreeBusyTimeAndSubjectAndLocation"
    NONE = "None"
    CUSTOM = "Custom"


@dataclass(frozen=True, slots=True)
class Permission:
    """One entry of a folder's permission list.

    `principal` is an address, or "default" / "anonymous" for those two built-in entries.
    """

    principal: str
    role: Role
    rights: Rights
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class Folder:
    """A folder in a mailbox or in the public folder tree.

    `rights` are the current user's effective rights when the backend knows them (owner:
    full; otherwise from the folder's permissions and delegate grants), else None and the
    server decides alone. Counts are 0 where the server keeps none (a calendar has no unread
    count) or shows none to us.
    """

    id: str
    mailbox: str  # address of the owning mailbox, "public" for public folders
    name: str
    kind: FolderKind
    parent_id: str | None = None
    distinguished: str | None = None  # inbox, calendar, drafts, ... when it is one
    container_class: str | None = None
    total_count: int = 0
    unread_count: int = 0
    child_folder_count: int = 0
    rights: Rights | None = None
    change_key: str | None = None
    archive: bool = False


@dataclass(frozen=True, slots=True)
class FolderNode:
    """A folder with its subfolders, as `DelegateSession.folder_tree` returns it."""

    folder: Folder
    children: tuple[FolderNode, ...] = ()

    def walk(self) -> Sequence[Folder]:
        """All folders of this subtree, depth first, this one first."""
        out = [self.folder]
        for child in self.children:
            out.extend(child.walk())
        return out


class DelegateLevel(enum.StrEnum):
    NONE = "None"
    REVIEWER = "Reviewer"
    AUTHOR = "Author"
    EDITOR = "Editor"
    CUSTOM = "Custom"


class MeetingDelivery(enum.StrEnum):
    """Who receives meeting requests sent to a mailbox with delegates."""

    DELEGATES_ONLY = "delegates_only"
    DELEGATES_AND_ME = "delegates_and_me"
    DELEGATES_AND_INFO_TO_ME = "delegates_and_info_to_me"
    NO_FORWARD = "no_forward"


@dataclass(frozen=True, slots=True)
class Delegate:
    """A delegate of a mailbox and the levels granted on its default folders.

    `levels` maps default folder names ("calendar", "inbox", "tasks", "contacts", "notes",
    "journal") to a level.
    """

    address: str
    display_name: str
    levels: Mapping[str, DelegateLevel]
    view_private: bool = False
    receive_meeting_copies: bool = False


# --------------------------------------------------------------------------- items


class ItemKind(enum.StrEnum):
    MESSAGE = "message"
    EVENT = "event"
    CONTACT = "contact"
    TASK = "task"
    NOTE = "note"
    VOICEMAIL = "voicemail"


class Importance(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class Sensitivity(enum.StrEnum):
    NORMAL = "normal"
    PERSONAL = "personal"
    PRIVATE = "private"
    CONFIDENTIAL = "confidential"


class FlagStatus(enum.StrEnum):
    NOT_FLAGGED = "not_flagged"
    FLAGGED = "flagged"
    COMPLETE = "complete"


class LastVerb(enum.StrEnum):
    """What was last done with a received message, as Outlook marks it in the list."""

    REPLIED = "replied"
    REPLIED_ALL = "replied_all"
    FORWARDED = "forwarded"


@dataclass(frozen=True, slots=True)
class Flag:
    """Follow-up flag: set with start/due, complete with a completion time, or cleared."""

    status: FlagStatus = FlagStatus.NOT_FLAGGED
    start: datetime | None = None
    due: datetime | None = None
    completed: datetime | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """Metadata of an attachment; fetch its bytes with `DelegateSession.attachment`."""

    id: str
    name: str
    content_type: str = "application/octet-stream"
    size: int | None = None
    is_inline: bool = False
    is_item: bool = False  # an attached message or other item (saved as .eml)
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class AttachmentContent:
    """An attachment's metadata with its bytes."""

    attachment: Attachment
    content: bytes


@dataclass(frozen=True, slots=True)
class OutgoingAttachment:
    """A file to attach when creating or sending an item."""

    name: str
    content: bytes
    content_type: str = "application/octet-stream"
    is_inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """Fields shared by every item kind.

    `id` is empty for an item not yet created. Lists return items without `body` and
    `attachments` filled (`body` None); `DelegateSession.get` fills them.
    """

    id: str = ""
    change_key: str | None = None
    folder_id: str | None = None
    mailbox: str | None = None
    kind: ItemKind = ItemKind.MESSAGE
    item_class: str | None = None
    subject: str = ""
    body: str | None = None
    body_is_html: bool = False
    importance: Importance = Importance.NORMAL
    sensitivity: Sensitivity = Sensitivity.NORMAL
    categories: tuple[str, ...] = ()
    flag: Flag = field(default_factory=Flag)
    created: datetime | None = None
    last_modified: datetime | None = None
    has_attachments: bool = False
    attachments: tuple[Attachment, ...] = ()
    new_attachments: tuple[OutgoingAttachment, ...] = ()  # to add on create/update
    reminder_minutes: int | None = None  # None = no reminder
    size: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message(Item):
    """An e-mail. `sender` differs from `from_` when sent on behalf of someone."""

    kind: ItemKind = ItemKind.MESSAGE
    from_: Address | None = None
    sender: Address | None = None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    received: datetime | None = None
    sent: datetime | None = None
    is_read: bool = False
    is_draft: bool = False
    internet_message_id: str | None = None
    conversation_id: str | None = None
    is_meeting_request: bool = False
    #: A meeting response proposing a new time: the attendee's (start, end).
    proposed_time: tuple[datetime, datetime] | None = None
    #: On sending: the Message-ID of the message answered, so mail programs thread the reply.
    in_reply_to: str | None = None
    #: Replied or forwarded (None: neither, or the backend cannot tell).
    last_verb: LastVerb | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Voicemail(Message):
    """A voicemail (IPM.Note.Microsoft.Voicemail.*); the audio is an attachment."""

    kind: ItemKind = ItemKind.VOICEMAIL
    duration_s: int | None = None
    caller: str | None = None  # calling number or name

    @property
    def audio(self) -> Attachment | None:
        """The recording among the attachments (first audio/* one)."""
        for att in self.attachments:
            if att.content_type.startswith("audio/") or att.name.lower().endswith(
                (".wav", ".mp3", ".wma", ".m4a")
            ):
                return att
        return None


class Weekday(enum.StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


WeekIndex = Literal["first", "second", "third", "fourth", "last"]


@dataclass(frozen=True, slots=True)
class Daily:
    interval: int = 1


@dataclass(frozen=True, slots=True)
class Weekly:
    weekdays: tuple[Weekday, ...]
    interval: int = 1
    first_day_of_week: Weekday = Weekday.MONDAY


@dataclass(frozen=True, slots=True)
class MonthlyByDate:
    day_of_month: int
    interval: int = 1


@dataclass(frozen=True, slots=True)
class MonthlyByWeekday:
    weekday: Weekday
    week: WeekIndex
    interval: int = 1


@dataclass(frozen=True, slots=True)
class YearlyByDate:
    month: int
    day_of_month: int


@dataclass(frozen=True, slots=True)
class YearlyByWeekday:
    month: int
    weekday: Weekday
    week: WeekIndex


RecurrencePattern = (
    Daily | Weekly | MonthlyByDate | MonthlyByWeekday | YearlyByDate | YearlyByWeekday
)


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A series: pattern from `start`, ending at `end` (date), after `count`, or never."""

    pattern: RecurrencePattern
    start: date
    end: date | None = None
    count: int | None = None


class EventKind(enum.StrEnum):
    SINGLE = "single"
    OCCURRENCE = "occurrence"  # an unmodified occurrence of a series (expanded view)
    EXCEPTION = "exception"  # a modified occurrence
    SERIES = "series"  # the recurring master


class ResponseType(enum.StrEnum):
    UNKNOWN = "unknown"
    ORGANIZER = "organizer"
    TENTATIVE = "tentative"
    ACCEPT = "accept"
    DECLINE = "decline"
    NO_RESPONSE = "no_response"


class AttendeeKind(enum.StrEnum):
    REQUIRED = "required"
    OPTIONAL = "optional"
    RESOURCE = "resource"


@dataclass(frozen=True, slots=True)
class Attendee:
    address: Address
    kind: AttendeeKind = AttendeeKind.REQUIRED
    response: ResponseType = ResponseType.UNKNOWN


class BusyStatus(enum.StrEnum):
    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"
    WORKING_ELSEWHERE = "working_elsewhere"
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(Item):
    """A calendar item: appointment, meeting, series master, occurrence or exception.

    Occurrences from `calendar_view` carry their own id and `series_id`, the master's id.
    """

    kind: ItemKind = ItemKind.EVENT
    start: datetime
    end: datetime
    is_all_day: bool = False
    location: str = ""
    organizer: Address | None = None
    attendees: tuple[Attendee, ...] = ()
    event_kind: EventKind = EventKind.SINGLE
    series_id: str | None = None
    recurrence: Recurrence | None = None
    show_as: BusyStatus = BusyStatus.BUSY
    my_response: ResponseType = ResponseType.UNKNOWN
    is_meeting: bool = False
    is_cancelled: bool = False
    timezone: str | None = None  # IANA name the event was created in
    uid: str | None = None  # iCalendar UID
    #: Occurrences and exceptions: where the pattern put it (iCalendar's RECURRENCE-ID).
    original_start: datetime | None = None
    #: A series master: ids of its modified occurrences (exceptions), as the server lists them.
    modified_occurrences: tuple[str, ...] = ()
    #: A series master: original starts of its deleted occurrences (iCalendar's EXDATE).
    deleted_occurrences: tuple[datetime, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Contact(Item):
    kind: ItemKind = ItemKind.CONTACT
    display_name: str = ""
    given_name: str = ""
    surname: str = ""
    company: str = ""
    department: str = ""
    job_title: str = ""
    emails: tuple[str, ...] = ()
    phones: Mapping[str, str] = field(default_factory=dict)  # business, mobile, home, ...


class TaskStatus(enum.StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    WAITING = "waiting"
    DEFERRED = "deferred"


@dataclass(frozen=True, slots=True, kw_only=True)
class Task(Item):
    kind: ItemKind = ItemKind.TASK
    start: datetime | None = None
    due: datetime | None = None
    completed: datetime | None = None
    status: TaskStatus = TaskStatus.NOT_STARTED
    percent_complete: int = 0
    owner: str = ""
    #: When the task's reminder fires (a moment of its own, not minutes before a start, as
    #: Outlook and To Do set it); None = no reminder.
    reminder_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Note(Item):
    """A sticky note (IPM.StickyNote); the subject is its first line."""

    kind: ItemKind = ItemKind.NOTE


# --------------------------------------------------------------------------- views & paging

SortField = Literal[
    "received",
    "sent",
    "subject",
    "from",
    "importance",
    "start",
    "due",
    "modified",
    "created",
    "size",
    "name",
]


@dataclass(frozen=True, slots=True)
class ItemQuery:
    """What `DelegateSession.items` lists: a page, sorted, filtered and searched.

    Filters combine with AND. `search` looks in subject, body and sender/name.
    `start`/`end` bound the received time (mail), start time (events), due date (tasks).
    """

    offset: int = 0
    limit: int = 50
    sort: SortField | None = None  # None = the natural order (newest first for mail)
    descending: bool = True
    unread_only: bool = False
    flagged_only: bool = False
    importance: Importance | None = None
    category: str | None = None
    sender: str | None = None
    has_attachments: bool | None = None
    start: datetime | None = None
    end: datetime | None = None
    search: str | None = None

    def next(self) -> ItemQuery:
        return dataclasses.replace(self, offset=self.offset + self.limit)


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; `total` is the folder's count matching the query when known."""

    items: tuple[T, ...]
    offset: int
    total: int | None
    more: bool
    #: How many positions of the folder this page covers; more than `len(items)` when the
    #: session left out items the user may not see.
    span: int | None = None

    @property
    def next_offset(self) -> int | None:
        if not self.more:
            return None
        return self.offset + (self.span if self.span is not None else len(self.items))


# --------------------------------------------------------------------------- sending & meetings


@dataclass(frozen=True, slots=True)
class SendOptions:
    """How to send: from whom and where to keep copies.

    `from_mailbox` sends on behalf of another mailbox (From = that mailbox, Sender = us) or,
    for a functional mailbox we have send-as on, as it. `save_copy` keeps a copy in the
    From mailbox's Sent Items (or ours when sending as ourselves).
    """

    from_mailbox: str | None = None
    save_copy: bool = True


# --------------------------------------------------------------------------- free/busy


@dataclass(frozen=True, slots=True)
class BusySlot:
    start: datetime
    end: datetime
    status: BusyStatus
    subject: str | None = None  # only with detailed free/busy rights
    location: str | None = None


@dataclass(frozen=True, slots=True)
class FreeBusy:
    address: str
    slots: tuple[BusySlot, ...]
    error: str | None = None  # the server's sentence when this person's data is unavailable


# --------------------------------------------------------------------------- sync & notifications


class SyncChangeKind(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    READ_FLAG = "read_flag"


@dataclass(frozen=True, slots=True)
class SyncChange:
    """One change in a folder since the last state. `item` is None for deletions."""

    kind: SyncChangeKind
    item_id: str
    item: Item | None = None
    is_read: bool | None = None


@dataclass(frozen=True, slots=True)
class SyncCheckpoint:
    """End of a batch: persist `state` after handling the changes before it.

    `done` is True when the folder is in sync (no more changes right now).
    """

    state: str
    done: bool


SyncEvent = SyncChange | SyncCheckpoint


class MailboxEventKind(enum.StrEnum):
    NEW_MAIL = "new_mail"
    CREATED = "created"
    MODIFIED = "modified"
    DELETED = "deleted"
    MOVED = "moved"
    COPIED = "copied"
    STATUS = "status"  # heartbeat: the subscription is alive
    RESUBSCRIBED = "resubscribed"  # the subscription was lost and renewed: sync to catch up
    OFFLINE = "offline"  # the server cannot be reached; the watch retries by itself


@dataclass(frozen=True, slots=True)
class MailboxEvent:
    """A notification from a subscription. Items are referenced by id, not carried."""

    kind: MailboxEventKind
    folder_id: str | None = None
    item_id: str | None = None
    old_item_id: str | None = None
    old_folder_id: str | None = None
    timestamp: datetime | None = None


# --------------------------------------------------------------------------- JSON


_JSON_LEAVES = frozenset({str, int, float, bool, type(None)})
"""Types that are JSON as they are (exactly these: enums subclass str and int)."""


_JSON_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _json_fields(cls: type) -> tuple[tuple[str, str], ...]:
    """(JSON key, attribute) per field of a dataclass, computed once per class."""
    fields = _JSON_FIELDS.get(cls)
    if fields is None:
        fields = _JSON_FIELDS[cls] = tuple(
            ("from" if f.name == "from_" else f.name, f.name)
            for f in dataclasses.fields(cls)
            if f.name != "new_attachments"
        )
    return fields


def to_jsonable(value: Any) -> Any:
    """A JSON-ready structure for any med.model value (enums as values, datetimes ISO 8601).

    This is the stable shape of `--json` output and the REST API: field names as here, with
    `from_` written `from`, plus `type` naming the dataclass for items. It runs for every
    field of every item an API page or `--json` list returns, hence the leaf test first.
    """
    kind = type(value)
    if kind in _JSON_LEAVES:
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="minutes")
    if isinstance(value, timedelta):  # ISO 8601, as Graph writes durations
        return f"PT{int(value.total_seconds() // 60)}M"
    if isinstance(value, bytes):
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        if isinstance(value, Item):
            out["type"] = kind.__name__.lower()
        for key, name in _json_fields(kind):
            out[key] = to_jsonable(getattr(value, name))
        return out
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value
