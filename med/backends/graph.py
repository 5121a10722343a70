"""The Microsoft Graph backend (Exchange Online, or any Graph-compatible server such as the lab).

Built on the O365 library: its `Connection` carries every request (JSON, retries), a protocol
subclass points it at the configured Graph host, and O365's resource rules address other
people's mailboxes (`users/<address>`). Tokens come from a callable the caller passes
(`med.auth.oauth.OAuthSignIn.token`, MSAL); the import contracts keep backends and auth
apart. Where O365 has no call for what we need ($skip/$count paging, delta, $batch, calendar
views in UTC) the same connection makes the raw request.

What Graph cannot do (public folders, archives, delegate lists, folder permissions, notes,
voicemail, another person's tasks, push notifications) raises `Unsupported` with a sentence
naming the reason. One retry layer: the connection's urllib3 `Retry` honours `Retry-After`
on 429/503/504 (three tries); after that `Throttled(retry_after)` reaches the caller. Error
answers become MedErrors in one table (`translate`, `GRAPH_CODES`).

Ids given to callers are `<kind>:<mailbox>:<graph id>` (kind m = message, e = event, c =
contact, t = To Do task, a = attachment; folders M/C/P/T for mail, calendar, contacts, task
list) because a Graph id alone does not say which mailbox's URL it lives under.
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import requests
from O365.connection import Connection, MSGraphProtocol
from O365.mailbox import MailBox
from O365.utils.token import BaseTokenBackend
from urllib3.util.retry import Retry

from med.backends.base import Watch
from med.backends.graph_listener import NotificationListener
from med.errors import (
    AccessDenied,
    AuthError,
    Conflict,
    InvalidInput,
    MedError,
    NotFound,
    ServerError,
    Throttled,
    Unreachable,
    Unsupported,
)
from med.model import (
    Address,
    Attachment,
    AttachmentContent,
    Attendee,
    AttendeeKind,
    BusySlot,
    BusyStatus,
    Contact,
    Daily,
    Delegate,
    Event,
    EventKind,
    Feature,
    Flag,
    FlagStatus,
    Folder,
    FolderKind,
    FolderNode,
    FreeBusy,
    Importance,
    Item,
    ItemQuery,
    Mailbox,
    MailboxEvent,
    MailboxEventKind,
    MailboxKind,
    MeetingDelivery,
    Message,
    MonthlyByDate,
    MonthlyByWeekday,
    Page,
    Permission,
    Profile,
    Recurrence,
    ResponseType,
    SendOptions,
    Sensitivity,
    SyncChange,
    SyncChangeKind,
    Task,
    TaskStatus,
    Weekday,
    Weekly,
    YearlyByDate,
    YearlyByWeekday,
)

__all__ = ["GraphBackend"]

CLOUD_GRAPH = "https://graph.microsoft.com"
RETRY_STATUS = (429, 503, 504)

NO_ARCHIVE = "Microsoft Graph has no API for online archive mailboxes; use the EWS backend."
NO_PUBLIC = "Microsoft Graph has no API for public folders; use the EWS backend."
NO_DELEGATES = "Microsoft Graph cannot list a mailbox's delegates; use the EWS backend."
NO_PERMISSIONS = (
    "Microsoft Graph cannot read or change mail folder permissions; use the EWS backend."
)
NO_NOTES = "Microsoft Graph has no API for Outlook notes; use the EWS backend."
NO_VOICEMAIL = "Microsoft Graph does not expose voicemail folders; use the EWS backend."
NO_TASKS = (
    "Over Graph, tasks are Microsoft To Do lists, which only their owner reaches; another"
    " person's tasks need the EWS backend."
)
TASK_STATUS = {
    "notStarted": TaskStatus.NOT_STARTED,
    "inProgress": TaskStatus.IN_PROGRESS,
    "completed": TaskStatus.COMPLETED,
    "waitingOnOthers": TaskStatus.WAITING,
    "deferred": TaskStatus.DEFERRED,
}
TASK_STATUS_OUT = {v: k for k, v in TASK_STATUS.items()}
NO_STREAMING = (
    "Graph pushes changes only to a listener it can reach (notification_host); without one,"
    " medbridge polls Graph mail folders with delta queries, which calendars and contacts do"
    " not have here."
)
EVENT_OF_CHANGE = {
    SyncChangeKind.CREATED: MailboxEventKind.NEW_MAIL,
    SyncChangeKind.UPDATED: MailboxEventKind.MODIFIED,
    SyncChangeKind.READ_FLAG: MailboxEventKind.MODIFIED,
    SyncChangeKind.DELETED: MailboxEventKind.DELETED,
}

NO_PUSH = "Graph change notifications are implemented for mail folders and calendars only."
#: How long a subscription lives before it is renewed (Graph allows about three days).
SUBSCRIPTION_LIFETIME = timedelta(hours=12)
#: Seconds between attempts to reach a server that went away.
RECONNECT_DELAY_S = 2.0
PUSH_EVENTS = {
    "created": MailboxEventKind.CREATED,
    "updated": MailboxEventKind.MODIFIED,
    "deleted": MailboxEventKind.DELETED,
}

MAIL_NAMES = {
    "inbox",
    "drafts",
    "sentitems",
    "deleteditems",
    "junkemail",
    "outbox",
    "msgfolderroot",
}
UNSUPPORTED_FOLDERS = {
    "notes": ("notes", NO_NOTES),
    "voicemail": ("voicemail", NO_VOICEMAIL),
    "journal": ("journal", "Microsoft Graph has no API for the journal; use the EWS backend."),
    "publicfoldersroot": ("public_folders", NO_PUBLIC),
    "archivemsgfolderroot": ("archive", NO_ARCHIVE),
    "archiveinbox": ("archive", NO_ARCHIVE),
    "archivedeleteditems": ("archive", NO_ARCHIVE),
}

SUMMARY_FIELDS = (
    "id,subject,from,sender,toRecipients,ccRecipients,receivedDateTime,sentDateTime,"
    "isRead,isDraft,importance,categories,flag,hasAttachments,parentFolderId,changeKey,"
    "createdDateTime,lastModifiedDateTime,conversationId,internetMessageId,bodyPreview"
)
# Graph's message has no sensitivity; Outlook's MAPI property PR_SENSITIVITY (0x36) carries it.
MESSAGE_EXPAND = "singleValueExtendedProperties($filter=id eq 'Integer 0x36')"
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
TASK_SORT_FIELDS = {
    "due": "dueDateTime/dateTime",
    "subject": "title",
    "importance": "importance",
    "modified": "lastModifiedDateTime",
    "created": "createdDateTime",
    "start": "startDateTime/dateTime",
}
SORT_FIELDS = {
    "received": "receivedDateTime",
    "sent": "sentDateTime",
    "subject": "subject",
    "from": "from/emailAddress/name",
    "importance": "importance",
    "modified": "lastModifiedDateTime",
    "created": "createdDateTime",
    "start": "start/dateTime",
    "name": "displayName",
}

# -- errors ------------------------------------------------------------------------------------

# Graph error codes → med errors (the rest by HTTP status).
GRAPH_CODES: dict[str, type[MedError]] = {
    "ErrorAccessDenied": AccessDenied,
    "ErrorSendAsDenied": AccessDenied,
    "Authorization_RequestDenied": AccessDenied,
    "ErrorItemNotFound": NotFound,
    "ErrorInvalidUser": NotFound,
    "ResourceNotFound": NotFound,
    "ErrorInvalidIdMalformed": InvalidInput,
    "ErrorInvalidRecipients": InvalidInput,
    "ErrorInvalidRequest": InvalidInput,
    "ErrorInvalidParameter": InvalidInput,
    "BadRequest": InvalidInput,
    "RequestBodyRead": InvalidInput,
    "ErrorPropertyValidationFailure": InvalidInput,
    "TimeZoneNotSupportedException": InvalidInput,
    "SyncStateNotFound": InvalidInput,
    "RequestEntityTooLarge": InvalidInput,
    "ErrorInvalidUrlQuery": InvalidInput,
    "Request_BadRequest": InvalidInput,
    "ErrorIrresolvableConflict": Conflict,
    "ErrorFolderExists": Conflict,
    "InvalidAuthenticationToken": AuthError,
    "ApplicationThrottled": Throttled,
    "TooManyRequests": Throttled,
    "ServiceUnavailable": Throttled,
}
STATUS_CLASSES: dict[int, type[MedError]] = {
    400: InvalidInput,
    401: AuthError,
    403: AccessDenied,
    404: NotFound,
    409: Conflict,
    412: Conflict,
    413: InvalidInput,
    429: Throttled,
    503: Throttled,
}


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def translate(response: requests.Response, *, mailbox: str | None = None) -> MedError:
    """The MedError for a Graph error answer (one table, unknown codes by HTTP status)."""
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    code = str(error.get("code") or response.status_code)
    message = str(error.get("message") or response.reason or "The server refused the request.")
    cls = GRAPH_CODES.get(code) or STATUS_CLASSES.get(response.status_code) or ServerError
    if cls is Throttled:
        return Throttled(
            f"The server is busy: {message}",
            retry_after=_retry_after(response),
            mailbox=mailbox,
            code=code,
        )
    return cls(message, mailbox=mailbox, code=code)


# -- the connection ---------------------------------------------------------------------------


class _CaSession(requests.Session):
    """A session whose own CA file wins over `REQUESTS_CA_BUNDLE` (requests lets that variable
    override `Session.verify`). The same rule as in `med.auth.oauth`; the import contracts keep
    backends and auth apart, so each side has its few lines."""

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None or verify is True:
            settings["verify"] = self.verify
        return settings


def _session(ca_file: Path | None) -> requests.Session:
    if ca_file is None:
        return requests.Session()
    session = _CaSession()
    session.verify = str(ca_file)
    return session


class _NoTokenStore(BaseTokenBackend):  # type: ignore[misc]
    """O365 wants a token backend; tokens live in MSAL's cache (med.auth.oauth) instead."""

    def load_token(self) -> bool:
        return False

    def save_token(self, force: bool = False) -> bool:
        return False

    def delete_token(self) -> bool:
        return False

    def check_token(self) -> bool:
        return False


class _TokenConnection(Connection):  # type: ignore[misc]
    """O365's connection with the bearer token taken fresh from our token source per request."""

    def __init__(self, token: Callable[[], str], ca_file: Path | None, timeout_s: float) -> None:
        super().__init__(
            ("medbridge",),
            auth_flow_type="public",
            token_backend=_NoTokenStore(),
            timeout=timeout_s,
            requests_delay=0,
            raise_http_errors=False,
            default_headers={"Prefer": 'outlook.timezone="UTC"'},
        )
        self._token = token
        self._ca_file = ca_file
        self._session: requests.Session | None = None

    def get_session(self, load_token: bool = False) -> requests.Session:
        session = _session(self._ca_file)
        retry = Retry(
            total=3,
            connect=1,
            read=1,
            status=3,
            backoff_factor=0.5,
            status_forcelist=RETRY_STATUS,
            allowed_methods=None,  # 429/503 mean "not processed": safe to repeat any method
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = requests.adapters.HTTPAdapter(max_retries=retry)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def oauth_request(self, url: str, method: str, **kwargs: Any) -> requests.Response:
        """Every request of the backend and of O365's objects: fresh token, JSON body, one
        retry layer (the session's), and an error answer raised as a MedError here, so O365
        code never mistakes it for an empty result. (O365's own request path would log each
        4xx with its URL, which carries addresses and search words; this one logs nothing.)
        """
        session = self._session
        if session is None:
            session = self._session = self.get_session()
        headers = {**self.default_headers, **(kwargs.pop("headers", None) or {})}
        headers["Authorization"] = f"Bearer {self._token()}"
        if method.lower() in ("post", "put", "patch") and kwargs.get("data") is not None:
            headers.setdefault("Content-Type", "application/json")
            kwargs["data"] = json.dumps(kwargs["data"])
        response = session.request(
            method.upper(), url, headers=headers, timeout=self.timeout, **kwargs
        )
        if response.status_code >= 400:
            raise translate(response)
        return response


def _protocol(base_url: str) -> MSGraphProtocol:
    """O365's Graph protocol pointed at `base_url` (the cloud, or a lab)."""

    class _Protocol(MSGraphProtocol):  # type: ignore[misc]
        _protocol_url = base_url.rstrip("/") + "/"

    return _Protocol(api_version="v1.0", default_resource="me", timezone="UTC")


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


class GraphBackend:
    """A `Backend` speaking Microsoft Graph for `user`, with tokens from `token()`.

    Args:
        base_url: the Graph host (`https://graph.microsoft.com` or a lab's base URL).
        user: the signed-in user's address.
        token: returns a valid access token (e.g. `OAuthSignIn.token`), called per request.
        ca_file: a CA to trust for `base_url` (a lab); the system's CAs otherwise.
    """

    name = "graph"
    capabilities = frozenset(
        {
            Feature.SEND_ON_BEHALF.value,
            Feature.MEETING_RESPONSES.value,
            Feature.SYNC.value,
            Feature.MASTER_CATEGORIES.value,
            Feature.RESOLVE_NAMES.value,
            Feature.MIME_EXPORT.value,
            Feature.PULL_NOTIFICATIONS.value,
            Feature.FREE_BUSY.value,
        }
    )

    #: Why the features missing from `capabilities` are missing (for `Unsupported`).
    unsupported_reasons = MappingProxyType(
        {
            Feature.PUBLIC_FOLDERS.value: NO_PUBLIC,
            Feature.ARCHIVE.value: NO_ARCHIVE,
            Feature.DELEGATES.value: NO_DELEGATES,
            Feature.FOLDER_PERMISSIONS.value: NO_PERMISSIONS,
            Feature.VOICEMAIL.value: NO_VOICEMAIL,
            Feature.STREAMING.value: NO_STREAMING,
        }
    )

    def __init__(
        self,
        *,
        base_url: str,
        user: str,
        token: Callable[[], str],
        ca_file: Path | None = None,
        timeout_s: float = 60.0,
        poll_interval_s: float = 10.0,
        notification_host: str | None = None,
        notification_url: str | None = None,
    ) -> None:
        self.user = user.lower()
        #: How often `subscribe` asks the server for changes (and, with change
        #: notifications, how long a quiet stream waits before a STATUS heartbeat).
        self.poll_interval_s = poll_interval_s
        #: Where `subscribe` listens for Graph change notifications (None: delta polling);
        #: `notification_url` is the listener's URL as the server reaches it, if not direct.
        self.notification_host = notification_host
        self.notification_url = notification_url
        self.base_url = base_url.rstrip("/")
        self.protocol = _protocol(self.base_url)
        self.con = _TokenConnection(token, ca_file, timeout_s)

    @classmethod
    def from_profile(
        cls,
        profile: Profile,
        *,
        password: str | None = None,
        token: Callable[[], str] | None = None,
    ) -> GraphBackend:
        """A backend for a Graph profile; `token` is the signed-in token source.

        `profile.server` is the Graph base URL (the Microsoft cloud or a lab). Sign-in is not
        the backend's business: the caller passes `token`, typically
        `med.auth.oauth.OAuthSignIn(...).token` bound to the profile's user.

        Raises:
            InvalidInput: a password was given, or no token source.
        """
        if password is not None:
            raise InvalidInput(
                "Graph profiles sign in with OAuth (device code or browser), not a password."
            )
        if token is None:
            raise InvalidInput(
                f"The Graph profile {profile.name!r} needs a signed-in token source: sign in"
                f" with `medbridge signin device -p {profile.name}` and open the session with"
                " its tokens (med.auth.oauth.OAuthSignIn)."
            )
        return cls(
            base_url=(profile.server or CLOUD_GRAPH),
            user=profile.user,
            token=token,
            ca_file=Path(profile.ca_bundle) if profile.ca_bundle else None,
            timeout_s=profile.timeout_s,
        )

    def close(self) -> None:
        self.con.close_session()

    # ------------------------------------------------------------------ plumbing

    def _url(self, mailbox: str | None, path: str) -> str:
        resource = "me" if mailbox is None else mailbox
        main = MailBox(con=self.con, protocol=self.protocol, main_resource=resource)
        return f"{main.build_url('')}{'/' if path else ''}{path}"

    @contextlib.contextmanager
    def _translated(self, mailbox: str | None = None) -> Iterator[None]:
        try:
            yield
        except MedError as err:
            if mailbox and err.mailbox is None:
                err.mailbox = mailbox
            raise
        except requests.exceptions.SSLError as exc:
            raise Unreachable(
                f"TLS verification of {self.base_url} failed; trust its CA (ca_bundle).",
                code="tls",
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise Unreachable(f"The Graph server {self.base_url} is unreachable.") from exc

    def _request(
        self,
        method: str,
        url: str,
        *,
        mailbox: str | None = None,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        kwargs: dict[str, Any] = {}
        if params:
            kwargs["params"] = dict(params)
        if data is not None:
            kwargs["data"] = data
        if headers:
            kwargs["headers"] = dict(headers)
        with self._translated(mailbox):
            response: requests.Response = self.con.oauth_request(url, method, **kwargs)
        return response

    def _json(self, method: str, mailbox: str | None, path: str, **kw: Any) -> Any:
        response = self._request(method, self._url(mailbox, path), mailbox=mailbox, **kw)
        return response.json() if response.content else None

    def _all(self, mailbox: str, path: str, params: Mapping[str, str] | None = None) -> list[Any]:
        """Every page of a collection, following absolute nextLinks."""
        data = self._json("get", mailbox, path, params=params)
        values = list(data.get("value", []))
        link = data.get("@odata.nextLink")
        while link:
            page = self._request("get", link, mailbox=mailbox).json()
            values += page.get("value", [])
            link = page.get("@odata.nextLink")
        return values

    # ------------------------------------------------------------------ mailboxes & folders

    def own_mailbox(self) -> Mailbox:
        me = self._json("get", None, "")
        address = str(me.get("mail") or self.user).lower()
        return Mailbox(address, str(me.get("displayName") or address), MailboxKind.OWN)

    def resolve_names(self, query: str) -> Sequence[Mailbox]:
        text = query.strip()
        if not text:
            raise InvalidInput("Type a name or an address to look up.")
        flt = f"startswith(displayName,{_odata_text(text)}) or startswith(mail,{_odata_text(text)})"
        url = f"{self.base_url}/v1.0/users"
        data = self._request("get", url, params={"$filter": flt, "$top": "25"}).json()
        found = []
        for u in data.get("value", []):
            address = str(u.get("mail") or "").lower()
            if address:
                kind = MailboxKind.OWN if address == self.user else MailboxKind.DELEGATED
                found.append(Mailbox(address, str(u.get("displayName") or address), kind))
        return found

    def archive_of(self, mailbox: Mailbox) -> Mailbox | None:
        raise Unsupported("archive", "graph", NO_ARCHIVE)

    def _mail_folder(
        self, mailbox: str, data: Mapping[str, Any], name: str | None = None
    ) -> Folder:
        parent = data.get("parentFolderId")
        return Folder(
            id=_make_id("M", mailbox, str(data["id"])),
            mailbox=mailbox,
            name=str(data.get("displayName") or ""),
            kind=FolderKind.MAIL,
            parent_id=_make_id("M", mailbox, str(parent)) if parent else None,
            distinguished=name,
            container_class="IPF.Note",
            total_count=data.get("totalItemCount"),
            unread_count=data.get("unreadItemCount"),
            child_folder_count=data.get("childFolderCount"),
        )

    def _calendar(self, mailbox: str, data: Mapping[str, Any], parent: str | None) -> Folder:
        return Folder(
            id=_make_id("C", mailbox, str(data["id"])),
            mailbox=mailbox,
            name=str(data.get("name") or ""),
            kind=FolderKind.CALENDAR,
            parent_id=parent,
            distinguished="calendar" if data.get("isDefaultCalendar") else None,
            container_class="IPF.Appointment",
        )

    def _contact_folder(self, mailbox: str, data: Mapping[str, Any], parent: str | None) -> Folder:
        return Folder(
            id=_make_id("P", mailbox, str(data["id"])),
            mailbox=mailbox,
            name=str(data.get("displayName") or ""),
            kind=FolderKind.CONTACTS,
            parent_id=parent,
            distinguished="contacts" if data.get("wellKnownName") == "contacts" else None,
            container_class="IPF.Contact",
        )

    def _task_list(self, mailbox: str, data: Mapping[str, Any], parent: str | None) -> Folder:
        default = data.get("wellknownListName") == "defaultList"
        return Folder(
            id=_make_id("T", mailbox, str(data["id"])),
            mailbox=mailbox,
            name=str(data.get("displayName") or ""),
            kind=FolderKind.TASKS,
            parent_id=parent,
            distinguished="tasks" if default else None,
            container_class="IPF.Task",
        )

    def _own_only(self, mailbox: str) -> None:
        if mailbox.lower() != self.user:
            raise Unsupported("tasks", "graph", NO_TASKS)

    def folder_tree(self, mailbox: Mailbox) -> FolderNode:
        if mailbox.kind == MailboxKind.PUBLIC:
            raise Unsupported("public_folders", "graph", NO_PUBLIC)
        if mailbox.kind is MailboxKind.ARCHIVE:
            raise Unsupported("archive", "graph", NO_ARCHIVE)
        address = mailbox.address
        root = self._mail_folder(
            address, self._json("get", address, "mailFolders/msgfolderroot"), "msgfolderroot"
        )
        # O365 walks the mail folder tree: one request per folder that has children.
        box = MailBox(con=self.con, protocol=self.protocol, main_resource=address)

        def walk(o365_folder: Any, parent_id: str) -> tuple[FolderNode, ...]:
            with self._translated(address):
                children = o365_folder.get_folders(limit=None)
            nodes = []
            for child in children:
                data = {
                    "id": child.folder_id,
                    "displayName": child.name,
                    "parentFolderId": child.parent_id,
                    "totalItemCount": child.total_items_count,
                    "unreadItemCount": child.unread_items_count,
                    "childFolderCount": child.child_folders_count,
                }
                folder = self._mail_folder(address, data)
                grand = walk(child, folder.id) if child.child_folders_count else ()
                nodes.append(FolderNode(folder, grand))
            return tuple(nodes)

        nodes = list(walk(box, root.id))
        names = self._well_known_mail_folders(address)
        nodes = [_named(node, names) for node in nodes]
        with contextlib.suppress(AccessDenied):
            for cal in self._json("get", address, "calendars").get("value", []):
                nodes.append(FolderNode(self._calendar(address, cal, root.id)))
        with contextlib.suppress(AccessDenied, NotFound):
            for cf in self._json("get", address, "contactFolders").get("value", []):
                nodes.append(FolderNode(self._contact_folder(address, cf, root.id)))
        if address == self.user:
            with contextlib.suppress(AccessDenied, NotFound):
                for tl in self._json("get", address, "todo/lists").get("value", []):
                    nodes.append(FolderNode(self._task_list(address, tl, root.id)))
        return FolderNode(root, tuple(nodes))

    def _well_known_mail_folders(self, mailbox: str) -> dict[str, str]:
        """Graph folder id -> well-known name, in one `$batch` (mail folders carry no name)."""
        wanted = sorted(MAIL_NAMES - {"msgfolderroot"})
        requests_ = [
            {
                "id": name,
                "method": "GET",
                "url": f"/users/{quote(mailbox)}/mailFolders/{name}?$select=id",
            }
            for name in wanted
        ]
        answer = self._request(
            "post", f"{self.base_url}/v1.0/$batch", mailbox=mailbox, data={"requests": requests_}
        ).json()
        return {
            str(r["body"]["id"]): str(r["id"])
            for r in answer.get("responses", [])
            if r.get("status") == 200 and isinstance(r.get("body"), dict) and "id" in r["body"]
        }

    def default_folder(self, mailbox: str, name: str) -> Folder:
        name = name.lower()
        mailbox = mailbox.lower()
        if name in UNSUPPORTED_FOLDERS:
            feature, sentence = UNSUPPORTED_FOLDERS[name]
            raise Unsupported(feature, "graph", sentence)
        if name in MAIL_NAMES:
            return self._mail_folder(
                mailbox, self._json("get", mailbox, f"mailFolders/{name}"), name
            )
        if name == "calendar":
            return self._calendar(mailbox, self._json("get", mailbox, "calendar"), None)
        if name == "contacts":
            return self._contact_folder(
                mailbox, self._json("get", mailbox, "contactFolders/contacts"), None
            )
        if name == "tasks":
            self._own_only(mailbox)
            for data in self._json("get", mailbox, "todo/lists").get("value", []):
                if data.get("wellknownListName") == "defaultList":
                    return self._task_list(mailbox, data, None)
            raise NotFound("The mailbox has no default task list.", mailbox=mailbox)
        raise InvalidInput(f"'{name}' is no well-known folder name.", mailbox=mailbox)

    def get_folder(self, folder_id: str) -> Folder:
        kind, mailbox, gid = _split_id(folder_id, "MCPT")
        if kind == "T":
            return self._task_list(mailbox, self._json("get", mailbox, f"todo/lists/{gid}"), None)
        if kind == "M":
            return self._mail_folder(mailbox, self._json("get", mailbox, f"mailFolders/{gid}"))
        if kind == "C":
            return self._calendar(mailbox, self._json("get", mailbox, f"calendars/{gid}"), None)
        return self._contact_folder(
            mailbox, self._json("get", mailbox, f"contactFolders/{gid}"), None
        )

    # ------------------------------------------------------------------ items

    def _filter(self, query: ItemQuery, kind: FolderKind) -> str | None:
        parts: list[str] = []
        if query.unread_only:
            parts.append("isRead eq false")
        if query.flagged_only:
            parts.append("flag/flagStatus eq 'flagged'")
        if query.importance is not None:
            parts.append(f"importance eq {_odata_text(query.importance.value)}")
        if query.category:
            parts.append(f"categories/any(c:c eq {_odata_text(query.category)})")
        if query.sender:
            parts.append(f"from/emailAddress/address eq {_odata_text(query.sender.lower())}")
        if query.has_attachments is not None:
            parts.append(f"hasAttachments eq {'true' if query.has_attachments else 'false'}")
        field = {
            FolderKind.CALENDAR: "start/dateTime",
            FolderKind.TASKS: "dueDateTime/dateTime",
        }.get(kind, "receivedDateTime")
        if query.start is not None:
            parts.append(f"{field} ge {query.start.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}")
        if query.end is not None:
            parts.append(f"{field} lt {query.end.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}")
        if query.search and kind != FolderKind.MAIL:
            title = "title" if kind == FolderKind.TASKS else "subject"
            parts.append(f"contains({title},{_odata_text(query.search)})")
        return " and ".join(parts) or None

    def find_items(self, folder: Folder, query: ItemQuery) -> Page[Item]:
        kind, mailbox, gid = _split_id(folder.id, "MCPT")
        params: dict[str, str] = {
            "$top": str(query.limit),
            "$skip": str(query.offset),
            "$count": "true",
        }
        flt = self._filter(query, folder.kind)
        if flt:
            params["$filter"] = flt
        if kind == "M":
            path = f"mailFolders/{gid}/messages"
            params["$select"] = SUMMARY_FIELDS + ",meetingMessageType"
            params["$expand"] = MESSAGE_EXPAND
            default_sort = "received"
        elif kind == "C":
            path = f"calendars/{gid}/events"
            default_sort = "start"
        elif kind == "T":
            path = f"todo/lists/{gid}/tasks"
            default_sort = "due"
        else:
            path = f"contactFolders/{gid}/contacts"
            default_sort = "name"
        sort = (TASK_SORT_FIELDS if kind == "T" else SORT_FIELDS).get(query.sort or default_sort)
        if kind == "M" and query.search:
            # Mail search is Graph's $search (subject, body, people), which takes no $orderby:
            # results come newest first.
            params["$search"] = '"' + query.search.replace('"', "") + '"'
        elif sort:
            params["$orderby"] = f"{sort} {'desc' if query.descending else 'asc'}"
        data = self._json("get", mailbox, path, params=params)
        items: list[Item] = []
        for value in data.get("value", []):
            if kind == "M":
                items.append(_message(value, mailbox))
            elif kind == "C":
                items.append(_event(value, mailbox, folder.id))
            elif kind == "T":
                items.append(_task(value, mailbox, gid))
            else:
                items.append(_contact(value, mailbox))
        return Page(tuple(items), query.offset, data.get("@odata.count"), "@odata.nextLink" in data)

    def calendar_view(self, folder: Folder, start: datetime, end: datetime) -> Sequence[Event]:
        if end <= start:
            raise InvalidInput("The end of the calendar range must be after its start.")
        _, mailbox, gid = _split_id(folder.id, "C")
        params = {
            "startDateTime": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endDateTime": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "$top": "500",
        }
        values = self._all(mailbox, f"calendars/{gid}/calendarView", params)
        return [_event(v, mailbox, folder.id) for v in values]

    def _item_path(self, item_id: str) -> tuple[str, str, str]:
        kind, mailbox, gid = _split_id(item_id, "mect")
        if kind == "t":
            list_id, _, task_id = gid.partition("/")
            return kind, mailbox, f"todo/lists/{list_id}/tasks/{task_id}"
        collection = {"m": "messages", "e": "events", "c": "contacts"}[kind]
        return kind, mailbox, f"{collection}/{gid}"

    def _to_item(self, item_id: str, data: Mapping[str, Any]) -> Item:
        kind, mailbox, gid = _split_id(item_id, "mect")
        if kind == "m":
            return self._with_attachments(_message(data, mailbox), mailbox)
        if kind == "e":
            return _event(data, mailbox, None)
        if kind == "t":
            return _task(data, mailbox, gid.partition("/")[0])  # a todoTask names no list
        return _contact(data, mailbox)

    def _with_attachments(self, message: Message, mailbox: str) -> Message:
        if not message.has_attachments:
            return message
        _, _, path = self._item_path(message.id)
        values = self._all(mailbox, f"{path}/attachments")
        return replace(message, attachments=tuple(_attachment(v, message.id) for v in values))

    def get_items(self, item_ids: Sequence[str]) -> Sequence[Item]:
        """Full items; several ids go in one `$batch` round trip (20 per batch)."""
        if len(item_ids) == 1:
            kind, mailbox, path = self._item_path(item_ids[0])
            params = {"$expand": MESSAGE_EXPAND} if kind == "m" else None
            data = self._json("get", mailbox, path, params=params)
            return [self._to_item(item_ids[0], data)]
        out: list[Item] = []
        for start in range(0, len(item_ids), 20):
            chunk = item_ids[start : start + 20]
            requests_ = []
            for i, item_id in enumerate(chunk):
                kind, mailbox, path = self._item_path(item_id)
                requests_.append(
                    {"id": str(i), "method": "GET", "url": f"/users/{quote(mailbox)}/{path}"}
                )
            answer = self._request(
                "post", f"{self.base_url}/v1.0/$batch", data={"requests": requests_}
            ).json()
            by_id = {r["id"]: r for r in answer.get("responses", [])}
            for i, item_id in enumerate(chunk):
                part = by_id.get(str(i)) or {}
                if part.get("status") != 200:
                    fake = requests.Response()
                    fake.status_code = int(part.get("status") or 500)
                    fake._content = json.dumps(part.get("body") or {}).encode()
                    fake.headers.update(part.get("headers") or {})
                    raise translate(fake, mailbox=_split_id(item_id, "mect")[1])
                kind, mailbox, _ = self._item_path(item_id)
                out.append(self._to_item(item_id, part["body"]))
        return out

    def series_master(self, item_id: str) -> Event:
        kind, mailbox, path = self._item_path(item_id)
        if kind != "e":
            raise NotFound("Only events belong to a series.", item=item_id)
        data = self._json("get", mailbox, path)
        master = data.get("seriesMasterId")
        if data.get("type") == "seriesMaster":
            return _event(data, mailbox, None)
        if not master:
            raise NotFound("This event is not part of a series.", item=item_id)
        return _event(self._json("get", mailbox, f"events/{master}"), mailbox, None)

    def create_item(self, folder: Folder, item: Item, *, send_invitations: bool) -> Item:
        kind, mailbox, gid = _split_id(folder.id, "MCPT")
        if isinstance(item, Message) and kind == "M":
            data = self._json(
                "post", mailbox, f"mailFolders/{gid}/messages", data=_message_out(item)
            )
            created: Item = _message(data, mailbox)
            self._add_attachments(created.id, item)
            return created
        if isinstance(item, Event) and kind == "C":
            data = self._json("post", mailbox, f"calendars/{gid}/events", data=_event_out(item))
            return _event(data, mailbox, folder.id)
        if isinstance(item, Contact) and kind == "P":
            data = self._json(
                "post", mailbox, f"contactFolders/{gid}/contacts", data=_contact_out(item)
            )
            return _contact(data, mailbox)
        if isinstance(item, Task) and kind == "T":
            self._own_only(mailbox)
            data = self._json("post", mailbox, f"todo/lists/{gid}/tasks", data=_task_out(item))
            return _task(data, mailbox, gid)
        if item.kind.value in ("task", "note", "voicemail"):
            feature = {"task": "tasks", "note": "notes", "voicemail": "voicemail"}[item.kind.value]
            sentence = {"tasks": NO_TASKS, "notes": NO_NOTES, "voicemail": NO_VOICEMAIL}[feature]
            raise Unsupported(feature, "graph", sentence)
        raise InvalidInput(
            f"A {item.kind.value} cannot be created in the folder {folder.name}.",
            folder=folder.name,
        )

    def _add_attachments(self, item_id: str, item: Item) -> None:
        _, mailbox, path = self._item_path(item_id)
        for att in item.new_attachments:
            self._json(
                "post",
                mailbox,
                f"{path}/attachments",
                data={
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": att.name,
                    "contentType": att.content_type,
                    "contentBytes": base64.b64encode(att.content).decode("ascii"),
                    "isInline": att.is_inline,
                    "contentId": att.content_id,
                },
            )

    def update_item(self, item: Item, fields: Sequence[str], *, send_updates: bool) -> Item:
        _, mailbox, path = self._item_path(item.id)
        if isinstance(item, Message):
            body = _message_out(item, fields)
        elif isinstance(item, Event):
            body = _event_out(item, fields)
        elif isinstance(item, Contact):
            body = _contact_out(item)
        elif isinstance(item, Task):
            body = _task_out(item, fields)
        else:
            raise InvalidInput(f"A {item.kind.value} cannot be changed over Graph.", item=item.id)
        data = self._json("patch", mailbox, path, data=body)
        if item.new_attachments:
            self._add_attachments(item.id, item)
        return self._to_item(item.id, data)

    def delete_item(self, item_id: str, *, hard: bool, send_cancellations: bool) -> None:
        """Messages go to Deleted Items unless `hard` (permanentDelete); Graph sends the
        cancellation of a meeting the user organizes whatever `send_cancellations` says."""
        kind, mailbox, path = self._item_path(item_id)
        if hard and kind == "m":
            self._json("post", mailbox, f"{path}/permanentDelete")
        else:
            self._json("delete", mailbox, path)

    def _move_or_copy(self, action: str, item_id: str, folder: Folder) -> str:
        kind, mailbox, path = self._item_path(item_id)
        fkind, fmailbox, gid = _split_id(folder.id, "MCPT")
        if kind != "m" or fkind != "M":
            raise InvalidInput(
                "Only messages can be moved or copied between mail folders over Graph."
            )
        if fmailbox != mailbox:
            raise InvalidInput("Graph moves messages within one mailbox only.", mailbox=fmailbox)
        data = self._json("post", mailbox, f"{path}/{action}", data={"destinationId": gid})
        return _make_id("m", mailbox, str(data["id"]))

    def move_item(self, item_id: str, folder: Folder) -> str:
        return self._move_or_copy("move", item_id, folder)

    def copy_item(self, item_id: str, folder: Folder) -> str:
        return self._move_or_copy("copy", item_id, folder)

    def attachment(self, attachment_id: str) -> AttachmentContent:
        _, mailbox, rest = _split_id(attachment_id, "a")
        kind, _, tail = rest.partition("/")
        graph_item, _, graph_att = tail.partition("/")
        item_id = _make_id(kind, mailbox, graph_item)
        _, _, path = self._item_path(item_id)
        data = self._json("get", mailbox, f"{path}/attachments/{graph_att}")
        content = base64.b64decode(str(data.get("contentBytes") or ""))
        return AttachmentContent(_attachment(data, item_id), content)

    def export_mime(self, item_id: str) -> bytes:
        kind, mailbox, path = self._item_path(item_id)
        if kind != "m":
            raise Unsupported("mime_export", "graph", "Graph exports only messages as MIME.")
        return self._request("get", self._url(mailbox, f"{path}/$value"), mailbox=mailbox).content

    def master_categories(self, mailbox: str) -> Sequence[str]:
        values = self._json("get", mailbox, "outlook/masterCategories").get("value", [])
        return [str(v.get("displayName")) for v in values]

    # ------------------------------------------------------------------ sending & meetings

    def send(self, message: Message, options: SendOptions) -> None:
        owner = (options.from_mailbox or self.user).lower()
        body = _message_out(message)
        body.pop("isRead", None)
        if message.new_attachments:
            body["attachments"] = [
                {
                    "@odata.type": "#microsoft.graph.fileAttachment",
                    "name": a.name,
                    "contentType": a.content_type,
                    "contentBytes": base64.b64encode(a.content).decode("ascii"),
                    "isInline": a.is_inline,
                }
                for a in message.new_attachments
            ]
        if not (message.to or message.cc or message.bcc):
            raise InvalidInput("A message needs at least one recipient.")
        self._json(
            "post", owner, "sendMail", data={"message": body, "saveToSentItems": options.save_copy}
        )

    def save_draft(self, message: Message, options: SendOptions) -> Message:
        owner = (options.from_mailbox or self.user).lower()
        body = _message_out(message)
        if options.from_mailbox:
            body["from"] = {"emailAddress": {"address": owner}}
        data = self._json("post", owner, "messages", data=body)
        created = _message(data, owner)
        self._add_attachments(created.id, message)
        return created

    def reply(self, item_id: str, body: str, *, reply_all: bool, options: SendOptions) -> None:
        kind, mailbox, path = self._item_path(item_id)
        if kind != "m":
            raise InvalidInput("Only messages can be answered.", item=item_id)
        if (options.from_mailbox or self.user).lower() == mailbox:
            # Graph answers from the mailbox the message is in (on behalf for a delegate).
            action = "replyAll" if reply_all else "reply"
            self._json("post", mailbox, f"{path}/{action}", data={"comment": body})
            return
        # Answering from another mailbox than the message's: compose the reply ourselves.
        original = self.get_items([item_id])[0]
        if not isinstance(original, Message):
            raise InvalidInput("Only messages can be answered.", item=item_id)
        me = (options.from_mailbox or self.user).lower()
        to = [original.from_] if original.from_ else []
        cc: list[Address] = []
        if reply_all:
            to += [a for a in original.to if a.email != me]
            cc = [a for a in original.cc if a.email != me]
        subject = original.subject
        if not subject.lower().startswith(("re:", "aw:")):
            subject = f"AW: {subject}"
        quoted = "\n".join("> " + line for line in (original.body or "").splitlines())
        self.send(
            Message(subject=subject, body=f"{body}\n\n{quoted}", to=tuple(to), cc=tuple(cc)),
            options,
        )

    def forward(
        self, item_id: str, to: Sequence[Address], body: str, *, options: SendOptions
    ) -> None:
        if not to:
            raise InvalidInput("Forwarding needs at least one recipient.")
        kind, mailbox, path = self._item_path(item_id)
        if kind != "m":
            raise InvalidInput("Only messages can be forwarded.", item=item_id)
        if (options.from_mailbox or self.user).lower() != mailbox:
            raise InvalidInput(
                "Graph forwards a message from the mailbox it is in; choose that mailbox.",
                mailbox=mailbox,
            )
        data = {"comment": body, "toRecipients": [_recipient(a) for a in to]}
        self._json("post", mailbox, f"{path}/forward", data=data)

    def respond(
        self, item_id: str, response: ResponseType, message: str | None, *, send: bool
    ) -> None:
        actions = {
            ResponseType.ACCEPT: "accept",
            ResponseType.TENTATIVE: "tentativelyAccept",
            ResponseType.DECLINE: "decline",
        }
        if response not in actions:
            raise InvalidInput("Answer a meeting with accept, tentative or decline.")
        kind, mailbox, path = self._item_path(item_id)
        if kind == "m":
            # A meeting request message: answer its event (Graph's eventMessage/event).
            data = self._json(
                "get", mailbox, path, params={"$expand": "microsoft.graph.eventMessage/event"}
            )
            event = data.get("event") or {}
            if not event.get("id"):
                raise InvalidInput("The message is no meeting request.", item=item_id)
            path = f"events/{event['id']}"
        body: dict[str, Any] = {"sendResponse": send}
        if message:
            body["comment"] = message
        self._json("post", mailbox, f"{path}/{actions[response]}", data=body)

    def free_busy(
        self, addresses: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[FreeBusy]:
        """Graph's getSchedule: one request for everyone; a person without data gets `error`."""
        if end <= start:
            raise InvalidInput("The end of the free/busy range must be after its start.")
        if not addresses:
            return []
        body = {
            "schedules": list(addresses),
            "startTime": _dttz(start),
            "endTime": _dttz(end),
            "availabilityViewInterval": 30,
        }
        data = self._json("post", None, "calendar/getSchedule", data=body)
        by_id = {str(v.get("scheduleId", "")).lower(): v for v in data.get("value", [])}
        out = []
        for address in addresses:
            info = by_id.get(address.lower())
            if info is None or info.get("error"):
                error = (info or {}).get("error") or {}
                out.append(FreeBusy(address, (), str(error.get("message") or "No data.")))
                continue
            slots = tuple(
                BusySlot(
                    _dt(i.get("start")) or start,
                    _dt(i.get("end")) or end,
                    SHOW_AS.get(str(i.get("status")), BusyStatus.BUSY),
                    i.get("subject"),
                    i.get("location"),
                )
                for i in info.get("scheduleItems") or ()
            )
            out.append(FreeBusy(address, slots))
        return out

    # ------------------------------------------------------------------ permissions

    def permissions(self, folder: Folder) -> Sequence[Permission]:
        raise Unsupported("folder_permissions", "graph", NO_PERMISSIONS)

    def set_permissions(self, folder: Folder, permissions: Sequence[Permission]) -> None:
        raise Unsupported("folder_permissions", "graph", NO_PERMISSIONS)

    def delegates(self, mailbox: str) -> tuple[Sequence[Delegate], MeetingDelivery]:
        raise Unsupported("delegates", "graph", NO_DELEGATES)

    # ------------------------------------------------------------------ sync & notifications

    def sync_items(
        self, folder: Folder, state: str | None, max_changes: int
    ) -> tuple[Sequence[SyncChange], str, bool]:
        """One delta round of a mail folder: the state is Graph's next or delta link."""
        kind, mailbox, gid = _split_id(folder.id, "MCPT")
        if kind != "M":
            raise Unsupported(
                "sync", "graph", "Graph delta sync is implemented for mail folders only."
            )
        headers = {"Prefer": f"odata.maxpagesize={max(1, min(max_changes, 1000))}"}
        if state:
            if not state.startswith(self.base_url + "/"):
                raise InvalidInput(
                    "The sync state is not valid for this server; start over.", folder=folder.name
                )
            data = self._request("get", state, mailbox=mailbox, headers=headers).json()
        else:
            data = self._json("get", mailbox, f"mailFolders/{gid}/messages/delta", headers=headers)
        changes: list[SyncChange] = []
        for value in data.get("value", []):
            item_id = _make_id("m", mailbox, str(value["id"]))
            if "@removed" in value:
                changes.append(SyncChange(SyncChangeKind.DELETED, item_id))
            else:
                message = _message(value, mailbox)
                # Delta does not say new or changed; an item not modified since it was
                # created is new.
                new = not state or message.created == message.last_modified
                kind_ = SyncChangeKind.CREATED if new else SyncChangeKind.UPDATED
                changes.append(SyncChange(kind_, item_id, message))
        link = data.get("@odata.nextLink") or data.get("@odata.deltaLink")
        if not link:
            raise ServerError("The server answered a delta query without a next or delta link.")
        return changes, str(link), "@odata.deltaLink" in data

    def subscribe(self, folders: Sequence[Folder]) -> Watch:
        """Change notifications where the server reaches our listener, delta polling otherwise.

        With `notification_host` set, a listener is started there and a Graph subscription
        (notificationUrl, clientState) made per folder; if the server cannot complete the
        validation handshake (the listener is not reachable from it), the mail folders are
        polled instead: a delta round per folder every `poll_interval_s`. A quiet interval
        yields a STATUS heartbeat either way; a server that cannot be reached is reported
        (OFFLINE) and asked again until it answers (RESUBSCRIBED).
        """
        if self.notification_host is not None:
            try:
                return self._push(folders)
            except (InvalidInput, ServerError, Unreachable):
                pass  # no handshake: the server cannot reach the listener; poll instead
        watched = []
        for folder in folders:
            kind, _, _ = _split_id(folder.id, "MCPT")
            if kind != "M":
                raise Unsupported("notifications", "graph", NO_STREAMING)
            watched.append(folder)
        return Watch(lambda watch: self._poll(watch, watched))

    def _subscription_body(self, folder: Folder, listener: NotificationListener) -> dict[str, Any]:
        kind, mailbox, gid = _split_id(folder.id, "MCPT")
        if kind not in "MC":
            raise Unsupported("notifications", "graph", NO_PUSH)
        what = "mailFolders('{}')/messages" if kind == "M" else "calendars('{}')/events"
        return {
            "changeType": "created,updated,deleted",
            "notificationUrl": listener.url,
            "resource": f"users/{mailbox}/{what.format(gid)}",
            "expirationDateTime": (datetime.now(UTC) + SUBSCRIPTION_LIFETIME).isoformat(),
            "clientState": listener.client_state,
        }

    def _push(self, folders: Sequence[Folder]) -> Watch:
        """Subscriptions for all folders now (so that a refusal can fall back), then events."""
        assert self.notification_host is not None
        listener = NotificationListener(self.notification_host, public_url=self.notification_url)
        made: dict[str, Folder] = {}
        try:
            for folder in folders:
                body = self._subscription_body(folder, listener)
                answer = self._request(
                    "post",
                    f"{self.base_url}/v1.0/subscriptions",
                    mailbox=folder.mailbox,
                    data=body,
                ).json()
                made[str(answer["id"])] = folder
        except BaseException:
            self._unsubscribe(made)
            listener.close()
            raise
        return Watch(lambda watch: self._notified(watch, listener, made))

    def _unsubscribe(self, subscriptions: Mapping[str, Folder]) -> None:
        for sub_id in subscriptions:
            with contextlib.suppress(MedError):
                self._request("delete", f"{self.base_url}/v1.0/subscriptions/{quote(sub_id)}")

    def _notified(
        self, watch: Watch, listener: NotificationListener, subscriptions: dict[str, Folder]
    ) -> Generator[MailboxEvent]:
        renew_at = time.monotonic() + (SUBSCRIPTION_LIFETIME / 2).total_seconds()
        offline = False
        try:
            while not watch.cancelled:
                if time.monotonic() >= renew_at:
                    try:
                        self._renew(subscriptions)
                    except Unreachable:
                        if not offline:
                            offline = True
                            yield MailboxEvent(MailboxEventKind.OFFLINE)
                        renew_at = time.monotonic() + RECONNECT_DELAY_S
                        continue
                    renew_at = time.monotonic() + (SUBSCRIPTION_LIFETIME / 2).total_seconds()
                    if offline:
                        offline = False
                        yield MailboxEvent(MailboxEventKind.RESUBSCRIBED)
                try:
                    # `cancel` wakes the wait with an empty notification.
                    with watch.abortable(lambda: listener.notifications.put({})):
                        note = listener.notifications.get(
                            timeout=max(0.0, min(self.poll_interval_s, renew_at - time.monotonic()))
                        )
                except queue.Empty:
                    yield MailboxEvent(MailboxEventKind.STATUS, timestamp=datetime.now(UTC))
                    continue
                folder = subscriptions.get(str(note.get("subscriptionId")))
                data = note.get("resourceData")
                kind = PUSH_EVENTS.get(str(note.get("changeType")))
                if folder is None or kind is None or not isinstance(data, Mapping):
                    continue
                mail = folder.kind is FolderKind.MAIL
                if mail and kind is MailboxEventKind.CREATED:
                    kind = MailboxEventKind.NEW_MAIL
                yield MailboxEvent(
                    kind,
                    folder_id=folder.id,
                    item_id=_make_id("m" if mail else "e", folder.mailbox, str(data.get("id"))),
                    timestamp=datetime.now(UTC),
                )
        finally:
            self._unsubscribe(subscriptions)
            listener.close()

    def _renew(self, subscriptions: Mapping[str, Folder]) -> None:
        expires = (datetime.now(UTC) + SUBSCRIPTION_LIFETIME).isoformat()
        for sub_id in subscriptions:
            self._request(
                "patch",
                f"{self.base_url}/v1.0/subscriptions/{quote(sub_id)}",
                data={"expirationDateTime": expires},
            )

    def _poll(self, watch: Watch, folders: list[Folder]) -> Generator[MailboxEvent]:
        """Delta rounds: the first learns each folder's state, later ones report changes."""
        states: dict[str, str] = {}
        away = 0  # rounds in a row the server could not be reached
        first = True
        while not watch.cancelled:
            if not first and watch.wait(RECONNECT_DELAY_S if away else self.poll_interval_s):
                return
            first = False
            events: list[MailboxEvent] = []
            try:
                for folder in folders:
                    state = states.get(folder.id)
                    done = False
                    while not done:
                        changes, state, done = self.sync_items(folder, state, 1000)
                        if folder.id in states:  # the first round only learns the state
                            events.extend(
                                MailboxEvent(
                                    EVENT_OF_CHANGE[change.kind],
                                    folder_id=folder.id,
                                    item_id=change.item_id,
                                    timestamp=datetime.now(UTC),
                                )
                                for change in changes
                            )
                    assert state is not None
                    states[folder.id] = state
            except Unreachable:
                if not away:
                    yield MailboxEvent(MailboxEventKind.OFFLINE)
                away += 1
                continue
            if away:
                away = 0
                yield MailboxEvent(MailboxEventKind.RESUBSCRIBED)
            yield from events
            if not events:
                yield MailboxEvent(MailboxEventKind.STATUS, timestamp=datetime.now(UTC))
