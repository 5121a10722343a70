"""SyncFolderItems: incremental item sync from the folder change log.

The sync state is the change-log sequence number the client has seen (opaque base64, as
Exchange's is). A round collapses every item changed since then to its net effect: created
(not there at the state, there now), updated, deleted; at most MaxChangesReturned of them,
in log order, with ``IncludesLastItemInRange`` false while more remain. An empty state
means "nothing seen yet", so the first rounds list the folder's items as creates.
"""

from __future__ import annotations

import base64
import binascii
from xml.etree.ElementTree import Element

from med.lab import items as store_items
from med.lab.ews.ids import encode_id
from med.lab.ews.items import (
    Target,
    check_read,
    denied,
    folder_from,
    hidden,
    parse_shape,
    rights,
    write_item,
)
from med.lab.ews.soap import (
    EwsContext,
    EwsError,
    SoapFault,
    m,
    operation,
    response,
    response_message,
    sub,
    t,
    text_of,
)

_PREFIX = b"LABSYNC1:"


def encode_state(seq: int) -> str:
    return base64.b64encode(_PREFIX + str(seq).encode()).decode("ascii")


def decode_state(state: str) -> int:
    """The sequence number in a sync state; ErrorInvalidSyncStateData when it is not ours."""
    if not state:
        return 0
    try:
        raw = base64.b64decode(state, validate=True)
    except (binascii.Error, ValueError):
        raise EwsError("ErrorInvalidSyncStateData", "The sync state data is corrupt.") from None
    if not raw.startswith(_PREFIX) or not raw[len(_PREFIX) :].isdigit():
        raise EwsError("ErrorInvalidSyncStateData", "The sync state data is corrupt.")
    return int(raw[len(_PREFIX) :])


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
        since = decode_state(text_of(request.find(m("SyncState"))))
    except EwsError as err:
        from med.lab.ews.soap import error_message

        return response("SyncFolderItems", [error_message("SyncFolderItems", err)])
    ignore_el = request.find(m("Ignore"))
    ignored = set()
    if ignore_el is not None:
        from med.lab.ews.ids import decode_id

        for el in ignore_el:
            _, key = decode_id(el.get("Id"))
            ignored.add(key)
    store = ctx.lab.store
    changes = store_items.changes_after(store, since, [folder.id])
    head = store_items.last_seq(store)
    last_of: dict[str, int] = {}
    for change in changes:
        last_of[change.item_id] = change.seq
    ordered = sorted(last_of.items(), key=lambda kv: kv[1])
    out = Element(m("Changes"))
    emitted = 0
    prev_seq = since
    new_state = head
    complete = True
    for item_id, seq in ordered:
        if item_id in ignored:
            continue
        was = store_items.present_at(store, folder.id, item_id, since)
        item = store_items.get_item(store, item_id)
        now = item is not None and item.folder_id == folder.id
        if item is not None and now and hidden(ctx, item, r):
            now = False
        if not was and not now:
            continue
        if emitted >= max_changes:
            complete = False
            new_state = prev_seq
            break
        if was and not now:
            dele = sub(out, t("Delete"))
            sub(dele, t("ItemId"), Id=encode_id("item", item_id))
        else:
            assert item is not None
            target = Target(item, folder)
            check_read(ctx, target)
            holder = sub(out, t("Create" if not was else "Update"))
            write_item(ctx, holder, target, shape, r)
        emitted += 1
        prev_seq = seq
    message = response_message(
        "SyncFolderItems",
        [],
    )
    sub(message, m("SyncState"), encode_state(new_state))
    sub(message, m("IncludesLastItemInRange"), "true" if complete else "false")
    message.append(out)
    return response("SyncFolderItems", [message])
