"""Scheduling assistant: a meeting the calendar's owner (the boss) organises — attendees and
rooms side by side as a grid over the day, the free slots below; Enter books the chosen slot
with its first free room and sends the invitations on the organiser's behalf."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from med import BusyStatus, Event, MedError, MeetingSearch, MeetingTimes, SlotSuggestion
from tui.screens.base import medapp_of

if TYPE_CHECKING:
    from tui.app import MedApp

DAY_START, DAY_END = 7, 19
STEP = timedelta(minutes=30)
_CELL = {
    BusyStatus.FREE: ("·", "green"),
    BusyStatus.BUSY: ("█", "red"),
    BusyStatus.OOF: ("█", "magenta"),
    BusyStatus.TENTATIVE: ("▒", "yellow"),
    BusyStatus.NO_DATA: ("?", "dim"),
}


def grid(found: MeetingTimes, start: datetime, end: datetime) -> Table:
    """Attendees and rooms × half hours; outside someone's working hours is shown dim."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    hours = Text()
    for hour in range(start.hour, end.hour):
        hours.append(f"{hour:<4d}")
    table.add_row("", hours)
    steps = int((end - start) / STEP)
    for person in found.availability:
        row = Text()
        if person.error:
            row.append(person.error, style="dim")
        for i in range(0 if person.error else steps):
            a = start + STEP * i
            b = a + STEP
            char, style = _CELL.get(person.status(a, b), ("▒", "cyan"))
            hours_known = person.working_hours
            if hours_known is not None and not hours_known.contains(a, b):
                style = f"{style} dim"
            row.append(char * 2, style=style)
        table.add_row(person.address, row)
    return table


class SchedulingScreen(ModalScreen[Event | None]):
    DEFAULT_CSS = """
    SchedulingScreen { align: center middle; }
    SchedulingScreen > Vertical {
        width: 110; height: 95%; border: thick $accent; background: $surface; padding: 1 2;
    }
    SchedulingScreen Horizontal { height: auto; }
    SchedulingScreen Horizontal Input { width: 1fr; }
    SchedulingScreen #sa-grid { height: auto; margin: 1 0; }
    SchedulingScreen OptionList { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Close")]

    def __init__(self, organizer: str, day: date, attendees: str = "", rooms: str = "") -> None:
        super().__init__()
        self.organizer = organizer
        self.day = day
        self.attendees = attendees
        self.rooms = rooms
        self.found: MeetingTimes | None = None
        self.table: Table | None = None
        self.shown: list[SlotSuggestion] = []

    @property
    def medapp(self) -> MedApp:
        return medapp_of(self)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                f"[b]Scheduling assistant[/b] — a meeting of {self.organizer}; Enter in a field"
                " searches, Enter on a slot books it"
            )
            with Horizontal():
                yield Input(
                    self.attendees, placeholder="attendees, comma separated", id="sa-people"
                )
                yield Input(self.rooms, placeholder="rooms", id="sa-rooms")
            with Horizontal():
                yield Input(f"{self.day:%Y-%m-%d}", id="sa-day")
                yield Input("60", placeholder="minutes", id="sa-length")
                yield Input("", placeholder="preferred, e.g. 09:00-12:00", id="sa-prefer")
                yield Input("Besprechung", placeholder="subject", id="sa-subject")
            yield Static(id="sa-grid")
            yield Label("Free slots (Enter books with the first free room):", id="sa-label")
            yield OptionList(id="sa-slots")

    def on_mount(self) -> None:
        self.query_one("#sa-people", Input).focus()
        if not self.rooms:
            self.fill_rooms()
        else:
            self._ask()

    @work(exclusive=True, group="scheduling-rooms", exit_on_error=False)
    async def fill_rooms(self) -> None:
        try:
            rooms = await self.medapp.session.rooms()
        except MedError:
            rooms = []
        self.query_one("#sa-rooms", Input).value = ", ".join(r.address for r in rooms)
        self._ask()

    def _value(self, name: str) -> str:
        return self.query_one(f"#sa-{name}", Input).value.strip()

    @on(Input.Submitted)
    def _ask(self) -> None:
        from tui.dates import parse_day

        try:
            day = parse_day(self._value("day"))
            minutes = int(self._value("length") or "60")
            preferred = []
            if self._value("prefer"):
                first, _, last = self._value("prefer").partition("-")
                preferred.append(
                    (time.fromisoformat(first.strip()), time.fromisoformat(last.strip()))
                )
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
            return
        now = self.medapp.now()
        tz = now.tzinfo
        zone_name = str(getattr(tz, "key", "UTC"))
        search = MeetingSearch(
            organizer=self.organizer,
            attendees=tuple(a.strip() for a in self._value("people").split(",") if a.strip()),
            rooms=tuple(r.strip() for r in self._value("rooms").split(",") if r.strip()),
            start=datetime.combine(day, time(DAY_START), tz),
            end=datetime.combine(day, time(DAY_END), tz),
            duration=timedelta(minutes=minutes),
            preferred=tuple(preferred),
            time_zone=zone_name,
        )
        self.search(search)

    @work(exclusive=True, group="scheduling", exit_on_error=False)
    async def search(self, search: MeetingSearch) -> None:
        try:
            found = await self.medapp.session.find_meeting_times(search)
        except MedError as exc:
            self.notify(str(exc), title=exc.title, severity="error")
            return
        self.table = grid(found, search.start, search.end)
        self.query_one("#sa-grid", Static).update(self.table)
        self.found = found
        # A time that has passed is no proposal.
        now = self.medapp.now()
        self.shown = [s for s in found.suggestions if s.start >= now]
        options = self.query_one("#sa-slots", OptionList)
        options.clear_options()
        tz = search.start.tzinfo
        options.add_options(
            [
                Option(
                    f"{s.start.astimezone(tz):%a %d.%m. %H:%M}–{s.end.astimezone(tz):%H:%M}  "
                    f"{', '.join(s.rooms) or 'no room free'}",
                    id=str(i),
                )
                for i, s in enumerate(self.shown)
            ]
        )
        if self.shown:
            options.highlighted = 0
        else:
            self.query_one("#sa-label", Label).update(
                f"No free slot ({found.empty_reason or 'unknown'})."
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if self.found is not None:
            self.book(int(event.option.id or 0))

    @work(exclusive=True, group="scheduling-book", exit_on_error=False)
    async def book(self, index: int) -> None:
        assert self.found is not None
        slot = self.shown[index]
        try:
            event = await self.medapp.session.book_meeting(
                self.found.search,
                slot,
                subject=self._value("subject") or "Besprechung",
                room=slot.rooms[0] if slot.rooms else None,
            )
        except MedError as exc:
            self.notify(str(exc), title=exc.title, severity="error")
            return
        self.notify(f"Booked {event.subject!r}; invitations sent.")
        self.dismiss(event)

    def action_cancel(self) -> None:
        self.dismiss(None)
