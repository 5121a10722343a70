"""One bridge notification as a card: the mailbox item, the bridge's answer, the keys.

Focusable; Enter opens the item in the mail or calendar view, the card keys send the bridge's
own reply command for that notification (see `tui.cards`). The messenger pane and the
notification screen both show these for messages `tui.cards.parse_card` recognises.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.console import Group
from rich.text import Text
from textual.binding import BindingType
from textual.widgets import Static

from tui.actions import CARD_ACTIONS, bindings
from tui.cards import KIND_TITLE, BridgeCard, card_rows

if TYPE_CHECKING:
    from tui.app import MedApp

__all__ = ["BridgeCardView"]

_VERB_KEYS = {
    "accept": "card-accept",
    "tentative": "card-tentative",
    "decline": "card-decline",
    "flag": "card-flag",
    "read": "card-read",
    "done": "card-done",
}


class BridgeCardView(Static, can_focus=True):
    BINDINGS: ClassVar[list[BindingType]] = bindings(CARD_ACTIONS)
    DEFAULT_CSS = """
    BridgeCardView {
        height: auto; margin: 0 0 1 0; padding: 0 1;
        border: round $primary; border-title-style: bold;
    }
    BridgeCardView:focus { border: round $accent; background: $boost; }
    BridgeCardView.-important { border: round $warning; }
    """

    def __init__(
        self, card: BridgeCard, profile: str, conversation_id: str, *, result: str = ""
    ) -> None:
        super().__init__()
        self.card = card
        self.profile = profile
        self.conversation_id = conversation_id
        self.result = result
        self.border_title = f"{KIND_TITLE.get(card.kind, 'Mail')} #{card.ref}"
        self.border_subtitle = f"{card.mailbox} › {card.folder}"
        self.set_class(card.important, "-important")

    @property
    def medapp(self) -> MedApp:
        return cast("MedApp", self.app)  # only MedApp shows cards

    def render(self) -> Group:
        card = self.card
        lines = card_rows(card, title=False)
        keys = ["Enter open"] + [
            f"{self._key(_VERB_KEYS[v])} {v}" for v in card.verbs() if v in _VERB_KEYS
        ]
        lines.append(Text(" · ".join(keys), style="dim"))
        if self.result:
            style = "green" if self.result.startswith("Done") else "yellow"
            lines.append(Text(self.result, style=style))
        return Group(*lines)

    def _key(self, binding_id: str) -> str:
        spec = next(s for s in CARD_ACTIONS if s.id == binding_id)
        keys = self.medapp.config.keymap.get(binding_id, spec.keys)
        return keys.split(",")[0]

    def show_result(self, text: str) -> None:
        self.result = text
        self.refresh(layout=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "card_command" and parameters:
            return self.card.command(str(parameters[0])) is not None
        return True

    def action_open_card(self) -> None:
        self.medapp.open_card_item(self.card)

    def action_card_command(self, verb: str) -> None:
        self.medapp.send_card_command(self.profile, self.conversation_id, self.card, verb)
