"""Bulk actions on folders and items: EmptyFolder, MarkAsJunk, ExportItems and UploadItems.

ExportItems hands out an item as an opaque blob that only UploadItems of the same kind of
server reads back (Exchange's is a MAPI fast-transfer stream; the lab's is its own stored form
of the item, with attachments). A blob that is not the lab's is refused as ErrorCorruptData.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from exlab.core import items as store_items
from exlab.core.errors import denied
from exlab.core.store import Folder
from exlab.core.targets import (
    check_create,
    check_delete,
    check_edit,
    check_read,
    item_ews_id,
    rights,
)
from exlab.ews.ids import folder_id_elements, resolve_folder
from exlab.ews.items import per_item, resolve_item
from exlab.ews.soap import (
    Element,
    EwsContext,
    EwsError,
    SoapFault,
    error_message,
    m,
    operation,
    response,
    response_message,
    t,
)

EXPORT_FORMAT = "exlab-item/1"


def _delete_type(request: Element) -> str:
    mode = request.get("DeleteType", "")
    if mode not in ("HardDelete", "SoftDelete", "MoveToDeletedItems"):
        raise SoapFault(
            "ErrorSchemaValidation",
            f"The request failed schema validation: DeleteType '{mode}' is not valid.",
        )
    return mode


def _empty(ctx: EwsContext, folder: Folder, mode: str, *, subfolders: bool) -> None:
    store = ctx.lab.store
    folder_rights = rights(ctx, folder)
    if folder_rights.delete != "all" or not folder_rights.can_read_items:
        raise denied()
    now = ctx.lab.now()
    trash = store.distinguished_folder(folder.mailbox, "deleteditems")
    to_trash = mode == "MoveToDeletedItems" and trash is not None and trash.id != folder.id
    for item in store_items.items_in(store, folder.id):
        if to_trash and trash is not None:
            store_items.move_item(store, item, trash, now)
        else:
            store_items.delete_item(store, item, now)
    if subfolders:
        for child in store.children(folder.id):
            if not rights(ctx, child).folder_owner:
                raise denied()
            if to_trash and trash is not None:
                store.update_folder(child.id, parent_id=trash.id, now=now)
            else:
                store.delete_folder(child.id)


@operation("EmptyFolder", min_version="Exchange2010_SP1")
def empty_folder(ctx: EwsContext, request: Element) -> Element:
    """Every item of the folders goes (and their subfolders with DeleteSubFolders)."""
    mode = _delete_type(request)
    subfolders = request.get("DeleteSubFolders", "false").lower() == "true"
    messages = []
    for el in folder_id_elements(request.find(m("FolderIds"))):
        try:
            folder = resolve_folder(ctx, el)
            _empty(ctx, folder, mode, subfolders=subfolders)
            messages.append(response_message("EmptyFolder"))
        except EwsError as err:
            messages.append(error_message("EmptyFolder", err))
    return response("EmptyFolder", messages)


@operation("MarkAsJunk", min_version="Exchange2013")
def mark_as_junk(ctx: EwsContext, request: Element) -> Element:
    """Junk moves to Junk E-Mail, not junk back to the Inbox (with MoveItem), as Outlook's
    Junk button does; the answer names where the item went."""
    is_junk = request.get("IsJunk", "").lower() == "true"
    move = request.get("MoveItem", "").lower() == "true"
    ids = request.find(m("ItemIds"))
    if ids is None:
        raise SoapFault("ErrorSchemaValidation", "MarkAsJunk needs ItemIds")

    def work(el: Element) -> list[Element]:
        target = resolve_item(ctx, el)
        check_read(ctx, target)
        if not move:
            return []
        check_delete(ctx, target)
        name = "junkemail" if is_junk else "inbox"
        destination = ctx.lab.store.distinguished_folder(target.item.mailbox, name)
        if destination is None:
            raise EwsError("ErrorFolderNotFound", f"The mailbox has no {name} folder.")
        check_create(ctx, destination)
        item = target.item
        if destination.id != item.folder_id:
            item = store_items.move_item(ctx.lab.store, item, destination, ctx.lab.now())
        moved = Element(m("MovedItemId"), {"Id": item_ews_id(item), "ChangeKey": item.change_key})
        return [moved]

    return per_item("MarkAsJunk", ctx, list(ids), work)


# -- ExportItems / UploadItems --------------------------------------------------------------------


def _blob(ctx: EwsContext, item: store_items.Item) -> str:
    atts = store_items.attachments_of(ctx.lab.store, item.id)
    data = {
        "format": EXPORT_FORMAT,
        "class": item.item_class,
        "props": item.props,
        "attachments": [
            {
                "name": a.name,
                "content_type": a.content_type,
                "content_id": a.content_id,
                "is_inline": a.is_inline,
                "content": base64.b64encode(a.content).decode("ascii"),
            }
            for a in atts
        ],
    }
    return base64.b64encode(json.dumps(data, ensure_ascii=False).encode()).decode("ascii")


def _unblob(text: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error):
        data = None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise EwsError("ErrorCorruptData", "The data is corrupt.")
    if not isinstance(data.get("props"), dict) or not isinstance(data.get("class"), str):
        raise EwsError("ErrorCorruptData", "The data is corrupt.")
    return data


@operation("ExportItems", min_version="Exchange2010_SP1")
def export_items(ctx: EwsContext, request: Element) -> Element:
    ids = request.find(m("ItemIds"))
    if ids is None:
        raise SoapFault("ErrorSchemaValidation", "ExportItems needs ItemIds")

    def work(el: Element) -> list[Element]:
        target = resolve_item(ctx, el)
        if target.is_virtual:
            raise EwsError("ErrorInvalidOperation", "Occurrences cannot be exported.")
        check_read(ctx, target)
        item_id = Element(m("ItemId"), {"Id": item_ews_id(target.item)})
        item_id.set("ChangeKey", target.item.change_key)
        data = Element(m("Data"))
        data.text = _blob(ctx, target.item)
        return [item_id, data]

    return per_item("ExportItems", ctx, list(ids), work)


@operation("UploadItems", min_version="Exchange2010_SP1")
def upload_items(ctx: EwsContext, request: Element) -> Element:
    items = request.find(m("Items"))
    if items is None:
        raise SoapFault("ErrorSchemaValidation", "UploadItems needs Items")

    def work(el: Element) -> list[Element]:
        action = el.get("CreateAction", "")
        if action not in ("CreateNew", "Update", "UpdateOrCreate"):
            raise SoapFault("ErrorSchemaValidation", f"unknown CreateAction {action!r}")
        parent_el = el.find(t("ParentFolderId"))
        if parent_el is None:
            raise SoapFault("ErrorSchemaValidation", "UploadItems needs ParentFolderId")
        folder = resolve_folder(ctx, Element(t("FolderId"), dict(parent_el.attrib)))
        data = _unblob((el.findtext(t("Data")) or "").strip())
        id_el = el.find(t("ItemId"))
        existing = None
        if action != "CreateNew" and id_el is not None:
            try:
                existing = resolve_item(ctx, id_el)
            except EwsError as err:
                if action == "Update" or err.code != "ErrorItemNotFound":
                    raise
        elif action == "Update":
            raise EwsError("ErrorInvalidOperation", "Update needs the ItemId of the item.")
        now = ctx.lab.now()
        if existing is not None:
            if existing.folder.id != folder.id:
                raise EwsError("ErrorInvalidOperation", "The item is not in the parent folder.")
            check_edit(ctx, existing)
            item = existing.item
            item.props = dict(data["props"])
            item.item_class = str(data["class"])
            item = store_items.save_item(ctx.lab.store, item, now)
        else:
            check_create(ctx, folder)
            item = store_items.create_item(
                ctx.lab.store,
                folder,
                str(data["class"]),
                data["props"],
                created_by=ctx.user,
                now=now,
            )
            for att in data.get("attachments") or []:
                store_items.add_attachment(
                    ctx.lab.store,
                    item.id,
                    str(att.get("name", "")),
                    str(att.get("content_type", "")),
                    base64.b64decode(str(att.get("content", ""))),
                    now=now,
                    content_id=att.get("content_id"),
                    is_inline=bool(att.get("is_inline")),
                )
        answer = Element(m("ItemId"), {"Id": item_ews_id(item), "ChangeKey": item.change_key})
        return [answer]

    return per_item("UploadItems", ctx, list(items), work)
