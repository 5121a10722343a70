"""The review screen warns about recipients before sending, from the server's mail tips:
against the lab over EWS (a colleague out of office, an outside address), and quietly nothing
where the backend gives no tips."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from exlab.core.oof import AutoReply, set_auto_reply
from med import DelegateSession
from tests.e2e.conftest import ASSISTENZ, CHEF, POSTSTELLE, SACHBEARBEITUNG, backend_for
from tests.lab import conftest as lab_fixtures
from tests.lab.conftest import LabServer
from tests.tui.conftest import settle, wait_until
from tui.app import MedApp, make_app
from tui.config import TuiConfig
from tui.screens.compose import ComposeScreen, ReviewScreen
from tui.widgets.mail_tips import MailTipsPanel

demo_template = lab_fixtures.demo_template
lab = lab_fixtures.lab

SIZE = (150, 40)


@pytest.fixture
async def lab_session(lab: LabServer) -> AsyncIterator[DelegateSession]:
    session = DelegateSession(
        backend_for(lab, ASSISTENZ), mailboxes=(CHEF, f"functional:{POSTSTELLE}")
    )
    yield session
    await session.close()


def panel(app: MedApp) -> MailTipsPanel:
    assert isinstance(app.screen, ReviewScreen)
    return app.screen.query_one(MailTipsPanel)


async def review(pilot: object, to: str) -> None:
    await pilot.press("c")  # type: ignore[attr-defined]
    await settle(pilot)
    assert isinstance(pilot.app.screen, ComposeScreen)  # type: ignore[attr-defined]
    await pilot.press(*to, "tab", "tab", *"Haushalt 2027")  # type: ignore[attr-defined]
    await pilot.press("ctrl+s")  # type: ignore[attr-defined]
    await settle(pilot)


async def test_review_warns_of_an_absent_colleague_and_an_outside_address(
    lab: LabServer, lab_session: DelegateSession, tmp_path: Path
) -> None:
    set_auto_reply(
        lab.lab.store,
        SACHBEARBEITUNG,
        AutoReply(state="Enabled", internal_reply="Bis Montag im Urlaub.", external_reply="Away."),
    )
    config = TuiConfig(drafts_dir=tmp_path / "drafts", animations=False, downloads_dir=tmp_path)
    app = make_app(lab_session, config)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await review(pilot, f"{SACHBEARBEITUNG}, buerger@extern.example")
        await wait_until(pilot, lambda: panel(app).warnings is not None)
        shown = panel(app)
        assert shown.has_class("-warning")
        text = str(shown.render())
        assert "Lena Koch" in text and "out of office" in text
        assert "Bis Montag im Urlaub." in text
        assert "buerger@extern.example is outside the organisation." in text
        await pilot.press("n")  # back to editing: nothing was sent
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)


async def test_review_stays_quiet_without_tips(build_app: Callable[..., MedApp]) -> None:
    app = build_app()  # the in-memory org offers no mail tips
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await review(pilot, "wolf@kreis.example")
        await wait_until(pilot, lambda: panel(app).warnings is not None)
        shown = panel(app)
        assert not shown.has_class("-warning") and not str(shown.render()).strip()
        await pilot.press("y")
        await settle(pilot)
        assert not isinstance(app.screen, ReviewScreen)
