"""What an item id names, and whether the caller may read, change, delete or create it.

Rights come from `exlab.core.access.effective_rights` (folder permissions, delegate grants);
private items do not exist for delegates without ViewPrivateItems.
"""

from __future__ import annotations

from dataclasses import dataclass

from exlab.core import items as store_items
from exlab.core.access import Rights, effective_rights
from exlab.core.caller import Caller
from exlab.core.errors import NOT_FOUND, ExchangeError, denied, not_found
from exlab.core.ids import decode_id, encode_id
from exlab.core.items import Item
from exlab.core.recurrence import Recurrence, date_of
from exlab.core.store import Folder


def item_ews_id(item: Item) -> str:
    """An item's id; a modified occurrence keeps its occurrence id, as in Exchange."""
    if item.master_id is not None and "lab:index" in item.props:
        return encode_id("occurrence", f"{item.master_id}:{item.props['lab:index']}")
    return encode_id("item", item.id)


def occurrence_ews_id(master: Item, index: int) -> str:
    return encode_id("occurrence", f"{master.id}:{index}")


@dataclass
class Target:
    """What an item id names: a stored item, or an occurrence of a master (index set)."""

    item: Item
    folder: Folder
    index: int | None = None

    @property
    def is_virtual(self) -> bool:
        return self.index is not None


def load(caller: Caller, key: str) -> tuple[Item, Folder]:
    item = store_items.get_item(caller.lab.store, key)
    if item is None:
        raise not_found()
    folder_key = item.folder_id
    if item.master_id is not None:
        master = store_items.get_item(caller.lab.store, item.master_id)
        if master is None:
            raise not_found()
        folder_key = master.folder_id
    folder = caller.lab.store.folder(folder_key)
    if folder is None:
        raise not_found()
    return item, folder


def occurrence_target(caller: Caller, master_key: str, index: int) -> Target:
    master, folder = load(caller, master_key)
    if "calendar:Recurrence" not in master.props or index < 1:
        raise not_found()
    for exc in store_items.exceptions_of(caller.lab.store, master.id):
        if exc.props.get("lab:index") == index:
            return Target(exc, folder)
    if index in master.props.get("lab:deleted", []):
        raise ExchangeError("ErrorItemNotFound", "The occurrence was deleted from the series.")
    rec = Recurrence.from_json(master.props["calendar:Recurrence"])
    if date_of(rec, index) is None:
        raise ExchangeError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange", NOT_FOUND)
    return Target(master, folder, index)


def rights(caller: Caller, folder: Folder) -> Rights:
    return effective_rights(caller.lab.store, caller.user, folder)


def hidden(caller: Caller, item: Item, r: Rights) -> bool:
    """Private items are not there for delegates without ViewPrivateItems."""
    return item.is_private and not r.view_private


def check_read(caller: Caller, target: Target) -> Rights:
    r = rights(caller, target.folder)
    if not r.can_read_items or hidden(caller, target.item, r):
        raise denied()
    return r


def scope_allows(scope: str, caller: Caller, item: Item) -> bool:
    return scope == "all" or (scope == "own" and item.created_by == caller.user)


def check_edit(caller: Caller, target: Target) -> Rights:
    r = check_read(caller, target)
    if not scope_allows(r.edit, caller, target.item):
        raise denied()
    return r


def check_delete(caller: Caller, target: Target) -> Rights:
    r = rights(caller, target.folder)
    if hidden(caller, target.item, r) or not scope_allows(r.delete, caller, target.item):
        raise denied()
    return r


def check_create(caller: Caller, folder: Folder) -> Rights:
    r = rights(caller, folder)
    if not r.create_items:
        raise denied()
    return r


def distinguished(caller: Caller, mailbox: str, name: str) -> Folder:
    folder = caller.lab.store.distinguished_folder(mailbox, name)
    if folder is None:
        raise ExchangeError("ErrorFolderNotFound", f"{mailbox} has no {name} folder.")
    return folder


def visible_items(caller: Caller, folder: Folder, r: Rights) -> list[Item]:
    return [
        i for i in store_items.items_in(caller.lab.store, folder.id) if not hidden(caller, i, r)
    ]


def resolve_id(caller: Caller, item_id: str) -> Target:
    """The target of an item or occurrence id (as both faces hand them out)."""
    kind, key = decode_id(item_id)
    if kind == "item":
        item, folder = load(caller, key)
        return Target(item, folder)
    if kind == "occurrence":
        master_key, _, idx = key.rpartition(":")
        if not idx.isdigit():
            raise ExchangeError("ErrorInvalidIdMalformed", "Id is malformed.")
        return occurrence_target(caller, master_key, int(idx))
    raise ExchangeError("ErrorInvalidIdMalformed", "Id is malformed.")
