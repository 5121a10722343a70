"""The assistant's day against the lab: many mailbox switches, quitting, an outage, a refused
password. Every read goes through exchangelib to the lab on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from med import DelegateSession
from med.model import Address, Message
from tests.e2e.conftest import (
    ASSISTENZ,
    CHEF,
    LEITSTELLE,
    POSTSTELLE,
    SACHBEARBEITUNG,
    backend_for,
)
from tests.lab import conftest as lab_fixtures
from tests.lab.conftest import LabServer
from tests.tui.conftest import settle, wait_until
from tui.app import MedApp, make_app
from tui.config import TuiConfig
from tui.screens.compose import ComposeScreen
from tui.screens.dialogs import PromptScreen
from tui.screens.mail import MailScreen
from tui.widgets.context_bar import BusyLabel
from tui.widgets.folder_tree import FolderTree
from tui.widgets.item_list import ItemList

demo_template = lab_fixtures.demo_template
lab = lab_fixtures.lab

SIZE = (150, 40)
MAILBOXES = (CHEF, f"functional:{POSTSTELLE}", f"functional:{LEITSTELLE}")


def new_session(lab: LabServer, **kwargs: object) -> DelegateSession:
    return DelegateSession(backend_for(lab, ASSISTENZ, **kwargs), mailboxes=MAILBOXES)


@pytest.fixture
async def lab_session(lab: LabServer) -> AsyncIterator[DelegateSession]:
    session = new_session(lab)
    yield session
    await session.close()


@pytest.fixture
def config(tmp_path: Path) -> TuiConfig:
    return TuiConfig(
        drafts_dir=tmp_path / "drafts", animations=False, downloads_dir=tmp_path / "dl"
    )


def mail(app: MedApp) -> MailScreen:
    screen = app.get_screen("mail")
    assert isinstance(screen, MailScreen)
    return screen


async def test_twenty_switches_between_four_mailboxes_then_quit_at_once(
    lab_session: DelegateSession, config: TuiConfig
) -> None:
    app = make_app(lab_session, config)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = mail(app)
        items = screen.query_one(ItemList)
        order = [ASSISTENZ, CHEF, POSTSTELLE, LEITSTELLE]
        for switch in range(20):
            address = order[switch % len(order)]
            assert screen.open_path(f"{address}/inbox")
            # Every list loads: no switch leaves the next one waiting behind a watch.
            await wait_until(
                pilot,
                lambda address=address: (
                    screen.folder is not None  # type: ignore[misc]
                    and screen.folder.mailbox == address
                    and items.loaded
                ),
                rounds=50,
            )
        started = time.monotonic()
        await pilot.press("q")
    quit_s = time.monotonic() - started
    assert not app.is_running
    assert quit_s < 2.0, f"quitting took {quit_s:.1f} s"


async def test_ctrl_c_quits(lab_session: DelegateSession, config: TuiConfig) -> None:
    app = make_app(lab_session, config)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash")  # even from the search field
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert not app.is_running


async def test_an_outage_shows_at_once_and_the_list_comes_back_with_the_cursor_kept(
    lab: LabServer, lab_session: DelegateSession, config: TuiConfig
) -> None:
    app = make_app(lab_session, config, start_folder=f"{CHEF}/inbox")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = mail(app)
        items = screen.query_one(ItemList)
        await wait_until(pilot, lambda: items.total >= 3 and screen._watched == CHEF)
        await pilot.press("l", "j", "j")
        await settle(pilot)
        before = items.current
        assert before is not None and items.cursor == 2
        busy = screen.query_one(BusyLabel)

        lab.lab.knobs.outage = True
        await wait_until(pilot, lambda: app.offline, rounds=50)
        assert "offline" in str(busy.render())
        assert busy.has_class("-offline")

        lab.lab.knobs.outage = False
        await wait_until(pilot, lambda: not app.offline, rounds=100)
        assert "offline" not in str(busy.render())
        current = items.current
        assert current is not None and current.id == before.id

        # The watch subscribed again by itself: new mail shows up without a key press.
        sender = DelegateSession(backend_for(lab, SACHBEARBEITUNG))
        try:
            await sender.send(Message(subject="Nach dem Ausfall", body="!", to=(Address(CHEF),)))
        finally:
            await sender.close()
        await wait_until(
            pilot,
            lambda: any(row.subject == "Nach dem Ausfall" for row in items.rows.values()),
            rounds=100,
        )
        current = items.current
        assert current is not None and current.id == before.id


async def test_a_mistyped_password_is_asked_again_in_the_tui(
    lab: LabServer, config: TuiConfig
) -> None:
    wrong = new_session(lab, password="Tippfehler-2026")
    opened: list[DelegateSession] = []

    def relogin(password: str) -> DelegateSession:
        session = new_session(lab, password=password)
        opened.append(session)
        return session

    app = make_app(wrong, config, relogin=relogin)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            assert isinstance(app.screen, PromptScreen)
            field = app.screen.query_one(Input)
            assert field.password  # not shown on screen
            await pilot.press(*"Demo-2026!")
            await pilot.press("enter")
            await settle(pilot)
            await wait_until(pilot, lambda: bool(app.workspace.mailboxes))
            tree = mail(app).query_one(FolderTree)
            assert app.session is opened[-1]
            assert tree.root.children  # the mailboxes are there
    finally:
        await wrong.close()
    assert app.session._closed  # the app closes the session it opened


async def test_a_missing_editor_falls_back_to_the_in_app_editor_with_one_line(
    build_app: Callable[..., MedApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", "nano-is-not-installed --tempfile")
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        compose = app.screen
        assert isinstance(compose, ComposeScreen)
        await pilot.press("ctrl+e")
        await settle(pilot)
        assert app.screen is compose  # still writing, nothing suspended
        body = compose.query_one("#body", TextArea)
        assert app.focused is body
        (note,) = list(app._notifications)
        assert "nano-is-not-installed" in note.message and "\n" not in note.message
        await pilot.press(*"Hallo")
        assert "Hallo" in body.text
