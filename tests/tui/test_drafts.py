"""Drafts on the server: saved into the owner's Drafts, updated in place, removed after sending,
reopened from the Drafts folder; kept on this computer when the server refuses or is away."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from textual.widgets import Static, TextArea

from med.model import Address, Message, SendOptions
from tests.tui.conftest import settle
from tests.tui.fakeorg import CHEF, FakeOrg
from tui.app import MedApp
from tui.screens import compose as compose_module
from tui.screens.compose import ComposeScreen, ReviewScreen
from tui.screens.dialogs import ConfirmScreen
from tui.screens.mail import MailScreen

SIZE = (140, 36)
CHEF_DRAFTS = "chef:drafts"


@pytest.fixture(autouse=True)
def quick_server_save(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server save waits for a pause in typing; tests pause briefly instead of seconds."""
    monkeypatch.setattr(compose_module, "SERVER_SAVE_DELAY_S", 0.05)


async def pause_typing(pilot: object) -> None:
    await pilot.pause(0.3)  # type: ignore[attr-defined]
    await settle(pilot)


def drafts_in(org: FakeOrg, folder_id: str) -> list[Message]:
    return [m for i in org.order[folder_id] if isinstance(m := org.items[i], Message)]


def status(app: MedApp) -> Static:
    return app.screen.query_one("#draft-status", Static)


async def test_draft_is_saved_in_the_owners_drafts_updated_in_place_and_removed_after_sending(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        await pilot.press(*"wolf@kreis.example", "tab", "tab", *"Termin")
        await pause_typing(pilot)
        (saved,) = drafts_in(org, CHEF_DRAFTS)
        assert saved.subject == "Termin" and saved.to == (Address("wolf@kreis.example"),)
        assert saved.from_ == Address(CHEF)
        assert "Draft saved in Dr. Anna Berg's Drafts" in str(status(app).render())
        assert not status(app).has_class("-local")
        (local,) = app.drafts.all()
        assert local.server_id == saved.id  # a restart keeps updating the same item

        app.screen.query_one("#body", TextArea).focus()
        await pilot.press(*"Bis Montag")
        await pause_typing(pilot)
        (updated,) = drafts_in(org, CHEF_DRAFTS)
        assert updated.id == saved.id and updated.body == "Bis Montag"

        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, MailScreen)
        ((sent, options, _),) = org.sent
        assert isinstance(sent, Message) and sent.body == "Bis Montag"
        assert options == SendOptions(from_mailbox=CHEF)
        assert drafts_in(org, CHEF_DRAFTS) == []
        assert app.drafts.all() == []


async def test_unreachable_server_keeps_the_draft_locally_and_the_status_line_says_so(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        org.unreachable = True
        await pilot.press(*"wolf@kreis.example", "tab", "tab", *"Offline")
        await pause_typing(pilot)
        line = str(status(app).render())
        assert "on this computer only" in line and "not reachable" in line
        assert status(app).has_class("-local")
        assert drafts_in(org, CHEF_DRAFTS) == []
        (local,) = app.drafts.all()
        assert local.subject == "Offline" and local.server_id is None
        # back online: the next pause in typing puts it on the server
        org.unreachable = False
        await pilot.press(*" wieder da")
        await pause_typing(pilot)
        (saved,) = drafts_in(org, CHEF_DRAFTS)
        assert saved.subject == "Offline wieder da"
        assert not status(app).has_class("-local")


async def test_refused_drafts_folder_keeps_the_draft_locally_with_the_servers_reason(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app(start_folder="poststelle@musterstadt.example/Posteingang")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press(*"wolf@kreis.example", "tab", "tab", *"Antrag")
        await pause_typing(pilot)
        line = str(status(app).render())
        assert "on this computer only; the server refused it" in line
        (local,) = app.drafts.all()
        assert local.subject == "Antrag" and local.sender == "poststelle@musterstadt.example"


async def test_closing_compose_saves_the_draft_to_the_server_too(
    build_app: Callable[..., MedApp], org: FakeOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compose_module, "SERVER_SAVE_DELAY_S", 60.0)
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press(*"wolf@kreis.example", "tab", "tab", *"Kurz")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MailScreen)
        (saved,) = drafts_in(org, CHEF_DRAFTS)
        assert saved.subject == "Kurz"
        (local,) = app.drafts.all()
        assert local.server_id == saved.id


async def test_draft_in_the_drafts_folder_reopens_for_editing_and_updates_that_item(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    stored = org.save_draft(
        Message(subject="Entwurf Rede", body="Sehr geehrte", to=(Address("wolf@kreis.example"),)),
        SendOptions(from_mailbox=CHEF),
    )
    app = build_app(start_folder=f"{CHEF}/Entwürfe")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "enter")
        await settle(pilot)
        compose = app.screen
        assert isinstance(compose, ComposeScreen)
        assert compose.query_one("#subject").value == "Entwurf Rede"  # type: ignore[attr-defined]
        assert compose.draft.sender == CHEF and compose.draft.server_id == stored.id
        body = compose.query_one("#body", TextArea)
        body.focus()
        await pilot.press("end", *" Damen und Herren")
        await pause_typing(pilot)
        (updated,) = drafts_in(org, CHEF_DRAFTS)
        assert updated.id == stored.id
        assert updated.body == "Sehr geehrte Damen und Herren"


async def test_a_reply_closed_untouched_leaves_no_draft(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "r")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        await pause_typing(pilot)
        await pilot.press("escape")
        await pause_typing(pilot)
        assert isinstance(app.screen, MailScreen)
        assert app.drafts.all() == []
        assert drafts_in(org, CHEF_DRAFTS) == []
        await pilot.press("r", *"Danke")  # a reply with text is kept as before
        await pause_typing(pilot)
        await pilot.press("escape")
        await pause_typing(pilot)
        (kept,) = app.drafts.all()
        assert kept.body.startswith("Danke")


async def test_kept_drafts_can_be_discarded_from_the_compose_choice(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press(*"wolf@kreis.example", "tab", "tab", *"Verworfen")
        await pause_typing(pilot)
        await pilot.press("escape")
        await pause_typing(pilot)
        assert len(app.drafts.all()) == 1 and len(drafts_in(org, CHEF_DRAFTS)) == 1
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("down", "d")  # the kept draft, below "New message"
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)  # a slip of the finger loses nothing
        await pilot.press("n")
        await settle(pilot)
        assert len(app.drafts.all()) == 1 and len(drafts_in(org, CHEF_DRAFTS)) == 1
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert app.drafts.all() == []
        assert drafts_in(org, CHEF_DRAFTS) == []  # gone from the server's Drafts too
        await pilot.press("enter")  # what is left: a new message
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
