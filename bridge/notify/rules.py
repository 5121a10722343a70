"""Rules: which mailbox items become which notifications, and when they may be posted.

A rule matches when every criterion it names holds (unnamed criteria match everything); an item
matching several rules for the same recipient is posted once, under the first rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.notify.config import Recipient, RuleSpec
from med import Event, Item, Message, Task, Voicemail

__all__ = ["Match", "item_kind", "match", "not_before"]


@dataclass(frozen=True)
class Match:
    rule: RuleSpec
    recipient: Recipient


def item_kind(item: Item) -> str:
    """The rule vocabulary's kind of a new item: mail, meeting, appointment, voicemail or task
    (a reminder coming due is matched as kind "reminder", see `match`)."""
    if isinstance(item, Voicemail):
        return "voicemail"
    if isinstance(item, Task):
        return "task"
    if isinstance(item, Message) and item.is_meeting_request:
        return "meeting"
    if isinstance(item, Event):
        return "meeting" if item.is_meeting else "appointment"
    return "mail"


def _sender(item: Item) -> str:
    if isinstance(item, Message):
        address = item.from_ or item.sender
        return address.email.lower() if address is not None else ""
    if isinstance(item, Event) and item.organizer is not None:
        return item.organizer.email.lower()
    return ""


def _text(item: Item) -> str:
    return f"{item.subject}\n{item.body or ''}".lower()


def _matches(rule: RuleSpec, item: Item, mailbox: str, folder: str, kind: str) -> bool:
    if rule.mailbox is not None and rule.mailbox != mailbox.lower():
        return False
    if rule.folders and folder.lower() not in rule.folders:
        return False
    if rule.senders:
        sender = _sender(item)
        if not any(sender == s or (s.startswith("@") and sender.endswith(s)) for s in rule.senders):
            return False
    if rule.importance is not None and item.importance.value != rule.importance:
        return False
    if rule.categories and not set(rule.categories) & set(item.categories):
        return False
    if rule.keywords and not any(k in _text(item) for k in rule.keywords):
        return False
    return not (rule.kinds and kind not in rule.kinds)


def match(
    rules: Sequence[RuleSpec], item: Item, mailbox: str, folder: str, kind: str | None = None
) -> list[Match]:
    """The recipients an item goes to, each once, with the first rule that sends it there.
    `kind` "reminder" matches the item's reminder coming due instead of the item itself."""
    found: dict[str, Match] = {}
    for rule in rules:
        if _matches(rule, item, mailbox, folder, kind or item_kind(item)):
            for recipient in rule.to:
                found.setdefault(recipient.key, Match(rule, recipient))
    return list(found.values())


def not_before(rule: RuleSpec, now: datetime) -> datetime:
    """When a notification under `rule` may go out: now, the end of quiet hours, or the next
    digest slot (digests gather everything due in the same slot into one message)."""
    moment = now
    quiet = rule.quiet_hours
    if quiet is not None and quiet.contains(moment.time()):
        end = moment.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
        if end <= moment:
            end += timedelta(days=1)
        moment = end
    if rule.digest_minutes:
        slot = rule.digest_minutes * 60
        epoch = moment.timestamp()
        moment = datetime.fromtimestamp((epoch // slot + 1) * slot, tz=moment.tzinfo)
    return moment


def recipients(matches: Iterable[Match]) -> list[Recipient]:
    return [m.recipient for m in matches]
