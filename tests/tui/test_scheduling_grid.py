"""The scheduling assistant against the lab over EWS: attendees and rooms as a grid over the
day, the free slots below, and booking one with its room on the boss's behalf."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from textual.widgets import OptionList

from exlab.demo import SITZUNGSSAAL
from med import DelegateSession
from tests.e2e.backends.test_scheduling import BERLIN, DAY, at, busy
from tests.e2e.conftest import CHEF, SACHBEARBEITUNG
from tests.lab import conftest as lab_fixtures
from tests.lab.conftest import LabServer
from tests.tui.conftest import settle, wait_until
from tests.tui.test_lab_flows import lab_app, lab_session
from tui.app import MedApp
from tui.screens.calendar import CalendarScreen
from tui.screens.scheduling import SchedulingScreen

demo_template = lab_fixtures.demo_template
lab = lab_fixtures.lab
__all__ = ["lab_app", "lab_session"]  # fixtures, used by name

SIZE = (150, 45)


def _day(lab: LabServer) -> None:
    busy(lab.lab, CHEF, at(8), at(10), "Haushaltsklausur")
    busy(lab.lab, SACHBEARBEITUNG, at(10), at(11), "Bürgersprechstunde")
    busy(lab.lab, SITZUNGSSAAL, at(11), at(12), "Ausschuss Soziales")


def _grid_text(screen: SchedulingScreen) -> str:
    from rich.console import Console

    console = Console(width=140, record=True)
    console.print(screen.table)
    return console.export_text()


async def test_grid_shows_everyone_and_booking_takes_the_room(
    lab: LabServer, lab_app: Callable[..., MedApp], lab_session: DelegateSession
) -> None:
    _day(lab)
    app = lab_app(clock=lambda: datetime.now(BERLIN))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        assert isinstance(app.screen, CalendarScreen)
        await pilot.press("S")  # the key opens the assistant for the calendar shown
        await settle(pilot)
        assert isinstance(app.screen, SchedulingScreen)
        await pilot.press("escape")
        await settle(pilot)

        app.push_screen(SchedulingScreen(CHEF, DAY, SACHBEARBEITUNG, SITZUNGSSAAL))
        screen = app.screen
        assert isinstance(screen, SchedulingScreen)
        await wait_until(pilot, lambda: screen.found is not None)
        grid = _grid_text(screen)
        rows = {line.split()[0]: line for line in grid.splitlines()[1:] if line.strip()}
        assert set(rows) == {CHEF, SACHBEARBEITUNG, SITZUNGSSAAL}
        # Half hours from 07:00: the boss is busy 08–10 (cells 2–5), the room 11–12 (8–9).
        cells = {who: line.split(maxsplit=1)[1].replace(" ", "") for who, line in rows.items()}
        assert cells[CHEF][4:12] == "█" * 8 and cells[CHEF][12:14] == "··"
        assert cells[SITZUNGSSAAL][16:20] == "█" * 4
        options = screen.query_one("#sa-slots", OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert labels[0].startswith(f"{at(11):%a %d.%m.} 11:00–12:00  no room free")
        noon = next(i for i, text in enumerate(labels) if "12:00–13:00" in text)
        assert labels[noon].endswith(SITZUNGSSAAL)

        options.focus()
        options.highlighted = noon
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, SchedulingScreen))

    calendar = await lab_session.default_folder(CHEF, "calendar")
    [booked] = [
        e
        for e in await lab_session.calendar_view([calendar], at(12), at(13))
        if e.subject == "Besprechung"
    ]
    assert booked.start == at(12) and booked.location == "Sitzungssaal 1"
    [room] = await lab_session.availability([SITZUNGSSAAL], at(12), at(13))
    assert room.status(at(12), at(13)).value == "busy"
