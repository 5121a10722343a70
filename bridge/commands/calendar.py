"""`medbridge calendar`: day/week/agenda views over several calendars, edit, respond, iCal."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bridge.commands._common import fail
from bridge.commands._med import (
    JSON,
    MAILBOX,
    PROFILE,
    emit,
    find_folder,
    local_zone,
    open_session,
    parse_when,
    run,
    short,
)

if TYPE_CHECKING:
    from med import DelegateSession, Event, Folder, Item, Recurrence
    from med.model import WeekIndex

app = typer.Typer(help="Calendars: views, appointments, meetings, iCalendar.", no_args_is_help=True)

CALENDARS = typer.Option(
    [], "--calendar", "-c", help="Mailbox whose calendar to overlay (repeatable); 'public:PATH'."
)


async def _calendars(
    session: DelegateSession, mailbox: str | None, extra: list[str]
) -> list[Folder]:
    folders = [await find_folder(session, mailbox, "calendar")]
    for spec in extra:
        if spec.startswith("public:"):
            folders.append(await find_folder(session, "public", spec[7:]))
        else:
            folders.append(await find_folder(session, spec, "calendar"))
    return folders


#: Longest ranges the views, exports and free/busy ask for (Exchange refuses longer ones).
MAX_DAYS = 366
MAX_FREEBUSY_DAYS = 62


def _days(days: int, limit: int = MAX_DAYS) -> timedelta:
    """--days as a timedelta; out of 1..limit ends the command with one line (exit 2)."""
    if not 1 <= days <= limit:
        fail(f"--days must be 1 to {limit}, not {days}", 2)
    return timedelta(days=days)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


async def _same_uid(session: DelegateSession, folder: Folder, event: Event) -> Event | None:
    """The event (or the series' occurrence) in `folder` with the UID of `event`, looked up
    around its start: invitations re-sent or a file imported twice must not duplicate."""
    from med import Event

    if not event.uid:
        return None
    end = max(event.end, event.start + timedelta(minutes=1))
    for found in await session.calendar_view([folder], event.start, end):
        if found.uid == event.uid:
            master = await session.get(found.series_id) if found.series_id else found
            return master if isinstance(master, Event) else found
    return None


def _print_events(events: list[Event], calendars: list[Folder]) -> None:
    names = {c.id: c.mailbox.split("@")[0] for c in calendars}
    day = None
    for ev in events:
        start = ev.start.astimezone(local_zone())
        end = ev.end.astimezone(local_zone())
        if start.date() != day:
            day = start.date()
            typer.echo(f"\n{day:%A %Y-%m-%d}")
        span = "all day    " if ev.is_all_day else f"{start:%H:%M}–{end:%H:%M}"
        who = names.get(ev.folder_id or "", ev.mailbox or "")
        mark = {"occurrence": "↻", "exception": "↻*", "series": "↻"}.get(ev.event_kind.value, "")
        typer.echo(f"  {span}  [{who}] {short(ev.subject, 50)} {mark}  {ev.location}  ({ev.id})")


def _view(
    start: datetime,
    end: datetime,
    profile: str | None,
    mailbox: str | None,
    calendars: list[str],
    as_json: bool,
) -> None:
    async def work() -> None:
        async with open_session(profile) as session:
            folders = await _calendars(session, mailbox, calendars)
            events = await session.calendar_view(folders, start, end)
            emit(
                {"start": start, "end": end, "calendars": folders, "events": events},
                as_json,
                lambda: _print_events(events, folders),
            )

    run(work)


@app.command("day")
def day(
    when: str = typer.Argument("today", help="Day (2026-11-24, today, tomorrow)."),
    calendar: list[str] = CALENDARS,
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    as_json: bool = JSON,
) -> None:
    """One day's events across the chosen calendars."""
    start = parse_when(when)
    _view(start, start + timedelta(days=1), profile, mailbox, calendar, as_json)


@app.command("week")
def week(
    when: str = typer.Argument("today", help="Any day of the week."),
    calendar: list[str] = CALENDARS,
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    as_json: bool = JSON,
) -> None:
    """The week (Monday to Sunday) around a day."""
    first = parse_when(when)
    first -= timedelta(days=first.weekday())
    _view(first, first + timedelta(days=7), profile, mailbox, calendar, as_json)


@app.command("agenda")
def agenda(
    start: str = typer.Option("today", "--from"),
    days: int = typer.Option(7, "--days"),
    calendar: list[str] = CALENDARS,
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    as_json: bool = JSON,
) -> None:
    """Upcoming events for some days."""
    first = parse_when(start)
    _view(first, first + _days(days), profile, mailbox, calendar, as_json)


def _recurrence(
    repeat: str | None, interval: int, count: int | None, until: str | None, start: datetime
) -> Recurrence | None:
    from med import (
        Daily,
        InvalidInput,
        MonthlyByDate,
        MonthlyByWeekday,
        Recurrence,
        RecurrencePattern,
        Weekday,
        Weekly,
        YearlyByDate,
    )

    if repeat is None:
        return None
    weekday = list(Weekday)[start.weekday()]
    weeks: tuple[WeekIndex, ...] = ("first", "second", "third", "fourth", "last")
    pattern: RecurrencePattern
    if repeat == "daily":
        pattern = Daily(interval)
    elif repeat == "weekly":
        pattern = Weekly((weekday,), interval)
    elif repeat == "weekdays":
        pattern = Weekly(tuple(list(Weekday)[:5]), interval)
    elif repeat == "monthly":
        pattern = MonthlyByDate(start.day, interval)
    elif repeat == "monthly-weekday":
        pattern = MonthlyByWeekday(weekday, weeks[min((start.day - 1) // 7, 4)], interval)
    elif repeat == "yearly":
        pattern = YearlyByDate(start.month, start.day)
    else:
        raise InvalidInput(
            "--repeat is one of daily, weekly, weekdays, monthly, monthly-weekday, yearly."
        )
    end = parse_when(until).date() if until else None
    return Recurrence(pattern, start.date(), end=end, count=count)


@app.command("create")
def create(
    subject: str = typer.Option(..., "--subject"),
    start: str = typer.Option(..., "--start", help="2026-11-24T14:00 (local time) or a date."),
    end: str | None = typer.Option(None, "--end", help="Default: one hour after the start."),
    location: str = typer.Option("", "--location"),
    body: str = typer.Option("", "--body"),
    attendee: list[str] = typer.Option([], "--attendee", help="Required attendee (repeatable)."),
    optional: list[str] = typer.Option([], "--optional", help="Optional attendee."),
    all_day: bool = typer.Option(False, "--all-day"),
    private: bool = typer.Option(False, "--private"),
    repeat: str | None = typer.Option(
        None, "--repeat", help="daily, weekly, weekdays, monthly, monthly-weekday, yearly."
    ),
    interval: int = typer.Option(1, "--interval"),
    count: int | None = typer.Option(None, "--count", help="End after this many."),
    until: str | None = typer.Option(None, "--until", help="End on this date."),
    reminder: int | None = typer.Option(None, "--reminder", help="Minutes before."),
    calendar: str = typer.Option("calendar", "--folder", help="Calendar folder (name/path/id)."),
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    as_json: bool = JSON,
) -> None:
    """Create an appointment, a meeting (with attendees) or a recurring series."""
    from med import Address, Attendee, AttendeeKind, Event, Sensitivity

    first = parse_when(start)
    last = parse_when(end, end_of_day=all_day and len(end) <= 10) if end else None
    if last is None:
        last = first + (timedelta(days=1) if all_day else timedelta(hours=1))
    attendees = tuple(
        [Attendee(Address(a)) for a in attendee]
        + [Attendee(Address(a), AttendeeKind.OPTIONAL) for a in optional]
    )

    async def work() -> None:
        event = Event(
            subject=subject,
            body=body or None,
            start=first,
            end=last,
            is_all_day=all_day,
            location=location,
            attendees=attendees,
            is_meeting=bool(attendees),
            sensitivity=Sensitivity.PRIVATE if private else Sensitivity.NORMAL,
            recurrence=_recurrence(repeat, interval, count, until, first),
            reminder_minutes=reminder,
            timezone=getattr(local_zone(), "key", None),
        )
        async with open_session(profile) as session:
            folder = await find_folder(session, mailbox, calendar, default="calendar")
            created = await session.create(folder, event)
            emit(created, as_json, lambda: typer.echo(created.id))

    run(work)


@app.command("update")
def update(
    item_id: str,
    subject: str | None = typer.Option(None, "--subject"),
    start: str | None = typer.Option(None, "--start"),
    end: str | None = typer.Option(None, "--end"),
    location: str | None = typer.Option(None, "--location"),
    body: str | None = typer.Option(None, "--body"),
    series: bool = typer.Option(False, "--series", help="Change the whole series."),
    profile: str | None = PROFILE,
    as_json: bool = JSON,
) -> None:
    """Change an appointment, one occurrence, or (with --series) the whole series."""
    from med import Event, InvalidInput

    async def work() -> None:
        async with open_session(profile) as session:
            item = await session.get(item_id)
            if not isinstance(item, Event):
                raise InvalidInput("This item is no calendar event.")
            changes: dict[str, object] = {}
            if subject is not None:
                changes["subject"] = subject
            if location is not None:
                changes["location"] = location
            if body is not None:
                changes["body"] = body
            if start is not None:
                new_start = parse_when(start)
                changes["start"] = new_start
                changes["end"] = new_start + (item.end - item.start)
            if end is not None:
                changes["end"] = parse_when(end)
            if not changes:
                raise InvalidInput("Nothing to change: give --subject, --start, --end ...")
            updated = await session.update(
                dataclasses.replace(item, **changes),  # type: ignore[arg-type]
                list(changes),
                series=series,
            )
            emit(updated, as_json, lambda: typer.echo(f"updated {updated.id}"))

    run(work)


@app.command("delete")
def delete(
    item_id: str,
    series: bool = typer.Option(False, "--series", help="Delete the whole series."),
    profile: str | None = PROFILE,
) -> None:
    """Delete an appointment, one occurrence, or (with --series) the whole series."""

    async def work() -> None:
        async with open_session(profile) as session:
            item = await session.get(item_id)
            await session.delete(item, series=series)
            typer.echo("deleted")

    run(work)


@app.command("respond")
def respond(
    item_id: str,
    answer: str = typer.Argument(..., help="accept, tentative or decline"),
    message: str | None = typer.Option(None, "--message", help="Text to the organizer."),
    no_send: bool = typer.Option(False, "--no-send", help="Answer without notifying."),
    propose: tuple[str, str] | None = typer.Option(
        None,
        "--propose",
        metavar="START END",
        help="Propose a new time (tentative or decline): 2026-11-24T14:00 2026-11-24T15:00.",
    ),
    profile: str | None = PROFILE,
) -> None:
    """Answer a meeting request (on behalf of the mailbox it is in)."""
    from med import InvalidInput, ResponseType

    answers = {
        "accept": ResponseType.ACCEPT,
        "tentative": ResponseType.TENTATIVE,
        "decline": ResponseType.DECLINE,
    }

    async def work() -> None:
        if answer.lower() not in answers:
            raise InvalidInput("Answer with accept, tentative or decline.")
        proposal = (parse_when(propose[0]), parse_when(propose[1])) if propose else None
        async with open_session(profile) as session:
            await session.respond(
                item_id, answers[answer.lower()], message, send=not no_send, proposal=proposal
            )
            done = {"accept": "accepted", "tentative": "tentative", "decline": "declined"}[
                answer.lower()
            ]
            if proposal:
                done += f", proposed {proposal[0]:%Y-%m-%d %H:%M} to {proposal[1]:%Y-%m-%d %H:%M}"
            typer.echo(done)

    run(work)


@app.command("freebusy")
def freebusy(
    people: list[str] = typer.Argument(..., help="Addresses."),
    start: str = typer.Option("today", "--from"),
    days: int = typer.Option(1, "--days"),
    profile: str | None = PROFILE,
    as_json: bool = JSON,
) -> None:
    """When several people are busy."""

    span = _days(days, MAX_FREEBUSY_DAYS)

    async def work() -> None:
        first = parse_when(start)
        async with open_session(profile) as session:
            result = await session.free_busy(people, first, first + span)

            def human() -> None:
                for fb in result:
                    typer.echo(fb.address + (f"  ({fb.error})" if fb.error else ""))
                    for slot in fb.slots:
                        s = slot.start.astimezone(local_zone())
                        e = slot.end.astimezone(local_zone())
                        detail = f"  {slot.subject}" if slot.subject else ""
                        typer.echo(f"  {s:%Y-%m-%d %H:%M}–{e:%H:%M}  {slot.status.value}{detail}")

            emit(result, as_json, human)
            unknown = [fb.address for fb in result if fb.error]
            if unknown:
                fail(f"no free/busy for {', '.join(unknown)}", 5)

    run(work)


async def _whole_series(session: DelegateSession, events: list[Event]) -> list[Event]:
    """Single events as they are; each series once, as its master and its exceptions, in
    place of the occurrences a view returned (iCalendar wants one UID per series)."""
    from med import EventKind

    out: list[Event] = []
    seen: set[str] = set()
    for event in events:
        if event.event_kind is EventKind.SINGLE:
            out.append(event)
            continue
        series = await session.series(event.id)
        if series[0].id not in seen:
            seen.add(series[0].id)
            out.extend(series)
    return out


@app.command("export")
def export(
    target: Path = typer.Argument(..., help=".ics file to write ('-' for stdout)."),
    item_id: str | None = typer.Option(
        None, "--id", help="Export this one event (an occurrence exports its whole series)."
    ),
    start: str = typer.Option("today", "--from"),
    days: int = typer.Option(30, "--days"),
    calendar: list[str] = CALENDARS,
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
) -> None:
    """Export one event or a date range of calendars to iCalendar.

    A series is written once, with its rule, deleted occurrences (EXDATE) and modified
    occurrences (RECURRENCE-ID), even where only some of it falls into the range.
    """
    import sys

    from med import Event, InvalidInput
    from med.ical import events_to_ical

    span = _days(days)

    async def work() -> None:
        async with open_session(profile) as session:
            if item_id:
                item = await session.get(item_id)
                if not isinstance(item, Event):
                    raise InvalidInput("This item is no calendar event.")
                events = [item]
            else:
                first = parse_when(start)
                folders = await _calendars(session, mailbox, calendar)
                events = await session.calendar_view(folders, first, first + span)
            events = await _whole_series(session, events)
        data = events_to_ical(events)
        series = sum(1 for e in events if e.recurrence is not None)
        if str(target) == "-":
            sys.stdout.buffer.write(data)
        else:
            target.write_bytes(data)
            singles = sum(1 for e in events if e.recurrence is None and e.original_start is None)
            typer.echo(
                f"{_count(singles, 'event')} and {_count(series, 'series', 'series')}"
                f" written to {target}"
            )

    run(work)


async def _apply_exceptions(
    session: DelegateSession,
    folder: Folder,
    master: Event,
    deleted: tuple[datetime, ...],
    overrides: list[Event],
) -> tuple[int, int]:
    """Delete and change the occurrences of a series just created, as the file says.

    Returns how many dates of the file matched no occurrence (deleted, changed).
    """
    from med import Event

    wanted = [*deleted, *(o.original_start for o in overrides if o.original_start)]
    if not wanted:
        return 0, 0
    span = master.end - master.start
    view = await session.calendar_view(
        [folder], min(wanted) - timedelta(minutes=1), max(wanted) + span + timedelta(minutes=1)
    )
    by_start = {e.start: e for e in view if e.series_id == master.id}
    missed_deleted = missed_changed = 0
    for moment in deleted:
        occurrence = by_start.get(moment)
        if occurrence is None:
            missed_deleted += 1
            continue
        await session.delete(occurrence, send_cancellations=False)
    fields = ("subject", "body", "location", "start", "end", "is_all_day", "sensitivity")
    for override in overrides:
        occurrence = by_start.get(override.original_start)  # type: ignore[arg-type]
        if not isinstance(occurrence, Event):
            missed_changed += 1
            continue
        changed = dataclasses.replace(occurrence, **{f: getattr(override, f) for f in fields})
        await session.update(changed, list(fields), send_updates=False)
    return missed_deleted, missed_changed


@app.command("import")
def import_ics(
    source: Path = typer.Argument(..., help=".ics file."),
    calendar: str = typer.Option("calendar", "--folder", help="Calendar folder (name/path/id)."),
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    as_json: bool = JSON,
) -> None:
    """Import the events of an .ics file into a calendar you may write to.

    A series comes with its deleted (EXDATE) and modified (RECURRENCE-ID) occurrences.
    """
    from med import Event, EventKind, InvalidInput
    from med.ical import ical_to_events

    async def work() -> None:
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise InvalidInput(f"Cannot read {source}: {exc.strerror}.") from exc
        result = ical_to_events(data, default_zone=getattr(local_zone(), "key", None) or "UTC")
        async with open_session(profile) as session:
            folder = await find_folder(session, mailbox, calendar, default="calendar")
            created: list[Item] = []
            updated: list[Item] = []
            kept: list[Event] = []
            missed = [0, 0]
            for event in result.events:
                same = await _same_uid(session, folder, event)
                if same is None:
                    made = await session.create(folder, event, send_invitations=False)
                    created.append(made)
                    if isinstance(made, Event) and made.event_kind is EventKind.SERIES:
                        gaps = await _apply_exceptions(
                            session,
                            folder,
                            made,
                            event.deleted_occurrences,
                            result.overrides_of(event),
                        )
                        missed = [missed[0] + gaps[0], missed[1] + gaps[1]]
                elif same.event_kind is EventKind.SINGLE and event.recurrence is None:
                    fields = ("subject", "body", "location", "start", "end", "is_all_day")
                    changed = dataclasses.replace(same, **{f: getattr(event, f) for f in fields})
                    updated.append(await session.update(changed, list(fields), send_updates=False))
                else:
                    kept.append(same)

            def human() -> None:
                where = f"{folder.name} ({folder.mailbox})"
                typer.echo(f"{_count(len(created), 'event')} imported into {where}")
                if updated:
                    typer.echo(f"{_count(len(updated), 'event')} already there, updated (same UID)")
                if kept:
                    typer.echo(f"{_count(len(kept), 'series', 'series')} already there, skipped")
                if missed[0] or missed[1]:
                    typer.echo(
                        f"note: {_count(missed[0], 'excluded date')} and"
                        f" {_count(missed[1], 'changed occurrence')} matched no occurrence"
                    )

            emit(
                {
                    "created": created,
                    "updated": updated,
                    "skipped": kept,
                    "unmatched_exdates": missed[0],
                    "unmatched_overrides": missed[1],
                },
                as_json,
                human,
            )

    run(work)
