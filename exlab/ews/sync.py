"""SyncFolderItems: incremental item sync from the folder change log.

The sync state (opaque base64, as Exchange's is) says what the client knows:

- ``b``: a change-log position; the client knows every item as it was there ...
- ``h``, ``c``: ... except while it pages through a window of changes ``(b, h]``, items in
  that window are reported in item-id order and ``c`` is the last id reported;
- ``e``: items reported while they were changing again (their log has entries after ``h``)
  are known as of the position given here.

Each reported item is reported with its current content, as its net change against what
the client knows (created, updated, deleted), at most MaxChangesReturned per call;
``IncludesLastItemInRange`` stays false until the window is done and nothing newer is
waiting. An empty state knows nothing, so the first calls list the folder as creates.
A client that applies every answer thus ends with exactly the folder's items.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

from exlab.core import items as store_items
from exlab.core.errors import denied
from exlab.core.targets import Target, check_read, hidden, rights
from exlab.ews.ids import decode_id, encode_id
from exlab.ews.items import folder_from, parse_shape, write_item
from exlab.ews.soap import (
    EwsContext,
    EwsError,
    SoapFault,
    error_message,
    m,
    operation,
    response,
    response_message,
    sub,
    t,
    text_of,
)

_PREFIX = b"LABSYNC2:"


@dataclass
class SyncState:
    base: int = 0
    window_end: int | None = None
    cursor: str = ""
    known_at: dict[str, int] = field(default_factory=dict)


def encode_state(state: SyncState) -> str:
    data = {"b": state.base, "h": state.window_end, "c": state.cursor, "e": state.known_at}
    raw = _PREFIX + json.dumps(data, separators=(",", ":")).encode()
    return base64.b64encode(raw).decode("ascii")


def decode_state(text: str) -> SyncState:
    """The state a client sent back; ErrorInvalidSyncStateData when it is not ours."""
    if not text:
        return SyncState()
    bad = EwsError("ErrorInvalidSyncStateData", "The sync state data is corrupt.")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad from None
    if not raw.startswith(_PREFIX):
        raise bad
    try:
        data = json.loads(raw[len(_PREFIX) :])
        state = SyncState(
            int(data["b"]),
            None if data["h"] is None else int(data["h"]),
            str(data["c"]),
            {str(k): int(v) for k, v in dict(data["e"]).items()},
        )
    except (ValueError, KeyError, TypeError):
        raise bad from None
    if state.base < 0 or (state.window_end is not None and state.window_end < state.base):
        raise bad
    return state


def _candidates(ctx: EwsContext, folder_id: str, state: SyncState) -> list[tuple[str, int]]:
    """(item id, last log position) of items changed in the window after the cursor."""
    assert state.window_end is not None
    rows = ctx.lab.store.query(
        "SELECT item_id, MAX(seq) AS last FROM item_changes WHERE folder_id = ? AND seq > ?"
        " AND seq <= ? AND item_id > ? GROUP BY item_id ORDER BY item_id",
        (folder_id, state.base, state.window_end, state.cursor),
    )
    return [(str(r["item_id"]), int(r["last"])) for r in rows]


def _last_entry(ctx: EwsContext, folder_id: str, item_id: str) -> int:
    row = ctx.lab.store.query_one(
        "SELECT MAX(seq) AS last FROM item_changes WHERE folder_id = ? AND item_id = ?",
        (folder_id, item_id),
    )
    return 0 if row is None or row["last"] is None else int(row["last"])


def _ignorable(value: str | None) -> set[str]:
    """The item key an Ignore entry names; an id that is not one of ours names nothing (Exchange
    skips ids it does not know and still answers with a SyncState)."""
    try:
        kind, key = decode_id(value)
    except EwsError:
        return set()
    return {key} if kind == "item" else set()


@operation("SyncFolderItems")
def sync_folder_items(ctx: EwsContext, request: Element) -> Element:
    shape = parse_shape(request.find(m("ItemShape")))
    try:
        max_changes = int(text_of(request.find(m("MaxChangesReturned")), "512"))
    except ValueError:
        raise SoapFault("ErrorSchemaValidation", "MaxChangesReturned is not a number") from None
    if not 1 <= max_changes <= 512:
        raise SoapFault("ErrorSchemaValidation", "MaxChangesReturned must be 1..512")
    try:
        folder = folder_from(ctx, request.find(m("SyncFolderId")))
        if folder is None:
            raise SoapFault("ErrorSchemaValidation", "SyncFolderItems needs SyncFolderId")
        r = rights(ctx, folder)
        if not r.can_read_items:
            raise denied()
        state = decode_state(text_of(request.find(m("SyncState"))))
        ignored: set[str] = set()
        ignore_el = request.find(m("Ignore"))
        if ignore_el is not None:
            for el in ignore_el:
                ignored.update(_ignorable(el.get("Id")))
    except EwsError as err:
        return response("SyncFolderItems", [error_message("SyncFolderItems", err)])
    store = ctx.lab.store
    out = Element(m("Changes"))
    emitted = 0
    complete = False
    while emitted < max_changes:
        head = store_items.last_seq(store)
        if state.window_end is None:
            if head <= state.base:
                complete = True
                break
            state.window_end, state.cursor = head, ""
        candidates = _candidates(ctx, folder.id, state)
        if not candidates:
            # Window done: everything up to its end is known (bar the recorded exceptions).
            state.base, state.window_end, state.cursor = state.window_end, None, ""
            state.known_at = {k: v for k, v in state.known_at.items() if v > state.base}
            continue
        for item_id, last in candidates:
            if emitted >= max_changes:
                break
            state.cursor = item_id
            known = state.known_at.get(item_id, state.base)
            if item_id in ignored or last <= known:
                continue  # asked to ignore, or already reported as it is in this window
            state.known_at.pop(item_id, None)
            was = store_items.present_at(
                store, folder.id, item_id, known, hide_private=not r.view_private
            )
            item = store_items.get_item(store, item_id)
            now = item is not None and item.folder_id == folder.id
            if item is not None and now and hidden(ctx, item, r):
                now = False
            if _last_entry(ctx, folder.id, item_id) > state.window_end:
                # Changed again after the window: what the client now knows is today's state.
                state.known_at[item_id] = store_items.last_seq(store)
            if not was and not now:
                continue
            if was and not now:
                dele = sub(out, t("Delete"))
                sub(dele, t("ItemId"), Id=encode_id("item", item_id))
            else:
                assert item is not None
                target = Target(item, folder)
                check_read(ctx, target)
                holder = sub(out, t("Update" if was else "Create"))
                write_item(ctx, holder, target, shape, r)
            emitted += 1
    if emitted >= max_changes and not complete:
        # Full page: done only if the window is finished and nothing newer waits.
        if state.window_end is not None and not _candidates(ctx, folder.id, state):
            state.base, state.window_end, state.cursor = state.window_end, None, ""
            state.known_at = {k: v for k, v in state.known_at.items() if v > state.base}
        complete = state.window_end is None and store_items.last_seq(store) <= state.base
    message = response_message("SyncFolderItems", [])
    sub(message, m("SyncState"), encode_state(state))
    sub(message, m("IncludesLastItemInRange"), "true" if complete else "false")
    message.append(out)
    return response("SyncFolderItems", [message])
