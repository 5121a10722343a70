"""The messenger pane: conversations with unread counts, the open conversation, a line to write.

It shows one profile's `MessengerConnection` (the hub's active one) and is updated by the app,
which hands it every messenger message (`ChatPane.handle`). Work that waits on the server runs
in workers; failures become notifications through the app's one handler.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import Worker

from med.model import Address
from messenger.client import MessengerError
from messenger.client.content import File, Location, Voice
from tui import messages as msg
from tui.actions import MESSENGER_ACTIONS, PANE_CARD_ACTIONS, bindings
from tui.cards import card_in
from tui.chat_render import conversation_row, map_link, message_block, size_text, snippet
from tui.messaging import ChatLine, ConnectionState, Conversation, MessengerConnection

if TYPE_CHECKING:
    from tui.app import MedApp

#: What the status line says per connection state.
STATE_TEXT = {
    ConnectionState.ONLINE: "● online",
    ConnectionState.CONNECTING: "◌ connecting…",
    ConnectionState.OFFLINE: "⚠ offline — messages wait and go out on reconnect",
}
DEFAULT_REACTION = "👍"
#: Below this width the conversations sit above the messages.
NARROW_BELOW = 70


def parse_position(text: str) -> tuple[float, float, float]:
    """ "52.52, 13.405" or "52.52 13.405 8" → (lat, lon, accuracy m); ValueError with a sentence."""
    parts = text.replace(",", " ").split()
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ValueError("Enter latitude and longitude in degrees, e.g. 52.52, 13.405.") from None
    if len(numbers) not in (2, 3):
        raise ValueError("Enter latitude and longitude (and optionally the accuracy in metres).")
    lat, lon = numbers[0], numbers[1]
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ValueError("Latitude is -90…90 and longitude -180…180.")
    return lat, lon, numbers[2] if len(numbers) == 3 else 10.0


def parse_file(text: str) -> Path:
    path = Path(text.strip()).expanduser()
    if not path.is_file():
        raise ValueError(f"{path} is not a file.")
    return path


class ChatStatus(Static):
    """Which account and whether it is connected, in the tenant's colours."""

    DEFAULT_CSS = """
    ChatStatus { height: 1; padding: 0 1; background: $primary-darken-1; color: $text; }
    ChatStatus.-offline { background: $error; }
    ChatStatus.-connecting { background: $warning-darken-1; }
    """


class ChatPane(Vertical):
    """Conversations, messages and the input line of one messenger account."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(MESSENGER_ACTIONS + PANE_CARD_ACTIONS)

    DEFAULT_CSS = """
    ChatPane { height: 1fr; }
    ChatPane #chat-body { height: 1fr; }
    ChatPane #chat-conversations { width: 30; height: 1fr; border: none; }
    ChatPane #chat-right { width: 1fr; }
    ChatPane #chat-messages { height: 1fr; border: none; }
    ChatPane #chat-reply { height: auto; display: none; color: $text-muted; padding: 0 1; }
    ChatPane #chat-reply.-shown { display: block; }
    ChatPane #chat-input { dock: bottom; }
    ChatPane.-compact #chat-body { layout: vertical; }
    ChatPane.-compact #chat-conversations { width: 1fr; height: 7; }
    """

    def __init__(self, *, compact: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.compact = compact
        self.conversation_id: str | None = None
        self.reply_to: int | None = None
        self._shown: list[str] = []  # line keys in the message list, in order
        self._conversation_rows: list[tuple[str, str]] = []  # what the list shows now
        #: Called after a message's row is drawn (profile, conversation, seq); the bench uses it.
        self.on_drawn: Any = None
        if compact:
            self.add_class("-compact")

    # ------------------------------------------------------------------ plumbing

    @property
    def medapp(self) -> MedApp:
        return cast("MedApp", self.app)

    @property
    def connection(self) -> MessengerConnection | None:
        hub = self.medapp.messenger
        return hub.current if hub is not None else None

    def compose(self) -> ComposeResult:
        yield ChatStatus("", id="chat-status")
        with Horizontal(id="chat-body"):
            yield OptionList(id="chat-conversations")
            with Vertical(id="chat-right"):
                yield OptionList(id="chat-messages")
                yield Static("", id="chat-reply")
                yield Input(placeholder="Write a message; Enter sends, Esc leaves", id="chat-input")

    def on_resize(self, event: events.Resize) -> None:
        # Narrow: conversations above the messages, as in the pane beside the mail.
        self.set_class(self.compact or event.size.width < NARROW_BELOW, "-compact")

    def on_mount(self) -> None:
        self.medapp.chat_panes.add(self)
        self.refresh_all()

    def on_unmount(self) -> None:
        self.medapp.chat_panes.discard(self)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.medapp.worker_changed(event)

    @property
    def conversations_list(self) -> OptionList:
        return self.query_one("#chat-conversations", OptionList)

    @property
    def messages_list(self) -> OptionList:
        return self.query_one("#chat-messages", OptionList)

    # ------------------------------------------------------------------ updates from the app

    def handle(self, message: Message) -> None:
        """A messenger message from the app (see `tui.messages`)."""
        conn = self.connection
        if conn is None or getattr(message, "profile", None) != conn.profile:
            return
        if isinstance(message, msg.ConnectionStateChanged | msg.BrandingChanged):
            self.show_status()
        elif isinstance(message, msg.ConversationsChanged):
            self.show_conversations()
        elif isinstance(message, msg.ChatMessageArrived):
            if message.conversation_id == self.conversation_id:
                if not message.line.mine and self.has_focus_within:
                    self.mark_read()  # before the list is drawn: no unread count flickers
                self._add_line(message.line)
            self.show_conversations()
        elif (
            isinstance(message, msg.ChatLineChanged)
            and message.conversation_id == self.conversation_id
        ):
            self._change_line(message.key, message.new_key)

    def refresh_all(self) -> None:
        self.show_status()
        self.show_conversations()
        self.show_messages()

    def show_status(self) -> None:
        status = self.query_one(ChatStatus)
        conn = self.connection
        if conn is None:
            status.update("Messenger: no account for this profile (see docs/tui.md, Messenger)")
            return
        text = f"{STATE_TEXT[conn.state]} · {conn.account.user}"
        if conn.branding.name:
            text += f" · {conn.branding.name}"
        if conn.reason and conn.state is not ConnectionState.ONLINE:
            text += f" · {conn.reason}"
        if conn.outbox:
            text += f" · {len(conn.outbox)} queued"
        status.update(text)
        status.set_class(conn.state is ConnectionState.OFFLINE, "-offline")
        status.set_class(conn.state is ConnectionState.CONNECTING, "-connecting")
        if conn.branding.primary and conn.state is ConnectionState.ONLINE:
            status.styles.background = conn.branding.primary
        else:
            status.styles.clear_rule("background")
        if conn.branding.accent:
            self.conversations_list.styles.border_right = ("vkey", conn.branding.accent)

    def _ordered(self) -> list[Conversation]:
        conn = self.connection
        if conn is None:
            return []

        def last(conv: Conversation) -> int:
            return max((ln.sent_at_ms or 0 for ln in conv.lines), default=0)

        return sorted(conn.conversations.values(), key=lambda c: (-last(c), c.title.lower()))

    def show_conversations(self) -> None:
        olist = self.conversations_list
        ordered = self._ordered()
        highlighted = olist.highlighted
        rows = [
            (
                c.conversation_id,
                conversation_row(c, current=c.conversation_id == self.conversation_id),
            )
            for c in ordered
        ]
        shown = [(cid, row.markup) for cid, row in rows]
        if shown != self._conversation_rows:  # unchanged: no relayout for each new message
            self._conversation_rows = shown
            olist.clear_options()
            olist.add_options(Option(row, id=cid) for cid, row in rows)
        if not ordered:
            return
        if self.conversation_id is None:
            self.open_conversation(ordered[0].conversation_id)  # shows the list again
            return
        ids = [c.conversation_id for c in ordered]
        if self.conversation_id in ids:
            # The cursor stays on the open conversation, wherever new messages move it.
            olist.highlighted = ids.index(self.conversation_id)
        elif highlighted is not None:
            olist.highlighted = min(highlighted, len(ordered) - 1)

    def open_conversation(self, conversation_id: str) -> None:
        self.conversation_id = conversation_id
        self.reply_to = None
        self._show_reply()
        self.show_conversations()
        self.show_messages()

    def _conversation(self) -> Conversation | None:
        conn = self.connection
        if conn is None or self.conversation_id is None:
            return None
        return conn.conversations.get(self.conversation_id)

    def _option(self, line: ChatLine, conv: Conversation) -> Option:
        conn = self.connection
        assert conn is not None
        reply = None
        if line.reply_to:
            target = conv.line(line.reply_to)
            reply = snippet(target) if target is not None else f"message {line.reply_to}"
        block = message_block(
            line,
            sender=conn.cached_name(line.sender_user_id),
            tz=self.medapp.now().tzinfo,
            reply_snippet=reply,
            members=len(conv.members) or 2,
        )
        return Option(block, id=line.key)

    def show_messages(self) -> None:
        olist = self.messages_list
        olist.clear_options()
        conv = self._conversation()
        self._shown = []
        if conv is None:
            return
        olist.add_options(self._option(line, conv) for line in conv.lines)
        self._shown = [line.key for line in conv.lines]
        if conv.lines:
            olist.highlighted = len(conv.lines) - 1

    def _add_line(self, line: ChatLine) -> None:
        conv = self._conversation()
        if conv is None:
            return
        keys = [ln.key for ln in conv.lines]
        if line.key in self._shown:
            self._change_line(line.key, "")
            return
        if keys[: len(self._shown)] != self._shown or keys[-1] != line.key:
            self.show_messages()  # inserted before others: redraw the list
        else:
            olist = self.messages_list
            at_end = olist.highlighted is None or olist.highlighted >= len(self._shown) - 1
            olist.add_option(self._option(line, conv))
            self._shown.append(line.key)
            if at_end:
                olist.highlighted = len(self._shown) - 1
        if self.on_drawn is not None:
            conn = self.connection
            profile = conn.profile if conn else ""
            self.call_after_refresh(self.on_drawn, profile, conv.conversation_id, line.seq)

    def _change_line(self, key: str, new_key: str) -> None:
        conv = self._conversation()
        if conv is None:
            return
        if (new_key and new_key != key) or key not in self._shown:
            self.show_messages()
            return
        line = next((ln for ln in conv.lines if ln.key == key), None)
        if line is not None:
            self.messages_list.replace_option_prompt(key, self._option(line, conv).prompt)

    def _selected_line(self) -> ChatLine | None:
        conv = self._conversation()
        index = self.messages_list.highlighted
        if conv is None or index is None or index >= len(self._shown):
            return None
        key = self._shown[index]
        return next((ln for ln in conv.lines if ln.key == key), None)

    # ------------------------------------------------------------------ events

    @on(OptionList.OptionSelected, "#chat-conversations")
    def _conversation_chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.open_conversation(event.option.id)
            self.mark_read()
            self.show_conversations()
            self.messages_list.focus()

    @on(OptionList.OptionHighlighted, "#chat-conversations")
    def _conversation_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None and event.option.id != self.conversation_id:
            self.open_conversation(event.option.id)

    @on(OptionList.OptionSelected, "#chat-messages")
    def _message_chosen(self, event: OptionList.OptionSelected) -> None:
        self.action_open_line()

    @on(Input.Submitted, "#chat-input")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self.conversation_id is None:
            return
        event.input.value = ""
        self.send_text(self.conversation_id, text, self.reply_to)
        self.reply_to = None
        self._show_reply()

    def on_descendant_focus(self) -> None:
        self.mark_read()

    def key_escape(self) -> None:
        if self.query_one("#chat-input", Input).has_focus:
            self.reply_to = None
            self._show_reply()
            self._focus_now(self.messages_list)

    # ------------------------------------------------------------------ workers

    def mark_read(self) -> None:
        conv = self._conversation()
        conn = self.connection
        if conv is not None and conn is not None and conv.unread:
            conn.mark_read(conv.conversation_id)

    @work(group="chat-send", exit_on_error=False)
    async def send_text(self, cid: str, text: str, reply_to: int | None) -> None:
        conn = self.connection
        if conn is not None:
            await conn.send_text(cid, text, reply_to=reply_to)
            self.show_status()

    @work(group="chat-send", exit_on_error=False)
    async def _send(self, kind: str, value: Any) -> None:
        conn, cid = self.connection, self.conversation_id
        if conn is None or cid is None:
            return
        try:
            if kind == "file":
                await conn.send_file(cid, value)
            elif kind == "voice":
                await conn.send_voice(cid, value)
            elif kind == "position":
                await conn.send_location(cid, *value)
            elif kind == "react":
                await conn.react(cid, value[0], value[1])
        except MessengerError as exc:
            self.notify(str(exc), title="Messenger", severity="error")
        self.show_status()

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("move", "focus_conversations", "focus_messages", "new_chat", "devices"):
            return self.connection is not None
        line = self._selected_line() if self.is_mounted else None
        if action in ("reply", "react"):
            return line is not None and line.seq > 0 and line.content is not None
        if action in ("save", "open_line"):
            return line is not None and line.content is not None
        if action == "answer_card":
            card = card_in(line.content) if line is not None else None
            return card is not None and bool(card.verbs())
        if action == "play":
            return line is not None and isinstance(line.content, Voice)
        if action == "safety_number":
            conv = self._conversation()
            return conv is not None and conv.kind == "direct"
        return self.connection is not None and self.conversation_id is not None

    def action_move(self, step: int) -> None:
        focused = self.screen.focused
        olist = focused if isinstance(focused, OptionList) else self.messages_list
        if step > 0:
            olist.action_cursor_down()
        else:
            olist.action_cursor_up()

    def _focus_now(self, widget: Widget) -> None:
        """Focus at once (not after the pending keys): typing right after `i` lands in the line."""
        self.screen.set_focus(widget)

    def action_focus_conversations(self) -> None:
        self._focus_now(self.conversations_list)

    def action_focus_messages(self) -> None:
        self._focus_now(self.messages_list)

    def action_write(self) -> None:
        self._focus_now(self.query_one("#chat-input", Input))

    def _show_reply(self) -> None:
        label = self.query_one("#chat-reply", Static)
        conv = self._conversation()
        target = conv.line(self.reply_to) if conv and self.reply_to else None
        label.update(f"↪ replying to: {snippet(target)}  (Esc: cancel)" if target else "")
        label.set_class(target is not None, "-shown")

    def action_reply(self) -> None:
        line = self._selected_line()
        if line is not None and line.seq:
            self.reply_to = line.seq
            self._show_reply()
            self.action_write()

    def action_react(self) -> None:
        from tui.screens.dialogs import PromptScreen

        line = self._selected_line()
        if line is None or not line.seq:
            return
        seq = line.seq

        def chosen(emoji: str | None) -> None:
            if emoji:
                self._send("react", (seq, emoji))

        self.app.push_screen(
            PromptScreen("React with (an emoji):", _non_empty, value=DEFAULT_REACTION), chosen
        )

    def action_attach(self) -> None:
        self._ask_file("Send which file or image? (path)", "file")

    def action_voice(self) -> None:
        self._ask_file("Send which voice recording? (.ogg Opus or .wav)", "voice")

    def _ask_file(self, question: str, kind: str) -> None:
        from tui.screens.dialogs import PromptScreen

        def chosen(path: Path | None) -> None:
            if path is not None:
                self._send(kind, path)

        self.app.push_screen(PromptScreen(question, parse_file), chosen)

    def action_position(self) -> None:
        from tui.screens.dialogs import PromptScreen

        def chosen(value: tuple[float, float, float] | None) -> None:
            if value is not None:
                self._send("position", value)

        self.app.push_screen(
            PromptScreen(
                "Send which position? latitude, longitude[, accuracy m]",
                parse_position,
                placeholder="52.52, 13.405",
            ),
            chosen,
        )

    def action_new_chat(self, email: str = "", error: str = "") -> None:
        from tui.screens.dialogs import PromptScreen

        def chosen(email: str | None) -> None:
            if email:
                self._start_direct(email)

        self.app.push_screen(
            PromptScreen(
                "Chat with (address):",
                _an_address,
                value=email,
                placeholder="name@example.org",
                error=error,
            ),
            chosen,
        )

    @work(group="chat-send", exit_on_error=False)
    async def _start_direct(self, email: str) -> None:
        conn = self.connection
        if conn is None:
            return
        try:
            cid = await conn.start_direct(email.strip())
        except MessengerError as exc:  # asked again, with what was typed, to correct it
            self.action_new_chat(email, f"{exc} (Esc: cancel).")
            return
        self.open_conversation(cid)
        self.show_conversations()
        self.action_write()

    def action_save(self) -> None:
        line = self._selected_line()
        if line is not None:
            self._save_line(line, open_after=False)

    def action_play(self) -> None:
        line = self._selected_line()
        if line is not None and isinstance(line.content, Voice):
            self._save_line(line, open_after=True)

    def action_open_line(self) -> None:
        line = self._selected_line()
        if line is None or line.content is None:
            return
        content = line.content
        card = card_in(content)
        if card is not None:  # a bridge notification: its mailbox item
            self.medapp.open_card_item(card)
            return
        if isinstance(content, Location):
            link = map_link(content.lat, content.lon)
            self.app.copy_to_clipboard(link)
            self.notify(link, title="Map link (copied)", timeout=10)
        elif isinstance(content, File) and content.width and content.height:
            self._view_image(line)
        elif isinstance(content, File | Voice):
            self._save_line(line, open_after=True)

    def action_answer_card(self) -> None:
        """Choose one of the bridge's answers to the card (accept, flag, …) and send it."""
        line = self._selected_line()
        card = card_in(line.content) if line is not None else None
        conn = self.connection
        if card is None or conn is None or self.conversation_id is None:
            return
        cid, profile = self.conversation_id, conn.profile

        def chosen(verb: str | None) -> None:
            if verb is not None:
                self.medapp.send_card_command(profile, cid, card, verb)

        from tui.screens.dialogs import ChoiceScreen

        choices = [(label, reply.split(" ", 1)[0]) for label, reply in card.actions]
        self.app.push_screen(ChoiceScreen(f"Answer #{card.ref}: {card.subject}", choices), chosen)

    @work(group="attachment", exit_on_error=False)
    async def _view_image(self, line: ChatLine) -> None:
        from tui.screens.chat_image import ImageScreen

        conn = self.connection
        content = line.content
        if conn is None or not isinstance(content, File) or not content.attachment.attachment_id:
            return
        data = await conn.fetch(content.attachment)
        self.app.push_screen(ImageScreen(content.attachment.name, data))

    @work(group="attachment", exit_on_error=False)
    async def _save_line(self, line: ChatLine, *, open_after: bool) -> None:
        from tui.screens.attachments import audio_player, playback

        conn = self.connection
        content = line.content
        if conn is None or not isinstance(content, File | Voice):
            return
        ref = content.attachment
        if not ref.attachment_id:
            self.notify("Still queued: nothing to fetch yet.")
            return
        data = await conn.fetch(ref)
        if open_after and isinstance(content, Voice):
            suffix = ".wav" if ref.mime == "audio/wav" else ".ogg"
            command, sound = playback(data, suffix, self.medapp.config.audio_player)
            if command is None:
                self.notify(f"No audio player found; the recording is saved at {sound}.")
                return
            self._run_player(command, sound)
            return
        target = self.medapp.config.downloads_dir
        target.mkdir(parents=True, exist_ok=True)
        path = _free_name(target, Path(ref.name or "attachment").name)
        path.write_bytes(data)
        self.notify(f"Saved to {path} ({size_text(len(data))}).")
        if open_after:
            opener = audio_player(None)  # xdg-open first where there is one
            if opener is not None:
                self._run_player(opener, path)

    @work(thread=True, group="player", exit_on_error=False)
    def _run_player(self, command: list[str], path: Path) -> None:
        from tui.screens.attachments import run_player

        run_player(command, path)

    def action_safety_number(self) -> None:
        conv = self._conversation()
        conn = self.connection
        if conv is None or conn is None:
            return
        others = [m for m in conv.members if m != conn.user_id]
        if others:
            self._show_safety(others[0])

    @work(group="chat-trust", exit_on_error=False)
    async def _show_safety(self, user_id: str) -> None:
        from tui.screens.chat_trust import SafetyNumberScreen

        conn = self.connection
        assert conn is not None
        number = await conn.safety_number(user_id)
        devices = await conn.e2e.device_trust(user_id) if conn.e2e else []
        await self.app.push_screen(SafetyNumberScreen(await conn.name_of(user_id), number, devices))

    def action_devices(self) -> None:
        self._show_devices()

    @work(group="chat-trust", exit_on_error=False)
    async def _show_devices(self) -> None:
        from tui.screens.chat_trust import DevicesScreen

        conn = self.connection
        assert conn is not None
        devices = await conn.my_devices()

        def chosen(device_id: str | None) -> None:
            if device_id:
                self._approve(device_id)

        self.app.push_screen(DevicesScreen(devices, conn.device_id, conn.holds_master_key), chosen)

    @work(group="chat-trust", exit_on_error=False)
    async def _approve(self, device_id: str) -> None:
        conn = self.connection
        assert conn is not None
        await conn.approve_device(device_id)
        self.notify(f"Device {device_id[:8]} approved: it now gets your group keys.")


def _non_empty(text: str) -> str:
    if not text.strip():
        raise ValueError("Enter something (Esc: cancel).")
    return text.strip()


def _an_address(text: str) -> str:
    email = text.strip()
    if not Address(email).looks_valid:
        raise ValueError("Enter an e-mail address, such as name@example.org (Esc: cancel).")
    return email


def _free_name(folder: Path, name: str) -> Path:
    path = folder / name
    stem, suffix, n = path.stem, path.suffix, 1
    while path.exists():
        path = folder / f"{stem} ({n}){suffix}"
        n += 1
    return path
