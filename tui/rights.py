"""Which actions the user's effective rights allow, so the UI offers nothing the server will refuse.

The server still decides; this only keeps forbidden actions out of the keys, footer and help.
Unknown rights (None) allow everything and let the server answer.
"""

from __future__ import annotations

from med.model import EditScope, FolderKind, Rights

#: Actions that change items in the folder and the right each needs.
_NEEDS_EDIT = {"toggle_read", "toggle_flag", "set_due", "categories", "importance", "edit_item",
               "complete_item", "edit_event", "move_event", "respond"}  # fmt: skip
_NEEDS_DELETE = {"delete", "move", "delete_event"}
_NEEDS_CREATE = {"new_item", "new_event"}
_NEEDS_READ = {"reply", "reply_all", "forward", "open_item", "attachments"}
_MAIL_ONLY = {"reply", "reply_all", "forward"}


def allows(rights: Rights | None, action: str, kind: FolderKind | None = None) -> bool:
    """True when `action` is worth offering in a folder of `kind` with `rights`."""
    if kind is not None and action in _MAIL_ONLY and kind is not FolderKind.MAIL:
        return False
    if kind is not FolderKind.TASKS and action == "complete_item":
        return False
    if rights is None:
        return True
    if action in _NEEDS_EDIT:
        return rights.edit is not EditScope.NONE
    if action in _NEEDS_DELETE:
        return rights.delete is not EditScope.NONE
    if action in _NEEDS_CREATE:
        return rights.create_items
    if action in _NEEDS_READ:
        return rights.can_read_items
    return True
