"""Mailbox-level permissions: FullAccess and SendAs, as organisations give them on shared
mailboxes (Add-MailboxPermission, Add-RecipientPermission).

Unlike folder permissions they are not entries on any folder: FullAccess opens every folder of
the mailbox, Sent Items and private items included; SendAs lets mail go out as the mailbox
itself, with no "on behalf of".
"""

from __future__ import annotations

from typing import Literal

from exlab.core.store import Store

MailboxRight = Literal["FullAccess", "SendAs"]


def add_mailbox_permission(
    store: Store, mailbox: str, principal: str, access_right: MailboxRight
) -> None:
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO mailbox_permissions (mailbox, principal, access_right)"
            " VALUES (?, ?, ?)",
            (mailbox.lower(), principal.lower(), access_right),
        )


def has_mailbox_permission(
    store: Store, mailbox: str, principal: str, access_right: MailboxRight
) -> bool:
    row = store.query_one(
        "SELECT 1 AS found FROM mailbox_permissions WHERE mailbox = ? AND principal = ?"
        " AND access_right = ?",
        (mailbox.lower(), principal.lower(), access_right),
    )
    return row is not None


def holders(store: Store, mailbox: str, access_right: MailboxRight) -> list[str]:
    """Who holds a right on a mailbox, sorted."""
    rows = store.query(
        "SELECT principal FROM mailbox_permissions WHERE mailbox = ? AND access_right = ?"
        " ORDER BY principal",
        (mailbox.lower(), access_right),
    )
    return [str(row["principal"]) for row in rows]


def may_manage(store: Store, mailbox: str, user: str) -> bool:
    """Whether `user` may read and change the mailbox's settings (automatic replies, inbox
    rules): its owner, or a holder of FullAccess, as on Exchange. Folder grants and delegate
    levels, however high, do not reach a mailbox's settings."""
    return mailbox.lower() == user.lower() or has_mailbox_permission(
        store, mailbox, user, "FullAccess"
    )
