"""First start without a profile: try the demo organisation, or describe the server."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Select, Static

from med.auth import SIGN_INS
from med.model import AuthMethod, Profile
from tui.first_start import FirstStart


class FirstStartScreen(Screen[FirstStart | None]):
    DEFAULT_CSS = """
    FirstStartScreen { align: center middle; }
    FirstStartScreen > Vertical {
        width: 72; height: auto; border: thick $accent; padding: 1 2; background: $surface;
    }
    FirstStartScreen Horizontal { height: auto; margin-top: 1; }
    FirstStartScreen Button { margin-right: 2; }
    FirstStartScreen #wizard { display: none; height: auto; }
    FirstStartScreen #wizard.-open { display: block; }
    FirstStartScreen .error { color: $error; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("d", "demo", "Demo", show=True),
        Binding("p", "wizard", "Profile", show=True),
        Binding("escape", "quit_app", "Quit", show=True),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("[b]Welcome to medbridge[/b]\n\nNo profile is set up yet.")
            with Horizontal():
                yield Button("Try the demo organisation (d)", id="demo", variant="primary")
                yield Button("Set up a profile (p)", id="wizard-open")
            with Vertical(id="wizard"):
                yield Label("Profile name")
                yield Input("work", id="name")
                yield Label("EWS endpoint, e.g. https://mail.example.org/EWS/Exchange.asmx")
                yield Input(id="server")
                yield Label("Your e-mail address")
                yield Input(id="user")
                yield Label("Sign-in")
                yield Select(
                    [(m.value, m) for m in AuthMethod if "ews" in SIGN_INS[m].backends],
                    value=AuthMethod.NTLM,
                    allow_blank=False,
                    id="auth",
                )
                yield Label("Mailboxes you work in (comma separated), e.g. chef@example.org")
                yield Input(id="mailboxes")
                yield Label("", id="wizard-error", classes="error")
                yield Button("Save profile", id="save", variant="primary")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Once the wizard is open the user types: letters belong to its fields (a Select or
        # a button lets them through to the screen), so "d" and "p" are off.
        if action in ("demo", "wizard"):
            return not self.query_one("#wizard").has_class("-open")
        return True

    def action_demo(self) -> None:
        self.dismiss(FirstStart("demo"))

    def action_wizard(self) -> None:
        self.query_one("#wizard").add_class("-open")
        self.query_one("#server", Input).focus()
        self.refresh_bindings()

    def action_quit_app(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#demo")
    def _demo(self) -> None:
        self.action_demo()

    @on(Button.Pressed, "#wizard-open")
    def _open(self) -> None:
        self.action_wizard()

    @on(Button.Pressed, "#save")
    def _save(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        server = self.query_one("#server", Input).value.strip()
        user = self.query_one("#user", Input).value.strip().lower()
        auth = self.query_one("#auth", Select).value
        boxes = self.query_one("#mailboxes", Input).value
        error = self.query_one("#wizard-error", Label)
        if not name or not name.replace("-", "").replace("_", "").isalnum():
            error.update("Give the profile a short name (letters, digits, - and _).")
            return
        if not server.startswith(("https://", "http://")):
            error.update("The endpoint is a URL starting with https://.")
            return
        if "@" not in user:
            error.update("Your e-mail address is missing its @.")
            return
        mailboxes = tuple(b.strip().lower() for b in boxes.split(",") if b.strip())
        assert isinstance(auth, AuthMethod)
        self.dismiss(
            FirstStart(
                "profile",
                Profile(name=name, server=server, user=user, auth=auth, mailboxes=mailboxes),
            )
        )
