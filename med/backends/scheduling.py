"""The seam for scheduling: free/busy with working hours, meeting-time suggestions and rooms.

A separate protocol beside `Backend` (as `med.backends.settings` is for mailbox settings), so
that a backend or a test's fake without it simply does not implement it; `DelegateSession` then
raises `Unsupported`. Blocking, `med` types in and out, only `MedError`s raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

from med.scheduling import Availability, MeetingSearch, Room, RoomList, SlotSuggestion

__all__ = ["SchedulingBackend"]


@runtime_checkable
class SchedulingBackend(Protocol):
    def availability(
        self, addresses: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[Availability]:
        """Busy times and working hours of people and rooms, in the order asked; one without
        data (no such mailbox, no free/busy right) comes back with `error` set.

        Raises:
            InvalidInput: the range is empty or too long.
        """
        ...

    def suggest_times(self, search: MeetingSearch) -> tuple[Sequence[SlotSuggestion], str]:
        """Slots for the search by `med.scheduling`'s rule, and why there are none ("" when
        there are some).

        Raises:
            AccessDenied: the user may not schedule for the organiser.
        """
        ...

    def room_lists(self) -> Sequence[RoomList]:
        """The organisation's room lists."""
        ...

    def rooms(self, room_list: str | None) -> Sequence[Room]:
        """The rooms of a room list, or all rooms the directory knows when None, by name.

        Raises:
            NotFound: no such room list.
        """
        ...
