"""The lab's Graph REST face: `/v1.0/me/...` and `/v1.0/users/{id}/...` over the lab's store.

The same items and the same access rules as the EWS face: item semantics (sending, meeting
invitations and responses, occurrences, rights checks) are the EWS face's own functions in
`med.lab.ews.items`, called with the Graph caller as the acting user, so that both faces of
the lab behave alike. This module translates between Graph's resources and those functions.

Every request: outage (503 + Retry-After), injected latency, bearer token (401 with Graph's
error body), delegated scope or app role (403), throttling budget (429 + Retry-After), then
the work in one store transaction (a failing request changes nothing).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit
from xml.etree.ElementTree import Element, SubElement

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from med.lab import items as store_items
from med.lab.ews import items as ews_items
from med.lab.ews import itemxml
from med.lab.ews.ids import decode_id, encode_id
from med.lab.ews.soap import EwsContext, EwsError, t
from med.lab.graph import odata
from med.lab.graph.convert import (
    GraphInputError,
    attachment_out,
    contact_in,
    contact_out,
    event_in,
    event_out,
    ews_id,
    graph_id,
    message_in,
    message_out,
    utc_text,
    zone,
)
from med.lab.graph.tokens import Principal, TokenInvalid, stable_uuid
from med.lab.mime import to_mime
from med.lab.store import Folder

if TYPE_CHECKING:
    from med.lab.graph.app import GraphFace
    from med.lab.lab import Lab

Json = dict[str, Any]
DEFAULT_TOP = 10
MAX_TOP = 1000
MAIL_FOLDER_NAMES = (
    "inbox",
    "drafts",
    "sentitems",
    "deleteditems",
    "junkemail",
    "outbox",
    "msgfolderroot",
)
ACCESS_DENIED = "Access is denied. Check credentials and try again."
_SHAPE = itemxml.Shape(base="AllProperties")
"""Graph resources are built from all of an item's properties (computed ones included)."""


class GraphError(Exception):
    """An error answer in Graph's shape: `{"error": {"code", "message", "innerError"}}`."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


# EWS response codes the item functions raise, as Graph answers them.
EWS_TO_GRAPH: dict[str, tuple[int, str]] = {
    "ErrorAccessDenied": (403, "ErrorAccessDenied"),
    "ErrorSendAsDenied": (403, "ErrorSendAsDenied"),
    "ErrorItemNotFound": (404, "ErrorItemNotFound"),
    "ErrorFolderNotFound": (404, "ErrorItemNotFound"),
    "ErrorInvalidIdMalformed": (400, "ErrorInvalidIdMalformed"),
    "ErrorInvalidIdEmpty": (400, "ErrorInvalidIdMalformed"),
    "ErrorInvalidRecipients": (400, "ErrorInvalidRecipients"),
    "ErrorNonExistentMailbox": (404, "ErrorInvalidUser"),
    "ErrorServerBusy": (429, "ApplicationThrottled"),
    "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange": (404, "ErrorItemNotFound"),
    "ErrorIrresolvableConflict": (412, "ErrorIrresolvableConflict"),
}


def from_ews(err: EwsError) -> GraphError:
    status, code = EWS_TO_GRAPH.get(err.code, (400, err.code))
    return GraphError(status, code, err.message)


def error_response(err: GraphError, request_id: str, client_request_id: str | None) -> JSONResponse:
    inner = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id,
        "client-request-id": client_request_id or request_id,
    }
    return JSONResponse(
        {"error": {"code": err.code, "message": err.message, "innerError": inner}},
        status_code=err.status,
        headers={"request-id": request_id, **err.headers},
    )


@dataclass
class Call:
    """One Graph request as the handlers see it (a top-level request or a `$batch` part)."""

    face: GraphFace
    principal: Principal
    method: str
    path: str
    query: dict[str, str]
    body: Any
    headers: Mapping[str, str]
    base: str
    ctx: EwsContext = field(init=False)
    mailbox: str = ""

    @property
    def lab(self) -> Lab:
        return self.face.lab

    def prefer(self, name: str) -> str | None:
        for part in self.headers.get("prefer", "").split(","):
            key, _, value = part.strip().partition("=")
            if key.strip().lower() == name.lower():
                return value.strip().strip('"')
        return None

    def page_size(self) -> int:
        raw = self.query.get("$top") or self.prefer("odata.maxpagesize")
        if raw is None:
            return DEFAULT_TOP
        try:
            top = int(raw)
        except ValueError:
            raise GraphError(400, "BadRequest", f"Invalid $top value '{raw}'.") from None
        if top < 1:
            raise GraphError(400, "BadRequest", "$top must be positive.")
        return min(top, MAX_TOP)

    def skip(self) -> int:
        raw = self.query.get("$skip", "0")
        if not raw.isdigit():
            raise GraphError(400, "BadRequest", f"Invalid $skip value '{raw}'.")
        return int(raw)

    def link(self, **params: str) -> str:
        """An absolute link to this path with query parameters replaced (nextLink, deltaLink)."""
        query = {k: v for k, v in self.query.items() if k not in params}
        query.update(params)
        return f"{self.base}/v1.0/{self.path}?{urlencode(query, quote_via=quote)}"

    def timezone(self) -> tuple[Any, str]:
        try:
            return zone(self.prefer("outlook.timezone"))
        except GraphInputError:
            return zone(None)


# -- auth, scopes, ids ---------------------------------------------------------------------


def need(call: Call, area: str, *, write: bool = False, send: bool = False) -> None:
    """Delegated scope (own or `.Shared`) or app role for `area` (Mail, Calendars, Contacts)."""
    p = call.principal
    if send:
        wanted = {"Mail.Send"}
    elif write:
        wanted = {f"{area}.ReadWrite"}
    else:
        wanted = {f"{area}.Read", f"{area}.ReadWrite"}
    if p.app_only:
        if wanted & p.roles:
            return
    else:
        own = call.mailbox == p.user
        granted = {s for s in p.scopes if own or s.endswith(".Shared")}
        granted = {s.removesuffix(".Shared") for s in granted}
        if wanted & granted:
            return
    raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)


def decode(gid: str, kinds: tuple[str, ...]) -> tuple[str, str]:
    try:
        kind, key = decode_id(ews_id(gid))
    except EwsError:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.") from None
    if kind not in kinds:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    return kind, key


def folder_gid(folder: Folder) -> str:
    return graph_id(encode_id("folder", folder.id))


def item_gid(item: store_items.Item) -> str:
    return graph_id(encode_id("item", item.id))


def target_gid(target: ews_items.Target) -> str:
    if target.index is not None:
        return graph_id(ews_items.occurrence_ews_id(target.item, target.index))
    return item_gid(target.item)


def resolve_item(call: Call, gid: str) -> ews_items.Target:
    decode(gid, ("item", "occurrence"))
    el = Element(t("ItemId"), {"Id": ews_id(gid)})
    try:
        target = ews_items.resolve_item(call.ctx, el)
    except EwsError as err:
        raise from_ews(err) from None
    if target.folder.mailbox != call.mailbox:
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    return target


def visible(call: Call, folder: Folder) -> None:
    if not ews_items.rights(call.ctx, folder).folder_visible:
        raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)


def resolve_folder(call: Call, ref: str, *, default_kind: str = "mail") -> Folder:
    """A folder by Graph id or well-known name in the call's mailbox."""
    store = call.lab.store
    name = ref.lower()
    if name in MAIL_FOLDER_NAMES or name in ("calendar", "contacts", "tasks"):
        folder = store.distinguished_folder(call.mailbox, name)
        if folder is None:
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
    else:
        _, key = decode(ref, ("folder",))
        folder = store.folder(key)
        if folder is None or folder.mailbox != call.mailbox:
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
    visible(call, folder)
    return folder


def body_json(call: Call) -> Mapping[str, Any]:
    if not isinstance(call.body, Mapping):
        raise GraphError(400, "RequestBodyRead", "The request needs a JSON object as its body.")
    return call.body


# -- collections --------------------------------------------------------------------------------


def collection(call: Call, rows: list[Json], *, context: str) -> Json:
    """Filter, sort, page and select a list as Graph does; nextLink is absolute."""
    try:
        keep = odata.compile_filter(call.query.get("$filter"))
        rows = [r for r in rows if keep(r)]
        order = odata.order_key(call.query.get("$orderby"))
    except odata.ODataError as exc:
        raise GraphError(400, "BadRequest", str(exc)) from None
    if order:
        rows = odata.sort_items(rows, order)
    top, skip = call.page_size(), call.skip()
    page = rows[skip : skip + top]
    out: Json = {"@odata.context": f"{call.base}/v1.0/$metadata#{context}"}
    if call.query.get("$count", "").lower() == "true":
        out["@odata.count"] = len(rows)
    kept = ["id", *expanded_names(call)]
    out["value"] = [odata.select(r, call.query.get("$select"), kept) for r in page]
    if skip + top < len(rows):
        out["@odata.nextLink"] = call.link(**{"$skip": str(skip + top), "$top": str(top)})
    return out


# -- mailboxes and users --------------------------------------------------------------------------


def user_json(mailbox: Any) -> Json:
    given, _, surname = str(mailbox.display_name).rpartition(" ")
    return {
        "id": stable_uuid("user", mailbox.address),
        "displayName": mailbox.display_name,
        "mail": mailbox.address,
        "userPrincipalName": mailbox.address,
        "givenName": given or None,
        "surname": surname or None,
        "businessPhones": [],
        "jobTitle": None,
        "officeLocation": None,
        "preferredLanguage": "de-DE",
    }


def find_mailbox(call: Call, ref: str) -> str:
    store = call.lab.store
    candidate = store.mailbox(ref)
    if candidate is None:
        for mb in store.mailboxes():
            if stable_uuid("user", mb.address) == ref.lower():
                candidate = mb
                break
    if candidate is None or candidate.kind == "public":
        raise GraphError(404, "ErrorInvalidUser", f"The requested user '{ref}' is invalid.")
    return str(candidate.address)


# -- mail folders ---------------------------------------------------------------------------------


def is_mail_folder(folder: Folder) -> bool:
    cls = folder.folder_class or "IPF.Note"
    return (cls == "IPF.Note" or cls.startswith("IPF.Note.")) and "Voicemail" not in cls


def folder_json(call: Call, folder: Folder) -> Json:
    store = call.lab.store
    children = [c for c in store.children(folder.id) if is_mail_folder(c)]
    r = ews_items.rights(call.ctx, folder)
    items = ews_items.visible_items(call.ctx, folder, r) if r.can_read_items else []
    parent = store.folder(folder.parent_id) if folder.parent_id else None
    return {
        "id": folder_gid(folder),
        "displayName": folder.display_name,
        "parentFolderId": folder_gid(parent) if parent else None,
        "childFolderCount": len(children),
        "unreadItemCount": sum(1 for i in items if not i.props.get("message:IsRead", False)),
        "totalItemCount": len(items),
        "isHidden": bool(folder.hidden),
    }


def mail_folders(call: Call, parent: Folder) -> Json:
    rows = [
        folder_json(call, f)
        for f in call.lab.store.children(parent.id)
        if is_mail_folder(f) and ews_items.rights(call.ctx, f).folder_visible
    ]
    return collection(call, rows, context="mailFolders")


def create_folder(call: Call, parent: Folder) -> tuple[int, Json]:
    need(call, "Mail", write=True)
    body = body_json(call)
    name = str(body.get("displayName", "")).strip()
    if not name:
        raise GraphError(400, "ErrorInvalidRequest", "displayName is required.")
    if not ews_items.rights(call.ctx, parent).create_subfolders:
        raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
    store = call.lab.store
    if any(c.display_name.lower() == name.lower() for c in store.children(parent.id)):
        raise GraphError(
            409, "ErrorFolderExists", "A folder with the specified name already exists."
        )
    folder = store.add_folder(
        call.mailbox, name, parent_id=parent.id, folder_class="IPF.Note", now=call.lab.now()
    )
    return 201, folder_json(call, folder)


# -- messages -------------------------------------------------------------------------------------


MEETING_MESSAGE_TYPES = (
    ("IPM.Schedule.Meeting.Request", "#microsoft.graph.eventMessageRequest", "meetingRequest"),
    ("IPM.Schedule.Meeting.Resp.Pos", "#microsoft.graph.eventMessageResponse", "meetingAccepted"),
    (
        "IPM.Schedule.Meeting.Resp.Tent",
        "#microsoft.graph.eventMessageResponse",
        "meetingTenativelyAccepted",
    ),
    ("IPM.Schedule.Meeting.Resp.Neg", "#microsoft.graph.eventMessageResponse", "meetingDeclined"),
    ("IPM.Schedule.Meeting.Canceled", "#microsoft.graph.eventMessage", "meetingCancelled"),
)


def message_json(call: Call, target: ews_items.Target) -> Json:
    _, p = ews_items.output_props(call.ctx, target, _SHAPE)
    out = message_out(p, target_gid(target), folder_gid(target.folder), target.item.change_key)
    for prefix, odata_type, meeting_type in MEETING_MESSAGE_TYPES:
        if target.item.item_class.startswith(prefix):
            out = {"@odata.type": odata_type, **out, "meetingMessageType": meeting_type}
            break
    for part in _expand_parts(call.query.get("$expand", "")):
        expand_message(call, target, p, out, part)
    return out


def expanded_names(call: Call) -> list[str]:
    """Properties a `$expand` adds; `$select` keeps them, as Graph does."""
    return [
        p.split("(")[0].rsplit("/", 1)[-1] for p in _expand_parts(call.query.get("$expand", ""))
    ]


def _expand_parts(text: str) -> list[str]:
    """`$expand=a($filter=...),b` split at top-level commas."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        depth += (ch == "(") - (ch == ")")
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


_EXT_FILTER = re.compile(r"id eq '(\w+) 0x([0-9A-Fa-f]+)'")


def expand_message(
    call: Call, target: ews_items.Target, p: Mapping[str, Any], out: Json, part: str
) -> None:
    """The `$expand`s clients use on messages: MAPI properties by tag (sensitivity, ...)
    and a meeting message's event."""
    if part.startswith("singleValueExtendedProperties"):
        values = []
        for kind, tag in _EXT_FILTER.findall(part):
            key = f"ext:tag:{hex(int(tag, 16))}:{kind}"
            if key in p:
                values.append({"id": f"{kind} 0x{int(tag, 16):x}", "value": str(p[key])})
        out["singleValueExtendedProperties"] = values
    elif part in ("microsoft.graph.eventMessage/event", "event"):
        cal_key = target.item.props.get("lab:calendar_item")
        item = store_items.get_item(call.lab.store, str(cal_key)) if cal_key else None
        folder = call.lab.store.folder(item.folder_id) if item else None
        if item is not None and folder is not None:
            event_target = ews_items.Target(item, folder)
            if not ews_items.hidden(call.ctx, item, ews_items.rights(call.ctx, folder)):
                out["event"] = event_json(call, event_target)
    else:
        raise GraphError(400, "BadRequest", f"Parsing OData Select and Expand failed: '{part}'.")


def is_message(item: store_items.Item) -> bool:
    return (
        item.item_class.startswith("IPM.Note")
        or item.item_class.startswith("IPM.Schedule.Meeting")
        or item.item_class == "IPM.Post"
    )


def list_messages(call: Call, folders: list[Folder]) -> Json:
    need(call, "Mail")
    rows: list[Json] = []
    for folder in folders:
        r = ews_items.rights(call.ctx, folder)
        if not r.can_read_items:
            if len(folders) == 1:
                raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
            continue
        for item in ews_items.visible_items(call.ctx, folder, r):
            if is_message(item):
                rows.append(message_json(call, ews_items.Target(item, folder)))
    if "$orderby" not in call.query:
        rows.sort(key=lambda m: str(m.get("receivedDateTime") or ""), reverse=True)
    return collection(call, rows, context="messages")


def all_mail_folders(call: Call) -> list[Folder]:
    top = call.lab.store.distinguished_folder(call.mailbox, "msgfolderroot")
    out: list[Folder] = []
    stack = [top] if top is not None else []
    while stack:
        folder = stack.pop()
        for child in call.lab.store.children(folder.id):
            if is_mail_folder(child):
                out.append(child)
                stack.append(child)
    return [f for f in out if ews_items.rights(call.ctx, f).can_read_items]


def get_message(call: Call, gid: str) -> Json:
    need(call, "Mail")
    target = resolve_item(call, gid)
    check(ews_items.check_read, call, target)
    keep = ["id", *expanded_names(call)]
    return odata.select(message_json(call, target), call.query.get("$select"), keep)


def check(fn: Callable[..., Any], call: Call, arg: Any) -> Any:
    try:
        return fn(call.ctx, arg)
    except EwsError as err:
        raise from_ews(err) from None


def create_message(call: Call, folder: Folder) -> tuple[int, Json]:
    """A draft in `folder` (Drafts by default), From = the mailbox unless given."""
    need(call, "Mail", write=True)
    try:
        props = message_in(body_json(call), creating=True)
    except GraphInputError as exc:
        raise GraphError(400, exc.code, exc.message) from None
    check(ews_items.check_create, call, folder)
    args = ews_items.CreateArgs("SaveOnly", "SendToNone", folder)
    ews_items._prepare_message(call.ctx, props, folder, args)
    item = store_items.create_item(
        call.lab.store, folder, "IPM.Note", props, created_by=call.ctx.user, now=call.lab.now()
    )
    add_attachments(call, item, body_json(call).get("attachments"))
    return 201, message_json(call, ews_items.Target(item, folder))


def add_attachments(call: Call, item: store_items.Item, raw: Any) -> None:
    if not raw:
        return
    if not isinstance(raw, list):
        raise GraphError(400, "RequestBodyRead", "'attachments' must be a list.")
    for att in raw:
        add_attachment(call, item, att)


def add_attachment(call: Call, item: store_items.Item, att: Any) -> store_items.Attachment:
    if not isinstance(att, Mapping) or att.get("@odata.type") != "#microsoft.graph.fileAttachment":
        raise GraphError(400, "ErrorInvalidRequest", "Only file attachments are supported.")
    try:
        content = base64.b64decode(str(att.get("contentBytes", "")), validate=True)
    except ValueError:
        raise GraphError(400, "ErrorInvalidRequest", "contentBytes is not base64.") from None
    return store_items.add_attachment(
        call.lab.store,
        item.id,
        str(att.get("name") or "attachment"),
        str(att.get("contentType") or "application/octet-stream"),
        content,
        now=call.lab.now(),
        content_id=att.get("contentId"),
        is_inline=bool(att.get("isInline")),
    )


def patch_item(call: Call, gid: str, area: str) -> Json:
    need(call, area, write=True)
    target = resolve_item(call, gid)
    check(ews_items.check_edit, call, target)
    body = body_json(call)
    try:
        if area == "Mail":
            changes = message_in(body, creating=False)
        elif area == "Calendars":
            changes = event_in(body)
        else:
            changes = contact_in(body, target.item.props)
    except GraphInputError as exc:
        raise GraphError(400, exc.code, exc.message) from None
    now = call.lab.now()
    item = ews_items._materialize(call.ctx, target, now) if target.is_virtual else target.item
    was_private = item.is_private
    if (
        area == "Calendars"
        and "calendar:Recurrence" in changes
        and changes["calendar:Recurrence"] is None
    ):
        changes["calendar:Recurrence"] = None
    item.props = store_items.apply_changes(item.props, changes)
    r = ews_items.rights(call.ctx, target.folder)
    if item.is_private and not was_private and not r.view_private:
        raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
    if area == "Calendars":
        start, end = item.props.get("calendar:Start"), item.props.get("calendar:End")
        if start and end and end < start:
            raise GraphError(
                400, "ErrorInvalidRequest", "The end of the event is before its start."
            )
        if "calendar:Recurrence" in item.props and item.master_id is None:
            ews_items._align_master_start(call.ctx, item.props, target.folder.mailbox)
    store_items.save_item(call.lab.store, item, now)
    new_target = ews_items.Target(item, target.folder)
    if area == "Mail":
        return message_json(call, new_target)
    if area == "Calendars":
        return event_json(call, new_target)
    return contact_json(call, new_target)


def delete_item(call: Call, gid: str, area: str) -> None:
    need(call, area, write=True)
    target = resolve_item(call, gid)
    check(ews_items.check_delete, call, target)
    now = call.lab.now()
    item = target.item
    if target.is_virtual or item.master_id is not None:
        master: store_items.Item | None = (
            item
            if target.is_virtual
            else store_items.get_item(call.lab.store, item.master_id or "")
        )
        if master is None:
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        index = target.index if target.is_virtual else int(item.props["lab:index"])
        master.props["lab:deleted"] = sorted({*master.props.get("lab:deleted", []), index})
        if not target.is_virtual:
            store_items.delete_item(call.lab.store, item, now)
        store_items.save_item(call.lab.store, master, now)
        return
    bin_folder = call.lab.store.distinguished_folder(item.mailbox, "deleteditems")
    if area == "Mail" and bin_folder is not None and bin_folder.id != item.folder_id:
        store_items.move_item(call.lab.store, item, bin_folder, now)
    else:
        store_items.delete_item(call.lab.store, item, now)


def move_or_copy(call: Call, gid: str, copy: bool) -> tuple[int, Json]:
    need(call, "Mail", write=True)
    target = resolve_item(call, gid)
    destination = str(body_json(call).get("destinationId", ""))
    if not destination:
        raise GraphError(400, "ErrorInvalidRequest", "destinationId is required.")
    dest = resolve_folder(call, destination)
    check(ews_items.check_read, call, target)
    if not copy:
        check(ews_items.check_delete, call, target)
    check(ews_items.check_create, call, dest)
    now = call.lab.now()
    if copy:
        item = store_items.copy_item(call.lab.store, target.item, dest, by=call.ctx.user, now=now)
    else:
        item = store_items.move_item(call.lab.store, target.item, dest, now)
    return 201, message_json(call, ews_items.Target(item, dest))


def send_draft(call: Call, gid: str) -> tuple[int, None]:
    need(call, "Mail", send=True)
    target = resolve_item(call, gid)
    check(ews_items.check_edit, call, target)
    if not is_message(target.item) or not target.item.props.get("item:IsDraft", True):
        raise GraphError(400, "ErrorInvalidRequest", "Only drafts can be sent.")
    try:
        ews_items._send_existing(call.ctx, target.item, target.folder, save=True, saved=None)
    except EwsError as err:
        raise from_ews(err) from None
    return 202, None


def send_mail(call: Call) -> tuple[int, None]:
    """`sendMail`: send as the mailbox in the path (on behalf when it is not the caller's)."""
    need(call, "Mail", send=True)
    body = body_json(call)
    message = body.get("message")
    if not isinstance(message, Mapping):
        raise GraphError(400, "ErrorInvalidRequest", "sendMail needs a message.")
    try:
        props = message_in(message, creating=True)
    except GraphInputError as exc:
        raise GraphError(400, exc.code, exc.message) from None
    save = bool(body.get("saveToSentItems", True))
    props.setdefault("message:From", {"email": call.mailbox})
    # The sent copy goes to the From mailbox's Sent Items when we may write there, else to
    # our own (Exchange's default for a delegate sending on behalf).
    sent_items = call.lab.store.distinguished_folder(call.mailbox, "sentitems")
    if sent_items is None or not ews_items.rights(call.ctx, sent_items).create_items:
        sent_items = call.lab.store.distinguished_folder(call.ctx.user, "sentitems")
    if sent_items is None:
        raise GraphError(404, "ErrorItemNotFound", "The mailbox has no Sent Items folder.")
    disposition = "SendAndSaveCopy" if save else "SendOnly"
    args = ews_items.CreateArgs(disposition, "SendToNone", sent_items)
    now = call.lab.now()
    try:
        ews_items._prepare_message(call.ctx, props, sent_items, args)
        if not ews_items.recipients_of(props):
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
        item = store_items.create_item(
            call.lab.store, sent_items, "IPM.Note", props, created_by=call.ctx.user, now=now
        )
        add_attachments(call, item, message.get("attachments"))
        ews_items.send_message(call.ctx, item.props, "IPM.Note", [], now, attachments_from=item.id)
        owner = str(item.props["message:From"].get("email", "")).lower()
        owner_sent = call.lab.store.distinguished_folder(owner, "sentitems")
        if save and owner != call.ctx.user and owner_sent and owner_sent.id != sent_items.id:
            # As the EWS face: sent on behalf, a copy lands in the owner's Sent Items too,
            # whatever the delegate's rights there (MessageCopyForSendOnBehalfEnabled).
            store_items.copy_item(call.lab.store, item, owner_sent, by=call.ctx.user, now=now)
        if not save:
            store_items.delete_item(call.lab.store, item, now)
    except EwsError as err:
        raise from_ews(err) from None
    return 202, None


def attachments(call: Call, gid: str) -> Json:
    need(call, "Mail")
    target = resolve_item(call, gid)
    check(ews_items.check_read, call, target)
    rows = [
        attachment_out(a.as_dict(""), graph_id(encode_id("attachment", a.id)), with_content=False)
        for a in store_items.attachments_of(call.lab.store, target.item.id)
    ]
    return collection(call, rows, context="attachments")


def attachment(call: Call, gid: str, aid: str, raw: bool) -> Json | Response:
    need(call, "Mail")
    target = resolve_item(call, gid)
    check(ews_items.check_read, call, target)
    _, key = decode(aid, ("attachment",))
    att = store_items.get_attachment(call.lab.store, key)
    if att is None or att.item_id != target.item.id:
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    if raw:
        return Response(att.content, media_type=att.content_type)
    return attachment_out(att.as_dict(""), aid, with_content=True)


def mime(call: Call, gid: str) -> Response:
    """`messages/{id}/$value`: the message as MIME, as the EWS face's MimeContent renders it."""
    need(call, "Mail")
    target = resolve_item(call, gid)
    check(ews_items.check_read, call, target)
    _, p = ews_items.output_props(call.ctx, target, _SHAPE)
    atts = store_items.attachments_of(call.lab.store, target.item.id)
    return Response(to_mime(p, atts), media_type="message/rfc822")


# -- events ---------------------------------------------------------------------------------------


def event_json(call: Call, target: ews_items.Target) -> Json:
    _, p = ews_items.output_props(call.ctx, target, _SHAPE)
    tz, tzname = call.timezone()
    master_id = None
    if target.index is not None:
        master_id = item_gid(target.item)
    elif target.item.master_id is not None:
        master_id = graph_id(encode_id("item", target.item.master_id))
    return event_out(
        p,
        item_id=target_gid(target),
        change_key=target.item.change_key,
        series_master_id=master_id,
        tz=tz,
        tzname=tzname,
        owner=call.mailbox,
    )


def calendar_folder(call: Call, ref: str | None) -> Folder:
    folder = resolve_folder(call, ref or "calendar")
    if not (folder.folder_class or "").startswith("IPF.Appointment"):
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    return folder


def readable(call: Call, folder: Folder) -> Any:
    r = ews_items.rights(call.ctx, folder)
    if not r.can_read_items:
        raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
    return r


def list_events(call: Call, folder: Folder) -> Json:
    need(call, "Calendars")
    r = readable(call, folder)
    rows = [
        event_json(call, ews_items.Target(i, folder))
        for i in ews_items.visible_items(call.ctx, folder, r)
        if i.item_class.startswith("IPM.Appointment")
    ]
    return collection(call, rows, context="events")


def window(call: Call) -> tuple[datetime, datetime]:
    try:
        start = odata.parse_datetime(call.query["startDateTime"])
        end = odata.parse_datetime(call.query["endDateTime"])
    except KeyError:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters"
            " StartDateTime and EndDateTime.",
        ) from None
    except odata.ODataError as exc:
        raise GraphError(400, "ErrorInvalidParameter", str(exc)) from None
    if end < start:
        raise GraphError(400, "ErrorInvalidParameter", "EndDateTime is earlier than StartDateTime.")
    return start, end


def view_targets(
    call: Call, folder: Folder, start: datetime, end: datetime, only: set[str] | None = None
) -> list[tuple[datetime, ews_items.Target]]:
    """Occurrences, exceptions and single events overlapping [start, end), by start."""
    r = readable(call, folder)
    out: list[tuple[datetime, ews_items.Target]] = []
    for item in ews_items.visible_items(call.ctx, folder, r):
        if not item.item_class.startswith("IPM.Appointment") or (
            only is not None and item.id not in only
        ):
            continue
        if "calendar:Recurrence" in item.props and item.props.get("calendar:Start"):
            for index, occ_start, _ in ews_items.occurrences_of(call.ctx, item, start, end):
                out.append((occ_start, ews_items.Target(item, folder, index)))
            for exc in store_items.exceptions_of(call.lab.store, item.id):
                if ews_items._overlaps(exc, start, end):
                    out.append(
                        (
                            odata.parse_datetime(exc.props["calendar:Start"]),
                            ews_items.Target(exc, folder),
                        )
                    )
        elif ews_items._overlaps(item, start, end):
            out.append(
                (odata.parse_datetime(item.props["calendar:Start"]), ews_items.Target(item, folder))
            )
    out.sort(key=lambda e: e[0])
    return out


def calendar_view(call: Call, folder: Folder) -> Json:
    need(call, "Calendars")
    start, end = window(call)
    rows = [event_json(call, tgt) for _, tgt in view_targets(call, folder, start, end)]
    return collection(call, rows, context="events")


def instances(call: Call, gid: str) -> Json:
    need(call, "Calendars")
    target = resolve_item(call, gid)
    check(ews_items.check_read, call, target)
    start, end = window(call)
    if "calendar:Recurrence" not in target.item.props or target.index is not None:
        raise GraphError(400, "ErrorInvalidRequest", "The event is not a series master.")
    rows = [
        event_json(call, tgt)
        for _, tgt in view_targets(call, target.folder, start, end, only={target.item.id})
    ]
    return collection(call, rows, context="events")


def get_event(call: Call, gid: str) -> Json:
    need(call, "Calendars")
    target = resolve_item(call, gid)
    check(ews_items.check_read, call, target)
    return odata.select(event_json(call, target), call.query.get("$select"))


def create_event(call: Call, folder: Folder) -> tuple[int, Json]:
    need(call, "Calendars", write=True)
    try:
        props = event_in(body_json(call))
    except GraphInputError as exc:
        raise GraphError(400, exc.code, exc.message) from None
    if props.get("calendar:Recurrence") is None:
        props.pop("calendar:Recurrence", None)
    check(ews_items.check_create, call, folder)
    has_attendees = bool(
        props.get("calendar:RequiredAttendees") or props.get("calendar:OptionalAttendees")
    )
    args = ews_items.CreateArgs(
        "", "SendToAllAndSaveCopy" if has_attendees else "SendToNone", folder
    )
    now = call.lab.now()
    try:
        ews_items._prepare_calendar(call.ctx, props, folder, args)
        item = store_items.create_item(
            call.lab.store, folder, "IPM.Appointment", props, created_by=call.ctx.user, now=now
        )
        if has_attendees:
            ews_items.invite(call.ctx, item, now)
    except EwsError as err:
        raise from_ews(err) from None
    return 201, event_json(call, ews_items.Target(item, folder))


RESPONSES = {
    "accept": "AcceptItem",
    "tentativelyAccept": "TentativelyAcceptItem",
    "decline": "DeclineItem",
}


def respond(call: Call, gid: str, action: str) -> tuple[int, None]:
    """accept / tentativelyAccept / decline on an event (or a meeting request message)."""
    need(call, "Calendars", write=True)
    target = resolve_item(call, gid)
    body = call.body if isinstance(call.body, Mapping) else {}
    el = Element(t(RESPONSES[action]))
    SubElement(el, t("ReferenceItemId"), {"Id": ews_id(target_gid(target))})
    if body.get("comment"):
        body_el = SubElement(el, t("Body"), {"BodyType": "Text"})
        body_el.text = str(body["comment"])
    try:
        ews_items.respond(call.ctx, el, RESPONSES[action], Element(t("Items")))
    except EwsError as err:
        raise from_ews(err) from None
    return 202, None


# -- contacts -------------------------------------------------------------------------------------


def contact_json(call: Call, target: ews_items.Target) -> Json:
    _, p = ews_items.output_props(call.ctx, target, _SHAPE)
    return contact_out(p, target_gid(target), folder_gid(target.folder), target.item.change_key)


def list_contacts(call: Call, folder: Folder) -> Json:
    need(call, "Contacts")
    r = readable(call, folder)
    rows = [
        contact_json(call, ews_items.Target(i, folder))
        for i in ews_items.visible_items(call.ctx, folder, r)
        if i.item_class.startswith("IPM.Contact")
    ]
    return collection(call, rows, context="contacts")


def create_contact(call: Call, folder: Folder) -> tuple[int, Json]:
    need(call, "Contacts", write=True)
    try:
        props = contact_in(body_json(call))
    except GraphInputError as exc:
        raise GraphError(400, exc.code, exc.message) from None
    check(ews_items.check_create, call, folder)
    item = store_items.create_item(
        call.lab.store, folder, "IPM.Contact", props, created_by=call.ctx.user, now=call.lab.now()
    )
    return 201, contact_json(call, ews_items.Target(item, folder))


# -- delta ----------------------------------------------------------------------------------------


def _token(data: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()


def _untoken(raw: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except (ValueError, UnicodeDecodeError):
        raise GraphError(400, "SyncStateNotFound", "The sync state is invalid.") from None
    if not isinstance(data, dict):
        raise GraphError(400, "SyncStateNotFound", "The sync state is invalid.")
    return data


def delta_page(call: Call, rows: list[Json], state: Mapping[str, Any]) -> Json:
    """Page a delta round with $skiptoken; the last page carries the deltaLink."""
    top = int(call.prefer("odata.maxpagesize") or 100)
    offset = int(state.get("offset", 0))
    page = rows[offset : offset + top]
    out: Json = {"@odata.context": f"{call.base}/v1.0/$metadata#Collection", "value": page}
    params = {k: v for k, v in call.query.items() if k not in ("$skiptoken", "$deltatoken")}
    query = urlencode(params, quote_via=quote)
    base = f"{call.base}/v1.0/{call.path}?{query}{'&' if query else ''}"
    if offset + top < len(rows):
        out["@odata.nextLink"] = base + "$skiptoken=" + _token({**state, "offset": offset + top})
    else:
        done = {k: v for k, v in state.items() if k not in ("offset", "since")}
        out["@odata.deltaLink"] = base + "$deltatoken=" + _token(done)
    return out


def message_delta(call: Call, folder: Folder) -> Json:
    need(call, "Mail")
    r = readable(call, folder)
    raw = call.query.get("$skiptoken") or call.query.get("$deltatoken")
    state = _untoken(raw) if raw else {}
    if state.get("folder", folder.id) != folder.id:
        raise GraphError(400, "SyncStateNotFound", "The sync state belongs to another folder.")
    since = state.get("since", state.get("seq"))
    seq = (
        int(state.get("seq", store_items.last_seq(call.lab.store)))
        if "offset" in state
        else store_items.last_seq(call.lab.store)
    )
    rows: list[Json] = []
    if since is None:
        for item in ews_items.visible_items(call.ctx, folder, r):
            if is_message(item):
                rows.append(message_json(call, ews_items.Target(item, folder)))
    else:
        seen: dict[str, str] = {}
        for change in store_items.changes_after(call.lab.store, int(since), [folder.id]):
            if change.seq > seq:
                break
            seen[change.item_id] = change.change
        for item_id in seen:
            found = store_items.get_item(call.lab.store, item_id)
            if (
                found is None
                or found.folder_id != folder.id
                or ews_items.hidden(call.ctx, found, r)
            ):
                rows.append(
                    {
                        "@odata.type": "#microsoft.graph.message",
                        "id": graph_id(encode_id("item", item_id)),
                        "@removed": {"reason": "deleted"},
                    }
                )
            elif is_message(found):
                rows.append(message_json(call, ews_items.Target(found, folder)))
    return delta_page(
        call,
        rows,
        {"folder": folder.id, "seq": seq, "since": since, "offset": state.get("offset", 0)},
    )


def event_delta(call: Call, folder: Folder) -> Json:
    need(call, "Calendars")
    raw = call.query.get("$skiptoken") or call.query.get("$deltatoken")
    state = _untoken(raw) if raw else {}
    if state:
        start, end = odata.parse_datetime(state["start"]), odata.parse_datetime(state["end"])
    else:
        start, end = window(call)
    since = state.get("since", state.get("seq"))
    seq = int(state["seq"]) if "offset" in state else store_items.last_seq(call.lab.store)
    rows: list[Json] = []
    if since is None:
        rows = [event_json(call, tgt) for _, tgt in view_targets(call, folder, start, end)]
    else:
        changed = {
            c.item_id
            for c in store_items.changes_after(call.lab.store, int(since), [folder.id])
            if c.seq <= seq
        }
        present = {
            tgt.item.master_id or tgt.item.id
            for _, tgt in view_targets(call, folder, start, end, only=None)
        }
        for _, tgt in view_targets(call, folder, start, end):
            if (tgt.item.master_id or tgt.item.id) in changed:
                rows.append(event_json(call, tgt))
        for item_id in changed - present:
            rows.append(
                {"id": graph_id(encode_id("item", item_id)), "@removed": {"reason": "deleted"}}
            )
    params = {
        "folder": folder.id,
        "seq": seq,
        "since": since,
        "start": utc_text(start),
        "end": utc_text(end),
    }
    return delta_page(call, rows, {**params, "offset": state.get("offset", 0)})


# -- dispatch -------------------------------------------------------------------------------------


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def route(call: Call) -> tuple[int, Any]:
    """Run one Graph call; returns (status, JSON body or Response or None)."""
    segs = _segments(call.path)
    if not segs:
        raise GraphError(400, "BadRequest", "Invalid request.")
    head = segs[0]
    p = call.principal
    if head == "me":
        if p.app_only or p.user is None:
            raise GraphError(
                400, "BadRequest", "/me request is only valid with delegated authentication flow."
            )
        call.mailbox = p.user
        rest = segs[1:]
    elif head == "users":
        if len(segs) == 1:
            if not (p.app_only or {"User.ReadBasic.All", "User.Read.All"} & (p.scopes | p.roles)):
                raise GraphError(
                    403,
                    "Authorization_RequestDenied",
                    "Insufficient privileges to complete the operation.",
                )
            rows = [user_json(m) for m in call.lab.store.mailboxes() if m.kind != "public"]
            return 200, collection(call, rows, context="users")
        call.mailbox = find_mailbox(call, segs[1])
        rest = segs[2:]
    else:
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{head}'.")
    call.ctx = EwsContext(call.lab, p.user if p.user else call.mailbox)
    return mailbox_route(call, rest)


def mailbox_route(call: Call, rest: list[str]) -> tuple[int, Any]:
    m, n = call.method, len(rest)
    store = call.lab.store
    if n == 0:
        if m == "GET":
            mailbox = store.mailbox(call.mailbox)
            return 200, user_json(mailbox)
        raise _not_allowed()
    first = rest[0]
    if first == "mailboxSettings" and n == 1 and m == "GET":
        mb = store.mailbox(call.mailbox)
        return 200, {
            "timeZone": mb.time_zone if mb else "UTC",
            "language": {"locale": "de-DE"},
            "workingHours": None,
        }
    if first == "sendMail" and n == 1 and m == "POST":
        return send_mail(call)
    if first == "mailFolders":
        return mail_folder_route(call, rest[1:])
    if first == "messages":
        return message_route(call, rest[1:], None)
    if first in ("events", "calendarView", "calendar", "calendars"):
        return calendar_route(call, rest)
    if first in ("contacts", "contactFolders"):
        return contact_route(call, rest)
    if first == "outlook" and rest[1:] == ["masterCategories"] and m == "GET":
        return 200, collection(call, master_categories(call), context="outlookCategory")
    if first in ("archive",):
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{first}'.")


def _not_allowed() -> GraphError:
    return GraphError(
        405, "Request_BadRequest", "The HTTP method is not allowed for this resource."
    )


def mail_folder_route(call: Call, rest: list[str]) -> tuple[int, Any]:
    m, n = call.method, len(rest)
    need(call, "Mail", write=m != "GET")
    if n == 0:
        root = resolve_folder(call, "msgfolderroot")
        if m == "GET":
            return 200, mail_folders(call, root)
        if m == "POST":
            return create_folder(call, root)
        raise _not_allowed()
    folder = resolve_folder(call, rest[0])
    if n == 1:
        if m == "GET":
            return 200, odata.select(folder_json(call, folder), call.query.get("$select"))
        if m == "PATCH":
            name = str(body_json(call).get("displayName", "")).strip()
            if not name:
                raise GraphError(400, "ErrorInvalidRequest", "displayName is required.")
            if not ews_items.rights(call.ctx, folder).folder_owner:
                raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
            updated = call.lab.store.update_folder(folder.id, display_name=name, now=call.lab.now())
            return 200, folder_json(call, updated)
        raise _not_allowed()
    sub = rest[1]
    if sub == "childFolders" and n == 2:
        if m == "GET":
            return 200, mail_folders(call, folder)
        if m == "POST":
            return create_folder(call, folder)
        raise _not_allowed()
    if sub == "messages":
        return message_route(call, rest[2:], folder)
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{sub}'.")


def message_route(call: Call, rest: list[str], folder: Folder | None) -> tuple[int, Any]:
    m, n = call.method, len(rest)
    if n == 0:
        if m == "GET":
            folders = [folder] if folder else all_mail_folders(call)
            if not folders:
                raise GraphError(403, "ErrorAccessDenied", ACCESS_DENIED)
            return 200, list_messages(call, folders)
        if m == "POST":
            return create_message(call, folder or resolve_folder(call, "drafts"))
        raise _not_allowed()
    if rest[0] == "delta" and n == 1 and m == "GET":
        if folder is None:
            raise GraphError(400, "BadRequest", "messages/delta needs a mail folder.")
        return 200, message_delta(call, folder)
    gid = rest[0]
    if n == 1:
        if m == "GET":
            return 200, get_message(call, gid)
        if m == "PATCH":
            return 200, patch_item(call, gid, "Mail")
        if m == "DELETE":
            delete_item(call, gid, "Mail")
            return 204, None
        raise _not_allowed()
    action = rest[1]
    if m == "POST" and n == 2 and action in ("move", "copy"):
        return move_or_copy(call, gid, action == "copy")
    if m == "POST" and n == 2 and action == "send":
        return send_draft(call, gid)
    if m == "POST" and n == 2 and action in RESPONSES:
        return respond(call, gid, action)
    if action == "attachments":
        if n == 2 and m == "GET":
            return 200, attachments(call, gid)
        if n == 2 and m == "POST":
            need(call, "Mail", write=True)
            target = resolve_item(call, gid)
            check(ews_items.check_edit, call, target)
            att = add_attachment(call, target.item, body_json(call))
            return 201, attachment_out(
                att.as_dict(""), graph_id(encode_id("attachment", att.id)), with_content=False
            )
        if n in (3, 4) and m == "GET":
            return 200, attachment(call, gid, rest[2], raw=n == 4 and rest[3] == "$value")
    if action == "$value" and n == 2 and m == "GET":
        return 200, mime(call, gid)
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{action}'.")


def calendar_route(call: Call, rest: list[str]) -> tuple[int, Any]:
    m = call.method
    first = rest[0]
    if first == "calendars":
        if len(rest) == 1 and m == "GET":
            need(call, "Calendars")
            return 200, collection(call, calendars(call), context="calendars")
        if len(rest) < 2:
            raise _not_allowed()
        folder = calendar_folder(call, rest[1])
        rest = ["calendar", *rest[2:]]
    else:
        folder = calendar_folder(call, None)
    if rest[0] == "calendar":
        if len(rest) == 1:
            need(call, "Calendars")
            return 200, calendar_json(call, folder)
        rest = rest[1:]
    what, tail = rest[0], rest[1:]
    if what == "calendarView":
        if tail == ["delta"] and m == "GET":
            return 200, event_delta(call, folder)
        if not tail and m == "GET":
            return 200, calendar_view(call, folder)
    if what == "events":
        if not tail:
            if m == "GET":
                return 200, list_events(call, folder)
            if m == "POST":
                return create_event(call, folder)
            raise _not_allowed()
        gid = tail[0]
        if len(tail) == 1:
            if m == "GET":
                return 200, get_event(call, gid)
            if m == "PATCH":
                return 200, patch_item(call, gid, "Calendars")
            if m == "DELETE":
                delete_item(call, gid, "Calendars")
                return 204, None
            raise _not_allowed()
        if len(tail) == 2 and tail[1] == "instances" and m == "GET":
            return 200, instances(call, gid)
        if len(tail) == 2 and tail[1] in RESPONSES and m == "POST":
            return respond(call, gid, tail[1])
    raise GraphError(400, "BadRequest", f"Resource not found for the segment '{what}'.")


def calendar_json(call: Call, folder: Folder) -> Json:
    r = ews_items.rights(call.ctx, folder)
    return {
        "id": folder_gid(folder),
        "name": folder.display_name,
        "color": "auto",
        "changeKey": folder.change_key,
        "canShare": r.folder_owner,
        "canViewPrivateItems": r.view_private,
        "canEdit": r.create_items,
        "isDefaultCalendar": folder.distinguished == "calendar",
        "owner": {"name": call.mailbox, "address": call.mailbox},
    }


def calendars(call: Call) -> list[Json]:
    out = []
    for folder in call.lab.store.folders_of(call.mailbox):
        if (folder.folder_class or "").startswith("IPF.Appointment") and ews_items.rights(
            call.ctx, folder
        ).folder_visible:
            out.append(calendar_json(call, folder))
    return out


def contact_folder_json(call: Call, folder: Folder) -> Json:
    parent = call.lab.store.folder(folder.parent_id) if folder.parent_id else None
    out: Json = {
        "id": folder_gid(folder),
        "displayName": folder.display_name,
        "parentFolderId": folder_gid(parent) if parent else None,
    }
    if folder.distinguished == "contacts":
        out["wellKnownName"] = "contacts"
    return out


def contact_route(call: Call, rest: list[str]) -> tuple[int, Any]:
    m = call.method
    if rest[0] == "contactFolders":
        need(call, "Contacts")
        if len(rest) == 1 and m == "GET":
            rows = [
                contact_folder_json(call, f)
                for f in call.lab.store.folders_of(call.mailbox)
                if (f.folder_class or "").startswith("IPF.Contact")
                and ews_items.rights(call.ctx, f).folder_visible
            ]
            return 200, collection(call, rows, context="contactFolders")
        folder = resolve_folder(call, rest[1])
        if not (folder.folder_class or "").startswith("IPF.Contact"):
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        if len(rest) == 2 and m == "GET":
            return 200, contact_folder_json(call, folder)
        if len(rest) < 3 or rest[2] != "contacts":
            raise GraphError(400, "BadRequest", "Only contactFolders/{id}/contacts is supported.")
        rest = ["contacts", *rest[3:]]
    else:
        folder = resolve_folder(call, "contacts")
    tail = rest[1:]
    if not tail:
        if m == "GET":
            return 200, list_contacts(call, folder)
        if m == "POST":
            return create_contact(call, folder)
        raise _not_allowed()
    gid = tail[0]
    if len(tail) == 1:
        if m == "GET":
            need(call, "Contacts")
            target = resolve_item(call, gid)
            check(ews_items.check_read, call, target)
            return 200, contact_json(call, target)
        if m == "PATCH":
            return 200, patch_item(call, gid, "Contacts")
        if m == "DELETE":
            delete_item(call, gid, "Contacts")
            return 204, None
    raise _not_allowed()


def master_categories(call: Call) -> list[Json]:
    """The mailbox's category list: the categories its items use (the lab keeps no other)."""
    names: dict[str, None] = {}
    for folder in call.lab.store.folders_of(call.mailbox):
        if not ews_items.rights(call.ctx, folder).can_read_items:
            continue
        for item in store_items.items_in(call.lab.store, folder.id):
            for name in item.props.get("item:Categories") or []:
                names[str(name)] = None
    presets = ["preset0", "preset1", "preset2", "preset3", "preset4", "preset7"]
    return [
        {
            "id": stable_uuid("category", f"{call.mailbox}:{name}"),
            "displayName": name,
            "color": presets[i % len(presets)],
        }
        for i, name in enumerate(sorted(names))
    ]


# -- HTTP -----------------------------------------------------------------------------------------

MAX_BODY = 10 * 1024 * 1024
MAX_BATCH = 20


def _bearer(face: GraphFace, header: str) -> Principal:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise GraphError(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty.",
            {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
        )
    try:
        return face.issuer.verify(token.strip(), now=face.lab.now())
    except TokenInvalid as exc:
        raise GraphError(
            401,
            exc.code,
            exc.message,
            {"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
        ) from None


def _throttle(face: GraphFace, principal: Principal) -> None:
    back_off_ms = face.lab.knobs.charge(principal.user or f"app:{principal.client_id}")
    if back_off_ms is not None:
        seconds = max(1, math.ceil(back_off_ms / 1000))
        raise GraphError(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            {"Retry-After": str(seconds)},
        )


def run_call(call: Call) -> tuple[int, Any]:
    """One call in one store transaction: an error rolls back everything it did."""
    try:
        with call.lab.store.transaction():
            return route(call)
    except EwsError as err:
        raise from_ews(err) from None


def _parse_body(raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload.") from None


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    path = unquote(parts.path)
    for prefix in ("/v1.0/", "v1.0/"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    return path.strip("/"), query


def _answer(status: int, payload: Any, request_id: str) -> Response:
    if isinstance(payload, Response):
        payload.headers["request-id"] = request_id
        return payload
    if payload is None:
        return Response(status_code=status, headers={"request-id": request_id})
    return JSONResponse(payload, status_code=status, headers={"request-id": request_id})


def _batch(face: GraphFace, principal: Principal, body: Any, base: str) -> Json:
    if not isinstance(body, Mapping) or not isinstance(body.get("requests"), list):
        raise GraphError(400, "BadRequest", "Invalid batch payload format.")
    parts = body["requests"]
    if len(parts) > MAX_BATCH:
        raise GraphError(400, "BadRequest", f"Number of batch requests exceeds {MAX_BATCH}.")
    responses = []
    for part in parts:
        if not isinstance(part, Mapping) or "id" not in part or "url" not in part:
            raise GraphError(400, "BadRequest", "Each batch request needs id, method and url.")
        path, query = _split_url(str(part["url"]))
        headers = {str(k).lower(): str(v) for k, v in (part.get("headers") or {}).items()}
        call = Call(
            face,
            principal,
            str(part.get("method", "GET")).upper(),
            path,
            query,
            part.get("body"),
            headers,
            base,
        )
        try:
            _throttle(face, principal)
            status, payload = run_call(call)
            out_headers: dict[str, str] = {}
            if isinstance(payload, Response):
                out_headers["Content-Type"] = payload.media_type or "application/octet-stream"
                payload = base64.b64encode(bytes(payload.body)).decode("ascii")
            elif payload is not None:
                out_headers["Content-Type"] = "application/json"
        except GraphError as err:
            status = err.status
            payload = {"error": {"code": err.code, "message": err.message}}
            out_headers = {"Content-Type": "application/json", **err.headers}
        entry: Json = {"id": str(part["id"]), "status": status, "headers": out_headers}
        if payload is not None:
            entry["body"] = payload
        responses.append(entry)
    return {"responses": responses}


def graph_router(face: GraphFace) -> APIRouter:
    """`/v1.0/...` (and `$batch`) of the Graph face."""
    router = APIRouter()

    async def endpoint(request: Request, path: str) -> Response:
        request_id = str(uuid.uuid4())
        client_request_id = request.headers.get("client-request-id")
        lab = face.lab
        try:
            if lab.knobs.outage:
                raise GraphError(
                    503,
                    "ServiceUnavailable",
                    "The service is temporarily unavailable.",
                    {"Retry-After": str(face.outage_retry_after_s)},
                )
            if lab.knobs.latency_s > 0:
                await asyncio.sleep(lab.knobs.latency_s)
            principal = _bearer(face, request.headers.get("authorization", ""))
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
                raise GraphError(413, "RequestEntityTooLarge", "The request body is too large.")
            raw = await request.body()
            if len(raw) > MAX_BODY:
                raise GraphError(413, "RequestEntityTooLarge", "The request body is too large.")
            body = _parse_body(raw)
            base = face.base(request)
            if path.strip("/") == "$batch":
                if request.method != "POST":
                    raise _not_allowed()
                result = await run_in_threadpool(_batch, face, principal, body, base)
                return _answer(200, result, request_id)
            _throttle(face, principal)
            query = {k: v for k, v in request.query_params.items()}
            headers = {k.lower(): v for k, v in request.headers.items()}
            call = Call(
                face, principal, request.method, path.strip("/"), query, body, headers, base
            )
            status, payload = await run_in_threadpool(run_call, call)
            return _answer(status, payload, request_id)
        except GraphError as err:
            return error_response(err, request_id, client_request_id)

    router.add_api_route(
        "/v1.0/{path:path}",
        endpoint,
        methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
        include_in_schema=False,
    )
    return router
