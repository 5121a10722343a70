"""Subscribe (pull, streaming), GetEvents, GetStreamingEvents, Unsubscribe.

Events come from the item change log (``exlab.core.items``): an item coming into a folder is a
CreatedEvent (plus NewMailEvent for delivered mail), a move a MovedEvent, a change a
ModifiedEvent, a removal a DeletedEvent. A watermark is a log position. Streaming answers
are a sequence of complete SOAP envelopes in one HTTP response (``stream_envelopes``);
through the plain request path the call waits for the first events and answers them with
``ConnectionStatus`` Closed, which clients treat as "reconnect".
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element

from exlab.core import items as store_items
from exlab.core.errors import denied
from exlab.core.store import Store, new_key
from exlab.core.targets import hidden, rights
from exlab.ews.ids import decode_id, encode_id, resolve_folder
from exlab.ews.soap import (
    EwsContext,
    EwsError,
    SoapFault,
    envelope,
    error_message,
    m,
    operation,
    parse_request,
    response,
    response_message,
    sub,
    t,
    text_of,
)

if TYPE_CHECKING:
    from exlab.lab import Lab


EVENT_TYPES = frozenset(
    {
        "CopiedEvent",
        "CreatedEvent",
        "DeletedEvent",
        "ModifiedEvent",
        "MovedEvent",
        "NewMailEvent",
        "FreeBusyChangedEvent",
    }
)
_MARK = b"LABWM1:"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
# How long one plain GetStreamingEvents call waits for a first event at most.
STREAM_WAIT_CAP_S = 30.0
POLL_S = 0.1


def encode_watermark(seq: int) -> str:
    return base64.b64encode(_MARK + str(seq).encode()).decode("ascii")


def decode_watermark(value: str) -> int:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EwsError("ErrorInvalidWatermark", "The watermark is invalid.") from None
    if not raw.startswith(_MARK) or not raw[len(_MARK) :].isdigit():
        raise EwsError("ErrorInvalidWatermark", "The watermark is invalid.")
    return int(raw[len(_MARK) :])


@dataclass(frozen=True)
class Subscription:
    id: str
    owner: str
    kind: str
    folder_ids: list[str] | None
    mailbox: str
    event_types: frozenset[str]
    watermark: int


def load_subscription(store: Store, ews_id: str, user: str) -> Subscription:
    try:
        kind, key = decode_id(ews_id)
    except EwsError:
        raise EwsError("ErrorInvalidSubscription", "The subscription id is invalid.") from None
    if kind != "subscription":
        raise EwsError("ErrorInvalidSubscription", "The subscription id is invalid.")
    row = store.query_one("SELECT * FROM item_subscriptions WHERE id = ?", (key,))
    if row is None:
        raise EwsError("ErrorSubscriptionNotFound", "The subscription was not found.")
    if row["owner"] != user:
        raise EwsError("ErrorSubscriptionAccessDenied", "The subscription belongs to another user.")
    return Subscription(
        row["id"],
        row["owner"],
        row["kind"],
        json.loads(row["folder_ids"]) if row["folder_ids"] else None,
        row["mailbox"],
        frozenset(json.loads(row["event_types"])),
        int(row["watermark"]),
    )


def _push_target(req: Element) -> tuple[str, int]:
    """(URL, StatusFrequency) of a push subscription. The lab calls loopback listeners only."""
    url = text_of(req.find(t("URL")))
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in LOOPBACK_HOSTS:
        raise EwsError(
            "ErrorInvalidPushSubscriptionUrl",
            "The push subscription URL must be an http(s) URL on this machine's loopback.",
        )
    try:
        minutes = int(text_of(req.find(t("StatusFrequency")), "30"))
    except ValueError:
        raise SoapFault("ErrorSchemaValidation", "StatusFrequency must be a number") from None
    if not 1 <= minutes <= 1440:
        raise EwsError(
            "ErrorInvalidSubscriptionRequest", "StatusFrequency must be 1 to 1440 minutes."
        )
    return url, minutes


@operation("Subscribe")
def subscribe(ctx: EwsContext, request: Element) -> Element:
    kind, req = next(
        (
            (name, found)
            for name, tag in (
                ("pull", "PullSubscriptionRequest"),
                ("streaming", "StreamingSubscriptionRequest"),
                ("push", "PushSubscriptionRequest"),
            )
            if (found := request.find(m(tag))) is not None
        ),
        ("", None),
    )
    if req is None:
        raise SoapFault("ErrorSchemaValidation", "Subscribe needs a subscription request")
    types = [text_of(e) for e in req.findall(f"{t('EventTypes')}/{t('EventType')}")]
    if not types or any(e not in EVENT_TYPES for e in types):
        raise SoapFault("ErrorSchemaValidation", "EventTypes must name known event types")
    try:
        all_folders = req.get("SubscribeToAllFolders", "false").lower() == "true"
        folder_ids: list[str] | None = None
        mailbox = ctx.user
        if not all_folders:
            container = req.find(t("FolderIds"))
            if container is None or len(container) == 0:
                raise SoapFault("ErrorSchemaValidation", "FolderIds is required")
            folder_ids = []
            for el in container:
                folder = resolve_folder(ctx, el)
                if not rights(ctx, folder).can_read_items:
                    raise denied()
                folder_ids.append(folder.id)
                mailbox = folder.mailbox
        start = store_items.last_seq(ctx.lab.store)
        wm_el = req.find(t("Watermark"))
        if kind in ("pull", "push") and wm_el is not None and text_of(wm_el):
            start = decode_watermark(text_of(wm_el))
        timeout = int(text_of(req.find(t("Timeout")), "30") or 30)
        push_url, status_minutes = _push_target(req) if kind == "push" else (None, None)
    except EwsError as err:
        return response("Subscribe", [error_message("Subscribe", err)])
    except ValueError:
        raise SoapFault("ErrorSchemaValidation", "Timeout must be a number") from None
    key = new_key()
    with ctx.lab.store.transaction() as conn:
        conn.execute(
            "INSERT INTO item_subscriptions (id, owner, kind, folder_ids, mailbox, event_types,"
            " watermark, timeout_minutes, push_url, status_minutes)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                ctx.user,
                kind,
                json.dumps(folder_ids) if folder_ids is not None else None,
                mailbox,
                json.dumps(types),
                start,
                timeout,
                push_url,
                status_minutes,
            ),
        )
    if kind == "streaming":
        ctx.keep_affinity()
    children = [Element(m("SubscriptionId"))]
    children[0].text = encode_id("subscription", key)
    if kind in ("pull", "push"):
        wm = Element(m("Watermark"))
        wm.text = encode_watermark(start)
        children.append(wm)
    return response("Subscribe", [response_message("Subscribe", children)])


@operation("Unsubscribe")
def unsubscribe(ctx: EwsContext, request: Element) -> Element:
    try:
        sub_ = load_subscription(
            ctx.lab.store, text_of(request.find(m("SubscriptionId"))), ctx.user
        )
    except EwsError as err:
        return response("Unsubscribe", [error_message("Unsubscribe", err)])
    with ctx.lab.store.transaction() as conn:
        conn.execute("DELETE FROM item_subscriptions WHERE id = ?", (sub_.id,))
    return response("Unsubscribe", [response_message("Unsubscribe")])


def _event_name(change: store_items.Change) -> list[str]:
    if change.change == "in":
        if change.event == "moved":
            return ["MovedEvent"]
        if change.event == "copied":
            return ["CopiedEvent"]
        if change.event == "newmail":
            return ["CreatedEvent", "NewMailEvent"]
        return ["CreatedEvent"]
    if change.change == "mod":
        return ["ModifiedEvent"]
    if change.event == "moved":
        return []  # reported once, by the folder it went to
    return ["DeletedEvent"]


def _wanted(ctx_user: str, store: Store, sub_: Subscription, change: store_items.Change) -> bool:
    if sub_.folder_ids is None:
        folder = store.folder(change.folder_id)
        return folder is not None and folder.mailbox == sub_.mailbox
    return change.folder_id in sub_.folder_ids or (
        change.event == "moved" and change.old_folder_id in sub_.folder_ids
    )


def collect(
    ctx: EwsContext, sub_: Subscription, after: int, limit: int = 50
) -> tuple[list[tuple[str, store_items.Change]], int, bool]:
    """(events, new watermark, more events) for a subscription after a log position."""
    store = ctx.lab.store
    changes = store_items.changes_after(store, after)
    events: list[tuple[str, store_items.Change]] = []
    last = after
    more = False
    for change in changes:
        if len(events) >= limit:
            more = True
            break
        last = change.seq
        if not _wanted(ctx.user, store, sub_, change):
            continue
        folder = store.folder(change.folder_id)
        if folder is not None and not rights(ctx, folder).view_private and change.private:
            continue  # a private item the subscriber may not see, then or now
        item = store_items.get_item(store, change.item_id)
        if item is not None:
            folder = store.folder(item.folder_id)
            if folder is not None and hidden(ctx, item, rights(ctx, folder)):
                continue
        for name in _event_name(change):
            if name in sub_.event_types:
                events.append((name, change))
    if not changes:
        last = max(after, store_items.last_seq(store))
    return events, last, more


def _folder_el(parent: Element, tag: str, store: Store, folder_id: str) -> None:
    folder = store.folder(folder_id)
    sub(
        parent,
        t(tag),
        Id=encode_id("folder", folder_id),
        ChangeKey=folder.change_key if folder else "",
    )


def notification(
    ctx: EwsContext,
    sub_: Subscription,
    previous: int,
    events: list[tuple[str, store_items.Change]],
    last: int,
    more: bool,
    tag: str | None = None,
) -> Element:
    """A notification: ``m:Notification`` in GetEvents, ``t:Notification`` when streaming."""
    store = ctx.lab.store
    note = Element(tag or m("Notification"))
    sub(note, t("SubscriptionId"), encode_id("subscription", sub_.id))
    if sub_.kind in ("pull", "push"):
        sub(note, t("PreviousWatermark"), encode_watermark(previous))
    sub(note, t("MoreEvents"), "true" if more else "false")
    if not events:
        status = sub(note, t("StatusEvent"))
        if sub_.kind in ("pull", "push"):
            sub(status, t("Watermark"), encode_watermark(last))
        return note
    for name, change in events:
        ev = sub(note, t(name))
        if sub_.kind in ("pull", "push"):
            sub(ev, t("Watermark"), encode_watermark(change.seq))
        sub(ev, t("TimeStamp"), change.at)
        item = store_items.get_item(store, change.item_id)
        item_id = encode_id("item", change.item_id)
        sub(ev, t("ItemId"), Id=item_id, ChangeKey=item.change_key if item else "")
        _folder_el(ev, "ParentFolderId", store, change.folder_id)
        if name == "MovedEvent" and change.old_folder_id:
            sub(ev, t("OldItemId"), Id=encode_id("item", change.old_item_id or change.item_id))
            _folder_el(ev, "OldParentFolderId", store, change.old_folder_id)
        elif name == "CopiedEvent":
            sub(ev, t("OldItemId"), Id=item_id)
            _folder_el(ev, "OldParentFolderId", store, change.folder_id)
        elif name == "ModifiedEvent" and item is not None:
            pass
    return note


@operation("GetEvents")
def get_events(ctx: EwsContext, request: Element) -> Element:
    try:
        sub_ = load_subscription(
            ctx.lab.store, text_of(request.find(m("SubscriptionId"))), ctx.user
        )
        if sub_.kind != "pull":
            raise EwsError("ErrorInvalidSubscription", "GetEvents needs a pull subscription.")
        wm_text = text_of(request.find(m("Watermark")))
        after = decode_watermark(wm_text) if wm_text else sub_.watermark
    except EwsError as err:
        return response("GetEvents", [error_message("GetEvents", err)])
    events, last, more = collect(ctx, sub_, after)
    with ctx.lab.store.transaction() as conn:
        conn.execute("UPDATE item_subscriptions SET watermark = ? WHERE id = ?", (last, sub_.id))
    note = notification(ctx, sub_, after, events, last, more)
    return response("GetEvents", [response_message("GetEvents", [note])])


def _streaming_message(
    ctx: EwsContext, subs: list[Subscription], positions: dict[str, int], status: str
) -> tuple[Element, bool]:
    """One GetStreamingEvents response (notifications since ``positions``); advances them."""
    notes = Element(m("Notifications"))
    found = False
    for sub_ in subs:
        events, last, more = collect(ctx, sub_, positions[sub_.id])
        if events:
            notes.append(
                notification(ctx, sub_, positions[sub_.id], events, last, more, t("Notification"))
            )
            found = True
        positions[sub_.id] = last
    children = [notes] if found else []
    conn_status = Element(m("ConnectionStatus"))
    conn_status.text = status
    children.append(conn_status)
    return response("GetStreamingEvents", [response_message("GetStreamingEvents", children)]), found


def _streaming_setup(ctx: EwsContext, request: Element) -> tuple[list[Subscription], float]:
    ids = [text_of(e) for e in request.findall(f"{m('SubscriptionIds')}/{t('SubscriptionId')}")]
    if not ids:
        raise SoapFault("ErrorSchemaValidation", "SubscriptionIds is required")
    subs = [load_subscription(ctx.lab.store, i, ctx.user) for i in ids]
    for s in subs:
        if s.kind != "streaming":
            raise EwsError("ErrorInvalidSubscription", "Not a streaming subscription.")
    try:
        minutes = int(text_of(request.find(m("ConnectionTimeout")), "30"))
    except ValueError:
        raise SoapFault("ErrorSchemaValidation", "ConnectionTimeout must be 1..30") from None
    if not 1 <= minutes <= 30:
        raise SoapFault("ErrorSchemaValidation", "ConnectionTimeout must be 1..30")
    return subs, minutes * 60.0


def _save_positions(ctx: EwsContext, positions: dict[str, int]) -> None:
    with ctx.lab.store.transaction() as conn:
        for key, seq in positions.items():
            conn.execute("UPDATE item_subscriptions SET watermark = ? WHERE id = ?", (seq, key))


@operation("GetStreamingEvents", transaction=False)
def get_streaming_events(ctx: EwsContext, request: Element) -> Element:
    """The plain-path variant: wait for the first events, answer them and close."""
    try:
        subs, timeout = _streaming_setup(ctx, request)
    except EwsError as err:
        return response("GetStreamingEvents", [error_message("GetStreamingEvents", err)])
    positions = {s.id: s.watermark for s in subs}
    deadline = time.monotonic() + min(timeout, STREAM_WAIT_CAP_S)
    while True:
        message, found = _streaming_message(ctx, subs, positions, "Closed")
        if found or time.monotonic() >= deadline:
            _save_positions(ctx, positions)
            return message
        time.sleep(POLL_S)


def streaming_answer(lab: Lab, user: str, body: bytes) -> Iterator[bytes] | None:
    """The chunks to stream for a GetStreamingEvents request, or None for any other request.

    Lets an HTTP layer answer GetStreamingEvents with a chunked response (as Exchange does)
    and everything else through ``soap.handle``. Malformed requests give None, so the plain
    path answers them with its fault.
    """
    try:
        parsed = parse_request(body)
    except SoapFault:
        return None
    if parsed.operation.tag != m("GetStreamingEvents"):
        return None
    ctx = EwsContext(lab=lab, user=user.lower(), version=parsed.version, header=parsed.header)
    return stream_envelopes(ctx, parsed.operation)


def stream_envelopes(
    ctx: EwsContext, request: Element, *, heartbeat_s: float = 5.0, poll_s: float = POLL_S
) -> Iterator[bytes]:
    """GetStreamingEvents as Exchange streams it: one envelope per batch of events,
    a heartbeat envelope when idle, and a last one with ConnectionStatus Closed.

    For an HTTP layer that can stream (chunked transfer); each yielded chunk is a complete
    SOAP envelope.
    """
    try:
        subs, timeout = _streaming_setup(ctx, request)
    except EwsError as err:
        yield envelope(response("GetStreamingEvents", [error_message("GetStreamingEvents", err)]))
        return
    positions = {s.id: s.watermark for s in subs}
    deadline = time.monotonic() + timeout
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if ctx.lab.store.closed or ctx.lab.knobs.outage:
            return  # shutting down or out of service: end the stream, as a server going away does
        message, found = _streaming_message(ctx, subs, positions, "OK")
        if found:
            _save_positions(ctx, positions)
            yield envelope(message)
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= heartbeat_s:
            yield envelope(message)
            quiet_since = time.monotonic()
        time.sleep(poll_s)
    message, _ = _streaming_message(ctx, subs, positions, "Closed")
    _save_positions(ctx, positions)
    yield envelope(message)
