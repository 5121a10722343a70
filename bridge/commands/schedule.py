"""`medbridge schedule find|book`, `medbridge schedule rooms|room-lists|free-rooms` and
`medbridge schedule daysheet`: the scheduling assistant, rooms and the day sheet.

Scheduling for the boss needs the right to create items in the boss's calendar (a delegate
with Author or more), the day sheet the right to read the boss's calendar and inbox.
"""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bridge.commands._common import fail
from bridge.commands._med import JSON, MAILBOX, PROFILE, emit, open_session, parse_when, run

if TYPE_CHECKING:
    from med import MeetingSearch, MeetingTimes

app = typer.Typer(help="Scheduling assistant, rooms and the day sheet.", no_args_is_help=True)

ORGANIZER = typer.Option(None, "--organizer", "-o", help="Whose meeting (default: yourself).")
ATTENDEE = typer.Option([], "--attendee", "-a", help="A required attendee (repeatable).")
OPTIONAL = typer.Option([], "--optional", help="An optional attendee (repeatable).")
ROOM = typer.Option([], "--room", "-r", help="A room that would do (repeatable).")
FROM = typer.Option("tomorrow", "--from", help="Search from (2026-12-07 or …T08:00).")
UNTIL = typer.Option(None, "--until", help="Search until (default: the end of --from's day).")
MINUTES = typer.Option(60, "--minutes", help="The meeting's length in minutes.")
PREFER = typer.Option(
    [], "--prefer", help="Preferred time of day, HH:MM-HH:MM (repeatable; default: all day)."
)
ZONE = typer.Option(None, "--zone", help="IANA time zone of the times (default: this machine's).")
ANY_HOURS = typer.Option(False, "--any-hours", help="Also outside working hours.")
NEED_ROOM = typer.Option(False, "--need-room", help="Only slots where one of the rooms is free.")


def _zone_name(zone: str | None) -> str:
    from bridge.commands._med import local_zone

    return zone or str(getattr(local_zone(), "key", "UTC"))


def _clock(text: str) -> time:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        fail(f"{text!r} is no time of day (use 09:00)", 2)


def _search(
    organizer: str,
    attendees: list[str],
    optional: list[str],
    rooms: list[str],
    start: str,
    until: str | None,
    minutes: int,
    prefer: list[str],
    zone: str | None,
    any_hours: bool,
    need_room: bool,
) -> MeetingSearch:
    from zoneinfo import ZoneInfo

    from med import MeetingSearch

    name = _zone_name(zone)
    begins = parse_when(start)
    ends = parse_when(until, end_of_day=len(until) <= 10) if until else None
    if zone:
        tz = ZoneInfo(name)
        begins = begins.replace(tzinfo=tz)  # the times given are read in --zone
        ends = ends.replace(tzinfo=tz) if ends else None
    windows = []
    for text in prefer:
        first, sep, last = text.partition("-")
        if not sep:
            fail(f"{text!r} is no span of the day (use 09:00-12:00)", 2)
        windows.append((_clock(first), _clock(last)))
    return MeetingSearch(
        organizer=organizer.lower(),
        attendees=tuple(a.lower() for a in attendees),
        optional=tuple(a.lower() for a in optional),
        rooms=tuple(r.lower() for r in rooms),
        start=begins,
        end=ends or begins.replace(hour=0, minute=0) + timedelta(days=1),
        duration=timedelta(minutes=minutes),
        preferred=tuple(windows),
        time_zone=name,
        working_hours_only=not any_hours,
        room_required=need_room,
    )


def _show_times(found: MeetingTimes, as_json: bool) -> None:
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(found.search.time_zone)

    def human() -> None:
        if not found.suggestions:
            typer.echo(f"No free slot ({found.empty_reason or 'unknown'}).")
        for n, slot in enumerate(found.suggestions, 1):
            rooms = ", ".join(slot.rooms) or "no room free"
            start, end = slot.start.astimezone(tz), slot.end.astimezone(tz)
            typer.echo(f"{n:>2}. {start:%a %d.%m. %H:%M}–{end:%H:%M}  {rooms}")

    emit(
        {
            "suggestions": list(found.suggestions),
            "availability": list(found.availability),
            "empty_reason": found.empty_reason,
        },
        as_json,
        human,
    )


@app.command("find")
def find(
    profile: str | None = PROFILE,
    organizer: str | None = ORGANIZER,
    attendee: list[str] = ATTENDEE,
    optional: list[str] = OPTIONAL,
    room: list[str] = ROOM,
    start: str = FROM,
    until: str | None = UNTIL,
    minutes: int = MINUTES,
    prefer: list[str] = PREFER,
    zone: str | None = ZONE,
    any_hours: bool = ANY_HOURS,
    need_room: bool = NEED_ROOM,
    as_json: bool = JSON,
) -> None:
    """Free slots for a meeting across attendees and rooms (free/busy, working hours)."""

    async def work() -> None:
        async with open_session(profile) as session:
            search = _search(
                organizer or session.user,
                attendee,
                optional,
                room,
                start,
                until,
                minutes,
                prefer,
                zone,
                any_hours,
                need_room,
            )
            _show_times(await session.find_meeting_times(search), as_json)

    run(work)


@app.command("book")
def book(
    at: str = typer.Argument(..., help="The slot's start (2026-12-07T14:00)."),
    subject: str = typer.Option(..., "--subject", "-s", help="The meeting's subject."),
    profile: str | None = PROFILE,
    organizer: str | None = ORGANIZER,
    attendee: list[str] = ATTENDEE,
    optional: list[str] = OPTIONAL,
    room: str | None = typer.Option(None, "--room", "-r", help="The room to book with it."),
    minutes: int = MINUTES,
    body: str = typer.Option("", "--body", help="The invitation's text."),
    zone: str | None = ZONE,
    as_json: bool = JSON,
) -> None:
    """Book a slot in the organiser's calendar with a room; invitations go out on their behalf."""

    async def work() -> None:
        async with open_session(profile) as session:
            search = _search(
                organizer or session.user,
                attendee,
                optional,
                [room] if room else [],
                at,
                None,
                minutes,
                [],
                zone,
                True,
                False,
            )
            start = search.start
            event = await session.book_meeting(
                search,
                (start, start + search.duration),
                subject=subject,
                room=room,
                body=body,
            )
            emit(event, as_json, lambda: typer.echo(f"Booked {event.subject!r} ({event.id})."))

    run(work)


@app.command("room-lists")
def room_lists(profile: str | None = PROFILE, as_json: bool = JSON) -> None:
    """The organisation's room lists."""

    async def work() -> None:
        async with open_session(profile) as session:
            found = await session.room_lists()

            def human() -> None:
                for r in found:
                    typer.echo(f"{r.address}  {r.name}")

            emit(found, as_json, human)

    run(work)


@app.command("rooms")
def rooms(
    room_list: str | None = typer.Argument(None, help="A room list (default: all rooms)."),
    profile: str | None = PROFILE,
    as_json: bool = JSON,
) -> None:
    """Rooms with capacity and equipment where the directory has them."""

    async def work() -> None:
        async with open_session(profile) as session:
            found = await session.rooms(room_list)

            def human() -> None:
                for r in found:
                    size = f"{r.capacity} Plätze" if r.capacity is not None else "–"
                    typer.echo(f"{r.address}  {r.name}  {size}  {', '.join(r.equipment)}")

            emit(found, as_json, human)

    run(work)


@app.command("free-rooms")
def free_rooms(
    at: str = typer.Argument(..., help="From (2026-12-07T14:00)."),
    minutes: int = MINUTES,
    room_list: str | None = typer.Option(None, "--list", help="Only rooms of this room list."),
    profile: str | None = PROFILE,
    as_json: bool = JSON,
) -> None:
    """Which rooms are free for the whole time from AT on."""
    start = parse_when(at)

    async def work() -> None:
        async with open_session(profile) as session:
            found = await session.room_availability(
                start, start + timedelta(minutes=minutes), room_list
            )

            def human() -> None:
                for r in found:
                    typer.echo(f"{'free' if r.free else 'busy'}  {r.room.address}  {r.room.name}")

            emit(found, as_json, human)

    run(work)


@app.command("daysheet")
def daysheet(
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    day: str = typer.Option("today", "--date", help="The day (2026-12-07, today, tomorrow)."),
    zone: str | None = ZONE,
    html: Path | None = typer.Option(None, "--html", help="Write a printable HTML page here."),
    as_json: bool = JSON,
) -> None:
    """The day's appointments, flagged mail and due tasks (text, JSON or printable HTML)."""
    from bridge.daysheet import render_html, render_text

    when = parse_when(day).date()

    async def work() -> None:
        async with open_session(profile) as session:
            sheet = await session.day_sheet(mailbox or session.user, when, _zone_name(zone))
            if html is not None:
                html.write_text(render_html(sheet), encoding="utf-8")
            emit(sheet, as_json, lambda: typer.echo(render_text(sheet)))

    run(work)
