"""Mailbox notifications: every bridge card of the messenger, newest first, to act on.

The same cards stand in their conversations in the messenger pane; here they are gathered
across conversations (and profiles), the assistant's list of what the bridge reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import VerticalScroll
from textual.widgets import Footer, Label

from tui.actions import CARDS_SCREEN_ACTIONS, bindings
from tui.cards import BridgeCard, card_in
from tui.screens.base import MedScreen
from tui.widgets.bridge_card import BridgeCardView
from tui.widgets.context_bar import TopBar

if TYPE_CHECKING:
    from tui.messaging import MessengerHub

__all__ = ["CardsScreen", "cards_of"]

#: Cards shown at most (the newest).
MAX_CARDS = 100


def cards_of(hub: MessengerHub | None) -> list[tuple[str, str, int, BridgeCard]]:
    """(profile, conversation id, seq, card) of every bridge card the connections hold,
    newest first."""
    found: list[tuple[int, str, str, int, BridgeCard]] = []
    for profile, connection in hub.connections.items() if hub is not None else ():
        for cid, conversation in connection.conversations.items():
            for line in conversation.lines:
                card = None if line.mine else card_in(line.content)
                if card is not None:
                    found.append((line.sent_at_ms or 0, profile, cid, line.seq, card))
    found.sort(key=lambda f: (f[0], f[3]), reverse=True)
    return [(p, c, s, card) for _, p, c, s, card in found[:MAX_CARDS]]


class CardsScreen(MedScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings(CARDS_SCREEN_ACTIONS)
    DEFAULT_CSS = """
    CardsScreen #cards { height: 1fr; padding: 0 1; }
    CardsScreen #cards-empty { padding: 1 2; color: $text-muted; }
    """

    def __init__(self) -> None:
        super().__init__(id="cards")
        self._shown: list[tuple[str, str, int]] = []

    def compose(self) -> ComposeResult:
        yield TopBar("Mailbox notifications from the bridge")
        yield VerticalScroll(id="cards")
        yield Footer()

    def on_mount(self) -> None:
        self.cards_changed()

    def on_screen_resume(self) -> None:
        self.cards_changed()

    def cards_changed(self) -> None:
        """Redraw: new cards, and the bridge's answers on the cards shown."""
        app = self.medapp
        cards = cards_of(app.messenger)
        keys = [(p, c, s) for p, c, s, _ in cards]
        box = self.query_one("#cards", VerticalScroll)
        if keys == self._shown:
            for view in box.query(BridgeCardView):
                view.show_result(app.card_results.result(view.conversation_id, view.card.ref))
            return
        focused_ref = self.focused.card.ref if isinstance(self.focused, BridgeCardView) else None
        self._shown = keys
        box.remove_children()
        if not cards:
            box.mount(
                Label(
                    "No notifications from the mail bridge yet. They arrive in the messenger "
                    "when the bridge watches a mailbox for you.",
                    id="cards-empty",
                )
            )
            return
        views = [
            BridgeCardView(card, p, c, result=app.card_results.result(c, card.ref))
            for p, c, _, card in cards
        ]
        box.mount_all(views)
        target = next((v for v in views if v.card.ref == focused_ref), views[0])
        self.call_after_refresh(target.focus)
