"""Calendars and events of the Graph face: events, calendarView (series expanded), instances,
meeting responses, calendarView/delta and getSchedule (free/busy)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from exlab.core import calendar as cal_rules
from exlab.core import delivery, freebusy, meetings, targets, view
from exlab.core import items as store_items
from exlab.core.errors import ExchangeError
from exlab.core.ids import encode_id
from exlab.core.store import Folder
from exlab.graph import odata
from exlab.graph.convert import (
    GraphInputError,
    dttz_in,
    dttz_out,
    event_in,
    event_out,
    graph_id,
    utc_text,
)
from exlab.graph.core import (
    Call,
    GraphError,
    Json,
    body_json,
    check,
    collection,
    delta_page,
    expand_parts,
    folder_gid,
    from_ews,
    item_gid,
    need,
    read_delta_token,
    readable,
    resolve_folder,
    resolve_item,
    target_gid,
)
from exlab.graph.extended import expanded
from exlab.graph.scheduling import working_hours_json


def event_json(call: Call, target: targets.Target) -> Json:
    _, p = view.output_props(call.ctx, target)
    tz, tzname = call.timezone()
    master_id = None
    if target.index is not None:
        master_id = item_gid(target.item)
    elif target.item.master_id is not None:
        master_id = graph_id(encode_id("item", target.item.master_id))
    out = event_out(
        p,
        item_id=target_gid(target),
        change_key=target.item.change_key,
        series_master_id=master_id,
        tz=tz,
        tzname=tzname,
        owner=call.mailbox,
    )
    for part in expand_parts(call.query.get("$expand", "")):
        try:
            extended_part = expanded(part, p)
        except GraphInputError as exc:
            raise GraphError(400, exc.code, exc.message) from None
        if extended_part is not None:
            out[extended_part[0]] = extended_part[1]
    return out


def calendar_folder(call: Call, ref: str | None) -> Folder:
    folder = resolve_folder(call, ref or "calendar")
    if not (folder.folder_class or "").startswith("IPF.Appointment"):
        raise GraphError(
            404, "ErrorItemNotFound", "The specified object was not found in the store."
        )
    return folder


def list_events(call: Call, folder: Folder) -> Json:
    need(call, "Calendars")
    r = readable(call, folder)
    rows = [
        event_json(call, targets.Target(i, folder))
        for i in targets.visible_items(call.ctx, folder, r)
        if i.item_class.startswith("IPM.Appointment")
    ]
    return collection(call, rows, context="events")


def window(call: Call) -> tuple[datetime, datetime]:
    try:
        start = odata.parse_datetime(call.query["startDateTime"])
        end = odata.parse_datetime(call.query["endDateTime"])
    except KeyError:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "This request requires a time window specified by the query string parameters"
            " StartDateTime and EndDateTime.",
        ) from None
    except odata.ODataError as exc:
        raise GraphError(400, "ErrorInvalidParameter", str(exc)) from None
    if end < start:
        raise GraphError(400, "ErrorInvalidParameter", "EndDateTime is earlier than StartDateTime.")
    if cal_rules.view_range_too_big(start, end):
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            "The time window between StartDateTime and EndDateTime must not exceed two years.",
        )
    return start, end


def view_targets(
    call: Call, folder: Folder, start: datetime, end: datetime, only: set[str] | None = None
) -> list[tuple[datetime, targets.Target]]:
    """Occurrences, exceptions and single events overlapping [start, end), by start."""
    r = readable(call, folder)
    out: list[tuple[datetime, targets.Target]] = []
    for item in targets.visible_items(call.ctx, folder, r):
        if not item.item_class.startswith("IPM.Appointment") or (
            only is not None and item.id not in only
        ):
            continue
        if "calendar:Recurrence" in item.props and item.props.get("calendar:Start"):
            for index, occ_start, _ in cal_rules.occurrences_of(call.ctx, item, start, end):
                out.append((occ_start, targets.Target(item, folder, index)))
            for exc in store_items.exceptions_of(call.lab.store, item.id):
                if cal_rules.overlaps(exc, start, end):
                    out.append(
                        (
                            odata.parse_datetime(exc.props["calendar:Start"]),
                            targets.Target(exc, folder),
                        )
                    )
        elif cal_rules.overlaps(item, start, end):
            out.append(
                (odata.parse_datetime(item.props["calendar:Start"]), targets.Target(item, folder))
            )
    out.sort(key=lambda e: e[0])
    return out


def calendar_view(call: Call, folder: Folder) -> Json:
    need(call, "Calendars")
    start, end = window(call)
    rows = [event_json(call, tgt) for _, tgt in view_targets(call, folder, start, end)]
    return collection(call, rows, context="events")


def instances(call: Call, gid: str) -> Json:
    need(call, "Calendars")
    target = resolve_item(call, gid)
    check(targets.check_read, call, target)
    start, end = window(call)
    if "calendar:Recurrence" not in target.item.props or target.index is not None:
        raise GraphError(400, "ErrorInvalidRequest", "The event is not a series master.")
    rows = [
        event_json(call, tgt)
        for _, tgt in view_targets(call, target.folder, start, end, only={target.item.id})
    ]
    return collection(call, rows, context="events")


def get_event(call: Call, gid: str) -> Json:
    need(call, "Calendars")
    target = resolve_item(call, gid)
    check(targets.check_read, call, target)
    return odata.select(event_json(call, target), call.query.get("$select"))


def create_event(call: Call, folder: Folder) -> tuple[int, Json]:
    need(call, "Calendars", write=True)
    try:
        props = event_in(body_json(call))
    except GraphInputError as exc:
        raise GraphError(400, exc.code, exc.message) from None
    if props.get("calendar:Recurrence") is None:
        props.pop("calendar:Recurrence", None)
    check(targets.check_create, call, folder)
    has_attendees = bool(
        props.get("calendar:RequiredAttendees") or props.get("calendar:OptionalAttendees")
    )
    args = delivery.CreateArgs(
        "", "SendToAllAndSaveCopy" if has_attendees else "SendToNone", folder
    )
    now = call.lab.now()
    try:
        cal_rules.prepare_calendar(call.ctx, props, folder, args)
        item = store_items.create_item(
            call.lab.store, folder, "IPM.Appointment", props, created_by=call.ctx.user, now=now
        )
        if has_attendees:
            meetings.invite(call.ctx, item, now)
    except ExchangeError as err:
        raise from_ews(err) from None
    return 201, event_json(call, targets.Target(item, folder))


RESPONSES = {
    "accept": "AcceptItem",
    "tentativelyAccept": "TentativelyAcceptItem",
    "decline": "DeclineItem",
}


def respond(call: Call, gid: str, action: str) -> tuple[int, None]:
    """accept / tentativelyAccept / decline on an event (or a meeting request message)."""
    need(call, "Calendars", write=True)
    target = resolve_item(call, gid)
    body = call.body if isinstance(call.body, Mapping) else {}
    comment = {"type": "Text", "text": str(body["comment"])} if body.get("comment") else None
    try:
        meetings.respond(call.ctx, target, RESPONSES[action], comment)
    except ExchangeError as err:
        raise from_ews(err) from None
    return 202, None


def event_delta(call: Call, folder: Folder) -> Json:
    need(call, "Calendars")
    raw = call.query.get("$skiptoken") or call.query.get("$deltatoken")
    state = read_delta_token(raw) if raw else {}
    if state:
        start, end = odata.parse_datetime(state["start"]), odata.parse_datetime(state["end"])
    else:
        start, end = window(call)
    since = state.get("since", state.get("seq"))
    seq = int(state["seq"]) if "offset" in state else store_items.last_seq(call.lab.store)
    rows: list[Json] = []
    if since is None:
        rows = [event_json(call, tgt) for _, tgt in view_targets(call, folder, start, end)]
    else:
        changed = {
            c.item_id
            for c in store_items.changes_after(call.lab.store, int(since), [folder.id])
            if c.seq <= seq
        }
        present = {
            tgt.item.master_id or tgt.item.id
            for _, tgt in view_targets(call, folder, start, end, only=None)
        }
        for _, tgt in view_targets(call, folder, start, end):
            if (tgt.item.master_id or tgt.item.id) in changed:
                rows.append(event_json(call, tgt))
        for item_id in changed - present:
            rows.append(
                {"id": graph_id(encode_id("item", item_id)), "@removed": {"reason": "deleted"}}
            )
    params = {
        "folder": folder.id,
        "seq": seq,
        "since": since,
        "start": utc_text(start),
        "end": utc_text(end),
    }
    return delta_page(call, rows, {**params, "offset": state.get("offset", 0)})


SCHEDULE_STATUS = {
    "Free": "free",
    "Tentative": "tentative",
    "Busy": "busy",
    "OOF": "oof",
    "WorkingElsewhere": "workingElsewhere",
}


def get_schedule(call: Call) -> Json:
    """`calendar/getSchedule`: free/busy of several people, with the details the caller's
    rights on each calendar allow (the EWS face's GetUserAvailability rules)."""
    need(call, "Calendars")
    body = body_json(call)
    schedules = body.get("schedules")
    if not isinstance(schedules, list) or not schedules:
        raise GraphError(400, "ErrorInvalidParameter", "schedules must name at least one address.")
    try:
        start_text, _ = dttz_in(body.get("startTime"), "startTime")
        end_text, _ = dttz_in(body.get("endTime"), "endTime")
    except GraphInputError as exc:
        raise GraphError(400, "ErrorInvalidParameter", exc.message) from None
    start, end = odata.parse_datetime(start_text), odata.parse_datetime(end_text)
    if end <= start or end - start > freebusy.MAX_WINDOW:
        raise GraphError(400, "ErrorInvalidParameter", "The time window is empty or too long.")
    interval = timedelta(minutes=int(body.get("availabilityViewInterval") or 30))
    if interval < timedelta(minutes=5):
        raise GraphError(400, "ErrorInvalidParameter", "availabilityViewInterval is too short.")
    tz, tzname = call.timezone()
    out = []
    for raw in schedules:
        address = str(raw).lower()
        calendar = call.lab.store.distinguished_folder(address, "calendar")
        if calendar is None:
            out.append(
                {
                    "scheduleId": raw,
                    "error": {
                        "message": f"{raw} is not a mailbox.",
                        "responseCode": "ErrorMailRecipientNotFound",
                    },
                }
            )
            continue
        rights = targets.rights(call.ctx, calendar)
        view = freebusy.granted_view("Detailed", rights)
        if view is None:
            out.append(
                {
                    "scheduleId": raw,
                    "error": {
                        "message": "No free/busy access to this calendar.",
                        "responseCode": "ErrorNoFreeBusyAccess",
                    },
                }
            )
            continue
        busy = freebusy.busy_times(call.ctx, calendar.id, start, end)
        items = []
        for entry in busy:
            item: Json = {
                "isPrivate": entry.item.is_private,
                "status": SCHEDULE_STATUS.get(entry.status, "busy"),
                "start": dttz_out(utc_text(entry.start), tz, tzname),
                "end": dttz_out(utc_text(entry.end), tz, tzname),
            }
            shown = not entry.item.is_private or rights.view_private
            if view.startswith("Detailed") and shown:
                item["subject"] = entry.item.props.get("item:Subject", "")
                item["location"] = entry.item.props.get("calendar:Location", "")
            items.append(item)
        out.append(
            {
                "scheduleId": raw,
                "availabilityView": freebusy.merged(busy, start, end, interval),
                "scheduleItems": items,
                "workingHours": (
                    working_hours_json(mb) if (mb := call.lab.store.mailbox(address)) else None
                ),
            }
        )
    return {
        "@odata.context": f"{call.base}/v1.0/$metadata#Collection(scheduleInformation)",
        "value": out,
    }


def calendar_json(call: Call, folder: Folder) -> Json:
    r = targets.rights(call.ctx, folder)
    return {
        "id": folder_gid(folder),
        "name": folder.display_name,
        "color": "auto",
        "changeKey": folder.change_key,
        "canShare": r.folder_owner,
        "canViewPrivateItems": r.view_private,
        "canEdit": r.create_items,
        "isDefaultCalendar": folder.distinguished == "calendar",
        "owner": {"name": call.mailbox, "address": call.mailbox},
    }


def calendars(call: Call) -> list[Json]:
    out = []
    for folder in call.lab.store.folders_of(call.mailbox):
        if (folder.folder_class or "").startswith("IPF.Appointment") and targets.rights(
            call.ctx, folder
        ).folder_visible:
            out.append(calendar_json(call, folder))
    return out
