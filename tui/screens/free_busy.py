"""Free/busy finder: who is busy when on one day, and the first slots free for everyone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from med.model import BusyStatus, FreeBusy
from tui.screens.base import medapp_of

if TYPE_CHECKING:
    from tui.app import MedApp

DAY_START, DAY_END, STEP_MIN = 7, 19, 30
_CELL = {
    BusyStatus.BUSY: ("█", "red"),
    BusyStatus.OOF: ("█", "magenta"),
    BusyStatus.TENTATIVE: ("▒", "yellow"),
    BusyStatus.WORKING_ELSEWHERE: ("▒", "cyan"),
}


def free_slots(
    people: list[FreeBusy],
    day_start: datetime,
    day_end: datetime,
    minutes: int,
    not_before: datetime | None = None,
) -> list[datetime]:
    """Starts (on the half hour) where nobody with data is busy or tentative for `minutes`,
    none before `not_before` (now: a time that has passed is no proposal)."""
    out: list[datetime] = []
    length = timedelta(minutes=minutes)
    start = day_start
    while not_before is not None and start < not_before:
        start += timedelta(minutes=STEP_MIN)
    while start + length <= day_end:
        end = start + length
        clash = any(
            slot.start < end and slot.end > start and slot.status is not BusyStatus.FREE
            for person in people
            if person.error is None
            for slot in person.slots
        )
        if not clash:
            out.append(start)
        start += timedelta(minutes=STEP_MIN)
    return out


class FreeBusyScreen(ModalScreen[datetime | None]):
    DEFAULT_CSS = """
    FreeBusyScreen { align: center middle; }
    FreeBusyScreen > Vertical {
        width: 96; height: 90%; border: thick $accent; background: $surface; padding: 1 2;
    }
    FreeBusyScreen Horizontal { height: auto; }
    FreeBusyScreen Horizontal Input { width: 1fr; }
    FreeBusyScreen #fb-grid { height: auto; margin: 1 0; }
    FreeBusyScreen OptionList { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Close")]

    class Answer(Message):
        def __init__(self, people: list[FreeBusy], start: datetime, end: datetime) -> None:
            super().__init__()
            self.people = people
            self.start = start
            self.end = end

    def __init__(self, owner: str, day: date) -> None:
        super().__init__()
        self.owner = owner
        self.day = day

    @property
    def medapp(self) -> MedApp:
        return medapp_of(self)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                "[b]Find a time[/b]  — people (comma separated), day, length in minutes; "
                "Enter asks the server"
            )
            with Horizontal():
                yield Input(self.owner, id="fb-people")
                yield Input(f"{self.day:%Y-%m-%d}", id="fb-day")
                yield Input("60", id="fb-length")
            yield Static(id="fb-grid")
            yield Label("Free for everyone (Enter books it):")
            yield OptionList(id="fb-slots")

    def on_mount(self) -> None:
        self.query_one("#fb-people", Input).focus()
        self._ask()

    @on(Input.Submitted)
    def _ask(self) -> None:
        from tui.dates import parse_day

        people = [
            p.strip() for p in self.query_one("#fb-people", Input).value.split(",") if p.strip()
        ]
        try:
            day = parse_day(self.query_one("#fb-day", Input).value)
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
            return
        tz = self.medapp.now().tzinfo
        start = datetime.combine(day, time(DAY_START), tz)
        end = datetime.combine(day, time(DAY_END), tz)
        if people:
            self.lookup(people, start, end)

    @work(exclusive=True, group="freebusy", exit_on_error=False)
    async def lookup(self, people: list[str], start: datetime, end: datetime) -> None:
        answer = await self.medapp.session.free_busy(people, start, end)
        self.post_message(self.Answer(answer, start, end))

    def on_free_busy_screen_answer(self, message: Answer) -> None:
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True)
        hours = Text()
        for hour in range(DAY_START, DAY_END):
            hours.append(f"{hour:<4d}")
        table.add_row("", hours)
        steps = int((message.end - message.start).total_seconds() // (STEP_MIN * 60))
        for person in message.people:
            row = Text()
            if person.error:
                row.append(person.error, style="dim")
            for i in range(steps if not person.error else 0):
                a = message.start + timedelta(minutes=STEP_MIN * i)
                b = a + timedelta(minutes=STEP_MIN)
                status = next(
                    (s.status for s in person.slots if s.start < b and s.end > a), BusyStatus.FREE
                )
                char, style = _CELL.get(status, ("·", "green"))
                row.append(char * 2, style=style)
            table.add_row(person.address, row)
        self.query_one("#fb-grid", Static).update(table)
        length_text = self.query_one("#fb-length", Input).value.strip()
        minutes = int(length_text) if length_text.isdigit() and int(length_text) > 0 else 60
        slots = free_slots(
            message.people, message.start, message.end, minutes, not_before=self.medapp.now()
        )
        options = self.query_one("#fb-slots", OptionList)
        options.clear_options()
        self._slots = slots
        options.add_options(
            [Option(f"{s:%a %d.%m. %H:%M}", id=str(i)) for i, s in enumerate(slots)]
        )
        if slots:
            options.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self._slots[int(event.option.id or 0)])

    def action_cancel(self) -> None:
        self.dismiss(None)
