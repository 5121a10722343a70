"""CreateAttachment, GetAttachment, DeleteAttachment: file attachments of items.

Rights follow the parent item: reading needs read access to it, adding or removing needs
the right to edit it. Each change gives the parent a new change key, which the response
returns as ``RootItemChangeKey`` (clients update their copy from it).
"""

from __future__ import annotations

import base64
import binascii
from xml.etree.ElementTree import Element

from exlab.core import items as store_items
from exlab.core.store import Folder
from exlab.core.targets import Target, check_edit, check_read, item_ews_id
from exlab.ews import itemxml
from exlab.ews.ids import decode_id, encode_id
from exlab.ews.items import per_item, resolve_item
from exlab.ews.soap import EwsContext, EwsError, SoapFault, m, operation, sub, t, text_of

MAX_ATTACHMENT = 8 * 1024 * 1024


def _attachment_target(
    ctx: EwsContext, att_id: str | None
) -> tuple[store_items.Attachment, Target]:
    kind, key = decode_id(att_id)
    if kind != "attachment":
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
        local = el.tag.rsplit("}", 1)[-1]
        if local != "FileAttachment":
            raise EwsError(
                "ErrorUnsupportedTypeForConversion",
                "Only file attachments are supported by this server.",
            )
        try:
            content = base64.b64decode(text_of(el.find(t("Content"))), validate=True)
        except (binascii.Error, ValueError):
            raise EwsError(
                "ErrorInvalidValueForProperty", "Attachment content is not base64."
            ) from None
        if len(content) > MAX_ATTACHMENT:
            raise EwsError("ErrorAttachmentSizeLimitExceeded", "The attachment is too large.")
        now = ctx.lab.now()
        att = store_items.add_attachment(
            ctx.lab.store,
            target.item.id,
            text_of(el.find(t("Name"))) or "attachment",
            text_of(el.find(t("ContentType"))) or "application/octet-stream",
            content,
            now=now,
            content_id=text_of(el.find(t("ContentId"))) or None,
            is_inline=text_of(el.find(t("IsInline"))).lower() == "true",
        )
        store_items.save_item(ctx.lab.store, target.item, now)
        box = Element(m("Attachments"))
        holder = sub(box, t("FileAttachment"))
        _root_id(holder, t("AttachmentId"), encode_id("attachment", att.id), target.item)
        return [box]

    return per_item("CreateAttachment", ctx, list(atts), work)


@operation("GetAttachment")
def get_attachment(ctx: EwsContext, request: Element) -> Element:
    ids = request.find(m("AttachmentIds"))
    if ids is None:
        raise SoapFault("ErrorSchemaValidation", "GetAttachment needs AttachmentIds")

    def work(el: Element) -> list[Element]:
        att, target = _attachment_target(ctx, el.get("Id"))
        check_read(ctx, target)
        box = Element(m("Attachments"))
        itemxml.write_attachment(
            box, att.as_dict(encode_id("attachment", att.id)), with_content=True
        )
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
