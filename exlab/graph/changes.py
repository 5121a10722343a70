"""PATCH and DELETE of items of every kind (messages, events, occurrences, contacts)."""

from __future__ import annotations

from exlab.core import calendar as cal_rules
from exlab.core import items as store_items
from exlab.core import meetings, targets
from exlab.graph.calendar import (
    event_json,
)
from exlab.graph.convert import (
    GraphInputError,
    contact_in,
    event_in,
    message_in,
)
from exlab.graph.core import (
    Call,
    GraphError,
    Json,
    access_denied,
    body_json,
    check,
    need,
    resolve_item,
)
from exlab.graph.mail import (
    message_json,
)
from exlab.graph.people import (
    contact_json,
)


def patch_item(call: Call, gid: str, area: str) -> Json:
    need(call, area, write=True)
    target = resolve_item(call, gid)
    check(targets.check_edit, call, target)
    body = body_json(call)
    try:
        if area == "Mail":
            changes = message_in(body, creating=False)
        elif area == "Calendars":
            changes = event_in(body)
        else:
            changes = contact_in(body, target.item.props)
    except GraphInputError as exc:
        raise GraphError(400, exc.code, exc.message) from None
    now = call.lab.now()
    item = cal_rules.materialize(call.ctx, target, now) if target.is_virtual else target.item
    was_private = item.is_private
    item.props = store_items.apply_changes(item.props, changes)  # None removes (recurrence)
    r = targets.rights(call.ctx, target.folder)
    if item.is_private and not was_private and not r.view_private:
        raise access_denied()
    if area == "Calendars":
        start, end = item.props.get("calendar:Start"), item.props.get("calendar:End")
        if start and end and end < start:
            raise GraphError(
                400, "ErrorInvalidRequest", "The end of the event is before its start."
            )
        if "calendar:Recurrence" in item.props and item.master_id is None:
            cal_rules.align_master_start(call.ctx, item.props, target.folder.mailbox)
        fallback = cal_rules.owner_zone(call.ctx, target.folder.mailbox)
        cal_rules.normalise_all_day(item.props, cal_rules.item_zone_name(item.props, fallback))
    store_items.save_item(call.lab.store, item, now)
    if area == "Calendars" and meetings.organized_here(item):
        meetings.send_update(call.ctx, item, now)  # Graph updates attendees on every change
    new_target = targets.Target(item, target.folder)
    if area == "Mail":
        return message_json(call, new_target)
    if area == "Calendars":
        return event_json(call, new_target)
    return contact_json(call, new_target)


def delete_item(call: Call, gid: str, area: str, *, hard: bool = False) -> None:
    """DELETE moves mail to Deleted Items (events and contacts go at once); `permanentDelete`
    (`hard`) removes an item for good."""
    need(call, area, write=True)
    target = resolve_item(call, gid)
    check(targets.check_delete, call, target)
    now = call.lab.now()
    item = target.item
    if target.is_virtual or item.master_id is not None:
        master: store_items.Item | None = (
            item
            if target.is_virtual
            else store_items.get_item(call.lab.store, item.master_id or "")
        )
        if master is None:
            raise GraphError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        index = target.index if target.is_virtual else int(item.props["lab:index"])
        master.props["lab:deleted"] = sorted({*master.props.get("lab:deleted", []), index})
        if not target.is_virtual:
            store_items.delete_item(call.lab.store, item, now)
        store_items.save_item(call.lab.store, master, now)
        return
    if area == "Calendars" and meetings.organized_here(item):
        meetings.send_cancellation(call.ctx, item, now)  # Graph cancels for the organizer
    bin_folder = call.lab.store.distinguished_folder(item.mailbox, "deleteditems")
    if not hard and area == "Mail" and bin_folder and bin_folder.id != item.folder_id:
        store_items.move_item(call.lab.store, item, bin_folder, now)
    else:
        store_items.delete_item(call.lab.store, item, now)
