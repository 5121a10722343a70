"""Mail flow: From/Sender for send on behalf, delivery to recipients, the owner's sent copy.

As Exchange's transport does it: a message sent for another mailbox carries From = that
mailbox and Sender = who sent it, is delivered unread to every organisation mailbox among the
recipients (Bcc removed), and the owner gets a copy in their Sent Items whatever the
delegate's rights there (MessageCopyForSendOnBehalfEnabled).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exlab.core import items as store_items
from exlab.core.caller import Caller
from exlab.core.errors import ExchangeError
from exlab.core.items import Item
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
        )


def may_send_for(caller: Caller, owner: str) -> bool:
    """Send on behalf: delegates of a user, editors of a shared mailbox's inbox."""
    if owner == caller.user:
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
    if owner != caller.user:
        props["message:Sender"] = display(caller, caller.user)
    else:
        props["message:Sender"] = display(caller, owner)
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
                )
        else:
            add_attachments(caller, copy, raw_atts, now)


def send_existing(
    caller: Caller, item: Item, folder: Folder, *, save: bool, saved: Folder | None
) -> None:
    now = caller.lab.now()
    owner = str((item.props.get("message:From") or {}).get("email", folder.mailbox)).lower()
    if not may_send_for(caller, owner):
        raise ExchangeError("ErrorSendAsDenied", "The user may not send on behalf of this mailbox.")
    item.props["message:From"] = display(caller, owner)
    item.props["message:Sender"] = display(caller, caller.user)
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


def archive_folder_for(caller: Caller, source: Folder) -> Folder:
    """The archive folder matching the source (Inbox → archive Inbox, else by name)."""
    store = caller.lab.store
    if source.distinguished == "inbox":
        found = store.distinguished_folder(source.mailbox, "archiveinbox")
        if found is not None:
            return found
    if source.distinguished == "deleteditems":
        found = store.distinguished_folder(source.mailbox, "archivedeleteditems")
        if found is not None:
            return found
    top = store.distinguished_folder(source.mailbox, "archivemsgfolderroot")
    if top is None:
        raise ExchangeError("ErrorFolderNotFound", "The mailbox has no archive.")
    for child in store.children(top.id):
        if child.display_name == source.display_name:
            return child
    inbox = store.distinguished_folder(source.mailbox, "archiveinbox")
    return inbox or top
