"""The scheduling assistant (free slots across attendees and rooms, booking one with a room on
the organiser's behalf), rooms, and the day sheet (JSON or a printable HTML page).

Scheduling for someone else needs the right to create items in their calendar, the day sheet
the right to read their calendar and inbox; without them the answer is a 403 problem.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import HTMLResponse, Response

from bridge.api.context import SessionDep, api_json, needs
from bridge.api.problems import PROBLEM_RESPONSES
from med import InvalidInput, MeetingSearch

router = APIRouter(prefix="/v1", tags=["scheduling"], responses=PROBLEM_RESPONSES)

Address = Annotated[str, Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
MailboxPath = Annotated[
    str,
    Path(
        description="Mailbox address.",
        examples=["chef@musterstadt.example"],
        pattern=r"^[^@/\s]{1,64}@[^@/\s]{1,255}$",
    ),
]
Clock = Annotated[str, Field(pattern=r"^\d{2}:\d{2}$", examples=["09:00"])]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Preferred(_Body):
    start: Clock
    end: Clock


class SearchIn(_Body):
    organizer: Address = Field(description="Whose meeting (the boss).")
    attendees: list[Address] = Field(default_factory=list, max_length=100)
    optional: list[Address] = Field(default_factory=list, max_length=100)
    rooms: list[Address] = Field(default_factory=list, max_length=50)
    start: datetime = Field(description="Search from (with a zone).")
    end: datetime = Field(description="Search until (with a zone; at most 62 days later).")
    minutes: int = Field(60, ge=5, le=1440, description="The meeting's length.")
    preferred: list[Preferred] = Field(default_factory=list, max_length=10)
    time_zone: str = Field("UTC", max_length=64, description="IANA zone of `preferred`.")
    working_hours_only: bool = True
    room_required: bool = False
    max_suggestions: int = Field(20, ge=1, le=50)

    def search(self) -> MeetingSearch:
        try:
            windows = tuple(
                (time.fromisoformat(p.start), time.fromisoformat(p.end)) for p in self.preferred
            )
        except ValueError:
            raise InvalidInput("A preferred time is no time of day.") from None
        return MeetingSearch(
            organizer=self.organizer.lower(),
            attendees=tuple(a.lower() for a in self.attendees),
            optional=tuple(a.lower() for a in self.optional),
            rooms=tuple(r.lower() for r in self.rooms),
            start=self.start,
            end=self.end,
            duration=timedelta(minutes=self.minutes),
            preferred=windows,
            time_zone=self.time_zone,
            working_hours_only=self.working_hours_only,
            room_required=self.room_required,
            max_suggestions=self.max_suggestions,
        )


class BookingIn(SearchIn):
    subject: str = Field(min_length=1, max_length=255)
    room: Address | None = None
    body: str = Field("", max_length=100_000)


@router.post(
    "/scheduling/find",
    summary="Find free slots for a meeting",
    dependencies=[needs("read", "CreateItems")],
)
async def find_meeting_times(session: SessionDep, body: SearchIn) -> Response:
    """Suggested slots, and everyone's busy times and working hours over the range (people,
    then rooms) for a grid."""
    found = await session.find_meeting_times(body.search())
    return api_json(
        {
            "suggestions": list(found.suggestions),
            "availability": list(found.availability),
            "empty_reason": found.empty_reason,
        }
    )


@router.post(
    "/scheduling/book",
    summary="Book a slot with a room on the organiser's behalf",
    status_code=201,
    dependencies=[needs("write", "CreateItems")],
)
async def book_meeting(session: SessionDep, body: BookingIn) -> Response:
    """Books [start, start + minutes) in the organiser's calendar and sends the invitations;
    409 when the room is no longer free."""
    search = body.search()
    event = await session.book_meeting(
        search,
        (search.start, search.start + search.duration),
        subject=body.subject,
        room=body.room,
        body=body.body,
    )
    return api_json(event, 201)


@router.get("/room-lists", summary="Room lists", dependencies=[needs("read")])
async def room_lists(session: SessionDep) -> Response:
    return api_json({"room_lists": await session.room_lists()})


@router.get("/rooms", summary="Rooms, and which are free", dependencies=[needs("read")])
async def rooms(
    session: SessionDep,
    room_list: Annotated[Address | None, Query(description="Only this room list.")] = None,
    start: Annotated[datetime | None, Query(description="With `end`: free then?")] = None,
    end: Annotated[datetime | None, Query()] = None,
) -> Response:
    """Rooms with capacity and equipment where the directory has them; with `start` and `end`
    each with `free` for that time."""
    if (start is None) != (end is None):
        raise InvalidInput("Give both start and end, or neither.")
    if start is not None and end is not None:
        found = await session.room_availability(start, end, room_list)
        return api_json(
            {"rooms": [{**_plain(r.room), "free": r.free} for r in found]},
        )
    return api_json({"rooms": await session.rooms(room_list)})


def _plain(value: object) -> dict[str, object]:
    from med import to_jsonable

    out = to_jsonable(value)
    assert isinstance(out, dict)
    return out


@router.get(
    "/mailboxes/{mailbox}/day-sheet",
    summary="The day sheet of a mailbox",
    dependencies=[needs("read", "ReadItems")],
    responses={200: {"content": {"application/json": {}, "text/html": {}}}},
)
async def day_sheet(
    session: SessionDep,
    mailbox: MailboxPath,
    day: Annotated[date | None, Query(alias="date", description="Default: today.")] = None,
    time_zone: Annotated[str, Query(max_length=64)] = "UTC",
    format: Annotated[str, Query(pattern="^(json|html)$")] = "json",
) -> Response:
    """Appointments, flagged mail and due tasks of the day; `format=html` for a printable page."""
    from zoneinfo import ZoneInfo

    from bridge.daysheet import render_html
    from med.scheduling import zone

    when = day or datetime.now(zone(time_zone) if time_zone else ZoneInfo("UTC")).date()
    sheet = await session.day_sheet(mailbox.lower(), when, time_zone)
    if format == "html":
        return HTMLResponse(render_html(sheet))
    return api_json(sheet)
