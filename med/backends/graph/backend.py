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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import requests
from O365.mailbox import MailBox

from med.auth import login
from med.backends.answers import proxy_error_is_407, proxy_refused
from med.backends.base import Watch, one_by_one
from med.backends.graph import events
from med.backends.graph.connection import _protocol, _TokenConnection
from med.backends.graph.convert import (
    _attachment,
    _contact,
    _contact_out,
    _event,
    _event_out,
    _make_id,
    _message,
    _message_out,
    _named,
    _odata_text,
    _recipient,
    _split_id,
    _task,
    _task_out,
)
from med.backends.graph.errors import translate
from med.backends.graph.events import NO_STREAMING
from med.backends.graph.scheduling import GraphScheduling
from med.backends.graph.settings import GraphSettings
from med.errors import (
    AccessDenied,
    InvalidInput,
    MedError,
    NotFound,
    ServerError,
    Unreachable,
    Unsupported,
)
from med.model import (
    MAIL_FOLDERS,
    Address,
    AttachmentContent,
    Contact,
    Delegate,
    Event,
    Feature,
    Folder,
    FolderKind,
    FolderNode,
    FreeBusy,
    Item,
    ItemQuery,
    Mailbox,
    MailboxKind,
    MeetingDelivery,
    Message,
    Page,
    Permission,
    Profile,
    ResponseType,
    SendOptions,
    SyncChange,
    SyncChangeKind,
    Task,
    WellKnownFolder,
)

__all__ = ["GraphBackend"]

CLOUD_GRAPH = "https://graph.microsoft.com"

NO_ARCHIVE = "Microsoft Graph has no API for online archive mailboxes; use the EWS backend."

NO_PUBLIC = "Microsoft Graph has no API for public folders; use the EWS backend."

NO_DELEGATES = "Microsoft Graph cannot list a mailbox's delegates; use the EWS backend."

NO_PERMISSIONS = (
    "Microsoft Graph cannot read or change mail folder permissions; use the EWS backend."
)

NO_NOTES = "Microsoft Graph has no API for Outlook notes; use the EWS backend."

NO_VOICEMAIL = "Microsoft Graph does not expose voicemail folders; use the EWS backend."

#: The window a calendar's delta sync covers, around the moment its sync started.
CALENDAR_SYNC_BACK = timedelta(days=1)
CALENDAR_SYNC_AHEAD = timedelta(days=730)

NO_TASKS = (
    "Over Graph, tasks are Microsoft To Do lists, which only their owner reaches; another"
    " person's tasks need the EWS backend."
)

MAIL_NAMES = MAIL_FOLDERS | {WellKnownFolder.MSG_FOLDER_ROOT}

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


class GraphBackend(GraphSettings, GraphScheduling):
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
        app_only: bool = False,
    ) -> None:
        self.user = user.lower()
        #: Signed in as an app (client credentials): its application permissions reach every
        #: user's To Do lists (Tasks.ReadWrite.All), where a user reaches only their own.
        self.app_only = app_only
        #: How often `subscribe` asks the server for changes (and, with change
        #: notifications, how long a quiet stream waits before a STATUS heartbeat).
        self.poll_interval_s = poll_interval_s
        #: Where `subscribe` listens for Graph change notifications (None: delta polling);
        #: `notification_url` is the listener's URL as the server reaches it, if not direct.
        self.notification_host = notification_host
        self.notification_url = notification_url
        self.base_url = base_url.rstrip("/")
        #: The address in errors about reaching the server.
        self.url = self.base_url
        self.protocol = _protocol(self.base_url)
        self.con = _TokenConnection(token, ca_file, timeout_s)

    @classmethod
    def from_profile(
        cls,
        profile: Profile,
        *,
        password: str | None = None,
        token: Callable[[], str] | None = None,
        token_cache: Path | None = None,
    ) -> GraphBackend:
        """A backend for a Graph profile, signed in with OAuth.

        `profile.server` is the Graph base URL (the Microsoft cloud or a lab). Tokens come from
        `token` when given, else from MSAL's cache in `token_cache` (where `medbridge signin`
        put them; None keeps tokens in memory only, so nobody is signed in).

        Raises:
            InvalidInput: the profile's method is not OAuth, or a password was given.
        """
        if token is None or password is not None:  # a password is refused by the sign-in
            token = login(profile, password=password, token_cache=token_cache).token
            assert token is not None  # every method the graph backend takes has one
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
            if proxy_error_is_407(exc):
                raise proxy_refused(mailbox=mailbox) from exc
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
            total_count=int(data.get("totalItemCount") or 0),
            unread_count=int(data.get("unreadItemCount") or 0),
            child_folder_count=int(data.get("childFolderCount") or 0),
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
        if mailbox.lower() != self.user and not self.app_only:
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
        if address == self.user or self.app_only:
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

    def update_items(
        self, items: Sequence[Item], fields: Sequence[str], *, send_updates: bool
    ) -> Sequence[Item | MedError]:
        # One PATCH per item; Graph's $batch (20 per request) would cut the round trips.
        return one_by_one(
            lambda item: self.update_item(item, fields, send_updates=send_updates), items
        )

    def move_items(self, item_ids: Sequence[str], folder: Folder) -> Sequence[str | MedError]:
        return one_by_one(lambda item_id: self.move_item(item_id, folder), item_ids)

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
        self,
        item_id: str,
        response: ResponseType,
        message: str | None,
        *,
        send: bool,
        proposal: tuple[datetime, datetime] | None = None,
        change_key: str | None = None,  # Graph addresses items by id alone
    ) -> None:
        if proposal is not None:
            raise Unsupported(
                "proposing a new time",
                "graph",
                "medbridge's Graph connection cannot propose a new time yet; connect over EWS "
                "(Exchange 2013 or later) to propose one.",
            )
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
        found = self.availability(addresses, start, end)
        return [FreeBusy(a.address, a.slots, a.error) for a in found]

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
        """One delta round of a mail folder, calendar or To Do list: the state is Graph's next
        or delta link. A calendar's delta covers a window fixed when its sync starts (Graph's
        calendarView/delta needs one; `CALENDAR_SYNC_BACK` to `CALENDAR_SYNC_AHEAD` around
        then), and reports a changed series once, by its master."""
        kind, mailbox, gid = _split_id(folder.id, "MCPT")
        if kind not in ("M", "C", "T"):
            raise Unsupported(
                "sync",
                "graph",
                "Graph delta sync is implemented for mail folders, calendars and To Do lists.",
            )
        if kind == "T":
            self._own_only(mailbox)
        headers = {"Prefer": f"odata.maxpagesize={max(1, min(max_changes, 1000))}"}
        if state:
            if not state.startswith(self.base_url + "/"):
                raise InvalidInput(
                    "The sync state is not valid for this server; start over.", folder=folder.name
                )
            data = self._request("get", state, mailbox=mailbox, headers=headers).json()
        elif kind == "C":
            now = datetime.now(UTC)
            window = {
                "startDateTime": (now - CALENDAR_SYNC_BACK).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endDateTime": (now + CALENDAR_SYNC_AHEAD).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            data = self._json(
                "get",
                mailbox,
                f"calendars/{gid}/calendarView/delta",
                params=window,
                headers=headers,
            )
        elif kind == "T":
            data = self._json("get", mailbox, f"todo/lists/{gid}/tasks/delta", headers=headers)
        else:
            data = self._json("get", mailbox, f"mailFolders/{gid}/messages/delta", headers=headers)
        if kind == "C":
            return (
                *self._calendar_changes(data, mailbox, folder, bool(state)),
                "@odata.deltaLink" in data,
            )
        changes: list[SyncChange] = []
        for value in data.get("value", []):
            item: Item
            if kind == "T":
                item_id = _make_id("t", mailbox, f"{gid}/{value['id']}")
            else:
                item_id = _make_id("m", mailbox, str(value["id"]))
            if "@removed" in value:
                changes.append(SyncChange(SyncChangeKind.DELETED, item_id))
                continue
            item = _task(value, mailbox, gid) if kind == "T" else _message(value, mailbox)
            # Delta does not say new or changed; an item not modified since it was created
            # is new.
            new = not state or item.created == item.last_modified
            kind_ = SyncChangeKind.CREATED if new else SyncChangeKind.UPDATED
            changes.append(SyncChange(kind_, item_id, item))
        link = data.get("@odata.nextLink") or data.get("@odata.deltaLink")
        if not link:
            raise ServerError("The server answered a delta query without a next or delta link.")
        return changes, str(link), "@odata.deltaLink" in data

    def _calendar_changes(
        self, data: Mapping[str, Any], mailbox: str, folder: Folder, resumed: bool
    ) -> tuple[list[SyncChange], str]:
        """A calendarView/delta page as changes: occurrences of a series become one change of
        its master (a new weekly meeting is one new item, not one per week)."""
        changes: list[SyncChange] = []
        seen: set[str] = set()
        for value in data.get("value", []):
            if "@removed" in value:
                item_id = _make_id("e", mailbox, str(value["id"]))
                if item_id not in seen:
                    seen.add(item_id)
                    changes.append(SyncChange(SyncChangeKind.DELETED, item_id))
                continue
            event = _event(value, mailbox, folder.id)
            item_id = event.series_id or event.id
            if item_id in seen:
                continue
            seen.add(item_id)
            new = not resumed or event.created == event.last_modified
            kind_ = SyncChangeKind.CREATED if new else SyncChangeKind.UPDATED
            changes.append(SyncChange(kind_, item_id, None if event.series_id else event))
        link = data.get("@odata.nextLink") or data.get("@odata.deltaLink")
        if not link:
            raise ServerError("The server answered a delta query without a next or delta link.")
        return changes, str(link)

    def subscribe(self, folders: Sequence[Folder]) -> Watch:
        """Change notifications where the server reaches our listener, delta polling otherwise.

        With `notification_host` set, a listener is started there and a Graph subscription
        (notificationUrl, clientState) made per folder; if the server cannot complete the
        validation handshake (the listener is not reachable from it), the mail folders are
        polled instead: a delta round per folder every `poll_interval_s`. A quiet interval
        yields a STATUS heartbeat either way; a server that cannot be reached is reported
        (OFFLINE) and asked again until it answers (RESUBSCRIBED).
        """
        return events.subscribe(self, folders)
