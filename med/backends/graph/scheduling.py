"""Scheduling over Graph: calendar/getSchedule (free/busy with working hours),
findMeetingTimes (suggestions, computed by the server) and places (room lists and rooms, with
capacity and equipment where the directory has them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time
from typing import Any

import requests
from O365.utils.windows_tz import get_iana_tz

from med.backends.graph.convert import SHOW_AS, _dt, _dttz
from med.errors import InvalidInput
from med.model import BusySlot, BusyStatus
from med.scheduling import (
    Availability,
    MeetingSearch,
    Room,
    RoomList,
    SlotSuggestion,
    WorkingHours,
    weekday_names,
)

ROOM_LIST = "microsoft.graph.roomlist"
ROOM = "microsoft.graph.room"


def _clock(text: Any) -> time:
    hours, _, rest = str(text or "00:00").partition(":")
    return time(int(hours), int(rest[:2] or 0))


def _working_hours(value: Any) -> WorkingHours | None:
    if not isinstance(value, Mapping) or not value.get("daysOfWeek"):
        return None
    name = str((value.get("timeZone") or {}).get("name") or "UTC")
    try:
        iana = get_iana_tz(name).key
    except Exception:
        iana = name if "/" in name else "UTC"
    return WorkingHours(
        weekday_names([str(d) for d in value["daysOfWeek"]]),
        _clock(value.get("startTime")),
        _clock(value.get("endTime")),
        iana,
    )


def _room(value: Mapping[str, Any]) -> Room:
    address = str(value.get("emailAddress") or "").lower()
    equipment = [
        str(value[k])
        for k in ("audioDeviceName", "videoDeviceName", "displayDeviceName")
        if value.get(k)
    ]
    equipment += [str(t) for t in value.get("tags") or ()]
    capacity = value.get("capacity")
    wheelchair = value.get("isWheelChairAccessible")
    return Room(
        address,
        str(value.get("displayName") or address),
        int(capacity) if isinstance(capacity, int) else None,
        value.get("building") or None,
        value.get("floorLabel") or None,
        tuple(equipment),
        bool(wheelchair) if wheelchair is not None else None,
    )


class GraphScheduling:
    """The `SchedulingBackend` half of `GraphBackend` (mixed in; uses its connection)."""

    base_url: str

    def _json(self, method: str, mailbox: str | None, path: str, **kw: Any) -> Any:
        raise NotImplementedError  # provided by GraphBackend

    def _request(self, method: str, url: str, *, mailbox: str | None = None) -> requests.Response:
        raise NotImplementedError  # provided by GraphBackend

    def availability(
        self, addresses: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[Availability]:
        if end <= start:
            raise InvalidInput("The end of the free/busy range must be after its start.")
        if not addresses:
            return []
        body = {
            "schedules": list(addresses),
            "startTime": _dttz(start),
            "endTime": _dttz(end),
            "availabilityViewInterval": 30,
        }
        data = self._json("post", None, "calendar/getSchedule", data=body)
        by_id = {str(v.get("scheduleId", "")).lower(): v for v in data.get("value", [])}
        out = []
        for address in addresses:
            info = by_id.get(address.lower())
            if info is None or info.get("error"):
                error = (info or {}).get("error") or {}
                out.append(Availability(address, error=str(error.get("message") or "No data.")))
                continue
            slots = tuple(
                BusySlot(
                    _dt(i.get("start")) or start,
                    _dt(i.get("end")) or end,
                    SHOW_AS.get(str(i.get("status")), BusyStatus.BUSY),
                    i.get("subject"),
                    i.get("location"),
                )
                for i in info.get("scheduleItems") or ()
            )
            out.append(Availability(address, slots, _working_hours(info.get("workingHours"))))
        return out

    def suggest_times(self, search: MeetingSearch) -> tuple[Sequence[SlotSuggestion], str]:
        attendees = [
            {"type": "required", "emailAddress": {"address": a}} for a in search.attendees
        ] + [{"type": "optional", "emailAddress": {"address": a}} for a in search.optional]
        body = {
            "attendees": attendees,
            "timeConstraint": {
                "activityDomain": "work" if search.working_hours_only else "unrestricted",
                "timeSlots": [{"start": _dttz(a), "end": _dttz(b)} for a, b in search.windows()],
            },
            "locationConstraint": {
                "isRequired": search.room_required,
                "suggestLocation": False,
                "locations": [
                    {"locationEmailAddress": r, "displayName": r, "resolveAvailability": True}
                    for r in search.rooms
                ],
            },
            "meetingDuration": f"PT{int(search.duration.total_seconds() // 60)}M",
            "maxCandidates": search.max_suggestions,
            "isOrganizerOptional": False,
            "returnSuggestionReasons": True,
            "minimumAttendeePercentage": 100,
        }
        data = self._json("post", search.organizer, "findMeetingTimes", data=body) or {}
        out = []
        for s in data.get("meetingTimeSuggestions") or ():
            slot = s.get("meetingTimeSlot") or {}
            start, end = _dt(slot.get("start")), _dt(slot.get("end"))
            if start is None or end is None:
                continue
            statuses = {search.organizer.lower(): _status(s.get("organizerAvailability"))}
            for entry in s.get("attendeeAvailability") or ():
                address = (entry.get("attendee") or {}).get("emailAddress") or {}
                statuses[str(address.get("address", "")).lower()] = _status(
                    entry.get("availability")
                )
            rooms = tuple(
                str(loc.get("locationEmailAddress")).lower()
                for loc in s.get("locations") or ()
                if loc.get("locationEmailAddress")
            )
            out.append(SlotSuggestion(start, end, statuses, rooms))
        return out, str(data.get("emptySuggestionsReason") or "")

    def _places(self, path: str) -> list[Any]:
        url = f"{self.base_url}/v1.0/places/{path}"
        data = self._request("get", url).json()
        values = list(data.get("value", []))
        link = data.get("@odata.nextLink")
        while link:
            page = self._request("get", link).json()
            values += page.get("value", [])
            link = page.get("@odata.nextLink")
        return values

    def room_lists(self) -> Sequence[RoomList]:
        return [
            RoomList(str(v.get("emailAddress") or "").lower(), str(v.get("displayName") or ""))
            for v in self._places(ROOM_LIST)
        ]

    def rooms(self, room_list: str | None) -> Sequence[Room]:
        path = f"{room_list}/{ROOM_LIST}/rooms" if room_list else ROOM
        return sorted((_room(v) for v in self._places(path)), key=lambda r: r.name)


def _status(value: Any) -> BusyStatus:
    return SHOW_AS.get(str(value or ""), BusyStatus.NO_DATA)
