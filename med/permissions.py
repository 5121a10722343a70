"""Outlook permission roles ↔ folder rights, and a user's effective rights on a folder.

Exchange stores folder rights, Outlook shows roles: a role is a fixed set of rights and a set
of rights matching no role is "Custom". Delegate levels (Reviewer, Author, Editor) are stored
by Exchange as folder permissions on the owner's default folders; ViewPrivateItems is a
delegate flag, not a folder right, and only the owner and such delegates see private items.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from med.model import (
    Delegate,
    DelegateLevel,
    EditScope,
    Folder,
    Permission,
    ReadAccess,
    Rights,
    Role,
)

__all__ = [
    "DELEGATE_FOLDERS",
    "ROLE_RIGHTS",
    "combine",
    "delegate_rights",
    "effective_rights",
    "permission_for_role",
    "rights_for_role",
    "role_for_rights",
]

_FULL = ReadAccess.FULL
_ALL = EditScope.ALL
_OWN = EditScope.OWN

#: The rights each Outlook role stands for (without view_private, which no role grants).
ROLE_RIGHTS: Mapping[Role, Rights] = {
    Role.OWNER: Rights(
        read=_FULL,
        create_items=True,
        create_subfolders=True,
        edit=_ALL,
        delete=_ALL,
        folder_owner=True,
        folder_contact=True,
        folder_visible=True,
    ),
    Role.PUBLISHING_EDITOR: Rights(
        read=_FULL,
        create_items=True,
        create_subfolders=True,
        edit=_ALL,
        delete=_ALL,
        folder_visible=True,
    ),
    Role.EDITOR: Rights(read=_FULL, create_items=True, edit=_ALL, delete=_ALL, folder_visible=True),
    Role.PUBLISHING_AUTHOR: Rights(
        read=_FULL,
        create_items=True,
        create_subfolders=True,
        edit=_OWN,
        delete=_OWN,
        folder_visible=True,
    ),
    Role.AUTHOR: Rights(read=_FULL, create_items=True, edit=_OWN, delete=_OWN, folder_visible=True),
    Role.NON_EDITING_AUTHOR: Rights(
        read=_FULL, create_items=True, delete=_OWN, folder_visible=True
    ),
    Role.REVIEWER: Rights(read=_FULL, folder_visible=True),
    Role.CONTRIBUTOR: Rights(create_items=True, folder_visible=True),
    Role.FREE_BUSY_TIME_ONLY: Rights(read=ReadAccess.FREEBUSY_TIME),
    Role.FREE_BUSY_TIME_AND_SUBJECT_AND_LOCATION: Rights(read=ReadAccess.FREEBUSY_DETAILED),
    Role.NONE: Rights(),
}

#: The default folders a delegate level applies to, by well-known name.
DELEGATE_FOLDERS = ("calendar", "tasks", "inbox", "contacts", "notes", "journal")

_DELEGATE_ROLES = {
    DelegateLevel.NONE: Role.NONE,
    DelegateLevel.REVIEWER: Role.REVIEWER,
    DelegateLevel.AUTHOR: Role.AUTHOR,
    DelegateLevel.EDITOR: Role.EDITOR,
}

_READ_ORDER = [ReadAccess.NONE, ReadAccess.FREEBUSY_TIME, ReadAccess.FREEBUSY_DETAILED, _FULL]
_SCOPE_ORDER = [EditScope.NONE, _OWN, _ALL]


def rights_for_role(role: Role) -> Rights:
    """The rights of a named role.

    Raises:
        ValueError: for Role.CUSTOM, which has no fixed rights.
    """
    if role is Role.CUSTOM:
        raise ValueError("Role.CUSTOM has no fixed rights")
    return ROLE_RIGHTS[role]


def role_for_rights(rights: Rights) -> Role:
    """The role whose rights these are exactly (ignoring view_private), else CUSTOM."""
    plain = dataclasses.replace(rights, view_private=False)
    for role, role_rights in ROLE_RIGHTS.items():
        if role_rights == plain:
            return role
    return Role.CUSTOM


def permission_for_role(principal: str, role: Role, display_name: str = "") -> Permission:
    """A permission entry giving `principal` the rights of `role`."""
    return Permission(principal, role, rights_for_role(role), display_name)


def combine(rights: Iterable[Rights]) -> Rights:
    """The union of several grants: each right at its widest."""
    out = Rights()
    for r in rights:
        out = Rights(
            read=max(out.read, r.read, key=_READ_ORDER.index),
            create_items=out.create_items or r.create_items,
            create_subfolders=out.create_subfolders or r.create_subfolders,
            edit=max(out.edit, r.edit, key=_SCOPE_ORDER.index),
            delete=max(out.delete, r.delete, key=_SCOPE_ORDER.index),
            folder_owner=out.folder_owner or r.folder_owner,
            folder_contact=out.folder_contact or r.folder_contact,
            folder_visible=out.folder_visible or r.folder_visible,
            view_private=out.view_private or r.view_private,
        )
    return out


def delegate_rights(delegate: Delegate, folder_name: str) -> Rights:
    """What a delegate grant gives on one of the owner's default folders."""
    level = delegate.levels.get(folder_name.lower(), DelegateLevel.NONE)
    role = _DELEGATE_ROLES.get(level)
    base = ROLE_RIGHTS[role] if role is not None else Rights()
    if base == Rights():
        return base
    return dataclasses.replace(base, view_private=delegate.view_private)


def effective_rights(
    user: str,
    folder: Folder,
    permissions: Iterable[Permission],
    delegates: Iterable[Delegate] = (),
    *,
    owner: str | None = None,
) -> Rights:
    """The rights `user` has on `folder`.

    The mailbox owner (`owner`, defaulting to `folder.mailbox`) has every right. Otherwise
    the user's own permission entry counts, or the "default" entry when there is none
    (like Exchange, a named entry replaces the default, it does not add to it); a delegate
    grant on this default folder is added, and with it ViewPrivateItems.
    """
    me = user.strip().lower()
    owner_address = (owner or folder.mailbox).lower()
    if me == owner_address and owner_address != "public":
        return Rights.full()
    entries = {p.principal.lower(): p.rights for p in permissions}
    granted = [entries.get(me, entries.get("default", Rights()))]
    if folder.distinguished:
        for delegate in delegates:
            if delegate.address.lower() == me:
                granted.append(delegate_rights(delegate, folder.distinguished))
    rights = combine(granted)
    if rights.folder_owner and owner_address == "public":
        # Owners of a public folder see everything in it, private items included.
        rights = dataclasses.replace(rights, view_private=True)
    return rights
