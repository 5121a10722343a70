"""Bridge notifications as cards in the TUI: the lab, a real messenger, a real bridge worker.

The TUI is the assistant's workplace: her med session on the lab and her messenger device. A
mail in the boss's inbox arrives as a card and Enter opens it in the mail view; a meeting
request is accepted from its card, the bridge authorises and does it, the card shows the
bridge's answer and the lab has the meeting accepted on the boss's behalf.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from med import Address, Attendee, DelegateSession, Event, Message, ResponseType
from tests.e2e.bridge_harness import (
    ASSISTENZ,
    CHEF,
    CHEF_INBOX_TO_ASSISTENZ,
    SACHBEARBEITUNG,
    BridgeRig,
    wait_until_watching,
)
from tests.e2e.conftest import POSTSTELLE, backend_for
from tests.messenger.messenger_harness import PASSWORD
from tests.tui.conftest import wait_until
from tui.app import MedApp, make_app
from tui.config import TuiConfig
from tui.messaging import ConnectionState, MessengerAccount
from tui.screens.cards import CardsScreen, cards_of
from tui.screens.mail import MailScreen
from tui.widgets.bridge_card import BridgeCardView
from tui.widgets.item_list import ItemList

SIZE = (100, 30)


@contextlib.asynccontextmanager
async def assistant_tui(rig: BridgeRig, tmp_path: Path) -> AsyncIterator[Any]:
    """The assistant's TUI: med on the lab, her messenger account online."""
    session = DelegateSession(
        backend_for(rig.lab, ASSISTENZ), mailboxes=(CHEF, f"functional:{POSTSTELLE}")
    )
    config = TuiConfig(drafts_dir=tmp_path / "drafts", animations=False)
    account = MessengerAccount(
        profile="work",
        server=rig.server.url,
        user=ASSISTENZ,
        password=PASSWORD,
        state_dir=tmp_path / "chat",
    )
    app = make_app(session, config, messenger_accounts={"work": account})
    try:
        async with app.run_test(size=SIZE) as pilot:
            assert app.messenger is not None
            conn = app.messenger.current
            assert conn is not None
            await wait_until(pilot, lambda: conn.state is ConnectionState.ONLINE, rounds=300)
            yield pilot
    finally:
        await session.close()


def focused_card(app: MedApp) -> BridgeCardView:
    card = app.screen.focused
    assert isinstance(card, BridgeCardView), app.screen.focused
    return card


async def test_a_bridged_mail_arrives_as_a_card_and_enter_opens_it(
    rig: BridgeRig, session_for: Callable[..., DelegateSession], tmp_path: Path
) -> None:
    config = rig.write_config(rules=CHEF_INBOX_TO_ASSISTENZ)
    lena = session_for(SACHBEARBEITUNG)
    async with rig.worker(config), assistant_tui(rig, tmp_path) as pilot:
        app: MedApp = pilot.app
        await wait_until_watching(rig)
        await lena.send(
            Message(
                subject="Haushaltsentwurf 2027",
                body="Bitte bis Freitag prüfen.",
                to=(Address(CHEF),),
            )
        )
        await wait_until(pilot, lambda: bool(cards_of(app.messenger)), rounds=300)
        [(_, _, _, card)] = cards_of(app.messenger)
        assert (card.kind, card.mailbox, card.subject) == ("mail", CHEF, "Haushaltsentwurf 2027")
        assert SACHBEARBEITUNG in card.sender and card.preview == "Bitte bis Freitag prüfen."
        assert card.folder and card.link.mailbox == CHEF
        await pilot.press("8")
        await wait_until(pilot, lambda: isinstance(app.screen.focused, BridgeCardView))
        assert isinstance(app.screen, CardsScreen)
        shown = str(focused_card(app).render().renderables[1])  # type: ignore[attr-defined]
        assert "Haushaltsentwurf 2027" in shown
        await pilot.press("enter")

        def opened() -> bool:
            screen = app.screen
            if not isinstance(screen, MailScreen):
                return False
            current = screen.query_one(ItemList).current
            return current is not None and current.id == card.link.item_id

        await wait_until(pilot, opened, rounds=200)
        mail = app.screen
        assert isinstance(mail, MailScreen) and mail.folder is not None
        assert (mail.folder.mailbox, mail.folder.name) == (CHEF, card.folder)


async def test_a_meeting_accepted_from_its_card_is_accepted_in_the_lab_on_behalf(
    rig: BridgeRig, session_for: Callable[..., DelegateSession], tmp_path: Path
) -> None:
    config = rig.write_config(rules=CHEF_INBOX_TO_ASSISTENZ, mode="pull", poll_seconds=0.3)
    lena = session_for(SACHBEARBEITUNG)
    chef = session_for(CHEF)
    start = datetime(2027, 3, 10, 9, tzinfo=UTC)
    async with rig.worker(config), assistant_tui(rig, tmp_path) as pilot:
        app: MedApp = pilot.app
        await wait_until_watching(rig)
        calendar = await lena.default_folder(SACHBEARBEITUNG, "calendar")
        await lena.create(
            calendar,
            Event(
                subject="Abstimmung Kreisumlage",
                start=start,
                end=start + timedelta(hours=1),
                attendees=(Attendee(Address(CHEF)),),
            ),
        )
        await wait_until(pilot, lambda: bool(cards_of(app.messenger)), rounds=300)
        await pilot.press("8")
        await wait_until(pilot, lambda: isinstance(app.screen.focused, BridgeCardView))
        card = focused_card(app)
        assert card.card.kind == "meeting" and card.card.subject == "Abstimmung Kreisumlage"
        assert card.card.verbs()[:3] == ["accept", "tentative", "decline"]
        await pilot.press("a")
        await wait_until(pilot, lambda: focused_card(app).result.startswith("Done"), rounds=300)
        assert focused_card(app).result.startswith("Done: accept “Abstimmung Kreisumlage”")
        assert f"on behalf of {CHEF}" in focused_card(app).result
    boss_calendar = await chef.default_folder(CHEF, "calendar")
    view = await chef.calendar_view([boss_calendar], start, start + timedelta(hours=1))
    meeting = next(e for e in view if e.subject == "Abstimmung Kreisumlage")
    assert meeting.my_response is ResponseType.ACCEPT
