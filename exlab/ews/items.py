"""Item operations of the lab's EWS face, with Exchange's access rules on every call.

FindItem (paging, sort, restriction, CalendarView with recurrence expansion), GetItem,
CreateItem (save, send, send on behalf, meeting invitations and responses), UpdateItem
(incl. occurrences and masters), DeleteItem, MoveItem, CopyItem, SendItem, ArchiveItem.
Rights come from ``exlab.access.effective_rights``; private items are invisible to
delegates without ViewPrivateItems. A refused item answers ErrorAccessDenied in its own
response message and changes nothing (each item runs in its own savepoint).
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from exlab import items as store_items
from exlab.access import Rights, effective_rights
from exlab.ews import itemxml, meetings
from exlab.ews.ids import decode_id, encode_id, resolve_folder
from exlab.ews.mapi_props import add_item_properties, record_last_verb
from exlab.ews.soap import (
    EwsContext,
    EwsError,
    SoapFault,
    error_message,
    m,
    operation,
    response,
    response_message,
    sub,
    t,
    text_of,
)
from exlab.items import Item
from exlab.mailbox_rights import has_mailbox_permission
from exlab.recurrence import Recurrence, expand
from exlab.restrictions import (
    RestrictionError,
    matches,
    parse_restriction,
    parse_sort_order,
    sort_props,
)
from exlab.store import Folder, new_key

ACCESS_DENIED = "Access is denied. Check credentials and try again."
VIEW_MAX_YEARS = 2
"""A calendar view spans at most two years, as on Exchange."""
VIEW_COUNT_LIMIT = 1000
"""Entries one calendar view may answer (Exchange's EWSFindCountLimit default)."""
NOT_FOUND = "The specified object was not found in the store."

# Windows time zone ids (as EWS names them) to IANA, for recurrence expansion.
ZONES = {
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "Central Europe Standard Time": "Europe/Budapest",
    "Central European Standard Time": "Europe/Warsaw",
    "GMT Standard Time": "Europe/London",
    "UTC": "UTC",
    "Greenwich Standard Time": "Atlantic/Reykjavik",
    "Eastern Standard Time": "America/New_York",
    "Pacific Standard Time": "America/Los_Angeles",
}

DEFAULT_FOLDER_FOR = {
    "CalendarItem": "calendar",
    "Contact": "contacts",
    "Task": "tasks",
}


def denied() -> EwsError:
    return EwsError("ErrorAccessDenied", ACCESS_DENIED)


def not_found() -> EwsError:
    return EwsError("ErrorItemNotFound", NOT_FOUND)


def xml_error(exc: itemxml.ItemXmlError | RestrictionError) -> EwsError:
    code = exc.code if isinstance(exc, itemxml.ItemXmlError) else "ErrorInvalidRestriction"
    return EwsError(code, str(exc))


@contextmanager
def savepoint(ctx: EwsContext) -> Iterator[None]:
    """One item's work: rolled back alone when it fails."""
    with ctx.lab.store.transaction():
        yield


def per_item(
    op: str, ctx: EwsContext, elements: list[Element], work: Callable[[Element], list[Element]]
) -> Element:
    """Run ``work`` per element; each answers its own response message, errors included."""
    messages = []
    for el in elements:
        try:
            with savepoint(ctx):
                children = work(el)
        except EwsError as err:
            messages.append(_error_with_container(op, err))
            continue
        except (itemxml.ItemXmlError, RestrictionError) as exc:
            messages.append(_error_with_container(op, xml_error(exc)))
            continue
        messages.append(response_message(op, children))
    return response(op, messages)


# Response messages whose schema type requires an (empty) container even on error.
ERROR_CONTAINERS = {
    "GetItem": "Items",
    "CreateItem": "Items",
    "UpdateItem": "Items",
    "MoveItem": "Items",
    "CopyItem": "Items",
    "ArchiveItem": "Items",
    "CreateAttachment": "Attachments",
    "GetAttachment": "Attachments",
}


def _error_with_container(op: str, err: EwsError) -> Element:
    message = error_message(op, err)
    container = ERROR_CONTAINERS.get(op)
    if container is not None:
        sub(message, m(container))
    return message


# -- ids and rights -----------------------------------------------------------------------------


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


def _load(ctx: EwsContext, key: str) -> tuple[Item, Folder]:
    item = store_items.get_item(ctx.lab.store, key)
    if item is None:
        raise not_found()
    folder_key = item.folder_id
    if item.master_id is not None:
        master = store_items.get_item(ctx.lab.store, item.master_id)
        if master is None:
            raise not_found()
        folder_key = master.folder_id
    folder = ctx.lab.store.folder(folder_key)
    if folder is None:
        raise not_found()
    return item, folder


def _occurrence(ctx: EwsContext, master_key: str, index: int) -> Target:
    master, folder = _load(ctx, master_key)
    if "calendar:Recurrence" not in master.props or index < 1:
        raise not_found()
    for exc in store_items.exceptions_of(ctx.lab.store, master.id):
        if exc.props.get("lab:index") == index:
            return Target(exc, folder)
    if index in master.props.get("lab:deleted", []):
        raise EwsError("ErrorItemNotFound", "The occurrence was deleted from the series.")
    rec = Recurrence.from_json(master.props["calendar:Recurrence"])
    from exlab.recurrence import date_of

    if date_of(rec, index) is None:
        raise EwsError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange", NOT_FOUND)
    return Target(master, folder, index)


def resolve_item(ctx: EwsContext, el: Element) -> Target:
    """``t:ItemId``, ``t:OccurrenceItemId`` or ``t:RecurringMasterItemId`` to its target."""
    local = el.tag.rsplit("}", 1)[-1]
    if local in ("ItemId", "ReferenceItemId", "AssociatedCalendarItemId"):
        kind, key = decode_id(el.get("Id"))
        if kind == "item":
            item, folder = _load(ctx, key)
            return Target(item, folder)
        if kind == "occurrence":
            master_key, _, idx = key.rpartition(":")
            if not idx.isdigit():
                raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
            return _occurrence(ctx, master_key, int(idx))
        raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
    if local == "OccurrenceItemId":
        kind, key = decode_id(el.get("RecurringMasterId"))
        if kind != "item":
            raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
        try:
            index = int(el.get("InstanceIndex", ""))
        except ValueError:
            raise EwsError("ErrorInvalidIdMalformed", "InstanceIndex is malformed.") from None
        return _occurrence(ctx, key, index)
    if local == "RecurringMasterItemId":
        kind, key = decode_id(el.get("OccurrenceId"))
        if kind == "occurrence":
            key = key.rpartition(":")[0]
        elif kind == "item":
            item, _ = _load(ctx, key)
            key = item.master_id or item.id
        else:
            raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
        item, folder = _load(ctx, key)
        if "calendar:Recurrence" not in item.props:
            raise EwsError("ErrorItemNotFound", "The item is not a recurring master.")
        return Target(item, folder)
    raise SoapFault("ErrorSchemaValidation", f"unexpected item id element {local}")


def rights(ctx: EwsContext, folder: Folder) -> Rights:
    return effective_rights(ctx.lab.store, ctx.user, folder)


def hidden(ctx: EwsContext, item: Item, r: Rights) -> bool:
    """Private items are not there for delegates without ViewPrivateItems."""
    return item.is_private and not r.view_private


def check_read(ctx: EwsContext, target: Target) -> Rights:
    r = rights(ctx, target.folder)
    if not r.can_read_items or hidden(ctx, target.item, r):
        raise denied()
    return r


def _scope_allows(scope: str, ctx: EwsContext, item: Item) -> bool:
    return scope == "all" or (scope == "own" and item.created_by == ctx.user)


def check_edit(ctx: EwsContext, target: Target) -> Rights:
    r = check_read(ctx, target)
    if not _scope_allows(r.edit, ctx, target.item):
        raise denied()
    return r


def check_delete(ctx: EwsContext, target: Target) -> Rights:
    r = rights(ctx, target.folder)
    if hidden(ctx, target.item, r) or not _scope_allows(r.delete, ctx, target.item):
        raise denied()
    return r


def check_create(ctx: EwsContext, folder: Folder) -> Rights:
    r = rights(ctx, folder)
    if not r.create_items:
        raise denied()
    return r


def folder_from(ctx: EwsContext, container: Element | None) -> Folder | None:
    """The folder named in a container such as ``m:SavedItemFolderId`` (None when absent)."""
    if container is None:
        return None
    for child in container:
        if child.tag in (t("FolderId"), t("DistinguishedFolderId")):
            return resolve_folder(ctx, child)
    return None


def distinguished(ctx: EwsContext, mailbox: str, name: str) -> Folder:
    folder = ctx.lab.store.distinguished_folder(mailbox, name)
    if folder is None:
        raise EwsError("ErrorFolderNotFound", f"{mailbox} has no {name} folder.")
    return folder


# -- output ---------------------------------------------------------------------------------------


def windows_zone_of(ctx: EwsContext, item: Item) -> str:
    """The Windows zone an item's times are kept in: its own, else its mailbox's."""
    tz = item.props.get("calendar:StartTimeZone") or {}
    name = tz.get("id") if isinstance(tz, dict) else None
    if not name:
        mb = ctx.lab.store.mailbox(item.mailbox)
        name = mb.time_zone if mb is not None else "UTC"
    return str(name) if str(name) in ZONES else "UTC"


def zone_of(ctx: EwsContext, item: Item) -> ZoneInfo:
    return ZoneInfo(ZONES[windows_zone_of(ctx, item)])


def _duration(item: Item) -> timedelta:
    start = item.props.get("calendar:Start")
    end = item.props.get("calendar:End")
    if not start or not end:
        return timedelta(0)
    return itemxml.dt_from(end) - itemxml.dt_from(start)


def occurrences_of(
    ctx: EwsContext, master: Item, window_start: datetime, window_end: datetime
) -> list[tuple[int, datetime, datetime]]:
    """(index, start, end) in UTC of the master's unmodified, undeleted occurrences."""
    rec = Recurrence.from_json(master.props["calendar:Recurrence"])
    zone = zone_of(ctx, master)
    first = itemxml.dt_from(master.props["calendar:Start"]).astimezone(zone)
    modified = frozenset(
        int(e.props["lab:index"]) for e in store_items.exceptions_of(ctx.lab.store, master.id)
    )
    occ = expand(
        rec,
        first,
        _duration(master),
        window_start=window_start.astimezone(zone),
        window_end=window_end.astimezone(zone),
        deleted=frozenset(master.props.get("lab:deleted", [])),
        modified=modified,
    )
    return [(o.index, o.start, o.end) for o in occ]


def _original_start(ctx: EwsContext, master: Item, index: int) -> datetime:
    from exlab.recurrence import date_of

    rec = Recurrence.from_json(master.props["calendar:Recurrence"])
    zone = zone_of(ctx, master)
    first = itemxml.dt_from(master.props["calendar:Start"]).astimezone(zone)
    day = date_of(rec, index)
    if day is None:
        raise EwsError("ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange", NOT_FOUND)
    return datetime.combine(day, first.timetz())


def _master_extras(ctx: EwsContext, master: Item, p: dict[str, Any]) -> None:
    """FirstOccurrence/LastOccurrence/ModifiedOccurrences/DeletedOccurrences of a master."""
    from exlab.recurrence import last_date, occurrence_dates

    rec = Recurrence.from_json(master.props["calendar:Recurrence"])
    duration = _duration(master)
    p["calendar:CalendarItemType"] = "RecurringMaster"

    def info(index: int) -> dict[str, Any]:
        start = _original_start(ctx, master, index)
        return {
            "id": occurrence_ews_id(master, index),
            "start": itemxml.dt_text(start),
            "end": itemxml.dt_text(start + duration),
            "original_start": itemxml.dt_text(start),
        }

    first = next(iter(occurrence_dates(rec)), None)
    if first is not None:
        p["calendar:FirstOccurrence"] = info(first[0])
    last = last_date(rec)
    if last is not None:
        from exlab.recurrence import index_of

        idx = index_of(rec, last)
        if idx is not None:
            p["calendar:LastOccurrence"] = info(idx)
    exceptions = store_items.exceptions_of(ctx.lab.store, master.id)
    if exceptions:
        p["calendar:ModifiedOccurrences"] = [
            {
                "id": item_ews_id(e),
                "change_key": e.change_key,
                "start": e.props.get("calendar:Start"),
                "end": e.props.get("calendar:End"),
                "original_start": e.props.get("calendar:OriginalStart"),
            }
            for e in exceptions
        ]
    deleted = master.props.get("lab:deleted", [])
    if deleted:
        p["calendar:DeletedOccurrences"] = [
            itemxml.dt_text(_original_start(ctx, master, i)) for i in sorted(deleted)
        ]


def output_props(
    ctx: EwsContext,
    target: Target,
    shape: itemxml.Shape,
    r: Rights | None = None,
) -> tuple[str, dict[str, Any]]:
    """(element, props) of an item as a client sees it, computed fields included."""
    item = target.item
    store = ctx.lab.store
    atts = store_items.attachments_of(store, item.id)
    p = store_items.effective_props(item, has_attachments=bool(atts))
    element = itemxml.element_for_class(item.item_class)
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
    r = r or rights(ctx, target.folder)
    p["item:EffectiveRights"] = {
        "CreateAssociated": r.create_items,
        "CreateContents": r.create_items,
        "CreateHierarchy": r.create_subfolders,
        "Delete": _scope_allows(r.delete, ctx, item),
        "Modify": _scope_allows(r.edit, ctx, item),
        "Read": r.can_read_items,
        "ViewPrivateItems": r.view_private,
    }
    if element == "CalendarItem":
        if target.index is not None:
            start = _original_start(ctx, item, target.index)
            p["item:ItemId"] = {
                "id": occurrence_ews_id(item, target.index),
                "change_key": item.change_key,
            }
            p["calendar:Start"] = itemxml.dt_text(start)
            p["calendar:End"] = itemxml.dt_text(start + _duration(item))
            p["calendar:OriginalStart"] = p["calendar:Start"]
            p["calendar:CalendarItemType"] = "Occurrence"
            p.pop("calendar:Recurrence", None)
            p["calendar:IsRecurring"] = True
        elif item.master_id is not None:
            p["calendar:CalendarItemType"] = "Exception"
            p["calendar:IsRecurring"] = True
        elif "calendar:Recurrence" in p:
            _master_extras(ctx, item, p)
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
    if shape.include_mime:
        from exlab.mime import calendar_mime, to_mime

        if element == "CalendarItem":
            mime = calendar_mime(p, zone_of(ctx, item).key, windows_zone_of(ctx, item))
        else:
            mime = to_mime(p, atts)
        p["item:MimeContent"] = base64.b64encode(mime).decode("ascii")
    return element, p


def write_item(
    ctx: EwsContext, parent: Element, target: Target, shape: itemxml.Shape, r: Rights | None = None
) -> Element:
    element, p = output_props(ctx, target, shape, r)
    return itemxml.serialize_item(parent, element, p, shape)


def write_id_only(parent: Element, item: Item) -> Element:
    """The item element with just its id, as write operations answer."""
    el = sub(parent, t(itemxml.element_for_class(item.item_class)))
    sub(el, t("ItemId"), Id=item_ews_id(item), ChangeKey=item.change_key)
    return el


def parse_shape(el: Element | None) -> itemxml.Shape:
    try:
        return itemxml.parse_shape(el)
    except itemxml.ItemXmlError as exc:
        raise xml_error(exc) from None


# -- FindItem -------------------------------------------------------------------------------------


def visible_items(ctx: EwsContext, folder: Folder, r: Rights) -> list[Item]:
    return [i for i in store_items.items_in(ctx.lab.store, folder.id) if not hidden(ctx, i, r)]


@operation("FindItem")
def find_item(ctx: EwsContext, request: Element) -> Element:
    shape = parse_shape(request.find(m("ItemShape")))
    traversal = request.get("Traversal", "Shallow")
    if traversal not in ("Shallow", "SoftDeleted", "Associated", "Deep"):
        raise SoapFault("ErrorSchemaValidation", f"unknown Traversal {traversal!r}")
    parents = request.find(m("ParentFolderIds"))
    if parents is None or len(parents) == 0:
        raise SoapFault("ErrorSchemaValidation", "FindItem needs ParentFolderIds")
    messages = []
    for folder_el in parents:
        try:
            folder = resolve_folder(ctx, folder_el)
            messages.append(_find_in_folder(ctx, request, folder, shape, traversal))
        except EwsError as err:
            messages.append(error_message("FindItem", err))
        except (itemxml.ItemXmlError, RestrictionError) as exc:
            messages.append(error_message("FindItem", xml_error(exc)))
    return response("FindItem", messages)


def _find_in_folder(
    ctx: EwsContext, request: Element, folder: Folder, shape: itemxml.Shape, traversal: str
) -> Element:
    r = rights(ctx, folder)
    if not r.can_read_items:
        raise denied()
    cal = request.find(m("CalendarView"))
    if cal is not None:
        return _calendar_view(ctx, cal, folder, shape, r)
    fast = _fast_page(ctx, request, folder, shape, r, traversal)
    if fast is not None:
        return fast
    folders = {folder.id: (folder, r)}
    if traversal == "Deep":
        for below in ctx.lab.store.descendants(folder.id):
            below_rights = rights(ctx, below)
            if below_rights.can_read_items:
                folders[below.id] = (below, below_rights)
    if traversal in ("Associated", "SoftDeleted"):
        found: list[Item] = []
    else:
        found = [i for f, fr in folders.values() for i in visible_items(ctx, f, fr)]
    props_cache: dict[str, store_items.LazyProps] = {}
    with_attachments: set[str] = set()
    for folder_id in folders:
        with_attachments |= store_items.items_with_attachments(ctx.lab.store, folder_id)

    def props_of(item: Item) -> store_items.LazyProps:
        cached = props_cache.get(item.id)
        if cached is None:
            has = item.id in with_attachments
            cached = props_cache[item.id] = store_items.LazyProps(item, has_attachments=has)
        return cached

    restriction_el = request.find(m("Restriction"))
    if restriction_el is not None:
        node = parse_restriction(restriction_el, itemxml.restriction_key)
        found = [i for i in found if matches(node, props_of(i))]
    query = text_of(request.find(m("QueryString")))
    if query:
        found = [i for i in found if _query_matches(query, props_of(i))]
    sort = parse_sort_order(request.find(m("SortOrder")), itemxml.restriction_key)
    if sort:
        found = sort_props(found, sort, props_of)
    total = len(found)
    page, offset, last = _page(request, found)
    root = Element(m("RootFolder"))
    if offset is not None:
        root.set("IndexedPagingOffset", str(offset))
    root.set("TotalItemsInView", str(total))
    root.set("IncludesLastItemInRange", "true" if last else "false")
    box = sub(root, t("Items"))
    for item in page:
        owner, owner_rights = folders[item.folder_id]
        write_item(ctx, box, Target(item, owner), shape, owner_rights)
    return response_message("FindItem", [root])


def _fast_page(
    ctx: EwsContext,
    request: Element,
    folder: Folder,
    shape: itemxml.Shape,
    r: Rights,
    traversal: str,
) -> Element | None:
    """A sorted page read straight from SQL, for the common listing (no restriction, sort by
    timestamps or flags, indexed paging from the start); None when it does not apply."""
    view = request.find(m("IndexedPageItemView"))
    if (
        traversal != "Shallow"
        or view is None
        or view.get("BasePoint", "Beginning") != "Beginning"
        or request.find(m("Restriction")) is not None
        or text_of(request.find(m("QueryString")))
    ):
        return None
    sort = parse_sort_order(request.find(m("SortOrder")), itemxml.restriction_key)
    if any(k.key not in store_items.SQL_SORTABLE for k in sort):
        return None
    try:
        max_entries = int(view.get("MaxEntriesReturned", "0"))
        offset = int(view.get("Offset", "0"))
    except ValueError:
        raise SoapFault("ErrorSchemaValidation", "bad IndexedPageItemView") from None
    if max_entries < 1 or offset < 0:
        return None
    page, total = store_items.page_in(
        ctx.lab.store,
        folder.id,
        [(k.key, k.ascending) for k in sort],
        hide_private=not r.view_private,
        offset=offset,
        limit=max_entries,
    )
    root = Element(m("RootFolder"))
    root.set("IndexedPagingOffset", str(offset + len(page)))
    root.set("TotalItemsInView", str(total))
    root.set("IncludesLastItemInRange", "true" if offset + len(page) >= total else "false")
    box = sub(root, t("Items"))
    for item in page:
        write_item(ctx, box, Target(item, folder), shape, r)
    return response_message("FindItem", [root])


def _query_matches(query: str, p: Mapping[str, Any]) -> bool:
    """AQS subset: every word must appear in subject, body, sender or recipients."""
    hay = " ".join(
        str(v)
        for v in (
            p.get("item:Subject"),
            (p.get("item:Body") or {}).get("text"),
            json.dumps(p.get("message:From") or {}, ensure_ascii=False),
            json.dumps(p.get("message:ToRecipients") or [], ensure_ascii=False),
        )
        if v
    ).casefold()
    words = [w.split(":", 1)[-1].strip('"') for w in query.split()]
    return all(w.casefold() in hay for w in words if w)


def _page(request: Element, found: list[Item]) -> tuple[list[Item], int | None, bool]:
    """(page, next offset, includes last) for IndexedPageItemView / FractionalPageItemView."""
    view = request.find(m("IndexedPageItemView"))
    if view is not None:
        try:
            max_entries = int(view.get("MaxEntriesReturned", "0")) or len(found) or 1
            offset = int(view.get("Offset", "0"))
        except ValueError:
            raise SoapFault("ErrorSchemaValidation", "bad IndexedPageItemView") from None
        if max_entries < 1 or offset < 0:
            raise EwsError("ErrorInvalidIndexedPagingParameters", "Invalid paging parameters.")
        if view.get("BasePoint", "Beginning") == "End":
            end = max(len(found) - offset, 0)
            start = max(end - max_entries, 0)
            page = found[start:end]
            return page, offset + len(page), start == 0
        page = found[offset : offset + max_entries]
        return page, offset + len(page), offset + len(page) >= len(found)
    frac = request.find(m("FractionalPageItemView"))
    if frac is not None:
        try:
            max_entries = int(frac.get("MaxEntriesReturned", "0")) or len(found) or 1
            num = int(frac.get("Numerator", "0"))
            den = int(frac.get("Denominator", "1")) or 1
        except ValueError:
            raise SoapFault("ErrorSchemaValidation", "bad FractionalPageItemView") from None
        start = len(found) * num // den
        page = found[start : start + max_entries]
        return page, None, start + len(page) >= len(found)
    return found, len(found), True


def _calendar_view(
    ctx: EwsContext, cal: Element, folder: Folder, shape: itemxml.Shape, r: Rights
) -> Element:
    try:
        window_start = itemxml.dt_from(itemxml.norm_dt(cal.get("StartDate", "")))
        window_end = itemxml.dt_from(itemxml.norm_dt(cal.get("EndDate", "")))
    except itemxml.ItemXmlError as exc:
        raise SoapFault("ErrorSchemaValidation", f"CalendarView: {exc}") from None
    if window_end < window_start:
        raise EwsError(
            "ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate."
        )
    try:
        max_entries = int(cal.get("MaxEntriesReturned", "0") or 0)
    except ValueError:
        raise SoapFault("ErrorSchemaValidation", "CalendarView: bad MaxEntriesReturned") from None
    if view_range_too_big(window_start, window_end):
        raise EwsError(
            "ErrorCalendarViewRangeTooBig",
            "The calendar view range exceeds the maximum of two years.",
        )
    entries: list[tuple[datetime, Target]] = []
    for item in visible_items(ctx, folder, r):
        if not item.item_class.startswith("IPM.Appointment"):
            continue
        if "calendar:Recurrence" in item.props and item.props.get("calendar:Start"):
            for index, start, _end in occurrences_of(ctx, item, window_start, window_end):
                entries.append((start, Target(item, folder, index)))
            for occ in store_items.exceptions_of(ctx.lab.store, item.id):
                if _overlaps(occ, window_start, window_end):
                    entries.append(
                        (itemxml.dt_from(occ.props["calendar:Start"]), Target(occ, folder))
                    )
        elif _overlaps(item, window_start, window_end):
            entries.append((itemxml.dt_from(item.props["calendar:Start"]), Target(item, folder)))
    entries.sort(key=lambda e: e[0])
    total = len(entries)
    if total > VIEW_COUNT_LIMIT and not 0 < max_entries <= VIEW_COUNT_LIMIT:
        raise EwsError(
            "ErrorExceededFindCountLimit",
            f"The view holds more than {VIEW_COUNT_LIMIT} entries; ask for a shorter range"
            " or set MaxEntriesReturned.",
        )
    if max_entries and total > max_entries:
        del entries[max_entries:]
    root = Element(m("RootFolder"))
    root.set("TotalItemsInView", str(total))
    root.set("IncludesLastItemInRange", "true" if len(entries) == total else "false")
    box = sub(root, t("Items"))
    for _, target in entries:
        write_item(ctx, box, target, shape, r)
    return response_message("FindItem", [root])


def view_range_too_big(start: datetime, end: datetime) -> bool:
    """True when [start, end) spans more than ``VIEW_MAX_YEARS`` years."""
    try:
        limit = start.replace(year=start.year + VIEW_MAX_YEARS)
    except ValueError:  # 29 February, or past year 9999
        if start.year + VIEW_MAX_YEARS > 9999:
            return False
        limit = start.replace(year=start.year + VIEW_MAX_YEARS, day=28)
    return end > limit


def _overlaps(item: Item, start: datetime, end: datetime) -> bool:
    s = item.props.get("calendar:Start")
    if not s:
        return False
    e = item.props.get("calendar:End") or s
    s_dt, e_dt = itemxml.dt_from(str(s)), itemxml.dt_from(str(e))
    return (e_dt > start and s_dt < end) or (s_dt == e_dt == start)


# -- GetItem --------------------------------------------------------------------------------------


@operation("GetItem")
def get_item(ctx: EwsContext, request: Element) -> Element:
    shape = parse_shape(request.find(m("ItemShape")))
    ids = request.find(m("ItemIds"))
    if ids is None:
        raise SoapFault("ErrorSchemaValidation", "GetItem needs ItemIds")

    def work(el: Element) -> list[Element]:
        target = resolve_item(ctx, el)
        r = check_read(ctx, target)
        box = Element(m("Items"))
        write_item(ctx, box, target, shape, r)
        return [box]

    return per_item("GetItem", ctx, list(ids), work)


# -- CreateItem -----------------------------------------------------------------------------------


@dataclass
class CreateArgs:
    disposition: str
    invitations: str
    saved: Folder | None


@operation("CreateItem")
def create_item(ctx: EwsContext, request: Element) -> Element:
    args = CreateArgs(
        request.get("MessageDisposition", ""),
        request.get("SendMeetingInvitations", "SendToNone"),
        folder_from(ctx, request.find(m("SavedItemFolderId"))),
    )
    items_el = request.find(m("Items"))
    if items_el is None:
        raise SoapFault("ErrorSchemaValidation", "CreateItem needs Items")

    def work(el: Element) -> list[Element]:
        local = el.tag.rsplit("}", 1)[-1]
        box = Element(m("Items"))
        if local in meetings.RESPONSE_CLASSES:
            meetings.respond(ctx, el, local, box)
        elif local in SMART_RESPONSES:
            smart_response(ctx, el, local, args, box)
        else:
            create_one(ctx, el, args, box)
        return [box]

    return per_item("CreateItem", ctx, list(items_el), work)


SMART_RESPONSES = {"ReplyToItem": "RE: ", "ReplyAllToItem": "RE: ", "ForwardItem": "FW: "}


def smart_response(ctx: EwsContext, el: Element, kind: str, args: CreateArgs, box: Element) -> None:
    """Reply, reply all or forward to a message, as the server builds them: the original
    quoted below the new text, recipients from the original (forward: as given), attachments
    kept on forward; sent for the original's mailbox (on behalf when a delegate sends)."""
    ref = el.find(t("ReferenceItemId"))
    if ref is None:
        raise EwsError("ErrorInvalidReferenceItem", "ReferenceItemId is missing.")
    target = resolve_item(ctx, ref)
    check_read(ctx, target)
    original = target.item
    if itemxml.element_for_class(original.item_class) not in ("Message", "MeetingRequest"):
        raise EwsError("ErrorInvalidReferenceItem", "Only messages can be answered this way.")
    if args.disposition not in ("SaveOnly", "SendOnly", "SendAndSaveCopy"):
        raise EwsError(
            "ErrorMessageDispositionRequired", "MessageDisposition is required for messages."
        )
    given = {c.tag.rsplit("}", 1)[-1]: c for c in el}
    op = original.props
    owner = original.mailbox if owner_kind(ctx, original.mailbox) != "public" else ctx.user
    me = {owner, ctx.user}
    if kind == "ForwardItem":
        to: list[dict[str, Any]] = []
        cc: list[dict[str, Any]] = []
    else:
        to = list(op.get("message:ReplyTo") or [op.get("message:From") or {}])
        cc = []
        if kind == "ReplyAllToItem":
            to += [r for r in op.get("message:ToRecipients", []) if r.get("email") not in me]
            cc = [r for r in op.get("message:CcRecipients", []) if r.get("email") not in me]
    for tag, bucket in (("ToRecipients", to), ("CcRecipients", cc)):
        if tag in given:
            bucket.extend(itemxml.parse_mailbox(mb) for mb in given[tag])
    subject = text_of(given.get("Subject")) or SMART_RESPONSES[kind] + str(
        op.get("item:Subject", "")
    )
    body = _quoted_body(given.get("NewBodyContent"), op)
    props: dict[str, Any] = {
        "item:Subject": subject,
        "item:Body": body,
        "message:ToRecipients": [r for r in to if r.get("email")],
        "message:From": display(ctx, owner),
    }
    if cc:
        props["message:CcRecipients"] = cc
    if "BccRecipients" in given:
        props["message:BccRecipients"] = [
            itemxml.parse_mailbox(mb) for mb in given["BccRecipients"]
        ]
    if op.get("message:InternetMessageId"):
        props["item:InReplyTo"] = op["message:InternetMessageId"]
        props["message:References"] = op["message:InternetMessageId"]
    folder = args.saved or distinguished(
        ctx, ctx.user, "drafts" if args.disposition == "SaveOnly" else "sentitems"
    )
    check_create(ctx, folder)
    _prepare_message(ctx, props, folder, args)
    now = ctx.lab.now()
    carried = original.id if kind == "ForwardItem" else None
    item = None
    if args.disposition != "SendOnly":
        item = store_items.create_item(
            ctx.lab.store, folder, "IPM.Note", props, created_by=ctx.user, now=now
        )
        if carried:
            store_items.copy_attachments(ctx.lab.store, carried, item.id, now)
        write_id_only(box, item)
    if args.disposition == "SaveOnly":
        return
    send_message(ctx, props, "IPM.Note", [], now, attachments_from=carried)
    record_last_verb(ctx.lab.store, original, kind, now)
    copy = _owner_copy(ctx, props, "IPM.Note", [], now, saved=folder if item else None)
    if copy is not None and carried:
        store_items.copy_attachments(ctx.lab.store, carried, copy.id, now)


def _quoted_body(new: Element | None, original: dict[str, Any]) -> dict[str, str]:
    """The new text above the original message, in the new text's body type."""
    kind = new.get("BodyType", "Text") if new is not None else "Text"
    text = (new.text or "") if new is not None else ""
    old = original.get("item:Body") or {}
    old_text, old_kind = str(old.get("text", "")), str(old.get("type", "Text"))
    sender = original.get("message:From") or {}
    who = sender.get("name") or sender.get("email", "")
    subject = original.get("item:Subject", "")
    if kind == "HTML":
        quoted = old_text if old_kind == "HTML" else f"<pre>{html.escape(old_text)}</pre>"
        head = f"<p>Von: {html.escape(str(who))}<br>Betreff: {html.escape(str(subject))}</p>"
        return {"type": "HTML", "text": f"{text}<hr>{head}{quoted}"}
    if old_kind == "HTML":
        old_text = html.unescape(re.sub(r"<[^>]+>", "", old_text)).strip()
    return {
        "type": "Text",
        "text": f"{text}\n\n-----\nVon: {who}\nBetreff: {subject}\n\n{old_text}",
    }


def owner_kind(ctx: EwsContext, address: str) -> str | None:
    mb = ctx.lab.store.mailbox(address)
    return None if mb is None else mb.kind


def create_one(ctx: EwsContext, el: Element, args: CreateArgs, box: Element) -> None:
    element, props = itemxml.parse_item(el)
    raw_atts = props.pop("__attachments__", [])
    mime = props.pop("item:MimeContent", None)
    if mime:
        from exlab.mime import from_mime

        try:
            props = {**from_mime(base64.b64decode(mime, validate=True)), **props}
        except ValueError:  # binascii.Error and MimeError are ValueErrors
            raise EwsError(
                "ErrorInvalidValueForProperty", "The MIME content could not be read."
            ) from None
    item_class = props.pop("item:ItemClass", None) or itemxml.DEFAULT_CLASS[element]
    now = ctx.lab.now()
    is_message = element == "Message"
    if is_message and args.disposition not in ("SaveOnly", "SendOnly", "SendAndSaveCopy"):
        raise EwsError(
            "ErrorMessageDispositionRequired", "MessageDisposition is required for messages."
        )
    folder = args.saved
    if folder is None:
        if is_message:
            name = "drafts" if args.disposition == "SaveOnly" else "sentitems"
        else:
            name = DEFAULT_FOLDER_FOR.get(element, "drafts")
        folder = distinguished(ctx, ctx.user, name)
    check_create(ctx, folder)
    if element == "CalendarItem":
        _prepare_calendar(ctx, props, folder, args)
    if is_message:
        _prepare_message(ctx, props, folder, args)
    if is_message and args.disposition == "SendOnly":
        send_message(ctx, props, item_class, raw_atts, now)
        _owner_copy(ctx, props, item_class, raw_atts, now, saved=None)
        return
    item = store_items.create_item(
        ctx.lab.store, folder, item_class, props, created_by=ctx.user, now=now
    )
    _add_raw_attachments(ctx, item, raw_atts, now)
    if is_message and args.disposition == "SendAndSaveCopy":
        send_message(ctx, item.props, item_class, raw_atts, now)
        _owner_copy(ctx, props, item_class, raw_atts, now, saved=folder)
    if element == "CalendarItem" and args.invitations in ("SendOnlyToAll", "SendToAllAndSaveCopy"):
        meetings.invite(ctx, item, now)
    write_id_only(box, item)


def _owner_copy(
    ctx: EwsContext,
    props: dict[str, Any],
    item_class: str,
    raw_atts: list[Element],
    now: datetime,
    *,
    saved: Folder | None,
    attachments_from: str | None = None,
) -> Item | None:
    """Sent on behalf: a copy lands in the owner's Sent Items too (the server does this,
    whatever the delegate's rights there, like Exchange's MessageCopyForSendOnBehalfEnabled),
    filed as read like every sent copy."""
    owner = str((props.get("message:From") or {}).get("email", "")).lower()
    if not owner or owner == ctx.user or owner_kind(ctx, owner) in (None, "public"):
        return None
    sent = ctx.lab.store.distinguished_folder(owner, "sentitems")
    if sent is None or (saved is not None and saved.id == sent.id):
        return None
    filed = {**props, "message:IsRead": True, "item:IsDraft": False}
    copy = store_items.create_item(
        ctx.lab.store, sent, item_class, filed, created_by=ctx.user, now=now
    )
    if attachments_from:
        store_items.copy_attachments(ctx.lab.store, attachments_from, copy.id, now)
    else:
        _add_raw_attachments(ctx, copy, raw_atts, now)
    return copy


def _add_raw_attachments(ctx: EwsContext, item: Item, raw: list[Element], now: datetime) -> None:
    for att in raw:
        local = att.tag.rsplit("}", 1)[-1]
        if local != "FileAttachment":
            raise EwsError(
                "ErrorUnsupportedTypeForConversion", "Only file attachments are supported."
            )
        try:
            content = base64.b64decode(text_of(att.find(t("Content"))), validate=True)
        except ValueError:
            raise EwsError(
                "ErrorInvalidValueForProperty", "Attachment content is not base64."
            ) from None
        store_items.add_attachment(
            ctx.lab.store,
            item.id,
            text_of(att.find(t("Name"))) or "attachment",
            text_of(att.find(t("ContentType"))) or "application/octet-stream",
            content,
            now=now,
            content_id=text_of(att.find(t("ContentId"))) or None,
            is_inline=text_of(att.find(t("IsInline"))).lower() == "true",
        )


def display(ctx: EwsContext, address: str) -> dict[str, str]:
    mb = ctx.lab.store.mailbox(address)
    return {"name": mb.display_name if mb else address, "email": address}


def sends_as(ctx: EwsContext, owner: str) -> bool:
    """Mail for `owner` goes out as the mailbox itself: its own, or one the user has SendAs on."""
    return owner == ctx.user or has_mailbox_permission(ctx.lab.store, owner, ctx.user, "SendAs")


def may_send_for(ctx: EwsContext, owner: str) -> bool:
    """Send as (own mailbox, SendAs) or on behalf: delegates of a user, editors of a shared
    mailbox's inbox."""
    if sends_as(ctx, owner):
        return True
    if ctx.lab.store.delegate(owner, ctx.user) is not None:
        return True
    if owner_kind(ctx, owner) in ("shared", "room"):
        inbox = ctx.lab.store.distinguished_folder(owner, "inbox")
        return inbox is not None and rights(ctx, inbox).create_items
    return False


def _prepare_message(
    ctx: EwsContext, props: dict[str, Any], folder: Folder, args: CreateArgs
) -> None:
    """From/Sender as Exchange sets them: From is the mailbox sent for, Sender who sent it."""
    sending = args.disposition in ("SendOnly", "SendAndSaveCopy")
    owner = (props.get("message:From") or {}).get("email", "").lower()
    if not owner:
        owner = folder.mailbox if owner_kind(ctx, folder.mailbox) != "public" else ctx.user
    if sending and not may_send_for(ctx, owner):
        raise EwsError(
            "ErrorSendAsDenied",
            "The user account which was used to submit this request does not have "
            "the right to send mail on behalf of the specified sending account.",
        )
    props["message:From"] = display(ctx, owner)
    props["message:Sender"] = display(ctx, owner if sends_as(ctx, owner) else ctx.user)
    props["item:IsDraft"] = not sending
    props.setdefault("message:IsRead", True)
    if sending:
        props["item:DateTimeSent"] = itemxml.dt_text(ctx.lab.now())
        props["item:IsSubmitted"] = False


def recipients_of(props: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("message:ToRecipients", "message:CcRecipients", "message:BccRecipients"):
        for r in props.get(key, []):
            addr = str(r.get("email", "")).lower()
            if addr and addr not in out:
                out.append(addr)
    return out


def send_message(
    ctx: EwsContext,
    props: dict[str, Any],
    item_class: str,
    raw_atts: list[Element],
    now: datetime,
    *,
    attachments_from: str | None = None,
) -> None:
    """Deliver to every lab mailbox among the recipients (their Inbox, unread)."""
    recipients = recipients_of(props)
    if not recipients:
        raise EwsError("ErrorInvalidRecipients", "At least one recipient isn't valid.")
    stamp = itemxml.dt_text(now)
    for address in recipients:
        if owner_kind(ctx, address) in (None, "public"):
            continue  # outside the organisation: leaves the lab
        inbox = distinguished(ctx, address, "inbox")
        delivered = {k: v for k, v in props.items() if not k.startswith("lab:")}
        delivered.update(
            {
                "message:IsRead": False,
                "item:IsDraft": False,
                "item:DateTimeReceived": stamp,
                "item:DateTimeSent": props.get("item:DateTimeSent", stamp),
                "message:ReceivedBy": display(ctx, address),
            }
        )
        delivered.pop("message:BccRecipients", None)
        copy = store_items.create_item(
            ctx.lab.store,
            inbox,
            item_class,
            delivered,
            created_by=str((props.get("message:From") or {}).get("email", ctx.user)),
            now=now,
            event="newmail",
        )
        if attachments_from:
            for att in store_items.attachments_of(ctx.lab.store, attachments_from):
                store_items.add_attachment(
                    ctx.lab.store,
                    copy.id,
                    att.name,
                    att.content_type,
                    att.content,
                    now=now,
                    content_id=att.content_id,
                    is_inline=att.is_inline,
                )
        else:
            _add_raw_attachments(ctx, copy, raw_atts, now)


# -- calendar: meetings ---------------------------------------------------------------------------


def _prepare_calendar(
    ctx: EwsContext, props: dict[str, Any], folder: Folder, args: CreateArgs
) -> None:
    if not props.get("calendar:Start"):
        raise EwsError("ErrorInvalidPropertySet", "A calendar item needs a Start.")
    props.setdefault("calendar:End", props["calendar:Start"])
    if props["calendar:End"] < props["calendar:Start"]:
        raise EwsError(
            "ErrorCalendarEndDateIsEarlierThanStartDate", "EndDate is earlier than StartDate."
        )
    attendees = props.get("calendar:RequiredAttendees", []) + props.get(
        "calendar:OptionalAttendees", []
    )
    owner = folder.mailbox if owner_kind(ctx, folder.mailbox) != "public" else ctx.user
    props.setdefault("calendar:UID", new_key())
    if attendees:
        props["calendar:IsMeeting"] = True
        props["calendar:Organizer"] = display(ctx, owner)
        props["calendar:MyResponseType"] = "Organizer"
        props["calendar:MeetingRequestWasSent"] = args.invitations != "SendToNone"
    props["calendar:CalendarItemType"] = (
        "RecurringMaster" if "calendar:Recurrence" in props else "Single"
    )
    if "calendar:Recurrence" in props:
        _align_master_start(ctx, props, owner)


def _align_master_start(ctx: EwsContext, props: dict[str, Any], owner: str) -> None:
    """A master starts at its first occurrence, as Exchange moves it there."""
    from exlab.recurrence import occurrence_dates

    rec = Recurrence.from_json(props["calendar:Recurrence"])
    tzname = (props.get("calendar:StartTimeZone") or {}).get("id")
    if not tzname:
        mb = ctx.lab.store.mailbox(owner)
        tzname = mb.time_zone if mb else "UTC"
        props["calendar:StartTimeZone"] = {"id": tzname}
        props.setdefault("calendar:EndTimeZone", {"id": tzname})
    zone = ZoneInfo(ZONES.get(tzname, "UTC"))
    start = itemxml.dt_from(props["calendar:Start"]).astimezone(zone)
    duration = itemxml.dt_from(props["calendar:End"]) - itemxml.dt_from(props["calendar:Start"])
    first = next(iter(occurrence_dates(rec)), None)
    if first is None:
        raise EwsError("ErrorCalendarInvalidRecurrence", "The recurrence has no occurrences.")
    new_start = datetime.combine(first[1], start.timetz())
    props["calendar:Start"] = itemxml.dt_text(new_start)
    props["calendar:End"] = itemxml.dt_text(new_start + duration)


# -- UpdateItem -----------------------------------------------------------------------------------


def _change_value(change: Element) -> tuple[str, Any, str]:
    """(key, value, kind) of a SetItemField/AppendToItemField, from its item element."""
    path = next(itemxml.iter_paths(change), None)
    if path is None:
        raise EwsError("ErrorInvalidPropertyRequest", "The change names no property.")
    key = itemxml.field_uri_key(path)
    holder = [c for c in change if c is not path]
    if not holder:
        raise EwsError("ErrorInvalidPropertySet", "The change carries no item.")
    _, props = itemxml.parse_item(holder[0])
    props.pop("__attachments__", None)
    if path.tag == t("IndexedFieldURI"):
        return key, props.get(key, {}), "indexed"
    if key not in props:
        raise EwsError("ErrorInvalidPropertySet", f"The item in the change does not carry {key}.")
    return key, props[key], "plain"


READ_ONLY = {
    "item:ItemId",
    "item:ParentFolderId",
    "item:DateTimeCreated",
    "item:Size",
    "item:LastModifiedTime",
    "item:HasAttachments",
    "calendar:CalendarItemType",
}


def _stamp_completion(props: dict[str, Any], now: datetime) -> None:
    """A task set to Completed is complete at 100 % with the server's completion time;
    set back, it loses that time (CompleteDate and IsComplete are the server's, not the
    client's)."""
    if props.get("task:Status") == "Completed":
        props["task:IsComplete"] = True
        props["task:PercentComplete"] = 100.0
        if not props.get("task:CompleteDate"):
            props["task:CompleteDate"] = itemxml.dt_text(now)
    else:
        props["task:IsComplete"] = False
        props.pop("task:CompleteDate", None)


def apply_updates(item: Item, updates: Element) -> None:
    changes: dict[str, Any] = {}
    props = dict(item.props)
    for change in updates:
        local = change.tag.rsplit("}", 1)[-1]
        if local == "DeleteItemField":
            path = next(itemxml.iter_paths(change), None)
            if path is None:
                raise EwsError("ErrorInvalidPropertyRequest", "The change names no property.")
            key = itemxml.field_uri_key(path)
            if key in READ_ONLY:
                raise EwsError("ErrorInvalidPropertyDelete", f"{key} cannot be deleted.")
            changes[key] = None
            continue
        key, value, how = _change_value(change)
        if key in READ_ONLY:
            raise EwsError("ErrorInvalidPropertySet", f"{key} is read-only.")
        if key == "item:ItemClass":
            item.item_class = str(value)
            continue
        if how == "indexed":
            merged = dict(props.get(key) or {})
            merged.update(value)
            value = merged
        if local == "AppendToItemField":
            old = changes.get(key, props.get(key))
            if isinstance(old, list):
                value = old + list(value)
            elif isinstance(old, dict) and key == "item:Body":
                value = {
                    "type": old.get("type", "Text"),
                    "text": old.get("text", "") + value.get("text", ""),
                }
            elif old is not None and isinstance(old, str):
                value = old + str(value)
        elif local != "SetItemField":
            raise EwsError("ErrorInvalidRequest", f"unknown change {local}")
        changes[key] = value
    item.props = store_items.apply_changes(item.props, changes)


def _materialize(ctx: EwsContext, target: Target, now: datetime) -> Item:
    """Turn an occurrence into an exception item of its master (first change to it)."""
    assert target.index is not None
    master = target.item
    start = _original_start(ctx, master, target.index)
    props = {k: v for k, v in master.props.items() if not k.startswith("lab:")}
    props.pop("calendar:Recurrence", None)
    props.update(
        {
            "calendar:Start": itemxml.dt_text(start),
            "calendar:End": itemxml.dt_text(start + _duration(master)),
            "calendar:OriginalStart": itemxml.dt_text(start),
            "calendar:RecurrenceId": itemxml.dt_text(start),
            "calendar:CalendarItemType": "Exception",
            "lab:index": target.index,
        }
    )
    exc = store_items.create_item(
        ctx.lab.store,
        target.folder,
        master.item_class,
        props,
        created_by=master.created_by,
        now=now,
        master_id=master.id,
    )
    return exc


@operation("UpdateItem")
def update_item(ctx: EwsContext, request: Element) -> Element:
    conflict = request.get("ConflictResolution", "AutoResolve")
    disposition = request.get("MessageDisposition", "SaveOnly")
    tell_attendees = request.get("SendMeetingInvitationsOrCancellations", "SendToNone")
    changes = request.find(m("ItemChanges"))
    if changes is None:
        raise SoapFault("ErrorSchemaValidation", "UpdateItem needs ItemChanges")

    def work(change: Element) -> list[Element]:
        id_el = next(
            (
                c
                for c in change
                if c.tag in (t("ItemId"), t("OccurrenceItemId"), t("RecurringMasterItemId"))
            ),
            None,
        )
        updates = change.find(t("Updates"))
        if id_el is None or updates is None:
            raise EwsError("ErrorInvalidRequest", "ItemChange needs an id and Updates.")
        target = resolve_item(ctx, id_el)
        check_edit(ctx, target)
        given = id_el.get("ChangeKey")
        if (
            given
            and not target.is_virtual
            and given != target.item.change_key
            and conflict == "NeverOverwrite"
        ):
            raise EwsError(
                "ErrorIrresolvableConflict",
                "The send or update operation could not be performed because the "
                "change key passed in the request does not match the current change "
                "key for the item.",
            )
        now = ctx.lab.now()
        item = _materialize(ctx, target, now) if target.is_virtual else target.item
        was_private = item.is_private
        apply_updates(item, updates)
        if item.item_class.startswith("IPM.Task"):
            _stamp_completion(item.props, now)
        r = rights(ctx, target.folder)
        if item.is_private and not was_private and not r.view_private:
            raise denied()
        if (
            item.item_class.startswith("IPM.Appointment")
            and "calendar:Recurrence" in item.props
            and item.master_id is None
        ):
            _align_master_start(ctx, item.props, target.folder.mailbox)
        store_items.save_item(ctx.lab.store, item, now)
        if tell_attendees in meetings.SEND_TO_ATTENDEES and meetings.organized_here(item):
            meetings.send_update(ctx, item, now)
        if (
            disposition in ("SendOnly", "SendAndSaveCopy")
            and itemxml.element_for_class(item.item_class) == "Message"
        ):
            _send_existing(
                ctx,
                item,
                target.folder,
                save=disposition == "SendAndSaveCopy",
                saved=folder_from(ctx, request.find(m("SavedItemFolderId"))),
            )
        box = Element(m("Items"))
        write_id_only(box, item)
        conflicts = Element(m("ConflictResults"))
        sub(conflicts, t("Count"), "0")
        return [box, conflicts]

    return per_item("UpdateItem", ctx, list(changes), work)


# -- DeleteItem, MoveItem, CopyItem ---------------------------------------------------------------


@operation("DeleteItem")
def delete_item(ctx: EwsContext, request: Element) -> Element:
    mode = request.get("DeleteType", "")
    cancellations = request.get("SendMeetingCancellations", "SendToNone")
    if mode not in ("HardDelete", "SoftDelete", "MoveToDeletedItems"):
        raise SoapFault("ErrorSchemaValidation", f"unknown DeleteType {mode!r}")
    ids = request.find(m("ItemIds"))
    if ids is None:
        raise SoapFault("ErrorSchemaValidation", "DeleteItem needs ItemIds")

    def work(el: Element) -> list[Element]:
        target = resolve_item(ctx, el)
        check_delete(ctx, target)
        now = ctx.lab.now()
        item = target.item
        if target.is_virtual or item.master_id is not None:
            master = (
                target.item
                if target.is_virtual
                else store_items.get_item(ctx.lab.store, item.master_id or "")
            )
            if master is None:
                raise not_found()
            index = target.index if target.is_virtual else int(item.props["lab:index"])
            deleted = sorted({*master.props.get("lab:deleted", []), index})
            master.props["lab:deleted"] = deleted
            if not target.is_virtual:
                store_items.delete_item(ctx.lab.store, item, now)
            store_items.save_item(ctx.lab.store, master, now)
            return []
        if cancellations in meetings.SEND_TO_ATTENDEES and meetings.organized_here(item):
            meetings.send_cancellation(ctx, item, now)
        bin_folder = ctx.lab.store.distinguished_folder(item.mailbox, "deleteditems")
        if (
            mode == "MoveToDeletedItems"
            and bin_folder is not None
            and bin_folder.id != item.folder_id
        ):
            store_items.move_item(ctx.lab.store, item, bin_folder, now)
        else:
            store_items.delete_item(ctx.lab.store, item, now)
        return []

    return per_item("DeleteItem", ctx, list(ids), work)


def _move_or_copy(op: str, ctx: EwsContext, request: Element) -> Element:
    target_folder = folder_from(ctx, request.find(m("ToFolderId")))
    if target_folder is None:
        raise SoapFault("ErrorSchemaValidation", f"{op} needs ToFolderId")
    ids = request.find(m("ItemIds"))
    if ids is None:
        raise SoapFault("ErrorSchemaValidation", f"{op} needs ItemIds")

    def work(el: Element) -> list[Element]:
        target = resolve_item(ctx, el)
        if target.is_virtual or target.item.master_id is not None:
            raise EwsError(
                "ErrorCalendarCannotMoveOrCopyOccurrence", "Occurrences cannot be moved or copied."
            )
        if op == "MoveItem":
            check_read(ctx, target)
            check_delete(ctx, target)
        else:
            check_read(ctx, target)
        check_create(ctx, target_folder)
        now = ctx.lab.now()
        if op == "MoveItem":
            item = store_items.move_item(ctx.lab.store, target.item, target_folder, now)
        else:
            item = store_items.copy_item(
                ctx.lab.store, target.item, target_folder, by=ctx.user, now=now
            )
        box = Element(m("Items"))
        write_id_only(box, item)
        return [box]

    return per_item(op, ctx, list(ids), work)


@operation("MoveItem")
def move_item(ctx: EwsContext, request: Element) -> Element:
    return _move_or_copy("MoveItem", ctx, request)


@operation("CopyItem")
def copy_item(ctx: EwsContext, request: Element) -> Element:
    return _move_or_copy("CopyItem", ctx, request)


# -- SendItem, ArchiveItem ------------------------------------------------------------------------


def _send_existing(
    ctx: EwsContext, item: Item, folder: Folder, *, save: bool, saved: Folder | None
) -> None:
    now = ctx.lab.now()
    owner = str((item.props.get("message:From") or {}).get("email", folder.mailbox)).lower()
    if not may_send_for(ctx, owner):
        raise EwsError("ErrorSendAsDenied", "The user may not send on behalf of this mailbox.")
    item.props["message:From"] = display(ctx, owner)
    item.props["message:Sender"] = display(ctx, owner if sends_as(ctx, owner) else ctx.user)
    item.props["item:IsDraft"] = False
    item.props["item:DateTimeSent"] = itemxml.dt_text(now)
    send_message(ctx, item.props, item.item_class, [], now, attachments_from=item.id)
    if save:
        target = saved or distinguished(
            ctx, owner if owner_kind(ctx, owner) else ctx.user, "sentitems"
        )
        check_create(ctx, target)
        store_items.save_item(ctx.lab.store, item, now)
        _owner_copy(
            ctx, item.props, item.item_class, [], now, saved=target, attachments_from=item.id
        )
        if target.id != item.folder_id:
            store_items.move_item(ctx.lab.store, item, target, now)
    else:
        _owner_copy(ctx, item.props, item.item_class, [], now, saved=None, attachments_from=item.id)
        store_items.delete_item(ctx.lab.store, item, now)


@operation("SendItem")
def send_item(ctx: EwsContext, request: Element) -> Element:
    save = request.get("SaveItemToFolder", "true").lower() == "true"
    saved = folder_from(ctx, request.find(m("SavedItemFolderId")))
    ids = request.find(m("ItemIds"))
    if ids is None:
        raise SoapFault("ErrorSchemaValidation", "SendItem needs ItemIds")

    def work(el: Element) -> list[Element]:
        target = resolve_item(ctx, el)
        check_edit(ctx, target)
        if itemxml.element_for_class(target.item.item_class) != "Message":
            raise EwsError(
                "ErrorInvalidItemForOperationSendItem", "Only messages can be sent with SendItem."
            )
        _send_existing(ctx, target.item, target.folder, save=save, saved=saved)
        return []

    return per_item("SendItem", ctx, list(ids), work)


@operation("ArchiveItem", min_version="Exchange2013")
def archive_item(ctx: EwsContext, request: Element) -> Element:
    source = folder_from(ctx, request.find(m("ArchiveSourceFolderId")))
    ids = request.find(m("ItemIds"))
    if source is None or ids is None:
        raise SoapFault(
            "ErrorSchemaValidation", "ArchiveItem needs ArchiveSourceFolderId and ItemIds"
        )
    mb = ctx.lab.store.mailbox(source.mailbox)
    if mb is None or not mb.has_archive:
        raise EwsError("ErrorArchiveMailboxNotEnabled", "The mailbox has no archive.")

    def work(el: Element) -> list[Element]:
        target = resolve_item(ctx, el)
        if target.folder.id != source.id:
            raise not_found()
        check_read(ctx, target)
        check_delete(ctx, target)
        archive = _archive_folder_for(ctx, source)
        now = ctx.lab.now()
        item = store_items.move_item(ctx.lab.store, target.item, archive, now)
        box = Element(m("Items"))
        write_id_only(box, item)
        return [box]

    return per_item("ArchiveItem", ctx, list(ids), work)


def _archive_folder_for(ctx: EwsContext, source: Folder) -> Folder:
    """The archive folder matching the source (Inbox → archive Inbox, else by name)."""
    store = ctx.lab.store
    if source.distinguished == "inbox":
        found = store.distinguished_folder(source.mailbox, "archiveinbox")
        if found is not None:
            return found
    if source.distinguished == "deleteditems":
        found = store.distinguished_folder(source.mailbox, "archivedeleteditems")
        if found is not None:
            return found
    top = store.distinguished_folder(source.mailbox, "archivemsgfolderroot")
    if top is None:
        raise EwsError("ErrorFolderNotFound", "The mailbox has no archive.")
    for child in store.children(top.id):
        if child.display_name == source.display_name:
            return child
    inbox = store.distinguished_folder(source.mailbox, "archiveinbox")
    return inbox or top


def invite(ctx: EwsContext, item: Item, now: datetime) -> None:
    """Meeting requests for a new meeting (see ``exlab.ews.meetings.invite``)."""
    meetings.invite(ctx, item, now)


def respond(ctx: EwsContext, el: Element, kind: str, box: Element) -> None:
    """Accept, tentatively accept or decline (see ``exlab.ews.meetings.respond``)."""
    meetings.respond(ctx, el, kind, box)
