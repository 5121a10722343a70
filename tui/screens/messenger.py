"""The messenger pane's place: conversations, alarms and panic will live here.

Until the messenger client is connected (`MedApp.messenger`), the screen says so.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static


class MessengerScreen(Screen[None]):
    DEFAULT_CSS = """
    MessengerScreen Static { padding: 2 4; }
    """

    def __init__(self) -> None:
        super().__init__(id="messenger")

    def compose(self) -> ComposeResult:
        yield Static(
            "The messenger is not connected in this session.\n\n"
            "Press 1 for mail, 2 for the calendar.",
            id="messenger-placeholder",
        )
        yield Footer()
