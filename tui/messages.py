"""Typed messages that carry server results from workers back to the screens.

Workers never touch widgets; they post one of these and the screen's handler updates the view.
Failures are not messages: a worker that raises ends in `Worker.StateChanged(ERROR)`, and the
app's one handler shows a MedError's sentence as a notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from textual.message import Message

from med.model import Event, Folder, FolderNode, Item, Mailbox, Page
from med.model import Message as MedMessage
from messenger.client.alarms import AlarmResult

if TYPE_CHECKING:
    from tui.messaging import Branding, ChatLine


@dataclass
class MailboxLoaded(Message):
    """One mailbox's folder tree arrived (the tree fills in as they come)."""

    mailbox: Mailbox
    tree: FolderNode
    profile: str = ""


@dataclass
class WorkspaceReady(Message):
    """All mailboxes the user can open (in `profile`) are loaded."""

    count: int
    profile: str = ""


@dataclass
class WorkspaceFailed(Message):
    """The mailbox list could not be loaded (e.g. sign-in refused); `reason` is med's sentence."""

    reason: str
    profile: str = ""


@dataclass
class SignInRefused(Message):
    """The server refused the password; the app asks for it again."""

    reason: str
    profile: str = ""


@dataclass
class ConnectionChanged(Message):
    """The server stopped answering (`online` False) or answers again."""

    online: bool


@dataclass
class PageLoaded(Message):
    """A page of the list shown in `folder`; `generation` says which listing it belongs to."""

    folder: Folder
    page: Page[Item]
    generation: int


@dataclass
class ItemLoaded(Message):
    """The full item (body, attachments) for the reader or an editor."""

    item: Item


@dataclass
class ItemChanged(Message):
    """An item was updated on the server; `item` is its new state."""

    item: Item
    note: str = ""


@dataclass
class ItemRemoved(Message):
    """An item left the folder shown (deleted or moved)."""

    item_id: str
    note: str = ""


@dataclass
class ItemCreated(Message):
    item: Item
    note: str = ""


@dataclass
class MailSent(Message):
    """The server accepted a message; its local draft can go."""

    draft_id: str
    summary: str


@dataclass
class DraftStored(Message):
    """A draft went to the server's Drafts, or (on_server False) stayed on this computer."""

    draft_id: str
    note: str
    on_server: bool


@dataclass
class DraftOpened(Message):
    """A draft from a Drafts folder, loaded in full, to continue writing."""

    message: MedMessage


@dataclass
class MailboxChanged(Message):
    """The server reported a change in a watched folder (None: in any of them)."""

    mailbox: str
    folder_ids: tuple[str | None, ...]


@dataclass
class LiveRows(Message):
    """The first page of the open folder again, after a live change."""

    folder: Folder
    page: Page[Item]


@dataclass
class EventsLoaded(Message):
    """Events of the overlaid calendars in [start, end), keyed by calendar folder id."""

    start: datetime
    end: datetime
    events: dict[str, list[Event]]
    generation: int


@dataclass
class FolderChanged(Message):
    """Fresh counts and rights of a folder from the server."""

    folder: Folder
    profile: str = ""


@dataclass
class AlarmsChanged(Message):
    """The SDK opened alarm events (new alarms, rounds, answers, state changes) of a profile."""

    profile: str
    results: list[AlarmResult]


@dataclass
class AlarmAnswered(Message):
    """This user acknowledged or declined an alarm (the server took it)."""

    alarm_id: str
    kind: str


@dataclass
class AlarmStatusLoaded(Message):
    """Recipients and answers of an alarm (`GET /v1/alarms/{id}`), for the sender's view."""

    alarm_id: str
    status: dict[str, Any]


@dataclass
class AlarmListsLoaded(Message):
    """The tenant's alarm lists (`GET /v1/alarm-lists`), to raise an alarm to one."""

    lists: list[dict[str, Any]]


@dataclass
class CardsChanged(Message):
    """A command left a bridge card, or the bridge answered one: cards redraw."""


@dataclass
class CardItemLoaded(Message):
    """The mailbox item a bridge card names, to show in the mail or calendar view."""

    item: Item


# --------------------------------------------------------------------------- messenger
# Posted by `tui.messaging.MessengerConnection`; each names the profile whose account it is.


@dataclass
class ConnectionStateChanged(Message):
    """The messenger connection of `profile` is "online", "connecting" or "offline"."""

    profile: str
    state: str
    reason: str = ""


@dataclass
class ConversationsChanged(Message):
    """Conversations were added, renamed, changed members, or their unread counts changed."""

    profile: str


@dataclass
class ChatMessageArrived(Message):
    """A message to show: decrypted (its `line.content` is the structured content), one that
    could not be read (`line.problem`), or one of ours just queued."""

    profile: str
    conversation_id: str
    line: ChatLine


@dataclass
class ChatLineChanged(Message):
    """A shown message changed (reaction, receipt, edit, deletion, a queued one was sent);
    `key` is the line's key before the change, `new_key` after it when it changed."""

    profile: str
    conversation_id: str
    key: str
    new_key: str = ""


@dataclass
class BrandingChanged(Message):
    """The tenant's colours for `profile`'s messenger."""

    profile: str
    branding: Branding


@dataclass
class MessengerEventArrived(Message):
    """A raw stream event other features handle (alarms: `alarm`, `alarm_status`)."""

    profile: str
    event: dict[str, Any]
