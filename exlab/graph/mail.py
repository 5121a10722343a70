"""Mail folders and messages of the Graph face: list, read, draft, change, move, send (also on
behalf), reply/forward, attachments, MIME, and messages/delta."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from fastapi.responses import Response

from exlab.core import delivery, targets, view
from exlab.core import items as store_items
from exlab.core.errors import ExchangeError
from exlab.core.ids import encode_id
from exlab.core.mime import to_mime
from exlab.core.store import Folder
from exlab.graph import odata
from exlab.graph.calendar import event_json
from exlab.graph.convert import (
    GraphInputError,
    attachment_out,
    graph_id,
    message_in,
    message_out,
)
from exlab.graph.core import (
    Call,
    GraphError,
    Json,
    access_denied,
    body_json,
    check,
    collection,
    decode,
    expand_parts,
    expanded_names,
    folder_gid,
    from_ews,
    item_delta,
    need,
    resolve_folder,
    resolve_item,
    target_gid,
)
from exlab.graph.extended import expanded


def is_mail_folder(folder: Folder) -> bool:
    cls = folder.folder_class or "IPF.Note"
    return (cls == "IPF.Note" or cls.startswith("IPF.Note.")) and "Voicemail" not in cls


def folder_json(call: Call, folder: Folder) -> Json:
    store = call.lab.store
    children = [c for c in store.children(folder.id) if is_mail_folder(c)]
    r = targets.rights(call.ctx, folder)
    items = targets.visible_items(call.ctx, folder, r) if r.can_read_items else []
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
        if is_mail_folder(f) and targets.rights(call.ctx, f).folder_visible
    ]
    return collection(call, rows, context="mailFolders")


def create_folder(call: Call, parent: Folder) -> tuple[int, Json]:
    need(call, "Mail", write=True)
    body = body_json(call)
    name = str(body.get("displayName", "")).strip()
    if not name:
        raise GraphError(400, "ErrorInvalidRequest", "displayName is required.")
    if not targets.rights(call.ctx, parent).create_subfolders:
        raise access_denied()
    store = call.lab.store
    if any(c.display_name.lower() == name.lower() for c in store.children(parent.id)):
        raise GraphError(
            409, "ErrorFolderExists", "A folder with the specified name already exists."
        )
    folder = store.add_folder(
        call.mailbox, name, parent_id=parent.id, folder_class="IPF.Note", now=call.lab.now()
    )
    return 201, folder_json(call, folder)


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


def message_json(call: Call, target: targets.Target) -> Json:
    _, p = view.output_props(call.ctx, target)
    out = message_out(p, target_gid(target), folder_gid(target.folder), target.item.change_key)
    for prefix, odata_type, meeting_type in MEETING_MESSAGE_TYPES:
        if target.item.item_class.startswith(prefix):
            out = {"@odata.type": odata_type, **out, "meetingMessageType": meeting_type}
            break
    for part in expand_parts(call.query.get("$expand", "")):
        expand_message(call, target, p, out, part)
    return out


def expand_message(
    call: Call, target: targets.Target, p: Mapping[str, Any], out: Json, part: str
) -> None:
    """The `$expand`s clients use on messages: MAPI properties by tag (sensitivity, ...)
    and a meeting message's event."""
    try:
        extended_part = expanded(part, p)
    except GraphInputError as exc:
        raise GraphError(400, exc.code, exc.message) from None
    if extended_part is not None:
        name, values = extended_part
        out[name] = values
    elif part in ("microsoft.graph.eventMessage/event", "event"):
        cal_key = target.item.props.get("lab:calendar_item")
        item = store_items.get_item(call.lab.store, str(cal_key)) if cal_key else None
        folder = call.lab.store.folder(item.folder_id) if item else None
        if item is not None and folder is not None:
            event_target = targets.Target(item, folder)
            if not targets.hidden(call.ctx, item, targets.rights(call.ctx, folder)):
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
        r = targets.rights(call.ctx, folder)
        if not r.can_read_items:
            if len(folders) == 1:
                raise access_denied()
            continue
        for item in targets.visible_items(call.ctx, folder, r):
            if is_message(item):
                rows.append(message_json(call, targets.Target(item, folder)))
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
    return [f for f in out if targets.rights(call.ctx, f).can_read_items]


def get_message(call: Call, gid: str) -> Json:
    need(call, "Mail")
    target = resolve_item(call, gid)
    check(targets.check_read, call, target)
    keep = ["id", *expanded_names(call)]
    return odata.select(message_json(call, target), call.query.get("$select"), keep)


def create_message(call: Call, folder: Folder) -> tuple[int, Json]:
    """A draft in `folder` (Drafts by default), From = the mailbox unless given."""
    need(call, "Mail", write=True)
    try:
        props = message_in(body_json(call), creating=True)
    except GraphInputError as exc:
        raise GraphError(400, exc.code, exc.message) from None
    check(targets.check_create, call, folder)
    args = delivery.CreateArgs("SaveOnly", "SendToNone", folder)
    delivery.prepare_message(call.ctx, props, folder, args)
    item = store_items.create_item(
        call.lab.store, folder, "IPM.Note", props, created_by=call.ctx.user, now=call.lab.now()
    )
    add_attachments(call, item, body_json(call).get("attachments"))
    return 201, message_json(call, targets.Target(item, folder))


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


def move_or_copy(call: Call, gid: str, copy: bool) -> tuple[int, Json]:
    need(call, "Mail", write=True)
    target = resolve_item(call, gid)
    destination = str(body_json(call).get("destinationId", ""))
    if not destination:
        raise GraphError(400, "ErrorInvalidRequest", "destinationId is required.")
    dest = resolve_folder(call, destination)
    check(targets.check_read, call, target)
    if not copy:
        check(targets.check_delete, call, target)
    check(targets.check_create, call, dest)
    now = call.lab.now()
    if copy:
        item = store_items.copy_item(call.lab.store, target.item, dest, by=call.ctx.user, now=now)
    else:
        item = store_items.move_item(call.lab.store, target.item, dest, now)
    return 201, message_json(call, targets.Target(item, dest))


def send_draft(call: Call, gid: str) -> tuple[int, None]:
    need(call, "Mail", send=True)
    target = resolve_item(call, gid)
    check(targets.check_edit, call, target)
    if not is_message(target.item) or not target.item.props.get("item:IsDraft", True):
        raise GraphError(400, "ErrorInvalidRequest", "Only drafts can be sent.")
    try:
        delivery.send_existing(call.ctx, target.item, target.folder, save=True, saved=None)
    except ExchangeError as err:
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
    deliver(
        call,
        props,
        save=bool(body.get("saveToSentItems", True)),
        add=lambda item: add_attachments(call, item, message.get("attachments")),
    )
    return 202, None


def deliver(
    call: Call,
    props: dict[str, Any],
    *,
    save: bool,
    add: Callable[[store_items.Item], None] | None = None,
) -> None:
    """Send `props` from the mailbox in the path, keeping copies as Exchange does."""
    props.setdefault("message:From", {"email": call.mailbox})
    # The sent copy goes to the From mailbox's Sent Items when we may write there, else to
    # our own (Exchange's default for a delegate sending on behalf).
    sent_items = call.lab.store.distinguished_folder(call.mailbox, "sentitems")
    if sent_items is None or not targets.rights(call.ctx, sent_items).create_items:
        sent_items = call.lab.store.distinguished_folder(call.ctx.user, "sentitems")
    if sent_items is None:
        raise GraphError(404, "ErrorItemNotFound", "The mailbox has no Sent Items folder.")
    disposition = "SendAndSaveCopy" if save else "SendOnly"
    args = delivery.CreateArgs(disposition, "SendToNone", sent_items)
    now = call.lab.now()
    try:
        delivery.prepare_message(call.ctx, props, sent_items, args)
        if not delivery.recipients_of(props):
            raise GraphError(400, "ErrorInvalidRecipients", "At least one recipient isn't valid.")
        item = store_items.create_item(
            call.lab.store, sent_items, "IPM.Note", props, created_by=call.ctx.user, now=now
        )
        if add is not None:
            add(item)
        delivery.send_message(call.ctx, item.props, "IPM.Note", [], now, attachments_from=item.id)
        owner = str(item.props["message:From"].get("email", "")).lower()
        owner_sent = call.lab.store.distinguished_folder(owner, "sentitems")
        if save and owner != call.ctx.user and owner_sent and owner_sent.id != sent_items.id:
            # As the EWS face: sent on behalf, a copy lands in the owner's Sent Items too,
            # whatever the delegate's rights there (MessageCopyForSendOnBehalfEnabled).
            store_items.copy_item(call.lab.store, item, owner_sent, by=call.ctx.user, now=now)
        if not save:
            store_items.delete_item(call.lab.store, item, now)
    except ExchangeError as err:
        raise from_ews(err) from None


REPLY_PREFIX = {"reply": "AW: ", "replyAll": "AW: ", "forward": "WG: "}


def reply_or_forward(call: Call, gid: str, action: str) -> tuple[int, None]:
    """`reply`, `replyAll`, `forward`: a new message quoting the original, sent from the
    mailbox in the path (on behalf of its owner when a delegate answers)."""
    need(call, "Mail", send=True)
    target = resolve_item(call, gid)
    check(targets.check_read, call, target)
    body = call.body if isinstance(call.body, Mapping) else {}
    original = target.item.props
    sender = original.get("message:From") or original.get("message:Sender") or {}
    me = call.mailbox
    if action == "forward":
        try:
            to = [
                *message_in({"toRecipients": body.get("toRecipients") or []}, creating=True).get(
                    "message:ToRecipients", []
                )
            ]
        except GraphInputError as exc:
            raise GraphError(400, exc.code, exc.message) from None
        cc: list[dict[str, Any]] = []
    else:
        to = [sender] if sender else []
        cc = []
        if action == "replyAll":
            to += [
                r
                for r in original.get("message:ToRecipients", [])
                if str(r.get("email", "")).lower() != me
            ]
            cc = [
                r
                for r in original.get("message:CcRecipients", [])
                if str(r.get("email", "")).lower() != me
            ]
    subject = str(original.get("item:Subject", ""))
    prefix = REPLY_PREFIX[action]
    if not subject.upper().startswith(("AW:", "RE:", "WG:", "FW:")):
        subject = prefix + subject
    quoted_text = str((original.get("item:Body") or {}).get("text", ""))
    comment = str(body.get("comment") or "")
    props: dict[str, Any] = {
        "item:Subject": subject,
        "item:Body": {"type": "Text", "text": f"{comment}\n\n{quoted_text}".strip()},
        "message:ToRecipients": to,
        "message:CcRecipients": cc,
        "item:InReplyTo": original.get("message:InternetMessageId"),
    }

    def copy_attachments(item: store_items.Item) -> None:
        if action != "forward":
            return
        for att in store_items.attachments_of(call.lab.store, target.item.id):
            store_items.add_attachment(
                call.lab.store,
                item.id,
                att.name,
                att.content_type,
                att.content,
                now=call.lab.now(),
                content_id=att.content_id,
                is_inline=att.is_inline,
            )

    deliver(
        call, {k: v for k, v in props.items() if v is not None}, save=True, add=copy_attachments
    )
    return 202, None


def attachments(call: Call, gid: str) -> Json:
    need(call, "Mail")
    target = resolve_item(call, gid)
    check(targets.check_read, call, target)
    rows = [
        attachment_out(a.as_dict(""), graph_id(encode_id("attachment", a.id)), with_content=False)
        for a in store_items.attachments_of(call.lab.store, target.item.id)
    ]
    return collection(call, rows, context="attachments")


def attachment(call: Call, gid: str, aid: str, raw: bool) -> Json | Response:
    need(call, "Mail")
    target = resolve_item(call, gid)
    check(targets.check_read, call, target)
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
    check(targets.check_read, call, target)
    _, p = view.output_props(call.ctx, target)
    atts = store_items.attachments_of(call.lab.store, target.item.id)
    return Response(to_mime(p, atts), media_type="message/rfc822")


def message_delta(call: Call, folder: Folder) -> Json:
    need(call, "Mail")
    return item_delta(
        call,
        folder,
        wanted=is_message,
        render=lambda target: message_json(call, target),
        odata_type="#microsoft.graph.message",
    )
