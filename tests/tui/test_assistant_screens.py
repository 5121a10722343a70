"""Out of office and rules (`O`) and the search over all mailboxes (`S`) against the lab over
EWS, checked by asking the lab's store afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from textual.widgets import Input, OptionList, Select, Static, TextArea

from exlab.core.oof import auto_reply
from exlab.core.rules import rules_of
from med import DelegateSession, Message, SendOptions
from med.model import Address
from tests.e2e.conftest import ASSISTENZ, CHEF, POSTSTELLE, SACHBEARBEITUNG, backend_for
from tests.lab import conftest as lab_fixtures
from tests.lab.conftest import LabServer
from tests.tui.conftest import settle, wait_until
from tui.app import MedApp, make_app
from tui.config import TuiConfig
from tui.screens.dialogs import ConfirmScreen, PromptScreen
from tui.screens.mail import MailScreen
from tui.screens.mailbox_search import MailboxSearchScreen
from tui.screens.mailbox_settings import MailboxSettingsScreen

demo_template = lab_fixtures.demo_template
lab = lab_fixtures.lab

SIZE = (150, 45)


@pytest.fixture
async def lab_session(lab: LabServer) -> AsyncIterator[DelegateSession]:
    session = DelegateSession(
        backend_for(lab, ASSISTENZ), mailboxes=(CHEF, f"functional:{POSTSTELLE}")
    )
    yield session
    await session.close()


@pytest.fixture
def lab_app(lab_session: DelegateSession, tmp_path: Path) -> Callable[..., MedApp]:
    config = TuiConfig(drafts_dir=tmp_path / "drafts", animations=False, downloads_dir=tmp_path)

    def build(**kwargs: object) -> MedApp:
        return make_app(lab_session, config, **kwargs)  # type: ignore[arg-type]

    return build


def settings_screen(app: MedApp) -> MailboxSettingsScreen:
    assert isinstance(app.screen, MailboxSettingsScreen)
    return app.screen


async def test_out_of_office_and_rules_of_a_functional_mailbox(
    lab_app: Callable[..., MedApp], lab: LabServer
) -> None:
    app = lab_app(start_folder=f"{POSTSTELLE}/inbox")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("O")
        await settle(pilot)
        screen = settings_screen(app)
        assert screen.mailbox.address == POSTSTELLE and screen.replies is not None
        screen.query_one("#oof-state", Select).value = "scheduled"
        screen.query_one("#oof-start", Input).value = "2026-12-21 08:00"
        screen.query_one("#oof-end", Input).value = "2027-01-04 08:00"
        screen.query_one("#oof-internal", TextArea).text = "Zwischen den Jahren geschlossen."
        screen.query_one("#oof-external", TextArea).text = "Closed until 4 January."
        await pilot.press("ctrl+s")
        await settle(pilot)
        stored = auto_reply(lab.lab.store, POSTSTELLE, lab.lab.now())
        assert stored.state == "Scheduled"
        assert stored.internal_reply == "Zwischen den Jahren geschlossen."
        assert stored.start is not None and stored.start.year == 2026

        await pilot.press("ctrl+n")
        await settle(pilot)
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"flag Eilt", "enter")
        await settle(pilot)
        (rule,) = rules_of(lab.lab.store, POSTSTELLE)
        assert rule.enabled and rule.rule["subject_contains"] == ["Eilt"]

        listing = settings_screen(app).query_one("#ms-rules", OptionList)
        listing.focus()
        listing.highlighted = 0
        await pilot.press("enter")
        await settle(pilot)
        assert not rules_of(lab.lab.store, POSTSTELLE)[0].enabled
        await pilot.press("ctrl+x")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert rules_of(lab.lab.store, POSTSTELLE) == []


async def test_the_bosss_settings_show_the_refusal_without_full_access(
    lab_app: Callable[..., MedApp],
) -> None:
    app = lab_app(start_folder=f"{CHEF}/inbox")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("O")
        await settle(pilot)
        screen = settings_screen(app)
        assert screen.mailbox.address == CHEF and screen.replies is None
        status = str(screen.query_one("#ms-status", Static).render())
        assert "refused" in status or "rights" in status
        assert screen.query_one("#oof-state", Select).disabled


async def test_search_across_mailboxes_groups_hits_and_opens_one(
    lab_app: Callable[..., MedApp], lab: LabServer
) -> None:
    async with DelegateSession(backend_for(lab, SACHBEARBEITUNG)) as clerk:
        for box in (CHEF, POSTSTELLE):
            await clerk.send(
                Message(subject=f"Fundsache {box}", body="x", to=(Address(box),)), SendOptions()
            )
    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("S")
        await settle(pilot)
        assert isinstance(app.screen, MailboxSearchScreen)
        await pilot.press(*"Fundsache", "enter")
        screen = app.screen
        await wait_until(pilot, lambda: screen.results is not None)
        assert screen.results is not None
        found = {g.mailbox: [m.subject for m in g.items] for g in screen.results.groups}
        assert found[CHEF] == [f"Fundsache {CHEF}"]
        assert found[POSTSTELLE] == [f"Fundsache {POSTSTELLE}"]
        assert found[ASSISTENZ] == []
        shown = [str(o.prompt) for o in screen.query_one(OptionList).options]
        assert any(s.startswith("── Dr. Anna Berg: 1") for s in shown)
        await pilot.press("enter")  # the first hit
        await settle(pilot)
        mail = app.screen
        assert isinstance(mail, MailScreen)
        assert mail.search_text == "Fundsache" and mail.folder is not None
