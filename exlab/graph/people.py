"""Contacts, Microsoft To Do tasks and the category list of the Graph face."""

from __future__ import annotations

from exlab.core import items as store_items
from exlab.core import targets, view
from exlab.core.store import Folder
from exlab.graph.convert import (
    GraphInputError,
    contact_in,
    contact_out,
    task_out,
)
from exlab.graph.core import (
    Call,
    GraphError,
    Json,
    body_json,
    check,
    collection,
    folder_gid,
    item_delta,
    need,
    readable,
    target_gid,
)
from exlab.graph.tokens import stable_uuid


def contact_json(call: Call, target: targets.Target) -> Json:
    _, p = view.output_props(call.ctx, target)
    return contact_out(p, target_gid(target), folder_gid(target.folder), target.item.change_key)


def list_contacts(call: Call, folder: Folder) -> Json:
    need(call, "Contacts")
    r = readable(call, folder)
    rows = [
        contact_json(call, targets.Target(i, folder))
        for i in targets.visible_items(call.ctx, folder, r)
        if i.item_class.startswith("IPM.Contact")
    ]
    return collection(call, rows, context="contacts")


def create_contact(call: Call, folder: Folder) -> tuple[int, Json]:
    need(call, "Contacts", write=True)
    try:
        props = contact_in(body_json(call))
    except GraphInputError as exc:
        raise GraphError(400, exc.code, exc.message) from None
    check(targets.check_create, call, folder)
    item = store_items.create_item(
        call.lab.store, folder, "IPM.Contact", props, created_by=call.ctx.user, now=call.lab.now()
    )
    return 201, contact_json(call, targets.Target(item, folder))


def contact_folder_json(call: Call, folder: Folder) -> Json:
    parent = call.lab.store.folder(folder.parent_id) if folder.parent_id else None
    out: Json = {
        "id": folder_gid(folder),
        "displayName": folder.display_name,
        "parentFolderId": folder_gid(parent) if parent else None,
    }
    if folder.distinguished == "contacts":
        out["wellKnownName"] = "contacts"
    return out


def todo_list_json(folder: Folder) -> Json:
    return {
        "id": folder_gid(folder),
        "displayName": folder.display_name,
        "isOwner": True,
        "isShared": False,
        "wellknownListName": "defaultList" if folder.distinguished == "tasks" else "none",
    }


def task_json(call: Call, target: targets.Target) -> Json:
    _, p = view.output_props(call.ctx, target)
    return task_out(p, target_gid(target), target.item.change_key)


def is_task(item: store_items.Item) -> bool:
    return item.item_class.startswith("IPM.Task")


def task_delta(call: Call, folder: Folder) -> Json:
    """`todo/lists/{id}/tasks/delta`: the list's tasks added, changed or removed since the
    token (deltaLink/nextLink as for messages)."""
    return item_delta(
        call,
        folder,
        wanted=is_task,
        render=lambda target: task_json(call, target),
        odata_type="#microsoft.graph.todoTask",
    )


def master_categories(call: Call) -> list[Json]:
    """The mailbox's category list: the categories its items use (the lab keeps no other)."""
    names: dict[str, None] = {}
    for folder in call.lab.store.folders_of(call.mailbox):
        if not targets.rights(call.ctx, folder).can_read_items:
            continue
        for item in store_items.items_in(call.lab.store, folder.id):
            for name in item.props.get("item:Categories") or []:
                names[str(name)] = None
    presets = ["preset0", "preset1", "preset2", "preset3", "preset4", "preset7"]
    return [
        {
            "id": stable_uuid("category", f"{call.mailbox}:{name}"),
            "displayName": name,
            "color": presets[i % len(presets)],
        }
        for i, name in enumerate(sorted(names))
    ]
