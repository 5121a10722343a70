"""Notifications of the mail bridge, read as cards: which mailbox item, and what to answer.

The bridge posts each notification as an end-to-end encrypted text (docs/bridge.md, "What a
notification looks like") with its reply commands as action buttons. `parse_card` reads that
text back into a `BridgeCard`; `medbridge://item/<mailbox>/<item id>` names the item, which the
TUI opens through med. Answers go back the way the bridge takes them from any chat client: the
button's reply text (`accept #12`) as a message in the same conversation, so the bridge
authorises it against the user's own rights and posts the result as a reply to that message,
which `CardResults` attaches to the card. Plain data, tested without a terminal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from rich.text import Text as RichText

from messenger.client.content import Content, Text

__all__ = [
    "KIND_TITLE",
    "BridgeCard",
    "CardResults",
    "ItemLink",
    "SentCommand",
    "card_in",
    "card_rows",
    "parse_card",
    "parse_item_link",
]

_KINDS = {
    "Mail": "mail",
    "Meeting": "meeting",
    "Appointment": "appointment",
    "Voicemail": "voicemail",
    "Task": "task",
    "Reminder": "reminder",
}
_HEAD = re.compile(
    r"^\[(?P<label>Mail|Meeting|Appointment|Voicemail|Task|Reminder) #(?P<ref>\d+)\] "
    r"(?P<mailbox>.+?) › (?P<folder>.+?)(?P<important> \(important\))?$"
)
_LINK = re.compile(r"^medbridge://item/(?P<mailbox>[^/\s]+)/(?P<item>[^/\s]+)$")
#: How each kind of notification is titled on its card.
KIND_TITLE = {
    "mail": "Mail",
    "meeting": "Meeting request",
    "appointment": "Appointment",
    "voicemail": "Voicemail",
    "task": "Task",
    "reminder": "Reminder",
}
_FIELDS = {
    "From: ": "sender",
    "Subject: ": "subject",
    "Starts: ": "start",
    "Where: ": "location",
    "Task due: ": "due",
}


@dataclass(frozen=True)
class ItemLink:
    """What a `medbridge://item/…` reference names."""

    mailbox: str
    item_id: str


def parse_item_link(link: str) -> ItemLink | None:
    match = _LINK.match(link.strip())
    if match is None:
        return None
    return ItemLink(unquote(match["mailbox"]), unquote(match["item"]))


@dataclass(frozen=True)
class BridgeCard:
    """One bridge notification: its number (`#ref` in commands), the item and its buttons."""

    ref: int
    kind: str
    mailbox: str
    folder: str
    subject: str
    link: ItemLink
    sender: str = ""
    preview: str = ""
    start: str = ""
    location: str = ""
    due: str = ""  # a task's due date
    important: bool = False
    actions: tuple[tuple[str, str], ...] = ()  # (label, reply) as the bridge offers them

    def command(self, verb: str) -> str | None:
        """The reply text of the bridge's button for `verb` (None: the bridge offers none)."""
        for _, reply in self.actions:
            if reply.split(" ", 1)[0] == verb:
                return reply
        return None

    def verbs(self) -> list[str]:
        return [reply.split(" ", 1)[0] for _, reply in self.actions]


def parse_card(body: str, actions: tuple[tuple[str, str], ...] = ()) -> BridgeCard | None:
    """The card in a bridge notification's text, None for any other message (a digest, a
    reply of the bridge, ordinary chat)."""
    lines = body.splitlines()
    if not lines:
        return None
    head = _HEAD.match(lines[0])
    if head is None:
        return None
    values: dict[str, str] = {}
    link: ItemLink | None = None
    for line in lines[1:]:
        for prefix, name in _FIELDS.items():
            if line.startswith(prefix) and name not in values:
                values[name] = line[len(prefix) :].strip()
                break
        else:
            if line.startswith("> ") and "preview" not in values:
                values["preview"] = line[2:].strip()
            elif link is None and (found := parse_item_link(line)) is not None:
                link = found
    if link is None:
        return None
    return BridgeCard(
        ref=int(head["ref"]),
        kind=_KINDS[head["label"]],
        mailbox=head["mailbox"],
        folder=head["folder"],
        subject=values.get("subject", ""),
        link=link,
        sender=values.get("sender", ""),
        preview=values.get("preview", ""),
        start=values.get("start", ""),
        location=values.get("location", ""),
        due=values.get("due", ""),
        important=bool(head["important"]),
        actions=tuple(actions),
    )


def card_in(content: Content | None) -> BridgeCard | None:
    """The card of a decrypted message, if it is a bridge notification."""
    if not isinstance(content, Text):
        return None
    return parse_card(content.body, content.actions)


@dataclass
class SentCommand:
    """A command sent from a card, waiting for the bridge's answer."""

    ref: int  # the card's number
    command: str
    txn_id: str = ""  # the chat line's, once the send is queued
    seq: int = 0  # the command message's seq, once the server stored it


#: Answers kept per conversation whose command's seq is not known here yet (bounded).
_EARLY_KEPT = 32


@dataclass
class CardResults:
    """The bridge's answers to commands sent from cards.

    The bridge answers every command with one text in the same conversation ("Done: …",
    "Refused: …") that names the command's seq as `reply_to` (inside the encrypted content), so
    each answer goes to its own card however answers interleave or get lost. An answer without
    that reference (a bridge older than it) goes to the oldest command still waiting, as that
    bridge answers in the order it took them.
    """

    #: conversation id → commands waiting for the bridge's answer, oldest first.
    waiting: dict[str, list[SentCommand]] = field(default_factory=dict)
    #: (conversation id, card ref) → the bridge's latest answer (or "sent: …" while waiting).
    shown: dict[tuple[str, int], str] = field(default_factory=dict)
    #: conversation id → {command seq: answer} for answers that came before this client knew
    #: the seq of the command they answer.
    early: dict[str, dict[int, str]] = field(default_factory=dict)

    def sent(self, conversation_id: str, ref: int, command: str) -> SentCommand:
        entry = SentCommand(ref, command)
        self.waiting.setdefault(conversation_id, []).append(entry)
        self.shown[(conversation_id, ref)] = f"“{command}” sent; waiting for the bridge…"
        return entry

    def stored(self, conversation_id: str, txn_id: str, seq: int) -> int | None:
        """The server stored the command sent as `txn_id` under `seq`; returns the card's ref
        when its answer had already come, else None."""
        queue = self.waiting.get(conversation_id, [])
        entry = next((w for w in queue if w.txn_id == txn_id and txn_id), None)
        if entry is None or not seq:
            return None
        entry.seq = seq
        body = self.early.get(conversation_id, {}).pop(seq, None)
        return None if body is None else self._settle(conversation_id, entry, body)

    def answer(self, conversation_id: str, body: str, reply_to: int | None = None) -> int | None:
        """Attach a bridge message that is no card to the command it answers; returns the
        card's ref, None when it answers no command sent from a card (a notification's own
        text, other chat, an answer to a command typed by hand)."""
        queue = self.waiting.get(conversation_id)
        if not queue:
            return None
        if reply_to is None:
            return self._settle(conversation_id, queue[0], body)
        entry = next((w for w in queue if w.seq == reply_to), None)
        if entry is not None:
            return self._settle(conversation_id, entry, body)
        if any(not w.seq for w in queue):
            early = self.early.setdefault(conversation_id, {})
            early[reply_to] = body
            while len(early) > _EARLY_KEPT:
                del early[next(iter(early))]
        return None

    def _settle(self, conversation_id: str, entry: SentCommand, body: str) -> int:
        self.waiting[conversation_id].remove(entry)
        self.shown[(conversation_id, entry.ref)] = body.strip()
        return entry.ref

    def result(self, conversation_id: str, ref: int) -> str:
        return self.shown.get((conversation_id, ref), "")


def card_rows(card: BridgeCard, *, title: bool = True) -> list[RichText]:
    """The card as rows of text: what and where, from whom, the subject, when, a preview.
    The messenger pane shows these in place of the bridge's plain text."""
    rows: list[RichText] = []
    if title:
        head = RichText(f"▌{KIND_TITLE.get(card.kind, 'Mail')} #{card.ref}", style="bold")
        head.append(f"  {card.mailbox} › {card.folder}", style="cyan")
        if card.important:
            head.append("  ! important", style="bold yellow")
        rows.append(head)
    if card.sender:
        rows.append(RichText.assemble(("▌From: ", "dim"), card.sender))
    rows.append(RichText.assemble(("▌", "dim"), (card.subject or "(no subject)", "bold")))
    when = " · ".join(p for p in (card.start, card.location) if p)
    if when:
        rows.append(RichText.assemble(("▌When: ", "dim"), when))
    if card.due:
        rows.append(RichText.assemble(("▌Due: ", "dim"), card.due))
    if card.preview:
        rows.append(RichText.assemble(("▌", "dim"), (card.preview, "italic")))
    return rows
