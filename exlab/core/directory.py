"""The organisation's directory beyond mailboxes: distribution groups and room lists.

A room list is a distribution group whose members are room mailboxes (New-DistributionGroup
-RoomList); Outlook's room finder walks GetRoomLists, then GetRooms. Members are addresses of
mailboxes or of other groups (nested groups expand recursively).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from exlab.core.store import Store

GroupKind = Literal["distribution", "roomlist"]


@dataclass(frozen=True)
class Group:
    address: str
    display_name: str
    kind: GroupKind
    #: Mail to the group waits for a moderator's approval (Set-DistributionGroup
    #: -ModerationEnabled).
    moderated: bool = False


def add_group(
    store: Store,
    address: str,
    display_name: str,
    kind: GroupKind,
    members: list[str],
    *,
    moderated: bool = False,
) -> Group:
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO directory_groups (address, display_name, kind, moderated)"
            " VALUES (?, ?, ?, ?)",
            (address.lower(), display_name, kind, int(moderated)),
        )
        conn.executemany(
            "INSERT OR IGNORE INTO directory_members (group_address, member) VALUES (?, ?)",
            [(address.lower(), member.lower()) for member in members],
        )
    return Group(address.lower(), display_name, kind, moderated)


def group(store: Store, address: str) -> Group | None:
    row = store.query_one(
        "SELECT address, display_name, kind, moderated FROM directory_groups WHERE address = ?",
        (address.lower(),),
    )
    if row is None:
        return None
    return Group(row["address"], row["display_name"], row["kind"], bool(row["moderated"]))


def groups(store: Store, kind: GroupKind) -> list[Group]:
    rows = store.query(
        "SELECT address, display_name, kind, moderated FROM directory_groups WHERE kind = ?"
        " ORDER BY display_name",
        (kind,),
    )
    return [Group(r["address"], r["display_name"], r["kind"], bool(r["moderated"])) for r in rows]


def members(store: Store, address: str) -> list[str]:
    """The group's direct members (mailboxes and groups), sorted."""
    rows = store.query(
        "SELECT member FROM directory_members WHERE group_address = ? ORDER BY member",
        (address.lower(),),
    )
    return [str(r["member"]) for r in rows]


def expanded_members(store: Store, address: str) -> list[str]:
    """Every mailbox reached through the group, nested groups followed once."""
    seen: set[str] = set()
    found: list[str] = []
    pending = [address.lower()]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for member in members(store, current):
            if group(store, member) is not None:
                pending.append(member)
            elif member not in found:
                found.append(member)
    return sorted(found)
