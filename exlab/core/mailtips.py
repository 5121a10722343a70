"""Mail tips: what Exchange tells a sender about recipients while the message is addressed.

Per recipient: the automatic reply when it is on (the internal text for senders inside the
organisation, the external one for others, none when the audience excludes them), whether
the address is outside the organisation, how many people a group reaches and how many of
them are outside, whether the group is moderated, and whether an address of the
organisation's own domains names nobody. Both faces (GetMailTips, getMailTips) answer from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from exlab.core import directory
from exlab.core.caller import Caller
from exlab.core.delivery import may_send_for
from exlab.core.errors import ExchangeError
from exlab.core.oof import AutoReply, auto_reply
from exlab.core.store import Store

MAX_MESSAGE_SIZE = 10 * 1024 * 1024
"""Exchange's default maximum message size (MaxSendSize/MaxReceiveSize), in bytes."""


@dataclass(frozen=True)
class MailTip:
    address: str
    display_name: str
    #: "Mailbox" for a person or a shared/room mailbox, "Group" for a distribution group,
    #: "Unknown" for an address the directory does not know.
    kind: str
    external: bool
    total_members: int
    external_members: int
    moderated: bool
    invalid: bool
    #: The automatic reply the sender will get, when one is on; with its window if scheduled.
    auto_reply: AutoReply | None
    auto_reply_text: str = ""


def internal_domains(store: Store) -> set[str]:
    """The organisation's accepted domains: those of its mailboxes and groups."""
    domains = {mb.address.rpartition("@")[2] for mb in store.mailboxes() if "@" in mb.address}
    rows = store.query("SELECT address FROM directory_groups")
    domains |= {str(r["address"]).rpartition("@")[2] for r in rows}
    return domains


def tips_for(caller: Caller, sending_as: str, addresses: list[str]) -> list[MailTip]:
    """The tips for mail the caller would send as or on behalf of `sending_as`; refused
    (ErrorSendAsDenied) when the caller may not send for that mailbox at all."""
    if not may_send_for(caller, sending_as.lower()):
        raise ExchangeError(
            "ErrorSendAsDenied",
            "The user account which was used to submit this request does not have the right "
            "to send mail on behalf of the specified sending account.",
        )
    return mail_tips(caller.lab.store, sending_as, addresses, caller.lab.now())


def mail_tips(store: Store, sending_as: str, addresses: list[str], now: datetime) -> list[MailTip]:
    """The tips for each address, in the order given."""
    domains = internal_domains(store)

    def outside(address: str) -> bool:
        return address.rpartition("@")[2].lower() not in domains

    sender_inside = not outside(sending_as)
    tips = []
    for raw in addresses:
        address = raw.strip().lower()
        mailbox = store.mailbox(address)
        group = directory.group(store, address)
        reply: AutoReply | None = None
        text = ""
        if mailbox is not None and mailbox.kind != "public":
            kind, name = "Mailbox", mailbox.display_name
            settings = auto_reply(store, address, now)
            if settings.active(now) and (sender_inside or settings.audience != "None"):
                reply = settings
                text = settings.internal_reply if sender_inside else settings.external_reply
        elif group is not None:
            kind, name = "Group", group.display_name
        else:
            kind, name = "Unknown", address
        if group is not None:
            members = directory.expanded_members(store, address)
            total, external_members = len(members), sum(1 for m in members if outside(m))
        else:
            total, external_members = 1, int(outside(address))
        tips.append(
            MailTip(
                address=address,
                display_name=name,
                kind=kind,
                external=outside(address),
                total_members=total,
                external_members=external_members,
                moderated=group is not None and group.moderated,
                invalid=kind == "Unknown" and not outside(address),
                auto_reply=reply,
                auto_reply_text=text,
            )
        )
    return tips
