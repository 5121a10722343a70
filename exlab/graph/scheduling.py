"""Graph's scheduling resources: `findMeetingTimes`, `places` (room lists and rooms) and the
working hours `getSchedule` reports, answered from `exlab.core.scheduling`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from exlab.core import directory, scheduling, targets
from exlab.core.store import Mailbox
from exlab.graph.convert import GraphInputError, dttz_in, dttz_out, parse_utc, utc_text
from exlab.graph.core import Call, GraphError, access_denied, body_json, collection, need
from exlab.graph.tokens import stable_uuid

Json = dict[str, Any]

ROOM_TYPE = "microsoft.graph.room"
ROOM_LIST_TYPE = "microsoft.graph.roomlist"
RESULT_TYPE = "microsoft.graph.meetingTimeSuggestionsResult"


def working_hours_json(mailbox: Mailbox) -> Json:
    hours = scheduling.working_hours(mailbox)
    return {
        "daysOfWeek": [d.lower() for d in hours.days],
        "startTime": f"{hours.start_minutes // 60:02d}:{hours.start_minutes % 60:02d}:00.0000000",
        "endTime": f"{hours.end_minutes // 60:02d}:{hours.end_minutes % 60:02d}:00.0000000",
        "timeZone": {"name": hours.time_zone},
    }


# -- places ---------------------------------------------------------------------------------------


def _need_places(call: Call) -> None:
    p = call.principal
    if "Place.Read.All" not in (p.roles if p.app_only else p.scopes):
        raise GraphError(
            403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
        )


def room_json(room: scheduling.Room) -> Json:
    return {
        "@odata.type": f"#{ROOM_TYPE}",
        "id": stable_uuid("place", room.address),
        "displayName": room.display_name,
        "emailAddress": room.address,
        "capacity": room.capacity,
        "building": room.building,
        "floorLabel": room.floor,
        "isWheelChairAccessible": room.wheelchair,
        "bookingType": "standard",
        "tags": list(room.equipment),
        "audioDeviceName": None,
        "videoDeviceName": None,
        "displayDeviceName": None,
    }


def places_route(call: Call, rest: list[str]) -> tuple[int, Any]:
    """`/places/microsoft.graph.roomlist`, `/places/microsoft.graph.room` and
    `/places/{room list address}/microsoft.graph.roomlist/rooms`."""
    if call.method != "GET":
        raise GraphError(405, "Request_BadRequest", "The method is not allowed here.")
    _need_places(call)
    store = call.lab.store
    if rest == [ROOM_LIST_TYPE]:
        rows = [
            {
                "@odata.type": f"#{ROOM_LIST_TYPE}",
                "id": stable_uuid("place", g.address),
                "displayName": g.display_name,
                "emailAddress": g.address,
            }
            for g in directory.groups(store, "roomlist")
        ]
        return 200, collection(call, rows, context="places")
    if rest == [ROOM_TYPE]:
        rows = [room_json(r) for r in scheduling.rooms(store)]
        return 200, collection(call, rows, context="places")
    if len(rest) == 3 and rest[1] == ROOM_LIST_TYPE and rest[2] == "rooms":
        group = directory.group(store, rest[0])
        if group is None or group.kind != "roomlist":
            raise GraphError(404, "ErrorItemNotFound", f"No room list {rest[0]}.")
        rows = [room_json(r) for r in scheduling.rooms(store, group.address)]
        return 200, collection(call, rows, context="places")
    raise GraphError(400, "BadRequest", "Resource not found for the segment 'places'.")


# -- findMeetingTimes -----------------------------------------------------------------------------


def _duration(text: Any) -> timedelta:
    """An ISO 8601 duration as Graph sends meetingDuration (PT1H30M, P1DT2H)."""
    raw = str(text or "PT30M").upper()
    if not raw.startswith("P"):
        raise GraphError(400, "ErrorInvalidParameter", "meetingDuration is not a duration.")
    days, _, clock = raw[1:].partition("T")
    total = timedelta()
    try:
        if days:
            total += timedelta(days=int(days.rstrip("D")))
        number = ""
        for ch in clock:
            if ch.isdigit():
                number += ch
                continue
            unit = {"H": "hours", "M": "minutes", "S": "seconds"}[ch]
            total += timedelta(**{unit: int(number)})
            number = ""
    except (KeyError, ValueError):
        raise GraphError(
            400, "ErrorInvalidParameter", "meetingDuration is not a duration."
        ) from None
    return total


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return str(value).lower() == "true"


def find_meeting_times(call: Call) -> Json:
    """Suggestions for a meeting `call.mailbox` organises; a delegate needs read access to the
    organiser's calendar (Exchange answers for the organiser's schedule)."""
    need(call, "Calendars")
    calendar = call.lab.store.distinguished_folder(call.mailbox, "calendar")
    if calendar is None or targets.rights(call.ctx, calendar).read != "full":
        raise access_denied()
    body = body_json(call)
    attendees: list[tuple[str, bool]] = []
    for entry in body.get("attendees") or []:
        address = str(((entry or {}).get("emailAddress") or {}).get("address") or "")
        if not address:
            raise GraphError(400, "ErrorInvalidParameter", "An attendee has no address.")
        kind = str(entry.get("type") or "required").lower()
        if kind != "resource":
            attendees.append((address.lower(), kind == "required"))
    constraint = body.get("locationConstraint") or {}
    rooms = [
        str(loc.get("locationEmailAddress")).lower()
        for loc in constraint.get("locations") or []
        if loc.get("locationEmailAddress")
    ]
    time_constraint = body.get("timeConstraint") or {}
    windows = []
    try:
        for slot in time_constraint.get("timeSlots") or []:
            start_text, _ = dttz_in(slot.get("start"), "start")
            end_text, _ = dttz_in(slot.get("end"), "end")
            windows.append((parse_utc(start_text), parse_utc(end_text)))
    except GraphInputError as exc:
        raise GraphError(400, "ErrorInvalidParameter", exc.message) from None
    if not windows:
        now = call.lab.now()
        windows = [(now, now + timedelta(days=2))]
    if any(end <= start for start, end in windows):
        raise GraphError(400, "ErrorInvalidParameter", "A time slot ends before it starts.")
    activity = str(time_constraint.get("activityDomain") or "work").lower()
    max_candidates = int(body.get("maxCandidates") or scheduling.MAX_SUGGESTIONS)
    found, reason = scheduling.suggest(
        call.ctx,
        call.mailbox,
        attendees,
        rooms,
        windows,
        _duration(body.get("meetingDuration")),
        working_hours_only=activity == "work",
        organizer_optional=_flag(body.get("isOrganizerOptional"), False),
        room_required=_flag(constraint.get("isRequired"), False) and bool(rooms),
        max_candidates=max(1, min(max_candidates, scheduling.MAX_SUGGESTIONS)),
    )
    tz, tzname = call.timezone()
    kinds = {a: ("required" if req else "optional") for a, req in attendees}
    suggestions = []
    for s in found:
        suggestions.append(
            {
                "confidence": 100.0,
                "organizerAvailability": s.availability.get(call.mailbox, "unknown"),
                "suggestionReason": "Suggested because it is one of the nearest times when"
                " all attendees are available.",
                "meetingTimeSlot": {
                    "start": dttz_out(utc_text(s.start), tz, tzname),
                    "end": dttz_out(utc_text(s.end), tz, tzname),
                },
                "attendeeAvailability": [
                    {
                        "attendee": {"type": kind, "emailAddress": {"address": address}},
                        "availability": s.availability.get(address, "unknown"),
                    }
                    for address, kind in kinds.items()
                ],
                "locations": [
                    {
                        "displayName": r.display_name,
                        "locationEmailAddress": r.address,
                        "locationType": "conferenceRoom",
                    }
                    for r in s.rooms
                ],
            }
        )
    return {
        "@odata.context": f"{call.base}/v1.0/$metadata#{RESULT_TYPE}",
        "emptySuggestionsReason": reason,
        "meetingTimeSuggestions": suggestions,
    }
