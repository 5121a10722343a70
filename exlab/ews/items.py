"""Item operations of the lab's EWS face, with Exchange's access rules on every call.

FindItem (paging, sort, restriction, CalendarView with recurrence expansion), GetItem,
CreateItem (save, send, send on behalf, meeting invitations and responses), UpdateItem
(incl. occurrences and masters), DeleteItem, MoveItem, CopyItem, SendItem, ArchiveItem.
Rights come from ``exlab.core.access.effective_rights``; private items are invisible to
delegates without ViewPrivateItems. A refused item answers ErrorAccessDenied in its own
response message and changes nothing (each item runs in its own savepoint).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from xml.etree.ElementTree import Element

from exlab.core import items as store_items
from exlab.core import meetings
from exlab.core.access import Rights
from exlab.core.calendar import (
    VIEW_COUNT_LIMIT,
    align_master_start,
    item_zone_name,
    materialize,
    normalise_all_day,
    occurrences_of,
    overlaps,
    owner_zone,
    prepare_calendar,
    view_range_too_big,
)
from exlab.core.delivery import (
    DEFAULT_FOLDER_FOR,
    CreateArgs,
    NewAttachment,
    add_attachments,
    display,
    embed_item,
    owner_copy,
    owner_kind,
    prepare_message,
    send_existing,
    send_message,
)
from exlab.core.errors import denied, not_found
from exlab.core.folders import archive_target
from exlab.core.items import Item, element_for_class
from exlab.core.mapi import record_last_verb
from exlab.core.store import Folder, parse_utc, utc_text
from exlab.core.targets import (
    Target,
    check_create,
    check_delete,
    check_edit,
    check_read,
    distinguished,
    item_ews_id,
    load,
    occurrence_target,
    resolve_id,
    rights,
    visible_items,
)
from exlab.core.tasks import stamp_completion
from exlab.core.timezones import known as known_zone
from exlab.core.timezones import zone_info
from exlab.core.view import output_props
from exlab.ews import aqs, itemxml
from exlab.ews.ids import decode_id, resolve_folder
from exlab.ews.restrictions import (
    RestrictionError,
    matches,
    parse_restriction,
    parse_sort_order,
    sort_props,
)
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


def resolve_item(ctx: EwsContext, el: Element) -> Target:
    """``t:ItemId``, ``t:OccurrenceItemId`` or ``t:RecurringMasterItemId`` to its target."""
    local = el.tag.rsplit("}", 1)[-1]
    if local in ("ItemId", "ReferenceItemId", "AssociatedCalendarItemId"):
        return resolve_id(ctx, el.get("Id") or "")
    if local == "OccurrenceItemId":
        kind, key = decode_id(el.get("RecurringMasterId"))
        if kind != "item":
            raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
        try:
            index = int(el.get("InstanceIndex", ""))
        except ValueError:
            raise EwsError("ErrorInvalidIdMalformed", "InstanceIndex is malformed.") from None
        return occurrence_target(ctx, key, index)
    if local == "RecurringMasterItemId":
        kind, key = decode_id(el.get("OccurrenceId"))
        if kind == "occurrence":
            key = key.rpartition(":")[0]
        elif kind == "item":
            item, _ = load(ctx, key)
            key = item.master_id or item.id
        else:
            raise EwsError("ErrorInvalidIdMalformed", "Id is malformed.")
        item, folder = load(ctx, key)
        if "calendar:Recurrence" not in item.props:
            raise EwsError("ErrorItemNotFound", "The item is not a recurring master.")
        return Target(item, folder)
    raise SoapFault("ErrorSchemaValidation", f"unexpected item id element {local}")


def folder_from(ctx: EwsContext, container: Element | None) -> Folder | None:
    """The folder named in a container such as ``m:SavedItemFolderId`` (None when absent)."""
    if container is None:
        return None
    for child in container:
        if child.tag in (t("FolderId"), t("DistinguishedFolderId")):
            return resolve_folder(ctx, child)
    return None


# -- output ---------------------------------------------------------------------------------------


def write_item(
    ctx: EwsContext, parent: Element, target: Target, shape: itemxml.Shape, r: Rights | None = None
) -> Element:
    element, p = output_props(ctx, target, shape.include_mime, r)
    return itemxml.serialize_item(parent, element, p, shape)


def write_id_only(parent: Element, item: Item) -> Element:
    """The item element with just its id, as write operations answer."""
    el = sub(parent, t(element_for_class(item.item_class)))
    sub(el, t("ItemId"), Id=item_ews_id(item), ChangeKey=item.change_key)
    return el


def parse_shape(el: Element | None) -> itemxml.Shape:
    try:
        return itemxml.parse_shape(el)
    except itemxml.ItemXmlError as exc:
        raise xml_error(exc) from None


# -- FindItem -------------------------------------------------------------------------------------


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
    folders = {folder.id: (folder, r)}
    if folder.search_scope is not None:
        # A search folder shows items where they are: their own folder and rights.
        scope = ctx.lab.store.folder(folder.search_scope)
        if scope is None:
            raise not_found()
        folders = {scope.id: (scope, rights(ctx, scope))}
        traversal = "Shallow"
    else:
        fast = _fast_page(ctx, request, folder, shape, r, traversal)
        if fast is not None:
            return fast
    if traversal == "Deep":
        for below in ctx.lab.store.descendants(folder.id):
            below_rights = rights(ctx, below)
            if below_rights.can_read_items:
                folders[below.id] = (below, below_rights)
    if traversal in ("Associated", "SoftDeleted"):
        found: list[Item] = []
    else:
        found = [
            i
            for f, fr in folders.values()
            for i in visible_items(ctx, folder if folder.is_search else f, fr)
        ]
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
        search = _query(query)
        found = [i for i in found if aqs.matches(search, props_of(i))]
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


def _query(query: str) -> aqs.Node:
    """The AQS query; one that cannot be read is searched for word by word, as free text."""
    try:
        return aqs.parse(query)
    except aqs.AqsError:
        return aqs.All(tuple(aqs.Term(None, w.casefold()) for w in query.split()))


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
        window_start = parse_utc(itemxml.norm_dt(cal.get("StartDate", "")))
        window_end = parse_utc(itemxml.norm_dt(cal.get("EndDate", "")))
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
                if overlaps(occ, window_start, window_end):
                    entries.append((parse_utc(occ.props["calendar:Start"]), Target(occ, folder)))
        elif overlaps(item, window_start, window_end):
            entries.append((parse_utc(item.props["calendar:Start"]), Target(item, folder)))
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
            require_disposition(args)
            respond(ctx, el, local, box)
        elif local == "CancelCalendarItem":
            require_disposition(args)
            cancel_meeting(ctx, el, args)
        elif local in SMART_RESPONSES:
            smart_response(ctx, el, local, args, box)
        else:
            create_one(ctx, el, args, box)
        return [box]

    return per_item("CreateItem", ctx, list(items_el), work)


def request_zone(ctx: EwsContext) -> str | None:
    """The zone the request's TimeZoneContext names, when the lab knows it."""
    return ctx.time_zone if ctx.time_zone and known_zone(ctx.time_zone) else None


def require_disposition(args: CreateArgs) -> None:
    """Messages and response objects need MessageDisposition (ErrorMessageDispositionRequired)."""
    if args.disposition not in ("SaveOnly", "SendOnly", "SendAndSaveCopy"):
        raise EwsError(
            "ErrorMessageDispositionRequired", "MessageDisposition is required for messages."
        )


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
    if element_for_class(original.item_class) not in ("Message", "MeetingRequest"):
        raise EwsError("ErrorInvalidReferenceItem", "Only messages can be answered this way.")
    require_disposition(args)
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
    prepare_message(ctx, props, folder, args)
    now = ctx.lab.now()
    carried = original.id if kind == "ForwardItem" else None
    item = None
    if args.disposition != "SendOnly":
        item = store_items.create_item(
            ctx.lab.store, folder, "IPM.Note", props, created_by=ctx.user, now=now
        )
        if carried:
            store_items.copy_attachments(ctx.lab.store, carried, item.id, now)
        if args.disposition == "SaveOnly":
            write_id_only(box, item)  # a sent message is answered without an item
    if args.disposition == "SaveOnly":
        return
    send_message(ctx, props, "IPM.Note", [], now, attachments_from=carried)
    record_last_verb(ctx.lab.store, original, kind, now)
    copy = owner_copy(ctx, props, "IPM.Note", [], now, saved=folder if item else None)
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


def create_one(ctx: EwsContext, el: Element, args: CreateArgs, box: Element) -> None:
    element, props = itemxml.parse_item(el)
    raw_atts = parse_attachments(props.pop("__attachments__", []))
    mime = props.pop("item:MimeContent", None)
    if mime:
        from exlab.core.mime import from_mime

        try:
            props = {**from_mime(base64.b64decode(mime, validate=True)), **props}
        except ValueError:  # binascii.Error and MimeError are ValueErrors
            raise EwsError(
                "ErrorInvalidValueForProperty", "The MIME content could not be read."
            ) from None
    item_class = props.pop("item:ItemClass", None) or itemxml.DEFAULT_CLASS[element]
    now = ctx.lab.now()
    is_message = element == "Message"
    if is_message:
        require_disposition(args)
    folder = args.saved
    if folder is None:
        if is_message:
            name = "drafts" if args.disposition == "SaveOnly" else "sentitems"
        else:
            name = DEFAULT_FOLDER_FOR.get(element, "drafts")
        folder = distinguished(ctx, ctx.user, name)
    check_create(ctx, folder)
    read_local_times(ctx, props)
    if element == "CalendarItem":
        prepare_calendar(ctx, props, folder, args, zone_name=request_zone(ctx))
    if is_message:
        prepare_message(ctx, props, folder, args)
    if is_message and args.disposition == "SendOnly":
        send_message(ctx, props, item_class, raw_atts, now)
        owner_copy(ctx, props, item_class, raw_atts, now, saved=None)
        return
    item = store_items.create_item(
        ctx.lab.store, folder, item_class, props, created_by=ctx.user, now=now
    )
    add_attachments(ctx, item, raw_atts, now)
    if is_message and args.disposition == "SendAndSaveCopy":
        send_message(ctx, item.props, item_class, raw_atts, now)
        owner_copy(ctx, props, item_class, raw_atts, now, saved=folder)
    if element == "CalendarItem" and args.invitations in ("SendOnlyToAll", "SendToAllAndSaveCopy"):
        meetings.invite(ctx, item, now)
    if not (is_message and args.disposition == "SendAndSaveCopy"):
        write_id_only(box, item)  # SendAndSaveCopy answers no item, as Exchange does


# -- calendar: meetings ---------------------------------------------------------------------------


# -- UpdateItem -----------------------------------------------------------------------------------


def read_local_times(
    ctx: EwsContext, props: dict[str, Any], stored: Mapping[str, Any] | None = None
) -> None:
    """Date-times sent without an offset are local times, read as Exchange reads them: Start
    in StartTimeZone, End in EndTimeZone (else StartTimeZone), in the MeetingTimeZone of an
    Exchange 2007 request, else in the request's TimeZoneContext; UTC when nothing names a
    zone. `stored` is the item being changed (its zones count when the change names none)."""
    naive: dict[str, str] = props.pop(itemxml.NAIVE_TIMES, {})
    meeting: dict[str, Any] | None = props.pop(itemxml.MEETING_ZONE, None)
    if meeting is not None and meeting["id"] and known_zone(meeting["id"]):
        props.setdefault("calendar:StartTimeZone", {"id": meeting["id"]})
        props.setdefault("calendar:EndTimeZone", {"id": meeting["id"]})
    seen = {**(stored or {}), **props}

    def named(key: str) -> str | None:
        value = seen.get(key)
        return str(value["id"]) if isinstance(value, dict) and value.get("id") else None

    for uri, text in naive.items():
        name = named("calendar:EndTimeZone") if uri == "calendar:End" else None
        name = name or (named("calendar:StartTimeZone") if uri.startswith("calendar:") else None)
        zone: tzinfo
        if name and known_zone(name):
            zone = zone_info(name)
        elif meeting is not None:
            zone = timezone(-timedelta(minutes=int(meeting["bias_minutes"])))
        elif ctx.time_zone and known_zone(ctx.time_zone):
            zone = zone_info(ctx.time_zone)
        else:
            zone = UTC
        try:
            local = datetime.fromisoformat(text.strip())
        except ValueError:
            raise EwsError("ErrorInvalidValueForProperty", f"bad date/time {text!r}") from None
        props[uri] = utc_text(local.replace(tzinfo=zone))


def _change_value(change: Element) -> tuple[str, Any, str, dict[str, Any]]:
    """(key, value, kind, local-time notes) of a SetItemField/AppendToItemField, from its
    item element (the notes are what `read_local_times` needs)."""
    path = next(itemxml.iter_paths(change), None)
    if path is None:
        raise EwsError("ErrorInvalidPropertyRequest", "The change names no property.")
    key = itemxml.field_uri_key(path)
    holder = [c for c in change if c is not path]
    if not holder:
        raise EwsError("ErrorInvalidPropertySet", "The change carries no item.")
    _, props = itemxml.parse_item(holder[0])
    props.pop("__attachments__", None)
    notes = {k: props.pop(k) for k in (itemxml.NAIVE_TIMES, itemxml.MEETING_ZONE) if k in props}
    if path.tag == t("IndexedFieldURI"):
        return key, props.get(key, {}), "indexed", notes
    if key not in props:
        raise EwsError("ErrorInvalidPropertySet", f"The item in the change does not carry {key}.")
    return key, props[key], "plain", notes


READ_ONLY = {
    "item:ItemId",
    "item:ParentFolderId",
    "item:DateTimeCreated",
    "item:Size",
    "item:LastModifiedTime",
    "item:HasAttachments",
    "calendar:CalendarItemType",
}


def _without_entry(current: Any, path: Element) -> dict[str, Any]:
    """An indexed field (phone numbers, addresses...) without the entry a DeleteItemField names;
    for a postal address part (`contacts:PhysicalAddress:City`) only that part goes."""
    entries = dict(current) if isinstance(current, dict) else {}
    index = path.get("FieldIndex", "")
    uri = path.get("FieldURI", "")
    part = uri.split(":", 2)[2] if uri.count(":") == 2 else None
    entry = entries.get(index)
    if part and isinstance(entry, dict):
        rest = {k: v for k, v in entry.items() if k != part}
        if rest:
            entries[index] = rest
            return entries
    entries.pop(index, None)
    return entries


def apply_updates(ctx: EwsContext, item: Item, updates: Element) -> None:
    changes: dict[str, Any] = {}
    props = dict(item.props)
    naive: dict[str, str] = {}
    meeting_zone: dict[str, Any] | None = None
    for change in updates:
        local = change.tag.rsplit("}", 1)[-1]
        if local == "DeleteItemField":
            path = next(itemxml.iter_paths(change), None)
            if path is None:
                raise EwsError("ErrorInvalidPropertyRequest", "The change names no property.")
            key = itemxml.field_uri_key(path)
            if key in READ_ONLY:
                raise EwsError("ErrorInvalidPropertyDelete", f"{key} cannot be deleted.")
            if path.tag == t("IndexedFieldURI"):
                changes[key] = _without_entry(changes.get(key, props.get(key)), path) or None
                continue
            changes[key] = None
            continue
        key, value, how, notes = _change_value(change)
        naive.update(notes.get(itemxml.NAIVE_TIMES, {}))
        meeting_zone = notes.get(itemxml.MEETING_ZONE, meeting_zone)
        if key in READ_ONLY:
            raise EwsError("ErrorInvalidPropertySet", f"{key} is read-only.")
        if key == "item:ItemClass":
            item.item_class = str(value)
            continue
        if how == "indexed":
            merged = dict(changes.get(key) or props.get(key) or {})
            for index, entry in value.items():
                old_entry = merged.get(index)
                if isinstance(entry, dict) and isinstance(old_entry, dict):
                    entry = {**old_entry, **entry}  # one part of a postal address
                merged[index] = entry
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
    if naive or meeting_zone is not None:
        given = {k: v for k, v in changes.items() if v is not None}
        given[itemxml.NAIVE_TIMES] = {k: v for k, v in naive.items() if k in changes}
        if meeting_zone is not None:
            given[itemxml.MEETING_ZONE] = meeting_zone
        read_local_times(ctx, given, props)
        changes.update(given)
    item.props = store_items.apply_changes(item.props, changes)


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
        item = materialize(ctx, target, now) if target.is_virtual else target.item
        was_private = item.is_private
        apply_updates(ctx, item, updates)
        if item.item_class.startswith("IPM.Task"):
            stamp_completion(item.props, now)
        r = rights(ctx, target.folder)
        if item.is_private and not was_private and not r.view_private:
            raise denied()
        if (
            item.item_class.startswith("IPM.Appointment")
            and "calendar:Recurrence" in item.props
            and item.master_id is None
        ):
            align_master_start(ctx, item.props, target.folder.mailbox)
        if item.item_class.startswith("IPM.Appointment"):
            fallback = request_zone(ctx) or owner_zone(ctx, target.folder.mailbox)
            normalise_all_day(item.props, item_zone_name(item.props, fallback))
        store_items.save_item(ctx.lab.store, item, now)
        if tell_attendees in meetings.SEND_TO_ATTENDEES and meetings.organized_here(item):
            meetings.send_update(ctx, item, now)
        if (
            disposition in ("SendOnly", "SendAndSaveCopy")
            and element_for_class(item.item_class) == "Message"
        ):
            send_existing(
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
        if element_for_class(target.item.item_class) != "Message":
            raise EwsError(
                "ErrorInvalidItemForOperationSendItem", "Only messages can be sent with SendItem."
            )
        send_existing(ctx, target.item, target.folder, save=save, saved=saved)
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
        now = ctx.lab.now()
        archive = archive_target(ctx.lab.store, source, now)
        item = store_items.move_item(ctx.lab.store, target.item, archive, now)
        box = Element(m("Items"))
        write_id_only(box, item)
        return [box]

    return per_item("ArchiveItem", ctx, list(ids), work)


def respond(ctx: EwsContext, el: Element, kind: str, box: Element) -> None:
    """AcceptItem / TentativelyAcceptItem / DeclineItem as CreateItem carries them."""
    ref = el.find(t("ReferenceItemId"))
    if ref is None:
        raise EwsError("ErrorInvalidReferenceItem", "ReferenceItemId is missing.")
    body_el = el.find(t("Body"))
    body = (
        None
        if body_el is None
        else {"type": body_el.get("BodyType", "Text"), "text": body_el.text or ""}
    )
    start_el, end_el = el.find(t("ProposedStart")), el.find(t("ProposedEnd"))
    if (start_el is None) != (end_el is None):
        raise EwsError("ErrorSchemaValidation", "ProposedStart and ProposedEnd come together.")
    proposal = None
    if start_el is not None and end_el is not None:
        if not ctx.at_least("Exchange2013"):
            raise EwsError(
                "ErrorInvalidServerVersion", "Proposing a new time needs Exchange2013 or later."
            )
        proposal = (itemxml.norm_dt(text_of(start_el)), itemxml.norm_dt(text_of(end_el)))
    answered = meetings.respond(ctx, resolve_item(ctx, ref), kind, body, proposal)
    if answered is not None:
        write_id_only(box, answered)


def cancel_meeting(ctx: EwsContext, el: Element, args: CreateArgs) -> None:
    """CancelCalendarItem as CreateItem carries it (answered without an item)."""
    ref = el.find(t("ReferenceItemId"))
    if ref is None:
        raise EwsError("ErrorInvalidReferenceItem", "ReferenceItemId is missing.")
    body_el = el.find(t("NewBodyContent"))
    body = (
        None
        if body_el is None
        else {"type": body_el.get("BodyType", "Text"), "text": body_el.text or ""}
    )
    meetings.cancel(
        ctx, resolve_item(ctx, ref), body, save_copy=args.disposition == "SendAndSaveCopy"
    )


def parse_attachments(raw: list[Element]) -> list[NewAttachment]:
    """The attachments of an item element (`t:Attachments`) as the core takes them: files,
    and items (`t:ItemAttachment` with a message, event, contact... that may carry its own
    attachments, nested as deep as the client sends them)."""
    out = []
    for att in raw:
        local = att.tag.rsplit("}", 1)[-1]
        name = text_of(att.find(t("Name")))
        if local == "ItemAttachment":
            out.append(NewAttachment(name or "Element", "", b"", item=parse_attached_item(att)))
            continue
        if local != "FileAttachment":
            raise EwsError(
                "ErrorUnsupportedTypeForConversion", "Only file and item attachments are supported."
            )
        try:
            content = base64.b64decode(text_of(att.find(t("Content"))), validate=True)
        except ValueError:
            raise EwsError(
                "ErrorInvalidValueForProperty", "Attachment content is not base64."
            ) from None
        out.append(
            NewAttachment(
                name or "attachment",
                text_of(att.find(t("ContentType"))) or "application/octet-stream",
                content,
                text_of(att.find(t("ContentId"))) or None,
                text_of(att.find(t("IsInline"))).lower() == "true",
            )
        )
    return out


def parse_attached_item(att: Element) -> dict[str, Any]:
    """The item inside a `t:ItemAttachment`, as the store embeds it."""
    holders = [c for c in att if c.tag.rsplit("}", 1)[-1] in itemxml.TYPES]
    if len(holders) != 1:
        raise EwsError("ErrorInvalidItemForOperationCreateItemAttachment", "The item is missing.")
    try:
        element, props = itemxml.parse_item(holders[0])
    except itemxml.ItemXmlError as exc:
        raise xml_error(exc) from None
    nested = parse_attachments(props.pop("__attachments__", []))
    props.pop(itemxml.NAIVE_TIMES, None)
    props.pop(itemxml.MEETING_ZONE, None)
    props.pop("item:MimeContent", None)
    item_class = props.pop("item:ItemClass", None) or itemxml.DEFAULT_CLASS[element]
    return embed_item(str(item_class), props, nested)
