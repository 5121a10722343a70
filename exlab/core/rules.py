"""Inbox rules: kept per mailbox in priority order, applied by the server when mail arrives.

A rule is stored protocol-neutral: its name, priority, whether it is on, and `rule`, a JSON
object with the conditions and actions the lab applies (`subject_contains`, `from`,
`sender_contains`; `move_to` a folder key, `mark_read`, `importance`, `categories`,
`forward_to` addresses, `delete`, `stop`) plus
`face`, what the protocol face keeps to answer the rule back as it was given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exlab.core import items as store_items
from exlab.core.store import Store, new_key


@dataclass
class InboxRule:
    id: str
    mailbox: str
    display_name: str
    priority: int
    enabled: bool
    rule: dict[str, Any] = field(default_factory=dict)


def rules_of(store: Store, mailbox: str) -> list[InboxRule]:
    rows = store.query(
        "SELECT * FROM inbox_rules WHERE mailbox = ? ORDER BY priority, rowid", (mailbox,)
    )
    return [
        InboxRule(
            r["id"],
            r["mailbox"],
            r["display_name"],
            r["priority"],
            bool(r["enabled"]),
            json.loads(r["rule"]),
        )
        for r in rows
    ]


def save_rule(store: Store, rule: InboxRule) -> InboxRule:
    """Insert (no id yet) or replace a rule."""
    if not rule.id:
        rule.id = new_key()
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO inbox_rules (id, mailbox, display_name, priority, enabled,"
            " rule) VALUES (?, ?, ?, ?, ?, ?)",
            (
                rule.id,
                rule.mailbox,
                rule.display_name,
                rule.priority,
                int(rule.enabled),
                json.dumps(rule.rule, ensure_ascii=False),
            ),
        )
    return rule


def delete_rule(store: Store, mailbox: str, rule_id: str) -> bool:
    with store.transaction() as conn:
        cursor = conn.execute(
            "DELETE FROM inbox_rules WHERE id = ? AND mailbox = ?", (rule_id, mailbox)
        )
    return cursor.rowcount > 0


def _matches(rule: dict[str, Any], props: dict[str, Any]) -> bool:
    subject = str(props.get("item:Subject") or "").lower()
    sender = props.get("message:From") or {}
    address = str(sender.get("email", "")).lower()
    name = str(sender.get("name", "")).lower()
    words = [str(w).lower() for w in rule.get("subject_contains") or []]
    if words and not any(w in subject for w in words):
        return False
    senders = [str(a).lower() for a in rule.get("from") or []]
    if senders and address not in senders:
        return False
    parts = [str(w).lower() for w in rule.get("sender_contains") or []]
    if parts and not any(p in address or p in name for p in parts):
        return False
    return bool(words or senders or parts or rule.get("always"))


def apply_inbox_rules(store: Store, item: store_items.Item, now: datetime) -> list[str]:
    """Run the mailbox's enabled rules on a newly delivered item, as Exchange's transport does.

    Returns the addresses the rules forward the item to (delivery sends the copies)."""
    forward: list[str] = []
    for rule in rules_of(store, item.mailbox):
        if not rule.enabled or not _matches(rule.rule, item.props):
            continue
        actions = rule.rule
        changed = False
        forward += [str(a).lower() for a in actions.get("forward_to") or [] if a not in forward]
        if actions.get("mark_read"):
            item.props["message:IsRead"] = True
            changed = True
        if actions.get("importance") in ("Low", "Normal", "High"):
            item.props["item:Importance"] = actions["importance"]
            changed = True
        if actions.get("categories"):
            merged = list(item.props.get("item:Categories") or [])
            merged += [c for c in actions["categories"] if c not in merged]
            item.props["item:Categories"] = merged
            changed = True
        if changed:
            item = store_items.save_item(store, item, now)
        target_key = actions.get("move_to")
        if actions.get("delete"):
            trash = store.distinguished_folder(item.mailbox, "deleteditems")
            target_key = trash.id if trash is not None else None
        if target_key:
            target = store.folder(str(target_key))
            if target is not None and target.mailbox == item.mailbox:
                item = store_items.move_item(store, item, target, now)
        if actions.get("stop"):
            break
    return forward
