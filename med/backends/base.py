"""The one seam between med and a mail server: the `Backend` protocol.

A backend is synchronous and blocking (exchangelib and O365 are); `DelegateSession` runs its
calls in a worker pool. Methods take and return `med.model` types only and raise `MedError`
subclasses only: each backend translates its library's errors in one place. Optional features
are named in `capabilities` (`med.model.Feature`); a method for a missing feature raises
`Unsupported`. Every method may also raise `AuthError`, `Throttled` (after the backend's one
retry layer gave up), `Unreachable` and `ServerError`; the `Raises:` sections list the others.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from datetime import datetime
from typing import Protocol, TypeVar, runtime_checkable

from med.errors import MedError
from med.model import (
    Address,
    AttachmentContent,
    Delegate,
    Event,
    Folder,
    FolderNode,
    FreeBusy,
    Item,
    ItemQuery,
    Mailbox,
    MailboxEvent,
    MeetingDelivery,
    Message,
    Page,
    Permission,
    ResponseType,
    SendOptions,
    SyncChange,
)

__all__ = ["Backend", "SyncBatch", "Watch", "one_by_one"]

SyncBatch = tuple[Sequence[SyncChange], str, bool]
T = TypeVar("T")
V = TypeVar("V")


def one_by_one(call: Callable[[V], T], values: Sequence[V]) -> list[T | MedError]:
    """A batch call for a backend without a batch request: one call per value, each
    refusal kept as that value's outcome."""
    out: list[T | MedError] = []
    for value in values:
        try:
            out.append(call(value))
        except MedError as exc:
            out.append(exc)
    return out


class Watch(Iterator[MailboxEvent]):
    """A subscription's events: read by one thread, cancelled from any other at once.

    A watch waits on the server for minutes; a plain generator blocked in a read can be
    neither closed nor interrupted from outside. `run(watch)` is the backend's generator: it
    sleeps with `watch.wait(seconds)` and wraps each blocking read in `watch.abortable(abort)`,
    so that `cancel()` wakes the sleep or breaks the read (within a second). The generator
    unsubscribes in its `finally`, in the reading thread, once the read has ended.
    """

    def __init__(self, run: Callable[[Watch], Generator[MailboxEvent]]) -> None:
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._abort: Callable[[], None] | None = None
        self._events = run(self)
        self._started = False

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> MailboxEvent:
        if self._cancelled.is_set():
            self.close()
            raise StopIteration
        self._started = True
        return next(self._events)

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True (at once) when the watch is cancelled meanwhile."""
        return self._cancelled.wait(seconds)

    @contextlib.contextmanager
    def abortable(self, abort: Callable[[], None]) -> Iterator[None]:
        """Run a blocking read that `abort()` (called from another thread) breaks."""
        with self._lock:
            self._abort = abort
        try:
            yield
        finally:
            with self._lock:
                self._abort = None

    def cancel(self) -> None:
        """End the watch from any thread: wake its sleep and break its read."""
        self._cancelled.set()
        with self._lock:
            abort = self._abort
        if abort is not None:
            with contextlib.suppress(OSError):
                abort()

    def close(self) -> None:
        """Cancel and unsubscribe; only from the reading thread (or when nobody reads)."""
        self.cancel()
        if self._started:
            self._events.close()
        else:
            # Unstarted, the generator would skip its `finally` (the unsubscribe): run it to
            # its end instead; being cancelled, it leaves its loop at once.
            self._started = True
            for _ in self._events:
                pass


"""(changes, new state, done) of one SyncFolderItems-like round."""


@runtime_checkable
class Backend(Protocol):
    """What `DelegateSession` needs from a server connection."""

    #: "ews" or "graph"; used in `Unsupported` messages.
    name: str
    #: Feature names this backend implements (`med.model.Feature` values).
    capabilities: frozenset[str]
    #: The authenticated user's primary address (lower-case).
    user: str

    def close(self) -> None:
        """Release connections and subscriptions. Never raises."""
        ...

    # ------------------------------------------------------------------ mailboxes & folders

    def own_mailbox(self) -> Mailbox:
        """The signed-in user's own mailbox.

        Raises:
            AuthError: the server rejected the credentials.
        """
        ...

    def resolve_names(self, query: str) -> Sequence[Mailbox]:
        """Mailboxes matching an address or (part of a) name, best match first.

        Raises:
            InvalidInput: the query is empty.
        """
        ...

    def archive_of(self, mailbox: Mailbox) -> Mailbox | None:
        """The archive mailbox of `mailbox`, or None when it has none or we may not see it.

        Raises:
            Unsupported: no archive access on this backend.
        """
        ...

    def folder_tree(self, mailbox: Mailbox) -> FolderNode:
        """All folders of a mailbox (or the public folder tree, or an archive) in one tree.

        The root node is the mailbox's top of information store (msgfolderroot). Costs one or
        two requests, however many folders there are.

        Raises:
            NotFound: no such mailbox.
            AccessDenied: we may see no folder of it.
            Unsupported: public folders or archives on a backend without them.
        """
        ...

    def default_folder(self, mailbox: str, name: str) -> Folder:
        """A mailbox's well-known folder: inbox, calendar, contacts, tasks, notes, drafts,
        sentitems, deleteditems, junkemail, voicemail, msgfolderroot, archivemsgfolderroot ...

        Raises:
            NotFound: no such mailbox or folder.
            AccessDenied: the folder is not visible to us.
            InvalidInput: `name` is no well-known folder name.
        """
        ...

    def get_folder(self, folder_id: str) -> Folder:
        """A folder by id, with counts and our effective rights where known.

        Raises:
            NotFound: no such folder.
            AccessDenied: the folder is not visible to us.
            InvalidInput: the id is malformed.
        """
        ...

    # ------------------------------------------------------------------ items

    def find_items(self, folder: Folder, query: ItemQuery) -> Page[Item]:
        """One page of the folder's items (summary fields, no body) in one request.

        Raises:
            NotFound: the folder is gone.
            AccessDenied: we may not read items there.
            InvalidInput: the query cannot be expressed for this folder.
        """
        ...

    def calendar_view(self, folder: Folder, start: datetime, end: datetime) -> Sequence[Event]:
        """Events of one calendar overlapping [start, end), series expanded to occurrences.

        Raises:
            NotFound: the folder is gone.
            AccessDenied: we may not even see free/busy there.
            InvalidInput: end is not after start, or the range is too long for the server.
        """
        ...

    def get_items(self, item_ids: Sequence[str]) -> Sequence[Item]:
        """Full items (body, attachments list, recipients) in one request, in order.

        Raises:
            NotFound: one of the items does not exist (any longer).
            AccessDenied: we may not read one of them.
            InvalidInput: an id is malformed.
        """
        ...

    def series_master(self, item_id: str) -> Event:
        """The recurring master of an occurrence or exception.

        Raises:
            NotFound: no such item, or it is not part of a series.
        """
        ...

    def create_item(self, folder: Folder, item: Item, *, send_invitations: bool) -> Item:
        """Create `item` in `folder` (with its `new_attachments`); returns it with id set.

        Meetings (events with attendees) send invitations when `send_invitations`.

        Raises:
            AccessDenied: we may not create items there.
            InvalidInput: the item is incomplete or inconsistent.
        """
        ...

    def update_item(self, item: Item, fields: Sequence[str], *, send_updates: bool) -> Item:
        """Write the named fields of `item` (by its id and change key); returns the new state.

        Field names are `med.model` field names (subject, body, flag, is_read, categories,
        start, end, recurrence ...).

        Raises:
            NotFound: the item is gone.
            AccessDenied: we may not edit it.
            Conflict: it changed on the server since `item.change_key`.
            InvalidInput: a field cannot be changed on this kind of item.
        """
        ...

    def update_items(
        self, items: Sequence[Item], fields: Sequence[str], *, send_updates: bool
    ) -> Sequence[Item | MedError]:
        """`update_item` for many items with as few round trips as the server allows.

        Returns one outcome per item, in order: its new state, or the `MedError` that
        refused it (the others are written all the same).

        Raises:
            only what fails the whole request (AuthError, Unreachable, ...).
        """
        ...

    def delete_item(self, item_id: str, *, hard: bool, send_cancellations: bool) -> None:
        """Delete an item (to Deleted Items unless `hard`); occurrences delete only themselves.

        Raises:
            NotFound: the item is gone.
            AccessDenied: we may not delete it.
        """
        ...

    def move_item(self, item_id: str, folder: Folder) -> str:
        """Move an item; returns its new id.

        Raises:
            NotFound: item or folder gone.
            AccessDenied: we may not delete at the source or create at the target.
        """
        ...

    def move_items(self, item_ids: Sequence[str], folder: Folder) -> Sequence[str | MedError]:
        """`move_item` for many items into one folder with as few round trips as possible.

        Returns one outcome per item, in order: its new id (empty where the server names
        none), or the `MedError` that refused it.

        Raises:
            only what fails the whole request.
        """
        ...

    def copy_item(self, item_id: str, folder: Folder) -> str:
        """Copy an item; returns the copy's id.

        Raises:
            NotFound: item or folder gone.
            AccessDenied: we may not read the item or create at the target.
        """
        ...

    def attachment(self, attachment_id: str) -> AttachmentContent:
        """An attachment with its bytes (an attached item as MIME).

        Raises:
            NotFound: no such attachment.
            AccessDenied: we may not read the item it belongs to.
        """
        ...

    def export_mime(self, item_id: str) -> bytes:
        """The item as MIME (RFC 5322 / .eml) as the server renders it.

        Raises:
            NotFound: no such item.
            Unsupported: no MIME export on this backend.
        """
        ...

    def master_categories(self, mailbox: str) -> Sequence[str]:
        """The mailbox's master category list (names), empty when it has none.

        Raises:
            Unsupported: the backend cannot read it.
            AccessDenied: we may not read the owner's configuration.
        """
        ...

    # ------------------------------------------------------------------ sending & meetings

    def send(self, message: Message, options: SendOptions) -> None:
        """Send a new message (From/Sender set per `options`), copy to Sent Items if asked.

        Raises:
            AccessDenied: no send-on-behalf or send-as right for `options.from_mailbox`.
            InvalidInput: no recipients or a malformed address.
        """
        ...

    def save_draft(self, message: Message, options: SendOptions) -> Message:
        """Save a draft in the Drafts of `options.from_mailbox` (or our own); returns it.

        Raises:
            AccessDenied: we may not create items in that Drafts folder.
        """
        ...

    def reply(self, item_id: str, body: str, *, reply_all: bool, options: SendOptions) -> None:
        """Reply (to all) to a message, quoting it as the server does.

        Raises:
            NotFound: the message is gone.
            AccessDenied: as for `send`.
        """
        ...

    def forward(
        self, item_id: str, to: Sequence[Address], body: str, *, options: SendOptions
    ) -> None:
        """Forward a message with its attachments.

        Raises:
            NotFound: the message is gone.
            AccessDenied: as for `send`.
            InvalidInput: no recipients.
        """
        ...

    def respond(
        self,
        item_id: str,
        response: ResponseType,
        message: str | None,
        *,
        send: bool,
        proposal: tuple[datetime, datetime] | None = None,
        change_key: str | None = None,
    ) -> None:
        """Accept, tentatively accept or decline a meeting request or calendar item.

        On behalf of the mailbox owner when the item lives in their mailbox. `proposal`
        (tentative or decline only) proposes a new start and end to the organizer.
        `change_key`: the caller listed the item, knows it is a meeting and passes its change
        key, so the backend need not read the item again first.

        Raises:
            NotFound: the request is gone.
            InvalidInput: the item is no meeting, or `response` is none of the three.
            AccessDenied: we may not act on the owner's calendar.
            Unsupported: the backend cannot carry a proposed new time.
        """
        ...

    def free_busy(
        self, addresses: Sequence[str], start: datetime, end: datetime
    ) -> Sequence[FreeBusy]:
        """Busy slots of several people; a person without data has `error` set, no exception.

        Raises:
            InvalidInput: range empty or too long.
            Unsupported: no free/busy on this backend.
        """
        ...

    # ------------------------------------------------------------------ permissions

    def permissions(self, folder: Folder) -> Sequence[Permission]:
        """The folder's permission list (default, anonymous and named users).

        Raises:
            AccessDenied: only the folder owner may read it.
            Unsupported: the backend has no folder permissions.
        """
        ...

    def set_permissions(self, folder: Folder, permissions: Sequence[Permission]) -> None:
        """Replace the folder's permission list.

        Raises:
            AccessDenied: we are not folder owner.
            InvalidInput: an unknown principal.
            Unsupported: the backend cannot change folder permissions.
        """
        ...

    def delegates(self, mailbox: str) -> tuple[Sequence[Delegate], MeetingDelivery]:
        """The delegates of a mailbox and where meeting requests go.

        Raises:
            AccessDenied: only the owner (or an admin) may read them.
            Unsupported: the backend has no delegate API.
        """
        ...

    # ------------------------------------------------------------------ sync & notifications

    def sync_items(self, folder: Folder, state: str | None, max_changes: int) -> SyncBatch:
        """One round of incremental sync from `state` (None = from the beginning).

        Raises:
            NotFound: the folder is gone.
            InvalidInput: the state is not valid for this folder (start over with None).
            Unsupported: no sync on this backend.
        """
        ...

    def subscribe(self, folders: Sequence[Folder]) -> Iterator[MailboxEvent]:
        """Events of the folders as they happen, until the iterator is closed.

        Streaming where the server has it, pull (polling) otherwise; a lost subscription is
        renewed and reported as a RESUBSCRIBED event (sync to catch up). While the server
        cannot be reached the watch reports OFFLINE and retries by itself; it subscribes
        anew once the server answers again (RESUBSCRIBED). Return a `Watch` so that the
        session can end it at once from another thread.

        Raises:
            NotFound: a folder is gone.
            Unsupported: no notifications on this backend.
        """
        ...
