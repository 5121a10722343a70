"""Calendar views over several calendars, free/busy, and iCalendar import."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.responses import Response

from bridge.api.context import SessionDep, api_json, folder_by_id, needs
from bridge.api.problems import PROBLEM_RESPONSES
from bridge.api.schemas import CalendarView, FreeBusyList, ImportResultOut
from med import InvalidInput

router = APIRouter(prefix="/v1", tags=["calendar"], responses=PROBLEM_RESPONSES)

_ID = r"^[A-Za-z0-9_-]{1,2000}$"
#: Calendars one view may overlay.
MAX_CALENDARS = 20


@router.get(
    "/calendar-view", response_model=CalendarView, dependencies=[needs("read", "FreeBusyTimeOnly")]
)
async def calendar_view(
    session: SessionDep,
    calendar: Annotated[
        list[Annotated[str, Query(pattern=_ID)]],
        Query(
            min_length=1,
            max_length=MAX_CALENDARS,
            description="Calendar folder ids; repeat for several.",
        ),
    ],
    start: Annotated[AwareDatetime, Query(examples=["2026-12-07T00:00:00+01:00"])],
    end: Annotated[AwareDatetime, Query(examples=["2026-12-14T00:00:00+01:00"])],
) -> Response:
    """Events of several calendars in [start, end), series expanded, sorted by start."""
    folders = [await folder_by_id(session, c) for c in calendar]
    return api_json({"events": await session.calendar_view(folders, start, end)})


class FreeBusyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    addresses: list[str] = Field(
        min_length=1, max_length=100, examples=[["chef@musterstadt.example"]]
    )
    start: AwareDatetime
    end: AwareDatetime


@router.post(
    "/free-busy", response_model=FreeBusyList, dependencies=[needs("read", "FreeBusyTimeOnly")]
)
async def free_busy(session: SessionDep, request: FreeBusyRequest) -> Response:
    """Busy times of several people."""
    people = await session.free_busy(request.addresses, request.start, request.end)
    return api_json({"people": people})


@router.post(
    "/folders/{folder_id}/ical",
    status_code=201,
    response_model=ImportResultOut,
    dependencies=[needs("write", "CreateItems")],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/calendar": {"schema": {"type": "string"}}},
        }
    },
)
async def import_ical(
    session: SessionDep,
    request: Request,
    folder_id: Annotated[str, Path(pattern=_ID)],
    default_zone: Annotated[str, Query(max_length=64)] = "UTC",
) -> Response:
    """Create the events of an iCalendar document in a calendar."""
    from zoneinfo import ZoneInfoNotFoundError

    from med.ical import ical_to_events

    data = await request.body()
    try:
        result = ical_to_events(data, default_zone=default_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidInput(f"{default_zone!r} is no time zone.") from exc
    folder = await folder_by_id(session, folder_id)
    created = [await session.create(folder, e, send_invitations=False) for e in result.events]
    return api_json({"created": created}, 201)
