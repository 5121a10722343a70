"""An item as a client sees it: stored properties plus what the server computes on reading.

Both faces build their answers from these properties (EWS elements, Graph JSON): ids, parent
folder, attachments, size, display lists, effective rights, and for calendar items the
occurrence, exception or series view.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from exlab.core import items as store_items
from exlab.core.access import Rights
from exlab.core.calendar import (
    duration_of,
    master_extras,
    original_start,
    with_zone_offsets,
    zone_name_of,
    zone_of,
)
from exlab.core.caller import Caller
from exlab.core.ids import encode_id
from exlab.core.items import element_for_class
from exlab.core.mapi import add_item_properties
from exlab.core.mime import calendar_mime, to_mime
from exlab.core.store import utc_text
from exlab.core.targets import Target, item_ews_id, occurrence_ews_id, rights, scope_allows
from exlab.core.timezones import windows_id_of


def output_props(
    caller: Caller,
    target: Target,
    include_mime: bool = False,
    r: Rights | None = None,
) -> tuple[str, dict[str, Any]]:
    """(element, props) of an item as a client sees it, computed fields included."""
    item = target.item
    store = caller.lab.store
    atts = store_items.attachments_of(store, item.id)
    p = store_items.effective_props(item, has_attachments=bool(atts))
    element = element_for_class(item.item_class)
    p["item:ItemId"] = {"id": item_ews_id(item), "change_key": item.change_key}
    p["item:ParentFolderId"] = {
        "id": encode_id("folder", target.folder.id),
        "change_key": target.folder.change_key,
    }
    p["item:Attachments"] = [a.as_dict(encode_id("attachment", a.id)) for a in atts]
    p["item:Size"] = len(json.dumps(item.props)) + sum(len(a.content) for a in atts)
    p["item:DisplayTo"] = "; ".join(
        x.get("name") or x.get("email", "") for x in p.get("message:ToRecipients", [])
    )
    p["item:DisplayCc"] = "; ".join(
        x.get("name") or x.get("email", "") for x in p.get("message:CcRecipients", [])
    )
    r = r or rights(caller, target.folder)
    p["item:EffectiveRights"] = {
        "CreateAssociated": r.create_items,
        "CreateContents": r.create_items,
        "CreateHierarchy": r.create_subfolders,
        "Delete": scope_allows(r.delete, caller, item),
        "Modify": scope_allows(r.edit, caller, item),
        "Read": r.can_read_items,
        "ViewPrivateItems": r.view_private,
    }
    if element == "CalendarItem":
        if target.index is not None:
            start = original_start(caller, item, target.index)
            p["item:ItemId"] = {
                "id": occurrence_ews_id(item, target.index),
                "change_key": item.change_key,
            }
            p["calendar:Start"] = utc_text(start)
            p["calendar:End"] = utc_text(start + duration_of(item))
            p["calendar:OriginalStart"] = p["calendar:Start"]
            p["calendar:CalendarItemType"] = "Occurrence"
            p.pop("calendar:Recurrence", None)
            p["calendar:IsRecurring"] = True
        elif item.master_id is not None:
            p["calendar:CalendarItemType"] = "Exception"
            p["calendar:IsRecurring"] = True
        elif "calendar:Recurrence" in p:
            master_extras(caller, item, p)
            p["calendar:Recurrence"] = with_zone_offsets(
                p["calendar:Recurrence"], zone_of(caller, item)
            )
        else:
            p.setdefault("calendar:CalendarItemType", "Single")
        p.setdefault(
            "calendar:IsMeeting",
            bool(p.get("calendar:RequiredAttendees") or p.get("calendar:OptionalAttendees")),
        )
        p.setdefault("calendar:IsCancelled", False)
        p.setdefault("calendar:IsAllDayEvent", False)
        p.setdefault("calendar:LegacyFreeBusyStatus", "Busy")
        p.setdefault("calendar:MyResponseType", "Organizer")
        p.setdefault("calendar:UID", item.id)
    if element == "Message" or element.startswith("Meeting"):
        p.setdefault("message:IsRead", False)
        p.setdefault("item:IsDraft", False)
    add_item_properties(
        store, item, p, size=int(p["item:Size"]), is_calendar=element == "CalendarItem"
    )
    if include_mime:
        if element == "CalendarItem":
            # Exchange gives a calendar item as its bare iCalendar object, TZID by Windows name.
            label = windows_id_of(zone_name_of(caller, item)) or "UTC"
            mime = calendar_mime(p, zone_of(caller, item).key, label)
        else:
            mime = to_mime(p, atts)
        p["item:MimeContent"] = base64.b64encode(mime).decode("ascii")
    return element, p
