"""Scheduling over EWS: GetUserAvailability (free/busy with working hours), GetRoomLists and
GetRooms. EWS has no meeting-time search a client can rely on, so suggestions are computed
here from everyone's free/busy by `med.scheduling.suggest` (the rule Graph's
findMeetingTimes follows on the other backend).

GetRooms returns names and addresses only: rooms over EWS come without capacity or equipment.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from typing import TYPE_CHECKING, Any

from exchangelib import EWSTimeZone
from exchangelib.errors import UnknownTimeZone

from med.backends.ews.convert import BUSY, aware_datetime, ews_datetime
from med.backends.ews.errors import ews_errors, translate_error
from med.errors import MedError, NotFound
from med.model import BusySlot, BusyStatus
from med.scheduling import (
    Availability,
    MeetingSearch,
    Room,
    RoomList,
    SlotSuggestion,
    WorkingHours,
    suggest,
    weekday_names,
)

if TYPE_CHECKING:
    from exchangelib import Account

_ISO_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
"""exchangelib gives a working period's days as ISO numbers (Monday is 1)."""


class EwsScheduling:
    """The `SchedulingBackend` half of `EwsBackend` (mixed in; uses its account)."""

    _server_zones: list[Any] | None = None

    def _account(self, address: str | None = None) -> Account:
        raise NotImplementedError  # provided by EwsBackend

    def availability(
        self, addresses: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[Availability]:
        acc = self._account()
        with ews_errors():
            views = list(
                acc.protocol.get_free_busy_info(
                    accounts=[(a, "Required", False) for a in addresses],
                    start=ews_datetime(start),
                    end=ews_datetime(end),
                    requested_view="Detailed",
                )
            )
        out = []
        for address, view in zip(addresses, views, strict=False):
            if isinstance(view, Exception):
                err = translate_error(view, mailbox=address)
                out.append(Availability(address, error=str(err)))
                continue
            slots = []
            for ev in view.calendar_events or ():
                details = ev.details
                slots.append(
                    BusySlot(
                        start=aware_datetime(ev.start) or start,
                        end=aware_datetime(ev.end) or end,
                        status=BUSY.get(ev.busy_type or "Busy", BusyStatus.BUSY),
                        subject=getattr(details, "subject", None) if details else None,
                        location=getattr(details, "location", None) if details else None,
                    )
                )
            out.append(Availability(address, tuple(slots), self._working_hours(view, start)))
        return out

    def _working_hours(self, view: Any, start: datetime) -> WorkingHours | None:
        """The first working period, in the zone the server matches the view's rules to."""
        periods = view.working_hours or []
        if not periods or view.working_hours_timezone is None:
            return None
        period = periods[0]
        acc = self._account()
        try:  # the hours are a help: without the server's zones the busy times still count
            with ews_errors():
                if self._server_zones is None:
                    self._server_zones = list(
                        acc.protocol.get_timezones(return_full_timezone_data=True)
                    )
                ms_id = view.working_hours_timezone.to_server_timezone(
                    self._server_zones, start.year
                )
        except MedError:
            return None
        try:
            iana = EWSTimeZone.from_ms_id(ms_id).key if ms_id else "UTC"
        except UnknownTimeZone:
            iana = "UTC"
        first, last = period.start, period.end
        return WorkingHours(
            weekday_names([_ISO_DAYS[int(d) - 1] for d in period.weekdays or ()]),
            time(first.hour, first.minute),
            time(last.hour, last.minute),
            iana,
        )

    def suggest_times(self, search: MeetingSearch) -> tuple[Sequence[SlotSuggestion], str]:
        people = [*search.people, *(r.lower() for r in search.rooms)]
        found = self.availability(people, search.start, search.end)
        return suggest(search, {a.address.lower(): a for a in found})

    def room_lists(self) -> Sequence[RoomList]:
        acc = self._account()
        with ews_errors():
            lists = list(acc.protocol.get_roomlists())
        return [
            RoomList(str(r.email_address).lower(), str(r.name or r.email_address)) for r in lists
        ]

    def rooms(self, room_list: str | None) -> Sequence[Room]:
        acc = self._account()
        lists = [room_list] if room_list else [r.address for r in self.room_lists()]
        found: dict[str, Room] = {}
        for address in lists:
            with ews_errors(mailbox=address):
                answer = list(acc.protocol.get_rooms(address))
            for room in answer:
                if isinstance(room, Exception):
                    raise NotFound(f"There is no room list {address}.", mailbox=address)
                email = str(room.email_address).lower()
                found[email] = Room(email, str(room.name or email))
        return sorted(found.values(), key=lambda r: r.name)
