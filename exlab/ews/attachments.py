"""CreateAttachment, GetAttachment, DeleteAttachment: file and item attachments of items.

An item attachment (a message or event attached to a message) can carry attachments of its
own; GetAttachment reaches them, nested to any depth, by the ids the attached item lists.

Rights follow the parent item: reading needs read access to it, adding or removing needs
the right to edit it. Each change gives the parent a new change key, which the response
returns as ``RootItemChangeKey`` (clients update their copy from it).
"""

from __future__ import annotations

import base64
from typing import Any
from xml.etree.ElementTree import Element

from exlab.core import items as store_items
from exlab.core.items import element_for_class
from exlab.core.store import Folder
from exlab.core.targets import Target, check_edit, check_read, item_ews_id
from exlab.ews import itemxml
from exlab.ews.ids import decode_id, encode_id
from exlab.ews.items import parse_attachments, per_item, resolve_item
from exlab.ews.soap import EwsContext, EwsError, SoapFault, m, operation, sub, t

MAX_ATTACHMENT = 8 * 1024 * 1024


def _attachment_target(
    ctx: EwsContext, att_id: str | None
) -> tuple[store_items.Attachment, Target]:
    kind, key = decode_id(att_id)
    if kind != "attachment" or ":" in key:
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
    att = store_items.get_attachment(ctx.lab.store, key)
    if att is None:
        raise EwsError("ErrorItemNotFound", "The attachment was not found.")
    item = store_items.get_item(ctx.lab.store, att.item_id)
    if item is None:
        raise EwsError("ErrorItemNotFound", "The attachment's item was not found.")
    folder_key = item.folder_id
    if item.master_id is not None:
        master = store_items.get_item(ctx.lab.store, item.master_id)
        folder_key = master.folder_id if master else folder_key
    folder: Folder | None = ctx.lab.store.folder(folder_key)
    if folder is None:
        raise EwsError("ErrorItemNotFound", "The attachment's folder was not found.")
    return att, Target(item, folder)


def _root_id(parent: Element, tag: str, att_id: str, item: store_items.Item) -> Element:
    return sub(
        parent, tag, Id=att_id, RootItemId=item_ews_id(item), RootItemChangeKey=item.change_key
    )


def _view(att_id: str, att: dict[str, Any]) -> dict[str, Any]:
    """An attachment as `itemxml.write_attachment` writes it; an attached item comes with its
    element and properties, its own attachments listed under ids that reach them."""
    embedded = att.get("item")
    if not isinstance(embedded, dict):
        return att
    _, key = decode_id(att_id)
    nested = []
    for index, inner in enumerate(embedded.get("attachments", [])):
        content = base64.b64decode(inner.get("content") or "")
        nested.append(
            _view(
                encode_id("attachment", f"{key}:{index}"),
                {
                    "id": encode_id("attachment", f"{key}:{index}"),
                    "name": inner.get("name", ""),
                    "content_type": inner.get("content_type", ""),
                    "content_id": inner.get("content_id"),
                    "is_inline": bool(inner.get("is_inline")),
                    "size": len(content),
                    "content": content,
                    "kind": "item" if inner.get("item") else "file",
                    "item": inner.get("item"),
                },
            )
        )
    props = dict(embedded.get("props") or {})
    props["item:ItemClass"] = embedded.get("item_class", "IPM.Note")
    props["item:Attachments"] = nested
    props["item:HasAttachments"] = bool(nested)
    element = element_for_class(str(props["item:ItemClass"]))
    return {**att, "item_view": (element, props)}


def _locate(ctx: EwsContext, att_id: str | None) -> tuple[dict[str, Any], Target]:
    """An attachment (or one nested in an attached item, `key:index:...`) and its item."""
    kind, key = decode_id(att_id)
    if kind != "attachment":
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
    root_key, *path = key.split(":")
    att, target = _attachment_target(ctx, encode_id("attachment", root_key))
    view = _view(encode_id("attachment", root_key), att.as_dict(encode_id("attachment", root_key)))
    for step in path:
        inner = view.get("item_view", (None, {}))[1].get("item:Attachments", [])
        if not step.isdigit() or int(step) >= len(inner):
            raise EwsError("ErrorItemNotFound", "The attachment was not found.")
        view = inner[int(step)]
    return view, target


@operation("CreateAttachment")
def create_attachment(ctx: EwsContext, request: Element) -> Element:
    parent_el = request.find(m("ParentItemId"))
    atts = request.find(m("Attachments"))
    if parent_el is None or atts is None:
        raise SoapFault(
            "ErrorSchemaValidation", "CreateAttachment needs ParentItemId and Attachments"
        )
    parent_el.tag = t("ItemId")

    def work(el: Element) -> list[Element]:
        target = resolve_item(ctx, parent_el)
        if target.is_virtual:
            raise EwsError(
                "ErrorItemNotFound",
                "Attachments go on a modified occurrence, not on a plain one.",
            )
        check_edit(ctx, target)
        [new] = parse_attachments([el])
        if len(new.content) > MAX_ATTACHMENT:
            raise EwsError("ErrorAttachmentSizeLimitExceeded", "The attachment is too large.")
        now = ctx.lab.now()
        att = store_items.add_attachment(
            ctx.lab.store,
            target.item.id,
            new.name,
            new.content_type,
            new.content,
            now=now,
            content_id=new.content_id,
            is_inline=new.is_inline,
            embedded=new.item,
        )
        store_items.save_item(ctx.lab.store, target.item, now)
        box = Element(m("Attachments"))
        holder = sub(box, t("ItemAttachment" if new.item is not None else "FileAttachment"))
        _root_id(holder, t("AttachmentId"), encode_id("attachment", att.id), target.item)
        return [box]

    return per_item("CreateAttachment", ctx, list(atts), work)


@operation("GetAttachment")
def get_attachment(ctx: EwsContext, request: Element) -> Element:
    ids = request.find(m("AttachmentIds"))
    if ids is None:
        raise SoapFault("ErrorSchemaValidation", "GetAttachment needs AttachmentIds")

    def work(el: Element) -> list[Element]:
        view, target = _locate(ctx, el.get("Id"))
        check_read(ctx, target)
        box = Element(m("Attachments"))
        itemxml.write_attachment(box, view, with_content=True)
        return [box]

    return per_item("GetAttachment", ctx, list(ids), work)


@operation("DeleteAttachment")
def delete_attachment(ctx: EwsContext, request: Element) -> Element:
    ids = request.find(m("AttachmentIds"))
    if ids is None:
        raise SoapFault("ErrorSchemaValidation", "DeleteAttachment needs AttachmentIds")

    def work(el: Element) -> list[Element]:
        att, target = _attachment_target(ctx, el.get("Id"))
        check_edit(ctx, target)
        now = ctx.lab.now()
        store_items.remove_attachment(ctx.lab.store, att.id)
        store_items.save_item(ctx.lab.store, target.item, now)
        root = Element(m("RootItemId"))
        root.set("RootItemId", item_ews_id(target.item))
        root.set("RootItemChangeKey", target.item.change_key)
        return [root]

    return per_item("DeleteAttachment", ctx, list(ids), work)
