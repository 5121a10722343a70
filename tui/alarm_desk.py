"""The app's side of alarms: the banner on every screen, the bell, answering, the panic key.

Mixed into `MedApp`. `attach_messenger(connection)` hooks a profile's messenger connection
(`tui.messaging.MessengerConnection`): each of its stream events, in stream order, goes through
that account's SDK alarms (`messenger.client.alarms.Alarms`), the `AlarmBoard` keeps what is
shown, and the banner, the bell, a desktop notification and any open alarm screen follow. Alarms
of all profiles share the banner; each is answered through the account it came to.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from textual import work
from textual.binding import Binding

from messenger.client import MessengerError
from messenger.client.alarms import AlarmReceived, Alarms, AlarmStatus
from tui import messages as msg
from tui.actions import APP_ACTIONS
from tui.alarm_board import LEVEL_LABEL, AlarmBoard, banner_lines
from tui.desktop_notify import notify_desktop
from tui.widgets.alarm_banner import show_banner

if TYPE_CHECKING:
    from textual.app import App

    from tui.config import TuiConfig
    from tui.messaging import MessengerConnection, MessengerHub

    _Base = App[Any]
else:
    _Base = object

__all__ = ["AlarmDesk"]

_ALARM_KEYS = ("alarm-acknowledge", "alarm-decline", "goto-alarms", "panic")


class AlarmDesk(_Base):
    """Alarm handling of the app; `alarms` is None until the messenger is connected."""

    config: TuiConfig
    messenger: MessengerHub | None
    alarm_board: AlarmBoard
    #: Profile → that account's alarm functions, once its connection has signed in.
    alarm_accounts: dict[str, Alarms]
    #: The profile whose account raises alarms and panics (the first connected).
    alarm_profile: str | None

    def attach_messenger(self, connection: MessengerConnection) -> None:
        """Take the alarms of this profile's connection (before its `run()` starts)."""
        connection.add_event_hook(self._alarm_hook)

    async def _alarm_hook(self, connection: MessengerConnection, event: Mapping[str, Any]) -> None:
        alarms = self.alarm_accounts.get(connection.profile)
        if alarms is None or alarms.session is not connection.e2e:
            if connection.e2e is None:
                return
            alarms = self.alarm_accounts[connection.profile] = Alarms(
                connection.client, connection.e2e
            )
            self.alarm_profile = self.alarm_profile or connection.profile
        if event.get("type") not in ("alarm", "alarm_status"):
            return
        results = await alarms.handle_event(event)
        if results:
            self.post_message(msg.AlarmsChanged(connection.profile, results))

    @property
    def raising_profile(self) -> str:
        """The profile whose account raises alarms and panics: the one the messenger shows,
        else the first connected."""
        hub = self.messenger
        if hub is not None and hub.active in self.alarm_accounts:
            return hub.active
        return self.alarm_profile or ""

    @property
    def alarms(self) -> Alarms | None:
        """The alarm functions of `raising_profile` (None: not connected)."""
        return self.alarm_accounts.get(self.raising_profile)

    def alarms_of(self, alarm_id: str) -> Alarms | None:
        """The account an alarm came to (or was raised from)."""
        profile = self.alarm_board.profiles.get(alarm_id) or self.raising_profile
        return self.alarm_accounts.get(profile)

    def on_alarms_changed(self, message: msg.AlarmsChanged) -> None:
        board = self.alarm_board
        active = {k: v for a in self.alarm_accounts.values() for k, v in a.active.items()}
        ring = board.apply(message.results, active, profile=message.profile)
        unknown = {
            user
            for r in message.results
            for user in (
                r.sender_user_id if isinstance(r, AlarmReceived) else None,
                r.user_id if isinstance(r, AlarmStatus) else None,
            )
            if user and user not in board.names
        }
        if unknown:
            self.resolve_names(sorted(unknown))
        if ring:
            self.bell()
            shown = board.showing()
            if shown is not None and self.config.desktop_notifications:
                self.ring_desktop(shown)
        self.alarms_updated()

    def alarms_updated(self) -> None:
        """Redraw the banner and every open alarm screen."""
        self.refresh_alarm_banner()
        for screen in self.screen_stack:
            follow = getattr(screen, "alarms_changed", None)
            if callable(follow):
                follow()

    def alarm_keys(self) -> dict[str, str]:
        """Action id → the key as the user bound it, for the banner's hints."""
        keys: dict[str, str] = {}
        for spec in APP_ACTIONS:
            if spec.id in _ALARM_KEYS:
                key = self.config.keymap.get(spec.id, spec.keys).split(",")[0]
                shown = self.get_key_display(Binding(key, spec.action))
                # Function keys read as on the keyboard: "F2", not "f2".
                keys[spec.id] = shown.upper() if shown[1:].isdigit() else shown
        return keys

    def refresh_alarm_banner(self, _screen: object = None) -> None:
        board = self.alarm_board
        show_banner(self.screen, banner_lines(board, self.alarm_keys()))
        shown = board.showing()
        if shown is not None and shown.alarm_id not in board.reported_seen:
            board.reported_seen.add(shown.alarm_id)
            self.mark_seen(shown.alarm_id)  # the sender learns it is on screen

    # ------------------------------------------------------------------ answering

    def alarm_action_enabled(self, action: str) -> bool | None:
        """`check_action` for the alarm keys; None for other actions."""
        if action in ("acknowledge_alarm", "decline_alarm"):
            return self.alarm_board.showing() is not None
        return None

    def action_acknowledge_alarm(self) -> None:
        shown = self.alarm_board.showing()
        if shown is not None:
            self.answer_alarm(shown.alarm_id, "acknowledged")

    def action_decline_alarm(self) -> None:
        shown = self.alarm_board.showing()
        if shown is not None:
            self.ask_decline(shown.alarm_id)

    def ask_decline(self, alarm_id: str) -> None:
        from tui.screens.dialogs import PromptScreen

        def reason(text: str) -> str:
            if not text.strip():
                raise ValueError("Say why you decline; the sender reads it.")
            return text.strip()

        def done(answer: str | None) -> None:
            if answer is not None:
                self.answer_alarm(alarm_id, "declined", answer)

        self.push_screen(PromptScreen("Decline the alarm. Why?", reason), done)

    @work(group="alarm", exit_on_error=False)
    async def answer_alarm(self, alarm_id: str, kind: str, reason: str | None = None) -> None:
        alarms = self.alarms_of(alarm_id)
        if alarms is None:
            raise MessengerError("the messenger account of this alarm is not connected")
        if kind == "acknowledged":
            await alarms.acknowledge(alarm_id)
        else:
            await alarms.decline(alarm_id, reason or "")
        self.post_message(msg.AlarmAnswered(alarm_id, kind))

    def on_alarm_answered(self, message: msg.AlarmAnswered) -> None:
        self.alarm_board.answered(message.alarm_id)
        self.notify(f"Alarm {message.kind}; the sender sees it.", timeout=4)
        self.alarms_updated()

    @work(group="alarm-seen", exit_on_error=False)
    async def mark_seen(self, alarm_id: str) -> None:
        """Tell the sender the alarm is on screen (a failure only loses that hint)."""
        alarms = self.alarms_of(alarm_id)
        if alarms is not None:
            with contextlib.suppress(MessengerError):  # "seen" is a courtesy to the sender
                await alarms.seen(alarm_id)

    @work(group="alarm-desktop", exit_on_error=False)
    async def ring_desktop(self, alarm: AlarmReceived) -> None:
        label = LEVEL_LABEL.get(alarm.level, alarm.level)
        sender = self.alarm_board.name(alarm.sender_user_id)
        await notify_desktop(
            f"{label} from {sender}", alarm.text, urgent=alarm.level in ("alarm", "panic")
        )

    @work(group="alarm-names", exit_on_error=False)
    async def resolve_names(self, user_ids: list[str]) -> None:
        """Names as the messenger shows them (the connection's directory cache)."""
        hub = self.messenger
        connection = hub.get(self.raising_profile) if hub is not None else None
        if connection is None:
            return
        for user_id in user_ids:
            self.alarm_board.names[user_id] = await connection.name_of(user_id)
        self.alarms_updated()

    # ------------------------------------------------------------------ panic

    def action_panic(self) -> None:
        if self.alarms is None:
            self.notify(
                "The messenger is not connected: a panic alarm cannot be sent from here.",
                severity="error",
                timeout=8,
            )
            return
        from tui.screens.panic import PanicScreen

        if not isinstance(self.screen, PanicScreen):
            self.push_screen(PanicScreen())
