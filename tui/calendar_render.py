"""Day, week and agenda views of overlaid calendars as Rich renderables (no widgets, no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
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


#: One grid row per half hour; the grid spans at least these hours.
SLOT_MINUTES = 30
DAY_HOURS = (7, 20)
_LABEL = 6


@dataclass(frozen=True)
class _Block:
    index: int
    shown: Shown
    first: int  # first slot (row) of the grid it covers
    last: int  # last slot, inclusive
    lane: int
    lanes: int  # lanes of its cluster of overlapping events


def _slot(moment: datetime, day: date, tz: object, *, end: bool = False) -> int:
    local = moment.astimezone(tz)  # type: ignore[arg-type]
    if local.date() < day:
        return 0
    if local.date() > day:
        return 24 * 60 // SLOT_MINUTES
    minutes = local.hour * 60 + local.minute
    return -(-minutes // SLOT_MINUTES) if end else minutes // SLOT_MINUTES


def _lay_out(timed: list[tuple[int, Shown]], day: date, tz: object) -> list[_Block]:
    """Lanes for overlapping events: each cluster of overlaps is split side by side."""
    spans = sorted(
        (
            (_slot(s.event.start, day, tz), _slot(s.event.end, day, tz, end=True), index, s)
            for index, s in timed
        ),
        key=lambda t: (t[0], -t[1]),
    )
    blocks: list[_Block] = []
    cluster: list[tuple[int, int, int, Shown, int]] = []  # first, after, index, shown, lane
    lane_ends: list[int] = []
    cluster_end = -1

    def close() -> None:
        for first, after, index, shown, lane in cluster:
            blocks.append(
                _Block(index, shown, first, max(after, first + 1) - 1, lane, len(lane_ends))
            )

    for first, after, index, shown in spans:
        after = max(after, first + 1)
        if cluster and first >= cluster_end:
            close()
            cluster, lane_ends = [], []
        lane = next((n for n, e in enumerate(lane_ends) if e <= first), len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(after)
        else:
            lane_ends[lane] = after
        cluster.append((first, after, index, shown, lane))
        cluster_end = max(cluster_end, after) if len(cluster) > 1 else after
    if cluster:
        close()
    return blocks


def _cut(text: str, width: int) -> str:
    """`text` in `width` cells, an ellipsis where it is cut (never broken into a next line)."""
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: width - 1] + "…"


class TimeGrid:
    """Days as a time grid: hours down the side, one column per day, appointments as coloured
    blocks (overlapping ones side by side in their day), and a red line at the current time.
    Drawn to the width it is given; the day view is a grid of one day, the week one of seven.
    """

    def __init__(
        self,
        shown: Sequence[Shown],
        days: Sequence[date],
        selected: int | None,
        now: datetime,
        focus: date,
    ) -> None:
        self.shown, self.days, self.selected, self.now, self.focus = (
            shown,
            list(days),
            selected,
            now,
            focus,
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        tz = self.now.tzinfo
        today = self.now.astimezone(tz).date()
        single = len(self.days) == 1
        width = max(options.max_width, _LABEL + 10)
        area = width - _LABEL - 1
        col = area if single else max(area // len(self.days) - 1, 3)
        if single:
            day = self.days[0]
            style = "bold underline red" if day == today else "bold underline"
            yield Text(f"{WEEKDAY_ABBR[day.weekday()]} {day:%d.%m.%Y}", style=style)
        else:
            head = Text(" " * (_LABEL + 1))
            for n, day in enumerate(self.days):
                style = (
                    "bold reverse"
                    if day == self.focus
                    else ("bold red" if day == today else "bold")
                )
                label = f"{WEEKDAY_ABBR[day.weekday()]} {day:%d.%m}"
                if col < len(label):  # narrow: "Mo30", the month is in the context bar
                    label = f"{WEEKDAY_ABBR[day.weekday()]}{day:%d}"
                head.append("│" if n else "", style="dim").append(
                    _cut(label, col).ljust(col), style
                )
            yield head
        per_day = [_on_day(self.shown, day, tz) for day in self.days]
        all_day = [[(i, s) for i, s in todays if s.event.is_all_day] for todays in per_day]
        for row in range(max((len(a) for a in all_day), default=0)):
            line = Text(" " * (_LABEL + 1))
            for n, events in enumerate(all_day):
                if n:
                    line.append("│", style="dim")
                if row < len(events):
                    index, s = events[row]
                    piece = Text(_cut(f"■ {s.event.subject or '(no subject)'}", col).ljust(col))
                    piece.stylize(s.colour, 0, 1)
                    if index == self.selected:
                        piece.stylize("reverse")
                    line.append_text(piece)
                else:
                    line.append(" " * col)
            yield line
        blocks = [
            _lay_out([(i, s) for i, s in todays if not s.event.is_all_day], day, tz)
            for day, todays in zip(self.days, per_day, strict=True)
        ]
        per_hour = 60 // SLOT_MINUTES
        every = [b for day_blocks in blocks for b in day_blocks]
        first = min([DAY_HOURS[0] * per_hour, *(b.first for b in every)])
        last = max([DAY_HOURS[1] * per_hour - 1, *(b.last for b in every)])
        now_slot = _slot(self.now, today, tz) if today in self.days else None
        for slot in range(first, last + 1):
            if slot == now_slot:
                line = Text(f"{self.now.astimezone(tz):%H:%M} ", style="bold red")
            elif slot % per_hour == 0:
                line = Text(f"{slot // per_hour:02d}:00 ", style="dim")
            else:
                line = Text(" " * _LABEL)
            line.append("┼" if slot % per_hour == 0 else "│", style="dim")
            for n, (day, day_blocks) in enumerate(zip(self.days, blocks, strict=True)):
                if n:
                    line.append("│", style="dim")
                line.append_text(
                    self._row(day_blocks, slot, col, tz, slot == now_slot and day == today)
                )
            yield line

    def _row(self, blocks: list[_Block], slot: int, area: int, tz: object, now_line: bool) -> Text:
        per_hour = 60 // SLOT_MINUTES
        if now_line:
            row = Text("━" * area, style="red")
        elif slot % per_hour == 0:
            row = Text("┈" * area, style="grey30")
        else:
            row = Text(" " * area)
        for b in blocks:
            if not b.first <= slot <= b.last:
                continue
            lane_width = area // b.lanes
            x = b.lane * lane_width
            w = area - x if b.lane == b.lanes - 1 else max(lane_width - 1, 1)
            content = _cut(self._block_text(b, slot - b.first, tz, w), w).ljust(w)
            style = f"black on {b.shown.colour}"
            if b.index == self.selected:
                style = f"bold {b.shown.colour} on grey11 reverse"
            row = row[:x] + Text(content, style=style) + row[x + w :]
        return row

    def _block_text(self, block: _Block, row: int, tz: object, width: int) -> str:
        e = block.shown.event
        start = e.start.astimezone(tz)  # type: ignore[arg-type]
        end = e.end.astimezone(tz)  # type: ignore[arg-type]
        subject = f"{_marker(e).strip()}{e.subject or '(no subject)'}"
        narrow = width < 20  # a week column: the time, then the subject below it
        if row == 0:
            if narrow and block.last > block.first:
                return f"{start:%H:%M}"
            return f"{start:%H:%M}{'' if narrow else f'–{end:%H:%M}'} {subject}"
        if row == 1:
            if narrow:
                return subject
            return " ".join(
                p for p in (e.location and f"@ {e.location}", block.shown.calendar) if p
            )
        if row == 2 and narrow:
            return e.location
        return ""


def day_view(
    shown: Sequence[Shown], day: date, selected: int | None, now: datetime
) -> RenderableType:
    return TimeGrid(shown, [day], selected, now, day)


def week_view(
    shown: Sequence[Shown], day: date, selected: int | None, now: datetime
) -> RenderableType:
    """Seven day columns on one time grid; subjects are cut with an ellipsis at the column's
    width instead of being broken inside words."""
    first, _ = range_for("week", day)
    return TimeGrid(shown, [first + timedelta(days=i) for i in range(7)], selected, now, day)


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
