"""The Textual application and its factory; screens and widgets live in their own modules.

`make_app(session, config)` is what `medbridge tui` / `medbridge demo` and the tests call. With
no session (first start without a profile) the app shows the first-start screen and `run()`
returns the user's choice (`FirstStart`) for the command to act on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from med import DelegateSession
from med.errors import MedError, Unreachable
from med.model import Item, MailboxKind
from messenger.client import MessengerError
from messenger.client.alarms import Alarms
from tui import messages as msg
from tui.actions import APP_ACTIONS, bindings
from tui.alarm_board import AlarmBoard
from tui.alarm_desk import AlarmDesk
from tui.card_desk import CardDesk
from tui.cards import CardResults
from tui.config import TuiConfig
from tui.drafts import Draft, DraftStore
from tui.first_start import FirstStart
from tui.messaging import ConnectionState, MessengerAccount, MessengerHub
from tui.profiles import OpenProfile, ProfileState
from tui.widgets.context_bar import BusyLabel
from tui.workspace import Workspace

if TYPE_CHECKING:
    from tui.screens.chat_pane import ChatPane

log = logging.getLogger(__name__)

#: Shown in the header while a worker of that group runs.
_PROGRESS = {
    "workspace": "loading mailboxes",
    "pages": "loading items",
    "reader": "opening",
    "update": "saving",
    "send": "sending",
    "calendar": "loading calendar",
    "names": "looking up names",
    "attachment": "fetching attachment",
    "freebusy": "asking for free/busy",
    "chat-send": "sending",
    "chat-trust": "checking keys",
}

#: The header's word for a messenger connection that is not online.
_CHAT_STATE = {
    ConnectionState.CONNECTING: "✉ connecting…",
    ConnectionState.OFFLINE: "✉ chat offline",
}
#: How long quitting waits for the messenger to close its stream cleanly.
CLOSE_CHAT_S = 0.5


class MedApp(AlarmDesk, CardDesk, App[FirstStart | None]):
    """The assistant's workplace: mail, calendar, tasks, contacts and notes of several mailboxes."""

    TITLE = "medbridge"
    BINDINGS: ClassVar[list[BindingType]] = bindings(APP_ACTIONS)
    COMMAND_PALETTE_BINDING = "ctrl+backslash"  # ":" and ctrl+p come from the keymap instead

    def __init__(
        self,
        session: DelegateSession | None,
        config: TuiConfig,
        *,
        clock: Callable[[], datetime] | None = None,
        start_folder: str | None = None,
        messenger: MessengerHub | None = None,
        relogin: Callable[[str], DelegateSession] | None = None,
        profiles: list[OpenProfile] | None = None,
    ) -> None:
        super().__init__()
        if profiles:
            #: Every profile open side by side, in the order the user named them.
            self.profiles = {p.name: p for p in profiles}
        else:
            # One session as before: one profile, and no organisation level on screen.
            only = OpenProfile("", session, relogin=relogin)
            if session is None:
                only.state = ProfileState.LOADING
            self.profiles = {"": only}
        #: The profile of what is on screen: the open folder's, the target calendar's.
        self.active = next(iter(self.profiles))
        #: True while the server cannot be reached; the header says so until it answers again.
        self.offline = False
        self.config = config
        self.drafts = DraftStore(config.drafts_dir)
        self._clock = clock
        self.start_folder = start_folder
        #: The messenger accounts (profile → connection); None without any configured.
        self.messenger = messenger
        self._busy: dict[str, str] = {}
        #: Mounted messenger panes (the screen's, the one beside the mail); each gets updates.
        self.chat_panes: set[ChatPane] = set()
        self.alarm_accounts: dict[str, Alarms] = {}
        self.alarm_profile: str | None = None
        self.alarm_board = AlarmBoard()
        self.card_results = CardResults()
        self.card_senders: dict[str, str] = {}
        if not config.animations:
            self.animation_level = "none"

    @property
    def multi(self) -> bool:
        """Several profiles are open: the tree, headers and agenda name the organisation."""
        return len(self.profiles) > 1

    @property
    def profile(self) -> OpenProfile:
        """The active profile (the open folder's)."""
        return self.profiles[self.active]

    @property
    def session(self) -> DelegateSession:
        """The active profile's session (None only before the first start's choice)."""
        return self.profile.session  # type: ignore[return-value]

    @property
    def workspace(self) -> Workspace:
        """The active profile's mailboxes and folders."""
        return self.profile.workspace

    @property
    def relogin(self) -> Callable[[str], DelegateSession] | None:
        return self.profile.relogin

    def use_profile(self, name: str) -> None:
        """Make `name` the active profile: its session serves what the screens do next."""
        if name in self.profiles:
            self.active = name
            self._follow_in_messenger(name)

    def _follow_in_messenger(self, name: str) -> None:
        """The messenger shows the account of the profile worked in (where it has one)."""
        hub = self.messenger
        if hub is not None and name in hub.connections:
            hub.active = name

    def organisation_prefix(self, name: str | None = None) -> str:
        """ "Organisation · " before a header while several profiles are open, else ""."""
        if not self.multi:
            return ""
        return f"{self.profiles[name if name is not None else self.active].organisation} · "

    def now(self) -> datetime:
        """Aware local time; tests freeze it through `clock`."""
        return self._clock() if self._clock else datetime.now().astimezone()

    def on_mount(self) -> None:
        self.set_keymap(self.config.keymap)
        # The alarm banner follows the user onto every screen and dialog.
        self.screen_change_signal.subscribe(self, self.refresh_alarm_banner)
        if self.session is None:
            from tui.screens.first_start import FirstStartScreen

            self.push_screen(FirstStartScreen(), self.exit)
            return
        from tui.screens.mail import MailScreen

        self.install_screen(MailScreen(), "mail")
        self.push_screen("mail")
        self.start_messenger()
        leftover = self.drafts.all()
        if leftover:
            self.notify(
                f"{len(leftover)} unsent draft(s) kept from last time; "
                "the compose screen (c) offers them.",
                timeout=8,
            )

    # ------------------------------------------------------------------ navigation

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        from textual.screen import ModalScreen

        from tui.screens.compose import ComposeScreen

        alarm = self.alarm_action_enabled(action)
        if alarm is not None:
            return alarm
        # While writing or answering a dialog, screen switches and quitting wait: the
        # compose screen closes with Esc (keeping the draft), dialogs with Esc.
        busy_screen = isinstance(self.screen, ComposeScreen | ModalScreen)
        return not (action in ("goto", "quit") and busy_screen)

    def action_goto(self, name: str) -> None:
        if self.session is None:
            return
        if name in ("tasks", "contacts", "notes"):
            self._goto_default_folder(name)
            return
        if name == "mail":
            self.switch_to("mail")
            return
        if name == "calendar":
            from tui.screens.calendar import CalendarScreen

            if not self.is_screen_installed("calendar"):
                self.install_screen(CalendarScreen(), "calendar")
            self.switch_to("calendar")
            return
        if name == "messenger":
            from tui.screens.messenger import MessengerScreen

            if not self.is_screen_installed("messenger"):
                self.install_screen(MessengerScreen(), "messenger")
            self.switch_to("messenger")
            return
        if name == "cards":
            from tui.screens.cards import CardsScreen

            if not self.is_screen_installed("cards"):
                self.install_screen(CardsScreen(), "cards")
            self.switch_to("cards")
            return
        if name == "alarms":
            from tui.screens.alarms import AlarmsScreen

            if not self.is_screen_installed("alarms"):
                self.install_screen(AlarmsScreen(), "alarms")
            self.switch_to("alarms")

    def switch_to(self, name: str) -> None:
        """Show one of the main screens (mail, calendar, messenger) in place of the current one."""
        if self.screen.id != name:
            self.switch_screen(name)

    def _goto_default_folder(self, distinguished: str) -> None:
        from tui.screens.mail import MailScreen

        self.switch_to("mail")
        ws = self.workspace
        # Prefer the mailbox the user works in for someone else, then their own.
        owners = sorted(ws.senders(), key=lambda m: m.kind is not MailboxKind.DELEGATED)
        for mailbox in owners:
            folder = ws.default_folder(mailbox, distinguished)
            if folder is not None:
                screen = self.get_screen("mail")
                assert isinstance(screen, MailScreen)
                screen.open_path(f"{mailbox.address}/{distinguished}")
                return
        self.notify(f"No {distinguished} folder is loaded yet.")

    def action_interrupt(self) -> None:
        self.exit()

    async def on_unmount(self) -> None:
        await self.stop_messenger()
        for profile in self.profiles.values():
            if profile.opened_here is not None:
                await profile.opened_here.close()

    # ------------------------------------------------------------------ messenger

    def start_messenger(self) -> None:
        """Run each account's connection in a worker (group "messenger")."""
        if self.messenger is None:
            return
        for profile, conn in self.messenger.connections.items():
            self.attach_messenger(conn)  # its alarms reach the banner
            self.run_worker(
                conn.run(), group="messenger", name=f"messenger:{profile}", exit_on_error=False
            )
        self._follow_in_messenger(self.active)

    async def stop_messenger(self) -> None:
        """Cancel the stream workers and close the connections, briefly: quitting is instant."""
        if self.messenger is None:
            return
        for worker in [w for w in self.workers if w.group == "messenger"]:
            worker.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_CHAT_S):
                await self.messenger.close()

    def _to_chat_panes(self, message: Message) -> None:
        for pane in list(self.chat_panes):
            pane.handle(message)

    @on(msg.ConnectionStateChanged)
    def _chat_state(self, message: msg.ConnectionStateChanged) -> None:
        self._to_chat_panes(message)
        self.show_busy()

    @on(msg.ConversationsChanged)
    @on(msg.ChatMessageArrived)
    @on(msg.ChatLineChanged)
    @on(msg.BrandingChanged)
    def _chat_update(self, message: Message) -> None:
        self._to_chat_panes(message)

    async def sign_in_again(self, password: str, profile_name: str | None = None) -> None:
        """Replace a profile's session by one with another password (the old one is closed)."""
        profile = self.profiles[self.active if profile_name is None else profile_name]
        assert profile.relogin is not None
        old, profile.session = profile.session, profile.relogin(password)
        if old is not None and old is profile.opened_here:
            await old.close()  # the caller closes the session it gave us, we ours
        profile.opened_here = profile.session

    def set_offline(self, offline: bool) -> None:
        """Show (or clear) that the server cannot be reached; said once, not per failed call."""
        if offline == self.offline:
            return
        self.offline = offline
        if offline:
            self.notify(
                "The server cannot be reached. medbridge keeps trying and reconnects by itself.",
                title="Offline",
                severity="warning",
                timeout=6,
            )
        else:
            self.notify("The server answers again.", title="Online", timeout=4)
        self.show_busy()

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen, binding_table

        # The table is taken before the help screen covers the one it describes.
        self.push_screen(HelpScreen(binding_table(self.screen)))

    def open_compose(self, draft: Draft, original: Item | None = None) -> None:
        from tui.screens.compose import ComposeScreen

        self.push_screen(ComposeScreen(draft, original=original))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        from tui.actions import ALL_ACTIONS

        for spec in ALL_ACTIONS:
            if spec.id in ("command-palette",):
                continue
            target: Any = self if spec in APP_ACTIONS else screen
            name = spec.action.split("(")[0]
            if hasattr(target, f"action_{name}") and (
                target is self or target.check_action(name, ()) is not False
            ):
                yield SystemCommand(
                    spec.description,
                    f"{spec.id}  [{spec.keys}]",
                    lambda spec=spec, target=target: self.run_action(spec.action, target),
                )

    # ------------------------------------------------------------------ workers and errors

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.worker_changed(event)

    def worker_changed(self, event: Worker.StateChanged) -> None:
        """The one place where worker failures become something the user reads."""
        worker = event.worker
        group = worker.group
        if event.state is WorkerState.RUNNING and group in _PROGRESS:
            self._busy[str(id(worker))] = _PROGRESS[group]
        elif event.state in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            self._busy.pop(str(id(worker)), None)
        self.show_busy()
        if event.state is WorkerState.ERROR:
            error = worker.error
            if isinstance(error, Unreachable):
                was_offline = self.offline
                self.set_offline(True)
                if was_offline:
                    return  # the header says it already; one notification per outage
            if isinstance(error, MedError):
                self.notify(str(error), title=error.title, severity="error", timeout=8)
            elif isinstance(error, MessengerError):
                self.notify(str(error), title="Messenger", severity="error", timeout=8)
            else:
                log.error("unexpected error in %s", worker.name, exc_info=error)
                self.notify(
                    f"Something went wrong ({type(error).__name__}); the details are in the log.",
                    title="Unexpected error",
                    severity="error",
                    timeout=8,
                )

    def show_busy(self) -> None:
        labels = sorted(set(self._busy.values()))
        text = ("⟳ " + ", ".join(labels) + "…") if labels else ""
        if self.offline:
            text = "⚠ offline · reconnecting…"
        chat = self.messenger.current if self.messenger is not None else None
        if chat is not None and chat.state in _CHAT_STATE:
            text = f"{text} {_CHAT_STATE[chat.state]}".strip()
        for screen in self.screen_stack:
            for label in screen.query(BusyLabel):
                label.update(text)
                label.set_class(self.offline, "-offline")

    @property
    def busy(self) -> bool:
        return bool(self._busy)


def make_app(
    session: DelegateSession | None,
    config: TuiConfig,
    *,
    clock: Callable[[], datetime] | None = None,
    start_folder: str | None = None,
    relogin: Callable[[str], DelegateSession] | None = None,
    profiles: list[OpenProfile] | None = None,
    messenger_accounts: Mapping[str, MessengerAccount] | None = None,
) -> MedApp:
    """The app as `medbridge tui` runs it.

    Args:
        session: an open `DelegateSession`, or None to show the first-start screen.
        config: settings from the `[tui]` and `[keymap]` tables (`TuiConfig.from_mapping`).
        clock: aware "now" (tests freeze it); defaults to the system clock.
        start_folder: open this folder first, e.g. "chef@musterstadt.example/inbox".
        relogin: a new session for another password, so that a refused sign-in is asked
            again in the app; None where the sign-in takes no password.
        profiles: several profiles side by side (then `session` and `relogin` are None);
            their sessions stay the caller's to close.
        messenger_accounts: the messenger account of each profile (`[messenger.<profile>]`),
            by profile name: one connection each; the active profile's is shown; none: the
            messenger screen says how to add one.
    """
    app = MedApp(
        session,
        config,
        clock=clock,
        start_folder=start_folder,
        relogin=relogin,
        profiles=profiles,
    )
    if messenger_accounts:
        from tui.screens.chat_image import prepare_terminal_graphics

        prepare_terminal_graphics()
        hub = MessengerHub(app.post_message)
        for account in messenger_accounts.values():
            hub.add(account)
        app.messenger = hub
    return app
