"""Effective rights of a user on a folder, computed as Exchange does.

The mailbox owner, and whoever holds FullAccess on the mailbox, has every right. Anyone else
gets the folder's permission entry for them, or else the folder's `default` entry (every
authenticated user), or nothing. Delegate grants are not a separate source: granting a
delegate Editor on the Calendar writes an Editor permission entry on that folder, as Exchange
does; the delegate row only adds ViewPrivateItems and meeting copies.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any, Literal

from exlab.core.mailbox_rights import has_mailbox_permission
from exlab.core.store import PUBLIC, Folder, Store

ReadLevel = Literal["none", "freebusy_time", "freebusy_detailed", "full"]
Scope = Literal["none", "own", "all"]


@dataclass(frozen=True)
class Rights:
    read: ReadLevel = "none"
    create_items: bool = False
    create_subfolders: bool = False
    edit: Scope = "none"
    delete: Scope = "none"
    folder_owner: bool = False
    folder_visible: bool = False
    folder_contact: bool = False
    view_private: bool = False

    @property
    def can_read_items(self) -> bool:
        return self.read == "full"


FULL = Rights("full", True, True, "all", "all", True, True, True, True)
NONE = Rights()

# Outlook roles as EWS names them (PermissionLevel / CalendarPermissionLevel) and their rights.
ROLES: dict[str, Rights] = {
    "None": NONE,
    "Owner": Rights("full", True, True, "all", "all", True, True, True),
    "PublishingEditor": Rights("full", True, True, "all", "all", False, True, False),
    "Editor": Rights("full", True, False, "all", "all", False, True, False),
    "PublishingAuthor": Rights("full", True, True, "own", "own", False, True, False),
    "Author": Rights("full", True, False, "own", "own", False, True, False),
    "NoneditingAuthor": Rights("full", True, False, "none", "own", False, True, False),
    "Reviewer": Rights("full", False, False, "none", "none", False, True, False),
    "Contributor": Rights("none", True, False, "none", "none", False, True, False),
    "FreeBusyTimeOnly": Rights("freebusy_time"),
    "FreeBusyTimeAndSubjectAndLocation": Rights("freebusy_detailed"),
}
CALENDAR_ONLY_ROLES = frozenset({"FreeBusyTimeOnly", "FreeBusyTimeAndSubjectAndLocation"})
DELEGATE_LEVELS = ("None", "Reviewer", "Author", "Editor")
"""Delegate permission levels per default folder (GetDelegate's DelegatePermissions)."""
DELEGATE_FOLDERS = ("calendar", "tasks", "inbox", "contacts", "notes", "journal")

# EWS ReadItems values and ours.
READ_TO_EWS: dict[ReadLevel, str] = {
    "none": "None",
    "freebusy_time": "TimeOnly",
    "freebusy_detailed": "TimeAndSubjectAndLocation",
    "full": "FullDetails",
}
READ_FROM_EWS = {v: k for k, v in READ_TO_EWS.items()}
SCOPE_TO_EWS: dict[Scope, str] = {"none": "None", "own": "Owned", "all": "All"}
SCOPE_FROM_EWS = {v: k for k, v in SCOPE_TO_EWS.items()}


def role_of(rights: Rights) -> str:
    """The Outlook role whose rights are exactly these, or `Custom`."""
    plain = Rights(**{**asdict(rights), "view_private": False})
    for name, candidate in ROLES.items():
        if candidate == plain:
            return name
    return "Custom"


def rights_row(rights: Rights) -> dict[str, Any]:
    """The permission-table columns for a set of rights."""
    return {
        "read": rights.read,
        "create_items": int(rights.create_items),
        "create_subfolders": int(rights.create_subfolders),
        "edit": rights.edit,
        "del": rights.delete,
        "folder_owner": int(rights.folder_owner),
        "folder_visible": int(rights.folder_visible),
        "folder_contact": int(rights.folder_contact),
    }


def rights_from_row(row: sqlite3.Row) -> Rights:
    return Rights(
        read=row["read"],
        create_items=bool(row["create_items"]),
        create_subfolders=bool(row["create_subfolders"]),
        edit=row["edit"],
        delete=row["del"],
        folder_owner=bool(row["folder_owner"]),
        folder_visible=bool(row["folder_visible"]),
        folder_contact=bool(row["folder_contact"]),
    )


def grant(store: Store, folder_id: str, principal: str, role: str | Rights) -> None:
    """Give a principal (an address, `default` or `anonymous`) a role or custom rights."""
    if isinstance(role, Rights):
        rights, name = role, role_of(role)
    else:
        if role not in ROLES:
            raise ValueError(f"unknown permission level {role!r}")
        rights, name = ROLES[role], role
    store.set_permission(folder_id, principal, name, **rights_row(rights))


def effective_rights(store: Store, user: str, folder_row: Folder) -> Rights:
    """What `user` may do in `folder_row` (owner: everything; else own entry, else default)."""
    user = user.lower()
    if folder_row.mailbox == user:
        return FULL
    if folder_row.mailbox != PUBLIC and has_mailbox_permission(
        store, folder_row.mailbox, user, "FullAccess"
    ):
        return FULL
    row = store.permission(folder_row.id, user)
    if row is None:
        row = store.permission(folder_row.id, "default")
    if row is None:
        return NONE
    rights = rights_from_row(row)
    if folder_row.mailbox != PUBLIC and rights.read == "full":
        grant_row = store.delegate(folder_row.mailbox, user)
        if grant_row is not None and grant_row["view_private"]:
            rights = Rights(**{**asdict(rights), "view_private": True})
    return rights


def delegate_level(store: Store, owner: str, delegate: str, folder: str) -> str:
    """A delegate's level on one of the owner's default folders, read back from its permissions."""
    target = store.distinguished_folder(owner, folder)
    if target is None:
        return "None"
    row = store.permission(target.id, delegate)
    if row is None:
        return "None"
    role = str(row["role"])
    return role if role in DELEGATE_LEVELS else "Custom"


def set_delegate(
    store: Store,
    owner: str,
    delegate: str,
    levels: dict[str, str],
    *,
    view_private: bool = False,
    receive_meeting_copies: bool = False,
) -> None:
    """Make `delegate` a delegate of `owner` with levels per default folder (e.g. calendar=Editor).

    Like Outlook, the delegate also gets Folder visible on the mailbox's top folders so that a
    client can walk from the root to the folders it was granted.
    """
    with store.transaction():
        for folder, level in levels.items():
            if folder not in DELEGATE_FOLDERS:
                raise ValueError(f"not a delegate folder: {folder!r}")
            if level not in DELEGATE_LEVELS:
                raise ValueError(f"unknown delegate level {level!r}")
            target = store.distinguished_folder(owner, folder)
            if target is None:
                raise ValueError(f"{owner} has no {folder} folder")
            if level == "None":
                store.remove_permission(target.id, delegate)
            else:
                grant(store, target.id, delegate, level)
        grant_visibility(store, owner, delegate)
        store.set_delegate(
            owner,
            delegate,
            view_private=view_private,
            receive_meeting_copies=receive_meeting_copies,
        )


VISIBLE_ONLY = Rights(folder_visible=True)


def grant_visibility(store: Store, owner: str, principal: str) -> None:
    """Folder visible on root and the top of the information store, unless more is granted."""
    for name in ("root", "msgfolderroot"):
        top = store.distinguished_folder(owner, name)
        if top is not None and store.permission(top.id, principal) is None:
            grant(store, top.id, principal, VISIBLE_ONLY)


def copy_permissions(store: Store, source_id: str, target_id: str) -> None:
    """Give a folder the permission entries of another (a new subfolder inherits its parent's)."""
    for row in store.permissions(source_id):
        store.set_permission(
            target_id,
            row["principal"],
            row["role"],
            **rights_row(rights_from_row(row)),
        )
