"""The messenger screen (key 6): the chat pane on the whole screen.

The same `ChatPane` also sits beside the mail view (M on the mail screen). Without a messenger
account for the profile, the pane says how to configure one.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer

from tui.screens.base import MedScreen
from tui.screens.chat_pane import ChatPane
from tui.widgets.context_bar import TopBar


class MessengerScreen(MedScreen[None]):
    def __init__(self) -> None:
        super().__init__(id="messenger")

    def compose(self) -> ComposeResult:
        yield TopBar(self._title())
        yield ChatPane(id="chat")
        yield Footer()

    def _title(self) -> str:
        hub = self.medapp.messenger
        profile = hub.active if hub is not None else None
        return f"Messenger · {profile}" if profile else "Messenger"

    def on_mount(self) -> None:
        self.query_one(ChatPane).conversations_list.focus()

    def on_screen_resume(self) -> None:
        self.query_one(ChatPane).refresh_all()
