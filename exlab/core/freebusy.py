"""Free/busy: the busy times of a calendar and what a caller may see of them.

GetUserAvailability (EWS) and getSchedule (Graph) both answer from here: appointments with
expanded occurrences, merged into a slot string, and the view the caller's rights grant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from exlab.core import items as store_items
from exlab.core.access import Rights
from exlab.core.calendar import occurrences_of
from exlab.core.caller import Caller
from exlab.core.items import Item
from exlab.core.store import parse_utc

MERGED_CODES = {"Free": "0", "Tentative": "1", "Busy": "2", "OOF": "3", "WorkingElsewhere": "0"}
RANK = {"Free": 0, "WorkingElsewhere": 0, "Tentative": 1, "Busy": 2, "OOF": 3}
MAX_WINDOW = timedelta(days=62)
"""Exchange refuses free/busy windows longer than 62 days."""


@dataclass(frozen=True)
class Busy:
    start: datetime
    end: datetime
    status: str
    item: Item
    recurring: bool
    exception: bool


def busy_times(caller: Caller, calendar_id: str, start: datetime, end: datetime) -> list[Busy]:
    """Appointments (with expanded occurrences) overlapping [start, end), in UTC."""
    found: list[Busy] = []
    for item in store_items.items_in(caller.lab.store, calendar_id):
        if not item.item_class.startswith("IPM.Appointment") or not item.props.get(
            "calendar:Start"
        ):
            continue
        status = str(item.props.get("calendar:LegacyFreeBusyStatus") or "Busy")
        if "calendar:Recurrence" in item.props:
            for _, occ_start, occ_end in occurrences_of(caller, item, start, end):
                found.append(
                    Busy(
                        occ_start.astimezone(UTC),
                        occ_end.astimezone(UTC),
                        status,
                        item,
                        True,
                        False,
                    )
                )
            for occ in store_items.exceptions_of(caller.lab.store, item.id):
                span = _span(occ)
                if span and span[1] > start and span[0] < end:
                    occ_status = str(occ.props.get("calendar:LegacyFreeBusyStatus") or status)
                    found.append(Busy(span[0], span[1], occ_status, occ, True, True))
            continue
        span = _span(item)
        if span and span[1] > start and span[0] < end:
            found.append(Busy(span[0], span[1], status, item, False, False))
    found.sort(key=lambda b: (b.start, b.end))
    return found


def _span(item: Item) -> tuple[datetime, datetime] | None:
    begin = item.props.get("calendar:Start")
    if not begin:
        return None
    finish = item.props.get("calendar:End") or begin
    return parse_utc(str(begin)), parse_utc(str(finish))


def merged(busy: list[Busy], start: datetime, end: datetime, interval: timedelta) -> str:
    codes = []
    slot = start
    while slot < end:
        slot_end = slot + interval
        statuses = [b.status for b in busy if b.start < slot_end and b.end > slot]
        top = max(statuses, key=lambda s: RANK.get(s, 2), default="Free")
        codes.append(MERGED_CODES.get(top, "2"))
        slot = slot_end
    return "".join(codes)


def granted_view(requested: str, rights: Rights) -> str | None:
    """The view Exchange grants for a request and the caller's read right (None: no access)."""
    if rights.read == "none":
        return None
    merged_wanted = requested.endswith("Merged") or requested == "MergedOnly"
    if requested == "MergedOnly":
        return "MergedOnly"
    if requested.startswith("Detailed") and rights.read != "freebusy_time":
        return "DetailedMerged" if merged_wanted else "Detailed"
    return "FreeBusyMerged" if merged_wanted else "FreeBusy"
