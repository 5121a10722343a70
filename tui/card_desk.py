"""The app's side of bridge cards: open the card's item, answer from the card, show the result.

Mixed into `MedApp`. Opening resolves the card's `medbridge://` item through med (the user's
own session) and shows it in the mail view, or for appointments in the calendar. Answers are the
bridge's reply commands sent as chat messages through the profile's messenger connection; the
bridge's reply names the command's seq and is attached to that card (`tui.cards.CardResults`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work

from messenger.client.content import Text
from tui import messages as msg
from tui.cards import BridgeCard, CardResults, SentCommand, card_in

if TYPE_CHECKING:
    from textual.app import App

    from med import DelegateSession
    from tui.messaging import MessengerConnection, MessengerHub

    _Base = App[Any]
else:
    _Base = object

__all__ = ["CardDesk"]


class CardDesk(_Base):
    messenger: MessengerHub | None
    card_results: CardResults
    #: conversation id → the user id that posts cards there (the bridge's account).
    card_senders: dict[str, str]

    if TYPE_CHECKING:

        @property
        def session(self) -> DelegateSession: ...

        def action_goto(self, name: str) -> None: ...

    def connection_of(self, profile: str) -> MessengerConnection | None:
        hub = self.messenger
        return hub.get(profile) if hub is not None else None

    # ------------------------------------------------------------------ incoming

    def on_chat_message_arrived(self, message: msg.ChatMessageArrived) -> None:
        line = message.line
        if line.mine or not isinstance(line.content, Text):
            return
        cid = message.conversation_id
        if card_in(line.content) is not None:
            self.card_senders[cid] = line.sender_user_id
        elif self.card_senders.get(cid) == line.sender_user_id:
            if self.card_results.answer(cid, line.content.body, line.reply_to) is None:
                return
        else:
            return
        self.on_cards_changed(msg.CardsChanged())

    def on_chat_line_changed(self, message: msg.ChatLineChanged) -> None:
        """A queued command reached the server: its seq is what the bridge's answer names."""
        connection = self.connection_of(message.profile)
        conv = connection.conversations.get(message.conversation_id) if connection else None
        if conv is None or not message.new_key:
            return
        line = next((ln for ln in conv.lines if ln.key == message.new_key), None)
        if line is not None and line.mine and line.seq:
            self._stored(message.conversation_id, line.txn_id, line.seq)

    def _stored(self, conversation_id: str, txn_id: str, seq: int) -> None:
        if self.card_results.stored(conversation_id, txn_id, seq) is not None:
            self.on_cards_changed(msg.CardsChanged())

    # ------------------------------------------------------------------ answering

    def send_card_command(
        self, profile: str, conversation_id: str, card: BridgeCard, verb: str
    ) -> None:
        command = card.command(verb)
        connection = self.connection_of(profile)
        if command is None:
            self.notify(f"The bridge offers no “{verb}” for this notification.")
            return
        if connection is None:
            self.notify("The messenger is not connected.", severity="error")
            return
        sent = self.card_results.sent(conversation_id, card.ref, command)
        self.post_message(msg.CardsChanged())
        self.send_command(connection, conversation_id, sent)

    @work(group="send", exit_on_error=False)
    async def send_command(
        self, connection: MessengerConnection, conversation_id: str, sent: SentCommand
    ) -> None:
        # Queued by the connection while offline, sent when it is back (then the line's change
        # tells its seq); online it comes back with its seq already.
        line = await connection.send_text(conversation_id, sent.command)
        sent.txn_id = line.txn_id
        if line.seq:
            self._stored(conversation_id, line.txn_id, line.seq)

    def on_cards_changed(self, message: msg.CardsChanged) -> None:
        for screen in self.screen_stack:
            follow = getattr(screen, "cards_changed", None)
            if callable(follow):
                follow()

    # ------------------------------------------------------------------ opening

    def open_card_item(self, card: BridgeCard) -> None:
        if self.session is None:
            return
        self.load_card_item(card.link.item_id)

    @work(group="reader", exit_on_error=False)
    async def load_card_item(self, item_id: str) -> None:
        item = await self.session.get(item_id)
        self.post_message(msg.CardItemLoaded(item))

    def on_card_item_loaded(self, message: msg.CardItemLoaded) -> None:
        from med.model import Event
        from tui.screens.calendar import CalendarScreen
        from tui.screens.mail import MailScreen

        item = message.item
        if isinstance(item, Event):
            self.action_goto("calendar")
            calendar = self.get_screen("calendar")
            if isinstance(calendar, CalendarScreen):
                calendar.reveal(item)
            return
        self.action_goto("mail")
        mail = self.get_screen("mail")
        if isinstance(mail, MailScreen):
            mail.reveal(item)
