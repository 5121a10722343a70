"""Bridge cards over the in-memory organisation: an appointment's card opens the calendar on
its day with the event selected; the pane shows the card and Enter there opens the item; a
card offers only the answers the bridge offered.

The cards are made from the bridge's own rendering, as its worker posts them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bridge.notify.render import actions_for, payload_for, render
from med.model import Event, Message
from messenger.client.content import Text
from tests.tui.conftest import settle, wait_until
from tests.tui.fakeorg import CHEF, NOW, FakeOrg
from tui.app import MedApp
from tui.messaging import ChatLine, ConnectionState, Conversation, MessengerAccount, MessengerHub
from tui.screens.calendar import CalendarScreen
from tui.screens.cards import CardsScreen
from tui.screens.mail import MailScreen
from tui.widgets.bridge_card import BridgeCardView
from tui.widgets.item_list import ItemList

BRIDGE = "u-bridge"


def hub_with_cards(app: MedApp, tmp_path: Path, notes: list[tuple[int, str, object]]) -> None:
    """The app's messenger holding one conversation with the bridge and these notifications."""
    hub = MessengerHub(app.post_message)
    conn = hub.add(
        MessengerAccount(
            profile="work",
            server="https://chat.example",
            user="assistenz@example",
            password="unused",
            state_dir=tmp_path / "chat",
        )
    )
    conn.state, conn.user_id = ConnectionState.ONLINE, "u-me"
    conv = Conversation("c-bridge", "direct", "", ("u-me", BRIDGE), title="medbridge")
    for ref, kind, item in notes:
        assert isinstance(item, Message | Event)
        payload = payload_for(item, CHEF, "Kalender" if kind == "appointment" else "Posteingang")
        payload["kind"] = kind
        actions = tuple((a["label"], a["reply"]) for a in actions_for(kind, ref))
        text = Text(render(payload, ref), actions)
        stamp = int(NOW.timestamp() * 1000) + ref
        conv.lines.append(ChatLine(ref, BRIDGE, False, text, sent_at_ms=stamp))
    conn.conversations[conv.conversation_id] = conv
    app.messenger = hub


async def test_an_appointment_card_opens_the_calendar_on_its_day(
    org: FakeOrg, build_app: Callable[..., MedApp], tmp_path: Path
) -> None:
    event = next(
        i
        for i in org.items.values()
        if isinstance(i, Event) and i.subject == "Einladung: Klinikum Aufsichtsrat"
    )
    app = build_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        hub_with_cards(app, tmp_path, [(7, "appointment", event)])
        await pilot.press("8")
        await wait_until(pilot, lambda: isinstance(app.screen.focused, BridgeCardView))
        assert isinstance(app.screen, CardsScreen)
        card = app.screen.focused
        assert isinstance(card, BridgeCardView)
        # An appointment offers mark read and flag, no meeting answers.
        assert card.card.verbs() == ["read", "flag"]
        assert card.check_action("card_command", ("accept",)) is False
        await pilot.press("a")  # not offered: nothing goes to the bridge
        await settle(pilot)
        assert app.card_results.waiting == {}
        await pilot.press("enter")

        def shown() -> bool:
            screen = app.screen
            return (
                isinstance(screen, CalendarScreen)
                and screen.current_event() is not None
                and screen.current_event().subject == event.subject  # type: ignore[union-attr]
            )

        await wait_until(pilot, shown)
        calendar = app.screen
        assert isinstance(calendar, CalendarScreen)
        assert calendar.day == event.start.astimezone(NOW.tzinfo).date()


async def test_the_pane_shows_the_card_and_enter_opens_the_mail(
    org: FakeOrg, build_app: Callable[..., MedApp], tmp_path: Path
) -> None:
    mail = next(
        i for i in org.items.values() if isinstance(i, Message) and i.mailbox == CHEF and i.subject
    )
    app = build_app()
    async with app.run_test(size=(130, 34)) as pilot:
        await settle(pilot)
        hub_with_cards(app, tmp_path, [(3, "mail", mail)])
        await pilot.press("6")
        await settle(pilot)
        pane = app.screen
        rows = pane.query_one("#chat-messages")
        pane.query_one("#chat-conversations").focus()
        await pilot.press("enter")  # open the bridge's conversation
        await settle(pilot)
        prompt = str(rows.get_option_at_index(0).prompt)  # type: ignore[attr-defined]
        assert f"Mail #3  {CHEF} › Posteingang" in prompt and mail.subject in prompt
        assert "Enter: open the item · A: read, flag" in prompt
        rows.focus()
        await pilot.press("enter")

        def opened() -> bool:
            screen = app.screen
            current = screen.query_one(ItemList).current if isinstance(screen, MailScreen) else None
            return current is not None and current.id == mail.id

        await wait_until(pilot, opened)
