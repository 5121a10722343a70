"""Mail flow: From/Sender for send on behalf, delivery to recipients, the owner's sent copy.

As Exchange's transport does it: a message sent for another mailbox carries From = that
mailbox and Sender = who sent it, is delivered unread to every organisation mailbox among the
recipients (Bcc removed), and the owner gets a copy in their Sent Items whatever the
delegate's rights there (MessageCopyForSendOnBehalfEnabled).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exlab.core import items as store_items
from exlab.core.caller import Caller
from exlab.core.errors import ExchangeError
from exlab.core.items import Item
from exlab.core.mailbox_rights import has_mailbox_permission
from exlab.core.rules import apply_inbox_rules
from exlab.core.store import Folder, utc_text
from exlab.core.targets import check_create, distinguished, rights


@dataclass(frozen=True)
class NewAttachment:
    """A file attachment as a client hands it in (before it is stored with an item)."""

    name: str
    content_type: str
    content: bytes
    content_id: str | None = None
    is_inline: bool = False
    item: dict[str, Any] | None = None
    """An attached item instead of a file (see `exlab.core.items.Attachment.embedded`)."""


def embed_item(
    item_class: str, props: dict[str, Any], attachments: list[NewAttachment]
) -> dict[str, Any]:
    """An item to attach to another (`exlab.core.items.Attachment.embedded`), with its own
    attachments nested."""
    return {
        "item_class": item_class,
        "props": props,
        "attachments": [
            {
                "name": a.name,
                "content_type": a.content_type,
                "content": base64.b64encode(a.content).decode("ascii"),
                "content_id": a.content_id,
                "is_inline": a.is_inline,
                "item": a.item,
            }
            for a in attachments
        ],
    }


def owner_kind(caller: Caller, address: str) -> str | None:
    mb = caller.lab.store.mailbox(address)
    return None if mb is None else mb.kind


def display(caller: Caller, address: str) -> dict[str, str]:
    mb = caller.lab.store.mailbox(address)
    return {"name": mb.display_name if mb else address, "email": address}


DEFAULT_FOLDER_FOR = {
    "CalendarItem": "calendar",
    "Contact": "contacts",
    "DistributionList": "contacts",
    "Task": "tasks",
}


@dataclass
class CreateArgs:
    disposition: str
    invitations: str
    saved: Folder | None


def owner_copy(
    caller: Caller,
    props: dict[str, Any],
    item_class: str,
    raw_atts: list[NewAttachment],
    now: datetime,
    *,
    saved: Folder | None,
    attachments_from: str | None = None,
) -> Item | None:
    """Sent on behalf: a copy lands in the owner's Sent Items too (the server does this,
    whatever the delegate's rights there, like Exchange's MessageCopyForSendOnBehalfEnabled),
    filed as read like every sent copy."""
    owner = str((props.get("message:From") or {}).get("email", "")).lower()
    if not owner or owner == caller.user or owner_kind(caller, owner) in (None, "public"):
        return None
    sent = caller.lab.store.distinguished_folder(owner, "sentitems")
    if sent is None or (saved is not None and saved.id == sent.id):
        return None
    filed = {**props, "message:IsRead": True, "item:IsDraft": False}
    copy = store_items.create_item(
        caller.lab.store, sent, item_class, filed, created_by=caller.user, now=now
    )
    if attachments_from:
        store_items.copy_attachments(caller.lab.store, attachments_from, copy.id, now)
    else:
        add_attachments(caller, copy, raw_atts, now)
    return copy


def add_attachments(
    caller: Caller, item: Item, attachments: list[NewAttachment], now: datetime
) -> None:
    for att in attachments:
        store_items.add_attachment(
            caller.lab.store,
            item.id,
            att.name,
            att.content_type,
            att.content,
            now=now,
            content_id=att.content_id,
            is_inline=att.is_inline,
            embedded=att.item,
        )


def sends_as(caller: Caller, owner: str) -> bool:
    """Mail for `owner` goes out as the mailbox itself: its own, or one the user has SendAs on."""
    return owner == caller.user or has_mailbox_permission(
        caller.lab.store, owner, caller.user, "SendAs"
    )


def may_send_for(caller: Caller, owner: str) -> bool:
    """Send as (own mailbox, SendAs) or on behalf: delegates of a user, editors of a shared
    mailbox's inbox."""
    if sends_as(caller, owner):
        return True
    if caller.lab.store.delegate(owner, caller.user) is not None:
        return True
    if owner_kind(caller, owner) in ("shared", "room"):
        inbox = caller.lab.store.distinguished_folder(owner, "inbox")
        return inbox is not None and rights(caller, inbox).create_items
    return False


def prepare_message(
    caller: Caller, props: dict[str, Any], folder: Folder, args: CreateArgs
) -> None:
    """From/Sender as Exchange sets them: From is the mailbox sent for, Sender who sent it."""
    sending = args.disposition in ("SendOnly", "SendAndSaveCopy")
    owner = (props.get("message:From") or {}).get("email", "").lower()
    if not owner:
        owner = folder.mailbox if owner_kind(caller, folder.mailbox) != "public" else caller.user
    if sending and not may_send_for(caller, owner):
        raise ExchangeError(
            "ErrorSendAsDenied",
            "The user account which was used to submit this request does not have "
            "the right to send mail on behalf of the specified sending account.",
        )
    props["message:From"] = display(caller, owner)
    props["message:Sender"] = display(caller, owner if sends_as(caller, owner) else caller.user)
    props["item:IsDraft"] = not sending
    props.setdefault("message:IsRead", True)
    if sending:
        props["item:DateTimeSent"] = utc_text(caller.lab.now())
        props["item:IsSubmitted"] = False


def recipients_of(props: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("message:ToRecipients", "message:CcRecipients", "message:BccRecipients"):
        for r in props.get(key, []):
            addr = str(r.get("email", "")).lower()
            if addr and addr not in out:
                out.append(addr)
    return out


def send_message(
    caller: Caller,
    props: dict[str, Any],
    item_class: str,
    raw_atts: list[NewAttachment],
    now: datetime,
    *,
    attachments_from: str | None = None,
) -> None:
    """Deliver to every lab mailbox among the recipients (their Inbox, unread)."""
    recipients = recipients_of(props)
    if not recipients:
        raise ExchangeError("ErrorInvalidRecipients", "At least one recipient isn't valid.")
    stamp = utc_text(now)
    for address in recipients:
        if owner_kind(caller, address) in (None, "public"):
            continue  # outside the organisation: leaves the lab
        inbox = distinguished(caller, address, "inbox")
        delivered = {k: v for k, v in props.items() if not k.startswith("lab:")}
        delivered.update(
            {
                "message:IsRead": False,
                "item:IsDraft": False,
                "item:DateTimeReceived": stamp,
                "item:DateTimeSent": props.get("item:DateTimeSent", stamp),
                "message:ReceivedBy": display(caller, address),
            }
        )
        delivered.pop("message:BccRecipients", None)
        delivered.pop("item:Categories", None)  # categories are the sender's own
        copy = store_items.create_item(
            caller.lab.store,
            inbox,
            item_class,
            delivered,
            created_by=str((props.get("message:From") or {}).get("email", caller.user)),
            now=now,
            event="newmail",
        )
        if attachments_from:
            for att in store_items.attachments_of(caller.lab.store, attachments_from):
                store_items.add_attachment(
                    caller.lab.store,
                    copy.id,
                    att.name,
                    att.content_type,
                    att.content,
                    now=now,
                    content_id=att.content_id,
                    is_inline=att.is_inline,
                    embedded=att.embedded,
                )
        else:
            add_attachments(caller, copy, raw_atts, now)
        forward_to = apply_inbox_rules(caller.lab.store, copy, now)
        if forward_to and not props.get("lab:ForwardedByRule"):
            _forward(caller, address, delivered, item_class, forward_to, now, copy.id)


def _forward(
    caller: Caller,
    mailbox: str,
    props: dict[str, Any],
    item_class: str,
    to: list[str],
    now: datetime,
    attachments_from: str,
) -> None:
    """A rule's forward: a new message from the mailbox to `to`, the original quoted below.
    Forwarded copies trigger no further forwarding, so two rules cannot loop."""
    sender = display(caller, mailbox)
    original = props.get("message:From") or {}
    body = props.get("item:Body") or {}
    text = body.get("text", "") if isinstance(body, dict) else str(body)
    forwarded = {
        "item:Subject": f"FW: {props.get('item:Subject') or ''}",
        "item:Body": {
            "type": "Text",
            "text": f"From: {original.get('name') or original.get('email', '')}\n\n{text}",
        },
        "message:From": sender,
        "message:Sender": sender,
        "message:ToRecipients": [{"email": a, "name": ""} for a in to],
        "item:Importance": props.get("item:Importance", "Normal"),
        "lab:ForwardedByRule": True,
    }
    send_message(caller, forwarded, item_class, [], now, attachments_from=attachments_from)


def send_existing(
    caller: Caller, item: Item, folder: Folder, *, save: bool, saved: Folder | None
) -> None:
    now = caller.lab.now()
    owner = str((item.props.get("message:From") or {}).get("email", folder.mailbox)).lower()
    if not may_send_for(caller, owner):
        raise ExchangeError("ErrorSendAsDenied", "The user may not send on behalf of this mailbox.")
    item.props["message:From"] = display(caller, owner)
    item.props["message:Sender"] = display(
        caller, owner if sends_as(caller, owner) else caller.user
    )
    item.props["item:IsDraft"] = False
    item.props["item:DateTimeSent"] = utc_text(now)
    send_message(caller, item.props, item.item_class, [], now, attachments_from=item.id)
    if save:
        target = saved or distinguished(
            caller, owner if owner_kind(caller, owner) else caller.user, "sentitems"
        )
        check_create(caller, target)
        store_items.save_item(caller.lab.store, item, now)
        owner_copy(
            caller, item.props, item.item_class, [], now, saved=target, attachments_from=item.id
        )
        if target.id != item.folder_id:
            store_items.move_item(caller.lab.store, item, target, now)
    else:
        owner_copy(
            caller, item.props, item.item_class, [], now, saved=None, attachments_from=item.id
        )
        store_items.delete_item(caller.lab.store, item, now)
