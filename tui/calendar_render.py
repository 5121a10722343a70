"""Day, week and agenda views of overlaid calendars as Rich renderables (no widgets, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from med.model import Event, ResponseType

#: Distinct colours for overlaid calendars, in the order calendars are switched on.
PALETTE = ("dodger_blue1", "orange1", "green3", "magenta", "gold1", "cyan", "red1", "purple")
WEEKDAY_ABBR = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")


@dataclass(frozen=True)
class Shown:
    """One event in the view with the calendar it comes from."""

    event: Event
    calendar: str  # display name of the calendar (owner)
    colour: str


def range_for(view: str, day: date) -> tuple[date, date]:
    """First day and the day after the last day a view covers."""
    if view == "day":
        return day, day + timedelta(days=1)
    if view == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    return day, day + timedelta(days=14)


def _marker(event: Event) -> str:
    if event.my_response is ResponseType.NO_RESPONSE and event.is_meeting:
        return "?"
    if event.recurrence is not None or event.series_id:
        return "↻"
    return " "


def _line(shown: Shown, selected: bool, tz: object, *, with_calendar: bool = True) -> Text:
    e = shown.event
    start = e.start.astimezone(tz)  # type: ignore[arg-type]
    end = e.end.astimezone(tz)  # type: ignore[arg-type]
    when = "all day    " if e.is_all_day else f"{start:%H:%M}–{end:%H:%M}"
    text = Text()
    text.append("■ ", style=shown.colour)
    text.append(f"{when} {_marker(e)} ")
    text.append(e.subject or "(no subject)", style="bold" if e.is_meeting else "")
    if e.location:
        text.append(f"  @ {e.location}", style="dim")
    if with_calendar:
        text.append(f"  [{shown.calendar}]", style=shown.colour)
    if e.is_cancelled:
        text.stylize("strike")
    if selected:
        text.stylize("reverse")
    return text


def _on_day(shown: Sequence[Shown], day: date, tz: object) -> list[tuple[int, Shown]]:
    out = []
    for index, s in enumerate(shown):
        first = s.event.start.astimezone(tz).date()  # type: ignore[arg-type]
        last = (s.event.end - timedelta(seconds=1)).astimezone(tz).date()  # type: ignore[arg-type]
        if first <= day <= max(first, last):
            out.append((index, s))
    return out


def day_view(
    shown: Sequence[Shown], day: date, selected: int | None, now: datetime
) -> RenderableType:
    tz = now.tzinfo
    rows: list[RenderableType] = [
        Text(f"{WEEKDAY_ABBR[day.weekday()]} {day:%d.%m.%Y}", style="bold underline")
    ]
    todays = _on_day(shown, day, tz)
    by_hour: dict[int, list[tuple[int, Shown]]] = {}
    for index, s in todays:
        hour = -1 if s.event.is_all_day else s.event.start.astimezone(tz).hour
        by_hour.setdefault(hour, []).append((index, s))
    for index, s in by_hour.pop(-1, []):
        rows.append(Text("      ").append(_line(s, index == selected, tz)))
    hours = sorted(set(range(7, 20)) | set(by_hour))
    for hour in hours:
        label = Text(f"{hour:02d}:00 ", style="dim")
        if now.date() == day and now.hour == hour:
            label.stylize("bold red")
        entries = by_hour.get(hour, [])
        if not entries:
            rows.append(label.append("│"))
        for n, (index, s) in enumerate(entries):
            prefix = label if n == 0 else Text("      ")
            rows.append(prefix.copy().append("│ ").append(_line(s, index == selected, tz)))
    return Group(*rows)


def week_view(
    shown: Sequence[Shown], day: date, selected: int | None, now: datetime
) -> RenderableType:
    tz = now.tzinfo
    first, _ = range_for("week", day)
    table = Table(expand=True, show_lines=False, padding=(0, 1), header_style="bold")
    days = [first + timedelta(days=i) for i in range(7)]
    for d in days:
        style = "bold reverse" if d == day else ("bold red" if d == now.date() else "bold")
        table.add_column(
            Text(f"{WEEKDAY_ABBR[d.weekday()]} {d:%d.%m.}", style=style, no_wrap=True),
            ratio=1,
            overflow="fold",
        )
    cells: list[Text] = []
    for d in days:
        cell = Text()
        for n, (index, s) in enumerate(_on_day(shown, d, tz)):
            if n:
                cell.append("\n")
            e = s.event
            when = "ganztg." if e.is_all_day else f"{e.start.astimezone(tz):%H:%M}"
            piece = Text("■", style=s.colour).append(f"{when}\n{e.subject}")
            if index == selected:
                piece.stylize("reverse")
            cell.append_text(piece)
        cells.append(cell)
    table.add_row(*cells)
    return table


def agenda_view(
    shown: Sequence[Shown], day: date, selected: int | None, now: datetime
) -> RenderableType:
    tz = now.tzinfo
    first, after = range_for("agenda", day)
    rows: list[RenderableType] = []
    d = first
    while d < after:
        todays = _on_day(shown, d, tz)
        if todays:
            style = "bold red" if d == now.date() else "bold"
            rows.append(Text(f"{WEEKDAY_ABBR[d.weekday()]} {d:%d.%m.%Y}", style=style))
            for index, s in todays:
                rows.append(Text("  ").append(_line(s, index == selected, tz)))
        d += timedelta(days=1)
    if not rows:
        rows.append(Text("No appointments in the next 14 days.", style="dim"))
    return Group(*rows)


def render(
    view: str, shown: Sequence[Shown], day: date, selected: int | None, now: datetime
) -> RenderableType:
    return {"day": day_view, "week": week_view}.get(view, agenda_view)(shown, day, selected, now)
