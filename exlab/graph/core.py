"""What every Graph resource handler shares: the call, Graph's errors, scopes, ids, paging.

Item semantics are the core's (`exlab.core`), called with the Graph caller as the acting
user; these helpers translate ids, rights and Exchange's errors into Graph's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from fastapi.responses import JSONResponse

from exlab.core import items as store_items
from exlab.core import targets
from exlab.core.caller import Caller
from exlab.core.errors import ExchangeError, denied
from exlab.core.folders import GRAPH_WELL_KNOWN
from exlab.core.ids import decode_id, encode_id
from exlab.core.store import Folder
from exlab.graph import odata
from exlab.graph.convert import (
    GraphInputError,
    ews_id,
    graph_id,
    zone,
)
from exlab.graph.tokens import Principal, stable_uuid

if TYPE_CHECKING:
    from exlab.graph.app import GraphFace
    from exlab.lab import Lab


Json = dict[str, Any]


DEFAULT_TOP = 10


MAX_TOP = 1000


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


def access_denied() -> GraphError:
    """Exchange's access-denied answer (`exlab.core.errors.denied`) as Graph sends it."""
    return from_ews(denied())


def from_ews(err: ExchangeError) -> GraphError:
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
    ctx: Caller = field(init=False)
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
        # Some areas name their application permission with ".All" (Tasks.ReadWrite.All).
        if (wanted | {f"{w}.All" for w in wanted}) & p.roles:
            return
    else:
        own = call.mailbox == p.user
        granted = {s for s in p.scopes if own or s.endswith(".Shared")}
        granted = {s.removesuffix(".Shared") for s in granted}
        if wanted & granted:
            return
    raise access_denied()


def decode(gid: str, kinds: tuple[str, ...]) -> tuple[str, str]:
    try:
        kind, key = decode_id(ews_id(gid))
    except ExchangeError:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.") from None
    if kind not in kinds:
        raise GraphError(400, "ErrorInvalidIdMalformed", "Id is malformed.")
    return kind, key


def folder_gid(folder: Folder) -> str:
    return graph_id(encode_id("folder", folder.id))


def item_gid(item: store_items.Item) -> str:
    return graph_id(encode_id("item", item.id))


def target_gid(target: targets.Target) -> str:
    if target.index is not None:
        return graph_id(targets.occurrence_ews_id(target.item, target.index))
    return item_gid(target.item)


def resolve_item(call: Call, gid: str) -> targets.Target:
    decode(gid, ("item", "occurrence"))
    try:
        target = targets.resolve_id(call.ctx, ews_id(gid))
    except ExchangeError as err:
        raise from_ews(err) from None
    if target.folder.mailbox != call.mailbox:
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    return target


def visible(call: Call, folder: Folder) -> None:
    if not targets.rights(call.ctx, folder).folder_visible:
        raise access_denied()


def resolve_folder(call: Call, ref: str, *, default_kind: str = "mail") -> Folder:
    """A folder by Graph id or well-known name in the call's mailbox."""
    store = call.lab.store
    name = ref.lower()
    if name in GRAPH_WELL_KNOWN:
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


def collection(call: Call, rows: list[Json], *, context: str) -> Json:
    """Filter, sort, page and select a list as Graph does; nextLink is absolute."""
    try:
        keep = odata.compile_filter(call.query.get("$filter"))
        rows = [r for r in rows if keep(r)]
        order = odata.order_key(call.query.get("$orderby"))
    except odata.ODataError as exc:
        raise GraphError(400, "BadRequest", str(exc)) from None
    search = call.query.get("$search")
    if search is not None:
        if order:
            raise GraphError(
                400,
                "ErrorInvalidUrlQuery",
                "The query parameter '$orderBy' is invalid with $search.",
            )
        rows = [r for r in rows if odata.search_matches(search, r)]
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


def expanded_names(call: Call) -> list[str]:
    """Properties a `$expand` adds; `$select` keeps them, as Graph does."""
    return [p.split("(")[0].rsplit("/", 1)[-1] for p in expand_parts(call.query.get("$expand", ""))]


def expand_parts(text: str) -> list[str]:
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


def check(fn: Callable[..., Any], call: Call, arg: Any) -> Any:
    try:
        return fn(call.ctx, arg)
    except ExchangeError as err:
        raise from_ews(err) from None


def readable(call: Call, folder: Folder) -> Any:
    r = targets.rights(call.ctx, folder)
    if not r.can_read_items:
        raise access_denied()
    return r


def delta_token(data: Mapping[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode()


def read_delta_token(raw: str) -> dict[str, Any]:
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
        out["@odata.nextLink"] = (
            base + "$skiptoken=" + delta_token({**state, "offset": offset + top})
        )
    else:
        done = {k: v for k, v in state.items() if k not in ("offset", "since")}
        out["@odata.deltaLink"] = base + "$deltatoken=" + delta_token(done)
    return out


def item_delta(
    call: Call,
    folder: Folder,
    *,
    wanted: Callable[[store_items.Item], bool],
    render: Callable[[targets.Target], Json],
    odata_type: str,
) -> Json:
    """One delta round over a folder's items (messages/delta, To Do tasks/delta): without a
    token every visible item, with one what changed since it, an item gone or no longer
    visible as `@removed`. A token of another folder or one that cannot be read is refused
    with SyncStateNotFound (400), as Graph does."""
    r = readable(call, folder)
    raw = call.query.get("$skiptoken") or call.query.get("$deltatoken")
    state = read_delta_token(raw) if raw else {}
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
        for item in targets.visible_items(call.ctx, folder, r):
            if wanted(item):
                rows.append(render(targets.Target(item, folder)))
    else:
        seen: dict[str, str] = {}
        for change in store_items.changes_after(call.lab.store, int(since), [folder.id]):
            if change.seq > seq:
                break
            seen[change.item_id] = change.change
        for item_id in seen:
            found = store_items.get_item(call.lab.store, item_id)
            if found is None or found.folder_id != folder.id or targets.hidden(call.ctx, found, r):
                rows.append(
                    {
                        "@odata.type": odata_type,
                        "id": graph_id(encode_id("item", item_id)),
                        "@removed": {"reason": "deleted"},
                    }
                )
            elif wanted(found):
                rows.append(render(targets.Target(found, folder)))
    return delta_page(
        call,
        rows,
        {"folder": folder.id, "seq": seq, "since": since, "offset": state.get("offset", 0)},
    )


def not_allowed() -> GraphError:
    return GraphError(
        405, "Request_BadRequest", "The HTTP method is not allowed for this resource."
    )
