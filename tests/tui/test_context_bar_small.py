"""At 80×24 the bar on top still names whose mailbox or calendar it is and your rights in it:
the other parts are shortened, never those two."""

from __future__ import annotations

from collections.abc import Callable

from tests.tui.conftest import settle
from tests.tui.screentext import screen_text
from tui.app import MedApp
from tui.presenter import rights_summary
from tui.screens.calendar import CalendarScreen
from tui.screens.mail import MailScreen

SMALL = (80, 24)


def top_line(app: MedApp) -> str:
    return screen_text(app).splitlines()[0]


async def test_mail_and_calendar_bars_keep_owner_and_rights_at_80_columns(
    build_app: Callable[..., MedApp],
) -> None:
    app = build_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        mail = app.screen
        assert isinstance(mail, MailScreen) and mail.folder is not None
        bar = top_line(app)
        assert "Dr. Anna Berg" in bar
        assert rights_summary(mail.folder.rights) in bar

        await pilot.press("2")
        await settle(pilot)
        calendar = app.screen
        assert isinstance(calendar, CalendarScreen) and calendar.active is not None
        folder = calendar._folder(calendar.active)
        assert folder is not None
        bar = top_line(app)
        assert "Dr. Anna Berg" in bar
        assert f"rights: {rights_summary(folder.rights)}" in bar
