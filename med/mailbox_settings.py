"""What an assistant looks after besides items: automatic replies, inbox rules, mail tips,
and search across several mailboxes.

Who may: automatic replies and inbox rules are the mailbox's settings, not folder contents, so
Exchange lets only the owner and holders of **FullAccess** on the mailbox read or change them
(Add-MailboxPermission -AccessRights FullAccess); a delegate with folder grants, even Editor
on every folder, is refused. Mail tips are for mail one may send for the mailbox (own,
delegate, SendAs). Searching a mailbox needs read access to the folders searched.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from med.model import Folder, Importance, Item

__all__ = [
    "AutoReplies",
    "AutoReplyState",
    "ExternalAudience",
    "InboxRule",
    "MailTip",
    "MailboxHits",
    "SearchResults",
]

#: How many recipients make a "large audience" (Exchange's default threshold is 25).
LARGE_AUDIENCE = 25
#: The category "flag by keyword" rules assign: server-side rules (EWS and Graph alike) have
#: no follow-up flag action, so the rule marks the mail important and puts it in this category.
FOLLOW_UP_CATEGORY = "Follow up"


class AutoReplyState(enum.StrEnum):
    DISABLED = "disabled"
    ENABLED = "enabled"  # until switched off
    SCHEDULED = "scheduled"  # only between start and end


class ExternalAudience(enum.StrEnum):
    """Who outside the organisation gets the external reply."""

    NONE = "none"
    KNOWN = "known"  # senders in the mailbox's contacts
    ALL = "all"


@dataclass(frozen=True, slots=True)
class AutoReplies:
    """A mailbox's automatic replies (out of office)."""

    state: AutoReplyState = AutoReplyState.DISABLED
    audience: ExternalAudience = ExternalAudience.ALL
    start: datetime | None = None
    end: datetime | None = None
    internal_reply: str = ""
    external_reply: str = ""

    def active(self, now: datetime) -> bool:
        if self.state is AutoReplyState.ENABLED:
            return True
        if self.state is AutoReplyState.SCHEDULED and self.start and self.end:
            return self.start <= now < self.end
        return False


@dataclass(frozen=True, slots=True)
class InboxRule:
    """A server-side inbox rule: conditions (all must hold; none means every message) and
    actions. `move_to` is a folder id of the same mailbox."""

    name: str
    id: str = ""
    enabled: bool = True
    priority: int = 1
    from_addresses: tuple[str, ...] = ()
    subject_contains: tuple[str, ...] = ()
    sender_contains: tuple[str, ...] = ()
    move_to: str | None = None
    mark_read: bool = False
    importance: Importance | None = None
    categories: tuple[str, ...] = ()
    forward_to: tuple[str, ...] = ()
    delete: bool = False
    stop: bool = False

    @classmethod
    def move_by_sender(cls, sender: str, folder: Folder, *, name: str = "") -> InboxRule:
        """Mail from `sender` goes to `folder`."""
        return cls(
            name=name or f"{sender} → {folder.name}",
            from_addresses=(sender.lower(),),
            move_to=folder.id,
        )

    @classmethod
    def flag_by_keyword(
        cls, keyword: str, *, category: str = FOLLOW_UP_CATEGORY, name: str = ""
    ) -> InboxRule:
        """Mail whose subject holds `keyword` is marked important and put in `category`
        (server-side rules cannot set a follow-up flag; Outlook's flag rule runs client-side)."""
        return cls(
            name=name or f"“{keyword}” → {category}",
            subject_contains=(keyword,),
            importance=Importance.HIGH,
            categories=(category,),
        )

    @classmethod
    def forward_to_assistant(
        cls, assistant: str, *, senders: tuple[str, ...] = (), name: str = ""
    ) -> InboxRule:
        """Mail (from `senders`, or all mail) is forwarded to `assistant`."""
        return cls(
            name=name or f"Forward to {assistant}",
            from_addresses=tuple(s.lower() for s in senders),
            forward_to=(assistant.lower(),),
        )

    def describe(self) -> str:
        """One line: if … then …."""
        conditions = [f"from {a}" for a in self.from_addresses]
        conditions += [f"subject has “{w}”" for w in self.subject_contains]
        conditions += [f"sender has “{w}”" for w in self.sender_contains]
        actions = [f"move to {self.move_to}"] if self.move_to else []
        actions += ["mark read"] if self.mark_read else []
        actions += [f"importance {self.importance.value}"] if self.importance else []
        actions += [f"category {c}" for c in self.categories]
        actions += [f"forward to {a}" for a in self.forward_to]
        actions += ["delete"] if self.delete else []
        actions += ["stop"] if self.stop else []
        when = " and ".join(conditions) or "every message"
        return f"if {when}: {', '.join(actions) or 'nothing'}"


@dataclass(frozen=True, slots=True)
class MailTip:
    """What the server says about one recipient before a message goes out."""

    address: str
    name: str = ""
    #: The recipient's automatic reply as the sender will get it, when it is on.
    out_of_office: str | None = None
    out_of_office_start: datetime | None = None
    out_of_office_end: datetime | None = None
    #: The address is outside the organisation.
    external: bool = False
    #: People reached (a group's expanded members; 1 for a person).
    total_members: int = 1
    #: Of those, people outside the organisation.
    external_members: int = 0
    moderated: bool = False
    #: An address in the organisation's domain that names nobody.
    invalid: bool = False

    def warnings(self, *, large_audience: int = LARGE_AUDIENCE) -> list[str]:
        """Sentences for the sender, empty when there is nothing to warn about."""
        who = (
            f"{self.name} <{self.address}>"
            if self.name and self.name != self.address
            else self.address
        )
        out = []
        if self.out_of_office is not None:
            until = (
                f" until {self.out_of_office_end:%Y-%m-%d %H:%M}" if self.out_of_office_end else ""
            )
            text = " ".join(self.out_of_office.split())
            out.append(
                f"{who} is out of office{until}: {text}"
                if text
                else f"{who} is out of office{until}."
            )
        if self.invalid:
            out.append(f"{who} does not exist in the organisation.")
        elif self.external and self.total_members <= 1:
            out.append(f"{who} is outside the organisation.")
        elif self.external_members:
            out.append(f"{who} includes {self.external_members} people outside the organisation.")
        if self.total_members >= large_audience:
            out.append(f"{who} reaches {self.total_members} people.")
        if self.moderated:
            out.append(f"{who} is moderated: the message waits for a moderator's approval.")
        return out


@dataclass(frozen=True, slots=True)
class MailboxHits:
    """One mailbox's (or public folder's) part of a search: its hits, or why it failed."""

    mailbox: str
    folder: Folder | None
    items: tuple[Item, ...] = ()
    more: bool = False
    #: The error's sentence when this mailbox could not be searched (the others still were).
    error: str | None = None
    #: The error's class name (AccessDenied, NotFound, Unsupported …) when it failed.
    error_kind: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResults:
    """A search across several mailboxes, grouped by mailbox in the order asked."""

    query: str
    groups: tuple[MailboxHits, ...] = field(default_factory=tuple)

    @property
    def failed(self) -> tuple[MailboxHits, ...]:
        return tuple(g for g in self.groups if g.error is not None)
