"""The main screen: mailbox tree, virtual item list, reader; mail, task, contact and note actions.

Every server call runs in a worker and answers with a message from `tui.messages`; handlers
update widgets. Actions the folder's rights do not allow are hidden through `check_action`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, ClassVar

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Footer, Input

from med.errors import AccessDenied, AuthError, MedError, NotFound, Unreachable, Unsupported
from med.model import (
    FlagStatus,
    Folder,
    FolderKind,
    FolderNode,
    Importance,
    Item,
    ItemQuery,
    Mailbox,
    MailboxEventKind,
    MailboxKind,
    Message,
    SortField,
    Task,
    TaskStatus,
)
from tui import messages as msg
from tui.actions import MAIL_ACTIONS, bindings
from tui.dates import parse_due
from tui.drafts import Draft
from tui.presenter import rights_summary
from tui.profiles import OpenProfile, ProfileState
from tui.rights import allows
from tui.screens.assistant_actions import AssistantActions
from tui.screens.base import MedScreen
from tui.screens.chat_pane import ChatPane
from tui.screens.dialogs import ChoiceScreen, ConfirmScreen, PromptScreen
from tui.widgets.context_bar import ContextBar, NewMailNotice, TopBar
from tui.widgets.folder_tree import FolderTree, ProfileNode, TreeData
from tui.widgets.item_list import ItemList
from tui.widgets.reader import Reader

if TYPE_CHECKING:
    pass

#: List order per folder kind; mail keeps the server's natural order (newest first).
_SORT: dict[FolderKind, SortField] = {
    FolderKind.TASKS: "due",
    FolderKind.CONTACTS: "name",
    FolderKind.CALENDAR: "start",
}

#: How long the cursor must rest on a row before its body is fetched.
FETCH_DELAY_S = 0.08
#: Rows of a folder's first request: more than a tall terminal shows (see `load_page`).
FIRST_SCREEN_ROWS = 60
#: The longest the other mailboxes' trees wait for the first list to be shown.
FIRST_LISTING_WAIT_S = 1.5
#: Live changes arriving within this time are applied together (one list reload).
LIVE_COALESCE_S = 0.3
#: Below this many columns the reader shares the list's place (two panes) ...
NARROW_BELOW = 120
#: ... and below this one pane shows at a time.
SINGLE_BELOW = 80
_FOLDER_SEARCH_HINT = "Search subject, body and sender; Enter to search, Esc to clear"
#: While the server cannot be reached, how often the open folder is asked for again.
RECONNECT_S = 2.0

_NEXT_IMPORTANCE = {
    Importance.NORMAL: Importance.HIGH,
    Importance.HIGH: Importance.LOW,
    Importance.LOW: Importance.NORMAL,
}


def _non_empty_password(text: str) -> str:
    if not text:
        raise ValueError("Enter the password (Esc: later).")
    return text


class MailScreen(AssistantActions, MedScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = bindings(MAIL_ACTIONS)

    # Below NARROW_BELOW columns two panes (folders, list) and the reader takes the list's
    # place while it has the focus; below SINGLE_BELOW one pane at a time, as aerc does.
    DEFAULT_CSS = """
    MailScreen #panes { height: 1fr; }
    MailScreen ItemList { width: 3fr; }
    MailScreen Reader { width: 2fr; }
    MailScreen #search { dock: bottom; display: none; }
    MailScreen #search.-open { display: block; }
    MailScreen.-narrow FolderTree { width: 26; }
    MailScreen.-narrow Reader { display: none; width: 1fr; }
    MailScreen.-narrow.-reading Reader { display: block; }
    MailScreen.-narrow.-reading ItemList { display: none; }
    MailScreen.-single FolderTree { display: none; }
    MailScreen.-single.-browsing FolderTree { display: block; width: 1fr; }
    MailScreen.-single.-browsing ItemList { display: none; }
    MailScreen #mail-chat { display: none; width: 46; border-left: vkey $primary; }
    MailScreen.-chat #mail-chat { display: block; }
    MailScreen.-narrow.-chat FolderTree { display: none; }
    MailScreen.-narrow.-chat.-browsing FolderTree { display: block; }
    MailScreen.-single.-chat #mail-chat { width: 1fr; border-left: none; }
    MailScreen.-single.-chat FolderTree { display: none; }
    MailScreen.-single.-chat ItemList { display: none; }
    MailScreen.-single.-chat Reader { display: none; }
    """

    def __init__(self) -> None:
        super().__init__(id="mail")
        self.folder: Folder | None = None
        self.search_text: str | None = None
        self._full: Item | None = None
        self._fetch_timer: Timer | None = None
        self._binding_state: tuple[str | None, bool] = (None, False)
        self._opening = False
        self._watched: str | None = None
        self._watched_profile = ""
        #: Set once the first list is on screen; the trees not needed for it wait for it.
        self._first_listed = asyncio.Event()
        self._stale: set[str | None] = set()
        self._live_timer: Timer | None = None
        #: Profiles whose refused password the user has not entered again yet.
        self._sign_in_pending: set[str] = set()
        self._body_search = False
        #: An item to select once its folder's first page is shown (opened from a card).
        self._reveal: Item | None = None

    def compose(self) -> ComposeResult:
        yield TopBar("Loading mailboxes…")
        with Horizontal(id="panes"):
            yield FolderTree(id="folders")
            yield ItemList(
                page_size=self.medapp.config.page_size, now=self.medapp.now(), id="items"
            )
            yield Reader(id="reader")
            yield ChatPane(compact=True, id="mail-chat")
        yield Input(placeholder=_FOLDER_SEARCH_HINT, id="search")
        yield Footer()

    def action_toggle_chat(self) -> None:
        """Show the messenger beside the mail (focused), or hide it again."""
        shown = not self.has_class("-chat")
        self.set_class(shown, "-chat")
        pane = self.query_one("#mail-chat", ChatPane)
        if shown:
            pane.refresh_all()
            self.call_after_refresh(pane.conversations_list.focus)
        else:
            self._focus_pane(self.query_one(ItemList))

    def on_resize(self, event: events.Resize) -> None:
        width = event.size.width
        if self.has_class("-narrow") != (width < NARROW_BELOW) or self.has_class("-single") != (
            width < SINGLE_BELOW
        ):
            self.set_class(width < NARROW_BELOW, "-narrow")
            self.set_class(width < SINGLE_BELOW, "-single")
            self._update_context()

    @on(events.DescendantFocus)
    def _focus_moved(self, event: events.DescendantFocus) -> None:
        self.set_class(isinstance(event.widget, Reader), "-reading")
        self.set_class(isinstance(event.widget, FolderTree), "-browsing")

    def _focus_pane(self, pane: Widget) -> None:
        """Focus a pane, first showing it where the layout hides it when unfocused."""
        self.set_class(isinstance(pane, Reader), "-reading")
        self.set_class(isinstance(pane, FolderTree), "-browsing")
        self.call_after_refresh(pane.focus)

    def on_mount(self) -> None:
        self.query_one(Reader).show(None, placeholder="Choose a folder on the left.")
        self._focus_pane(self.query_one(FolderTree))
        self.set_interval(RECONNECT_S, self._reconnect_tick)
        self.load_workspace()

    # ------------------------------------------------------------------ loading

    def load_workspace(self) -> None:
        """Load every profile's mailboxes side by side; one failing leaves the others."""
        tree = self.query_one(FolderTree)
        for profile in self.medapp.profiles.values():
            if self.medapp.multi:
                tree.add_profile(profile.name, self._profile_label(profile))
            self.load_profile(profile.name)

    def _profile_label(self, profile: OpenProfile) -> str:
        """The tree's line for a profile: organisation and user, or why it failed."""
        user = profile.session.user if profile.session is not None else ""
        if profile.state is ProfileState.FAILED:
            return f"✗ {profile.organisation}: {profile.error}  ($ retries)"
        if profile.state is ProfileState.LOADING:
            return f"⟳ {profile.organisation} ({user}) signing in…"
        return f"{profile.organisation} ({user})"

    def _show_profile(self, name: str) -> None:
        if self.medapp.multi:
            profile = self.medapp.profiles[name]
            self.query_one(FolderTree).add_profile(name, self._profile_label(profile))

    def load_profile(self, name: str) -> None:
        profile = self.medapp.profiles[name]
        if profile.session is None:  # it could not even be opened: the tree says why
            self._show_profile(name)
            return
        profile.reset()
        self.query_one(FolderTree).clear_profile(name)
        self._show_profile(name)
        self.load_mailboxes(name)

    @work(group="workspace", exit_on_error=False)
    async def load_mailboxes(self, name: str) -> None:
        profile = self.medapp.profiles[name]
        session = profile.session
        assert session is not None
        try:
            mailboxes = await session.mailboxes()
        except AuthError as exc:
            if profile.relogin is None:
                self.post_message(msg.WorkspaceFailed(str(exc), name))
                raise
            self.post_message(msg.SignInRefused(str(exc), name))
            return
        except MedError as exc:
            self.post_message(msg.WorkspaceFailed(str(exc), name))
            raise  # the app's worker handler shows it as a notification too

        async def load(mailbox: Mailbox) -> tuple[Mailbox, FolderNode | None]:
            try:
                return mailbox, await session.folder_tree(mailbox)
            except (AccessDenied, NotFound, Unsupported) as exc:
                # One mailbox we cannot open must not hide the others; say which and why.
                where = self.medapp.organisation_prefix(name)
                self.notify(
                    f"{where}{mailbox.display_name}: {exc}", title=exc.title, severity="warning"
                )
                return mailbox, None

        # The mailbox opened first (the boss's) loads alone, and the others wait until its
        # inbox is listed (or FIRST_LISTING_WAIT_S): the user waits for that list, not for
        # the trees (issue #22). They then load side by side, each shown as it arrives.
        first = [m for m in mailboxes if m.kind is MailboxKind.DELEGATED][:1]
        rest = [m for m in mailboxes if m not in first]
        for part in (first, rest):
            if part is rest and first and self._opens_first(name):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(FIRST_LISTING_WAIT_S):
                        await self._first_listed.wait()
            for next_tree in asyncio.as_completed([load(m) for m in part]):
                mailbox, tree = await next_tree
                if tree is not None:
                    self.post_message(msg.MailboxLoaded(mailbox, tree, name))
        self.post_message(msg.WorkspaceReady(len(mailboxes), name))

    def _opens_first(self, profile: str) -> bool:
        """Whether the boss's inbox of `profile` is what opens first (no start folder)."""
        return (
            self.medapp.start_folder is None
            and self.folder is None
            and profile == next(iter(self.medapp.profiles))
        )

    def on_mailbox_loaded(self, message: msg.MailboxLoaded) -> None:
        workspace = self.medapp.profiles[message.profile].workspace
        workspace.add_tree(message.mailbox, message.tree)
        self.query_one(FolderTree).add_mailbox(message.mailbox, message.tree, message.profile)
        # An assistant mostly works in the boss's inbox: open it the moment it is known
        # (in the first profile named, when several are open).
        if (
            self.folder is None
            and self.medapp.start_folder is None
            and message.mailbox.kind is MailboxKind.DELEGATED
            and message.profile == next(iter(self.medapp.profiles))
            and not self._opening
        ):
            inbox = workspace.default_folder(message.mailbox, "inbox")
            if inbox is not None:
                self._opening = True
                self.query_one(FolderTree).select_folder(inbox.id, message.profile)

    def _open_default(self) -> None:
        """With nothing open yet, open the boss's inbox (else one's own) of the first profile
        that is ready, once every profile named before it has failed."""
        if self.folder is not None or self._opening:
            return
        for profile in self.medapp.profiles.values():
            if profile.state is ProfileState.FAILED:
                continue
            if profile.state is not ProfileState.READY:
                return  # wait for the profile named first
            ws = profile.workspace
            boxes = sorted(ws.senders(), key=lambda m: m.kind is not MailboxKind.DELEGATED)
            for mailbox in boxes:
                inbox = ws.default_folder(mailbox, "inbox")
                if inbox is not None:
                    self._opening = True
                    self.query_one(FolderTree).select_folder(inbox.id, profile.name)
                    return

    def on_sign_in_refused(self, message: msg.SignInRefused) -> None:
        """Ask for the password again here, instead of retrying the refused one."""
        profile = self.medapp.profiles[message.profile]
        user = profile.session.user if profile.session is not None else profile.name
        where = self.medapp.organisation_prefix(message.profile)
        profile.fail(message.reason)
        self._show_profile(message.profile)
        self._open_default()
        if not self.medapp.multi or self.folder is None:
            self.query_one(ContextBar).update(
                f"{where}{message.reason}  ·  enter the password again"
            )

        def entered(password: str | None) -> None:
            if password is None:
                if not self.medapp.multi or self.folder is None:
                    self.query_one(ContextBar).update(
                        f"{where}{message.reason}  ·  $ asks for the password again"
                    )
                self._sign_in_pending.add(message.profile)
                return
            self.sign_in(password, message.profile)

        self.app.push_screen(
            PromptScreen(
                f"{where}The server did not accept the password of {user}. Password:",
                _non_empty_password,
                password=True,
            ),
            entered,
        )

    @work(group="workspace", exit_on_error=False)
    async def sign_in(self, password: str, profile: str = "") -> None:
        self._sign_in_pending.discard(profile)
        await self.medapp.sign_in_again(password, profile)
        if not self.medapp.multi or self.folder is None:
            self.query_one(ContextBar).update("Loading mailboxes…")
        self.load_profile(profile)

    def on_workspace_failed(self, message: msg.WorkspaceFailed) -> None:
        self.medapp.profiles[message.profile].fail(message.reason)
        self._show_profile(message.profile)
        if not self.medapp.multi or self.folder is None:
            where = self.medapp.organisation_prefix(message.profile)
            self.query_one(ContextBar).update(f"{where}{message.reason}  ·  $ tries again")
        self._open_default()

    def on_workspace_ready(self, message: msg.WorkspaceReady) -> None:
        profile = self.medapp.profiles[message.profile]
        profile.state = ProfileState.READY
        self._show_profile(message.profile)
        start = self.medapp.start_folder
        self.medapp.start_folder = None
        if start is None or not self.open_path(start):
            self._open_default()
        self._update_context()
        if self.app.is_screen_installed("calendar"):
            from tui.screens.calendar import CalendarScreen

            calendar = self.app.get_screen("calendar")
            if isinstance(calendar, CalendarScreen):
                calendar.workspace_ready()

    def open_path(self, path: str, profile: str | None = None) -> bool:
        """Open a folder by 'mailbox address/Folder/Sub' (or 'public/Folder'); True if found.
        Looks in `profile`, else in the active profile first, then in the others."""
        address, _, rest = path.partition("/")
        names = [profile] if profile is not None else [self.medapp.active]
        names += [n for n in self.medapp.profiles if n not in names and profile is None]
        for name in names:
            ws = self.medapp.profiles[name].workspace
            for mailbox in ws.mailboxes:
                if mailbox.address != address:
                    continue
                tree = ws.trees.get(mailbox.key)
                node = tree
                for part in [p for p in rest.split("/") if p]:
                    if node is None:
                        break
                    node = next(
                        (
                            c
                            for c in node.children
                            if part.lower()
                            in (c.folder.name.lower(), (c.folder.distinguished or "").lower())
                        ),
                        None,
                    )
                if node is not None and node is not tree:
                    self.query_one(FolderTree).select_folder(node.folder.id, name)
                    return True
        return False

    @on(FolderTree.NodeSelected)
    def _folder_chosen(self, event: FolderTree.NodeSelected[TreeData]) -> None:
        tree = self.query_one(FolderTree)
        if isinstance(event.node.data, Folder):
            self.open_folder(event.node.data, profile=tree.profile_of(event.node))
        elif isinstance(event.node.data, ProfileNode):
            name = event.node.data.name
            if self.medapp.profiles[name].state is ProfileState.FAILED:
                self.retry_profile(name)

    def retry_profile(self, name: str) -> None:
        """Sign in again to a failed profile (asking for the password where it was refused)."""
        if name in self._sign_in_pending:
            self._sign_in_pending.discard(name)
            profile = self.medapp.profiles[name]
            self.post_message(msg.SignInRefused(profile.error or "", name))
            return
        self.load_profile(name)

    def open_folder(
        self, folder: Folder, *, search: str | None = None, profile: str | None = None
    ) -> None:
        if profile is not None:
            self.medapp.use_profile(profile)
        self.folder = self.medapp.workspace.folders.get(folder.id, folder)
        self.search_text = search
        items = self.query_one(ItemList)
        generation = items.reset()
        self.query_one(Reader).show(None, placeholder="")
        self._update_context()
        self.refresh_bindings()
        del generation  # the first page is asked for like any other
        items.want(0)
        self._watch(self.folder)

    # ------------------------------------------------------------------ live updates

    def _watch(self, folder: Folder) -> None:
        """Follow the mail folders of the open folder's mailbox as the server reports changes.

        One mailbox at a time, the one in view: switching cancels the previous watch, which
        ends its stream and unsubscribes at once (watches read in threads of their own, so
        they never hold up the session's other calls).
        """
        address = folder.mailbox
        if address == "public" or address.startswith("archive:"):
            return
        if address == self._watched and self.medapp.active == self._watched_profile:
            return
        folders = [
            f
            for box, f in self.medapp.workspace.iter_folders(FolderKind.MAIL)
            if box.address == address
        ]
        if folders:
            self._watched = address
            self._watched_profile = self.medapp.active
            self.watch_mail(address, folders)

    @work(exclusive=True, group="live", exit_on_error=False)
    async def watch_mail(self, address: str, folders: list[Folder]) -> None:
        try:
            while True:
                try:
                    await self._follow(address, folders)
                    return
                except Unreachable:
                    # Not even the subscription could be made: say so, and try again.
                    self.post_message(msg.ConnectionChanged(online=False))
                    await asyncio.sleep(RECONNECT_S)
        except Unsupported:
            pass  # no notifications here: `$` refreshes by hand
        finally:
            if self._watched == address:
                self._watched = None

    async def _follow(self, address: str, folders: list[Folder]) -> None:
        async for event in self.medapp.session.subscribe(folders):
            if event.kind is MailboxEventKind.STATUS:
                continue
            if event.kind is MailboxEventKind.OFFLINE:
                self.post_message(msg.ConnectionChanged(online=False))
                continue
            changed = (event.folder_id, event.old_folder_id)
            if event.kind is MailboxEventKind.RESUBSCRIBED:
                # Back after an outage, or the subscription was renewed: events may have
                # been missed, so look at everything.
                self.post_message(msg.ConnectionChanged(online=True))
                changed = (None, None)
            self.post_message(msg.MailboxChanged(address, changed))

    def on_connection_changed(self, message: msg.ConnectionChanged) -> None:
        self.medapp.set_offline(not message.online)

    def _reconnect_tick(self) -> None:
        """While offline, ask for the open folder again (a watch reconnects by itself)."""
        if self.medapp.offline and self.folder is not None and self._watched != self.folder.mailbox:
            self.reload_top(self.folder, self.search_text)

    def on_mailbox_changed(self, message: msg.MailboxChanged) -> None:
        if message.mailbox != self._watched or self._watched_profile != self.medapp.active:
            return
        known = self.medapp.workspace.folders
        for folder_id in message.folder_ids:
            if folder_id is None or folder_id in known:
                self._stale.add(folder_id)
            elif folder_id:
                self._stale.add(None)  # an id spelled differently: refresh them all
        if self._live_timer is not None:
            self._live_timer.stop()
        self._live_timer = self.set_timer(LIVE_COALESCE_S, self._apply_live)

    def _apply_live(self) -> None:
        stale, self._stale = self._stale, set()
        watched = [
            f.id
            for box, f in self.medapp.workspace.iter_folders(FolderKind.MAIL)
            if box.address == self._watched
        ]
        ids = set(watched) if None in stale else {s for s in stale if s}
        for folder_id in ids:
            self.refresh_folder(folder_id)
        if self.folder is not None and self.folder.id in ids:
            self.reload_top(self.folder, self.search_text)

    @work(exclusive=True, group="live-rows", exit_on_error=False)
    async def reload_top(self, folder: Folder, search: str | None) -> None:
        sort = _SORT.get(folder.kind)
        query = ItemQuery(
            offset=0,
            limit=self.medapp.config.page_size,
            search=search,
            sort=sort,
            descending=sort is None or sort == "start",
        )
        page = await self.medapp.session.items(folder, query)
        self.post_message(msg.LiveRows(folder, page))

    def on_live_rows(self, message: msg.LiveRows) -> None:
        self.medapp.set_offline(False)
        if self.folder is not None and self.folder.id == message.folder.id:
            self.query_one(ItemList).merge_top(message.page)

    @on(ItemList.PageWanted)
    def _page_wanted(self, event: ItemList.PageWanted) -> None:
        if self.folder is not None:
            self.load_page(self.folder, event.offset, event.generation)

    @work(group="pages", exit_on_error=False)
    async def load_page(self, folder: Folder, offset: int, generation: int) -> None:
        sort = _SORT.get(folder.kind)
        size = self.medapp.config.page_size
        # A folder's first rows come as a screenful first, the rest of the page right after:
        # the server's answer (and its parsing) grows with the rows asked for, and the user
        # waits for the first screen only (issue #22: start to the boss's inbox ≤ 1 s).
        parts = [(offset, size)]
        if offset == 0 and size > FIRST_SCREEN_ROWS:
            parts = [(0, FIRST_SCREEN_ROWS), (FIRST_SCREEN_ROWS, size - FIRST_SCREEN_ROWS)]
        for start, limit in parts:
            query = ItemQuery(
                offset=start,
                limit=limit,
                search=self.search_text,
                sort=sort,
                descending=sort is None or sort == "start",
            )
            page = await self.medapp.session.items(folder, query)
            self.post_message(msg.PageLoaded(folder, page, generation))
            if not page.more:
                break

    def on_page_loaded(self, message: msg.PageLoaded) -> None:
        self.medapp.set_offline(False)
        self._first_listed.set()
        self.query_one(ItemList).add_page(message.page, message.generation)
        revealing, folder = self._reveal, self.folder
        if revealing is not None and folder is not None and revealing.folder_id == folder.id:
            self._show_revealed()

    def reveal(self, item: Item) -> None:
        """Open `item` in its folder, selected and in the reader (a bridge card's Enter)."""
        self._reveal = item
        folder = self.medapp.workspace.folders.get(item.folder_id or "")
        if folder is None:
            self._show_revealed()  # a folder not in the tree: the reader shows it alone
        elif self.folder is not None and self.folder.id == folder.id:
            self._show_revealed()
        else:
            self.query_one(FolderTree).select_folder(folder.id)

    def _show_revealed(self) -> None:
        item, self._reveal = self._reveal, None
        if item is None:
            return
        items = self.query_one(ItemList)
        index = next((i for i, row in items.rows.items() if row.id == item.id), None)
        if index is not None:
            items.go(index)
        else:
            self.query_one(Reader).show(item)
        self._focus_pane(self.query_one(Reader))

    @on(ItemList.NewAbove)
    def _new_above(self, event: ItemList.NewAbove) -> None:
        # The key that jumps to the top, as the user bound it.
        key = self.medapp.config.keymap.get("first-item", "g").split(",")[0]
        self.query_one(NewMailNotice).show_count(event.count, key)

    @on(ItemList.Highlighted)
    def _highlighted(self, event: ItemList.Highlighted) -> None:
        reader = self.query_one(Reader)
        reader.show(event.item, placeholder="")
        if self._fetch_timer is not None:
            self._fetch_timer.stop()
        if event.item is not None:
            # Fetch the body once the cursor rests, not for every row passed while scrolling.
            item_id = event.item.id
            self._fetch_timer = self.set_timer(FETCH_DELAY_S, lambda: self.load_item(item_id))
        # Re-evaluating bindings rebuilds the footer: only do it when what is allowed can change.
        state = (self.folder.id if self.folder else None, event.item is not None)
        if state != self._binding_state:
            self._binding_state = state
            self.refresh_bindings()

    @work(exclusive=True, group="reader", exit_on_error=False)
    async def load_item(self, item_id: str) -> None:
        item = await self.medapp.session.get(item_id)
        self.post_message(msg.ItemLoaded(item))

    def on_item_loaded(self, message: msg.ItemLoaded) -> None:
        current = self.query_one(ItemList).current
        if current is not None and current.id == message.item.id:
            self._full = message.item
            self.query_one(Reader).show(message.item)
            self.refresh_bindings()

    # ------------------------------------------------------------------ context & rights

    def _update_context(self) -> None:
        bar = self.query_one(ContextBar)
        ws = self.medapp.workspace
        org = self.medapp.organisation_prefix()
        if self.folder is None:
            bar.update(f"{org}{ws.user}  ·  choose a folder")
            return
        mailbox = ws.mailbox_of(self.folder)
        owner = (
            "Public folders"
            if self.folder.mailbox == "public"
            else f"{mailbox.display_name} <{mailbox.address}>"
            if mailbox
            else self.folder.mailbox
        )
        search = f"  ·  search: {self.search_text}" if self.search_text else ""
        rights = rights_summary(self.folder.rights)
        who = mailbox.display_name if mailbox else owner
        if self.has_class("-narrow"):
            # Whose mailbox and the rights must stay readable: the address is left out, then
            # a long folder name.
            narrow_search = search.replace("  ", " ")
            bar.show_fitting(
                f"{org}{who} · {self.folder.name} · {rights}{narrow_search}",
                f"{org}{who} · {rights}{narrow_search}",
                f"{org}{who} · {rights}",
            )
            return
        # With several profiles open the organisation leads: which one is never left out.
        bar.show_fitting(
            f"{org}{owner}  ·  {self.folder.name}  ·  your rights: {rights}{search}",
            f"{org}{who}  ·  {self.folder.name}  ·  your rights: {rights}{search}",
            f"{org}{who}  ·  your rights: {rights}",
        )

    def current_item(self) -> Item | None:
        item = self.query_one(ItemList).current
        full = self._full
        if item is not None and full is not None and full.id == item.id:
            return full
        return item

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if self.folder is None:
            return action not in _ITEM_ACTIONS | {"compose"}
        rights = self.folder.rights
        kind = self.folder.kind
        if action == "compose":
            # New mail is always possible (from our own mailbox at least); other kinds create here.
            return kind is FolderKind.MAIL or allows(rights, "new_item", kind)
        if action == "edit_item":
            return kind in (FolderKind.TASKS, FolderKind.CONTACTS, FolderKind.NOTES) and allows(
                rights, "edit_item", kind
            )
        if action in _ITEM_ACTIONS:
            if not allows(rights, action, kind):
                return False
            return self.query_one(ItemList).current is not None or None
        return True

    # ------------------------------------------------------------------ movement

    def _tree_focused(self) -> bool:
        return self.focused is self.query_one(FolderTree)

    def _reader_focused(self) -> bool:
        return self.focused is self.query_one(Reader)

    def action_next_item(self) -> None:
        if self._tree_focused():
            self.query_one(FolderTree).action_cursor_down()
        elif self._reader_focused():
            self.query_one(Reader).line(1)
        else:
            self.query_one(ItemList).move(1)

    def action_prev_item(self) -> None:
        if self._tree_focused():
            self.query_one(FolderTree).action_cursor_up()
        elif self._reader_focused():
            self.query_one(Reader).line(-1)
        else:
            self.query_one(ItemList).move(-1)

    def action_pager(self, pages: int) -> None:
        """Page through the open item from the list or the reader, as mutt's space does."""
        self.query_one(Reader).page(pages)

    def action_first_item(self) -> None:
        self.query_one(ItemList).go(0)

    def action_last_item(self) -> None:
        items = self.query_one(ItemList)
        items.go(items.total - 1)

    def action_page_down(self) -> None:
        if self._reader_focused():
            self.query_one(Reader).page(1)
            return
        items = self.query_one(ItemList)
        items.move(max(items.scrollable_content_region.height - 1, 1))

    def action_page_up(self) -> None:
        if self._reader_focused():
            self.query_one(Reader).page(-1)
            return
        items = self.query_one(ItemList)
        items.move(-max(items.scrollable_content_region.height - 1, 1))

    def action_focus_folders(self) -> None:
        """One pane to the left: reader → list → folders."""
        if self._reader_focused():
            self._focus_pane(self.query_one(ItemList))
        else:
            self._focus_pane(self.query_one(FolderTree))

    def action_focus_items(self) -> None:
        """One pane to the right: folders → list → reader."""
        items = self.query_one(ItemList)
        if self.focused is items and items.current is not None:
            self._focus_pane(self.query_one(Reader))
        else:
            self._focus_pane(items)

    def action_open_item(self) -> None:
        if self._tree_focused():
            self.query_one(FolderTree).action_select_cursor()
            self._focus_pane(self.query_one(ItemList))
            return
        item = self.current_item()
        if isinstance(item, Message) and self._in_drafts(item):
            self.open_draft(item.id)
            return
        if (
            isinstance(item, Message)
            and not item.is_read
            and allows(self.folder.rights if self.folder else None, "toggle_read")
        ):
            self.update_item(dataclasses.replace(item, is_read=True), ["is_read"], "")
        self._focus_pane(self.query_one(Reader))

    def _in_drafts(self, item: Message) -> bool:
        return item.is_draft or (self.folder is not None and self.folder.distinguished == "drafts")

    @work(group="open-draft", exit_on_error=False)  # not "reader": that one is exclusive
    async def open_draft(self, item_id: str) -> None:
        item = await self.medapp.session.get(item_id)
        if isinstance(item, Message):
            self.post_message(msg.DraftOpened(item))

    def on_draft_opened(self, message: msg.DraftOpened) -> None:
        """Continue a server draft; a newer local copy of the same draft wins over it."""
        item = message.message
        local = next((d for d in self.medapp.drafts.all() if d.server_id == item.id), None)
        if local is not None:
            self.medapp.open_compose(local)
            return
        senders = [m.address for m in self.medapp.workspace.senders()]
        sender = self._sender_for(self.folder)
        if item.from_ is not None and item.from_.email in senders:
            sender = item.from_.email
        self.medapp.open_compose(Draft.from_server(item, sender))

    # ------------------------------------------------------------------ search

    def action_search(self) -> None:
        """Search the folder; from the reader, search the open item's text instead."""
        box = self.query_one("#search", Input)
        self._body_search = self._reader_focused()
        box.add_class("-open")
        if self._body_search:
            box.placeholder = "Find in this message; Enter to find, n/N next/previous"
            box.value = self.query_one(Reader).searching
        else:
            box.placeholder = _FOLDER_SEARCH_HINT
            box.value = self.search_text or ""
        box.focus()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.input.remove_class("-open")
        if self._body_search:
            reader = self.query_one(Reader)
            reader.focus()
            if event.value.strip() and not reader.find(event.value):
                self.notify(f"{event.value.strip()!r} is not in this message.")
            return
        if self.folder is not None:
            self.open_folder(self.folder, search=event.value.strip() or None)
        self.query_one(ItemList).focus()

    def key_escape(self) -> None:
        box = self.query_one("#search", Input)
        if box.has_class("-open"):
            box.remove_class("-open")
            (self.query_one(Reader) if self._body_search else self.query_one(ItemList)).focus()
        elif self._reader_focused():
            self._focus_pane(self.query_one(ItemList))
        elif self.search_text and self.folder is not None:
            self.open_folder(self.folder)

    def action_search_next(self) -> None:
        if self._reader_focused():
            self.query_one(Reader).next_match(1)
        else:
            self.query_one(ItemList).move(1)

    def action_search_prev(self) -> None:
        if self._reader_focused():
            self.query_one(Reader).next_match(-1)
        else:
            self.query_one(ItemList).move(-1)

    def action_refresh(self) -> None:
        """Reload the open folder; first sign in again to profiles that failed."""
        failed = [
            name
            for name, profile in self.medapp.profiles.items()
            if profile.state is ProfileState.FAILED or name in self._sign_in_pending
        ]
        for name in failed:
            self.retry_profile(name)
        if failed and not self.medapp.multi:
            return
        if not self.medapp.workspace.mailboxes:
            self.query_one(ContextBar).update("Loading mailboxes…")
            self.load_workspace()
            return
        if self.folder is not None:
            self.open_folder(self.folder, search=self.search_text)
            self.refresh_folder(self.folder.id)

    @work(group="pages", exit_on_error=False)
    async def refresh_folder(self, folder_id: str) -> None:
        profile = self.medapp.active
        folder = await self.medapp.session.folder(folder_id, refresh=True)
        self.post_message(msg.FolderChanged(folder, profile))

    def on_folder_changed(self, message: msg.FolderChanged) -> None:
        self.medapp.profiles[message.profile].workspace.update_folder(message.folder)
        self.query_one(FolderTree).update_folder(message.folder, message.profile)
        if (
            self.folder is not None
            and self.folder.id == message.folder.id
            and message.profile == self.medapp.active
        ):
            self.folder = message.folder
            self._update_context()

    # ------------------------------------------------------------------ item changes

    @work(group="update", exit_on_error=False)
    async def update_item(self, item: Item, fields: list[str], note: str) -> None:
        changed = await self.medapp.session.update(item, fields)
        self.post_message(msg.ItemChanged(changed, note))

    def on_item_changed(self, message: msg.ItemChanged) -> None:
        items = self.query_one(ItemList)
        old = next((r for r in items.rows.values() if r.id == message.item.id), None)
        items.replace(message.item)
        if isinstance(old, Message) and isinstance(message.item, Message) and self.folder:
            delta = (1 if old.is_read else 0) - (1 if message.item.is_read else 0)
            if delta:
                self._bump_unread(delta)
        if items.current is not None and items.current.id == message.item.id:
            full = self._full
            if full is not None and full.id == message.item.id and message.item.body is None:
                # The update answer carries no body; keep the reader's full copy in step.
                fields = {f.name for f in dataclasses.fields(message.item)} - {
                    "body",
                    "attachments",
                    "body_is_html",
                }
                merged = dataclasses.replace(
                    full, **{k: getattr(message.item, k) for k in fields if hasattr(full, k)}
                )
                self._full = merged
            else:
                self._full = message.item
            self.query_one(Reader).show(self._full)
        if message.note:
            self.notify(message.note)
        self.refresh_bindings()

    def _bump_unread(self, delta: int) -> None:
        if self.folder is None:
            return
        folder = dataclasses.replace(
            self.folder, unread_count=max((self.folder.unread_count or 0) + delta, 0)
        )
        self.folder = folder
        self.medapp.workspace.update_folder(folder)
        self.query_one(FolderTree).update_folder(folder, self.medapp.active)

    def action_toggle_read(self) -> None:
        item = self.current_item()
        if isinstance(item, Message):
            self.update_item(dataclasses.replace(item, is_read=not item.is_read), ["is_read"], "")

    def action_toggle_flag(self) -> None:
        item = self.current_item()
        if item is None:
            return
        if item.flag.status is FlagStatus.FLAGGED:
            flag = dataclasses.replace(
                item.flag, status=FlagStatus.NOT_FLAGGED, start=None, due=None, completed=None
            )
        else:
            flag = dataclasses.replace(item.flag, status=FlagStatus.FLAGGED, completed=None)
        self.update_item(dataclasses.replace(item, flag=flag), ["flag"], "")

    def action_set_due(self) -> None:
        item = self.current_item()
        if item is None:
            return
        current = item.flag.due.strftime("%Y-%m-%d") if item.flag.due else ""

        def done(due: datetime | None) -> None:
            if due is None:
                return
            start = min(self.medapp.now(), due)
            flag = dataclasses.replace(item.flag, status=FlagStatus.FLAGGED, start=start, due=due)
            self.update_item(dataclasses.replace(item, flag=flag), ["flag"], "Due date set.")

        self.app.push_screen(
            PromptScreen[datetime | None](
                "Follow up by (date):", parse_due, value=current, placeholder="2026-12-24"
            ),
            done,
        )

    def action_categories(self) -> None:
        item = self.current_item()
        if item is None:
            return

        def done(value: tuple[str, ...] | None) -> None:
            if value is not None:
                self.update_item(dataclasses.replace(item, categories=value), ["categories"], "")

        self.app.push_screen(
            PromptScreen(
                "Categories (comma separated):",
                lambda s: tuple(dict.fromkeys(c.strip() for c in s.split(",") if c.strip())),
                value=", ".join(item.categories),
            ),
            done,
        )

    def action_importance(self) -> None:
        item = self.current_item()
        if item is not None:
            new = _NEXT_IMPORTANCE[item.importance]
            self.update_item(
                dataclasses.replace(item, importance=new),
                ["importance"],
                f"Importance: {new.value}.",
            )

    def action_delete(self) -> None:
        item = self.current_item()
        if item is None:
            return

        def done(yes: bool | None) -> None:
            if yes:
                self.delete_item(item)

        title = item.subject or "(no subject)"
        self.app.push_screen(ConfirmScreen(f"Delete “{title}”?", yes="Delete"), done)

    @work(group="update", exit_on_error=False)
    async def delete_item(self, item: Item) -> None:
        await self.medapp.session.delete(item)
        self.post_message(msg.ItemRemoved(item.id, "Deleted."))

    def on_item_removed(self, message: msg.ItemRemoved) -> None:
        items = self.query_one(ItemList)
        old = next((r for r in items.rows.values() if r.id == message.item_id), None)
        items.remove_item(message.item_id)
        if isinstance(old, Message) and not old.is_read:
            self._bump_unread(-1)
        if message.note:
            self.notify(message.note)
        self.refresh_bindings()

    def action_move(self) -> None:
        item = self.current_item()
        if item is None or self.folder is None:
            return
        ws = self.medapp.workspace
        mailbox = ws.mailbox_of(self.folder)
        choices = [
            (folder.name, folder)
            for box, folder in ws.iter_folders(self.folder.kind)
            if box == mailbox and folder.id != self.folder.id and allows(folder.rights, "new_item")
        ]

        def done(target: Folder | None) -> None:
            if target is not None:
                self.move_item(item, target)

        self.app.push_screen(ChoiceScreen("Move to:", choices), done)

    @work(group="update", exit_on_error=False)
    async def move_item(self, item: Item, target: Folder) -> None:
        await self.medapp.session.move(item, target)
        self.post_message(msg.ItemRemoved(item.id, f"Moved to {target.name}."))

    def action_attachments(self) -> None:
        from tui.screens.attachments import AttachmentsScreen

        item = self.current_item()
        if item is not None and item.attachments:
            self.app.push_screen(AttachmentsScreen(item))
        elif item is not None:
            self.notify("This item has no attachments.")

    # ------------------------------------------------------------------ writing

    def _sender_for(self, folder: Folder | None) -> str:
        """Mail written from someone else's folder goes out on their behalf."""
        ws = self.medapp.workspace
        if folder is not None:
            mailbox = ws.mailbox_of(folder)
            if mailbox is not None and mailbox in ws.senders():
                return mailbox.address
        return ws.user

    def action_compose(self) -> None:
        kind = self.folder.kind if self.folder else FolderKind.MAIL
        if kind is FolderKind.MAIL:
            fresh = Draft(mode="new", sender=self._sender_for(self.folder))
            kept = self.medapp.drafts.all()
            if not kept:
                self.medapp.open_compose(fresh)
                return
            choices = [("New message", fresh)] + [
                (f"Continue: {d.subject or '(no subject)'} → {d.to or '…'}", d) for d in kept
            ]

            def chosen(draft: Draft | None) -> None:
                if draft is not None:
                    self.medapp.open_compose(draft, original=None)

            def discard(draft: Draft) -> bool:
                if draft is fresh:
                    return False
                self.medapp.drafts.discard(draft.draft_id)
                if draft.server_id:
                    self.discard_server_draft(draft.server_id)
                self.notify(f"Draft discarded: {draft.subject or '(no subject)'}")
                return True

            self.app.push_screen(
                ChoiceScreen(
                    "Write:",
                    choices,
                    remove=discard,
                    remove_hint="d discards the highlighted draft",
                    remove_question=lambda d: (
                        None
                        if d is fresh
                        else f"Discard the draft {d.subject or '(no subject)'!r}, here and "
                        "in the Drafts folder?"
                    ),
                ),
                chosen,
            )
        else:
            self._edit_form(None)

    @work(group="update", exit_on_error=False)
    async def discard_server_draft(self, item_id: str) -> None:
        """A discarded draft also leaves the server's Drafts folder (if it is still there)."""
        with contextlib.suppress(NotFound):
            await self.medapp.session.delete(item_id, hard=True)

    def _reply(self, mode: str) -> None:
        item = self.current_item()
        if not isinstance(item, Message):
            return
        draft = Draft.answering(
            item, mode, self._sender_for(self.folder), user=self.medapp.workspace.user
        )
        self.medapp.open_compose(draft, original=item)

    def action_reply(self) -> None:
        self._reply("reply")

    def action_reply_all(self) -> None:
        self._reply("reply-all")

    def action_forward(self) -> None:
        self._reply("forward")

    def action_edit_item(self) -> None:
        item = self.current_item()
        if item is not None:
            self._edit_form(item)

    def _edit_form(self, item: Item | None) -> None:
        from tui.screens.item_form import ItemFormScreen

        if self.folder is None:
            return
        folder = self.folder
        if folder.kind is FolderKind.CALENDAR and item is None:
            self._new_event(folder)
            return
        if folder.kind not in (FolderKind.TASKS, FolderKind.CONTACTS, FolderKind.NOTES):
            self.notify("Items of this folder's kind are created in Outlook or on the server.")
            return

        def done(result: Item | None) -> None:
            if result is None:
                return
            if result.id:
                fields = _changed_fields(item, result) if item else []
                if fields:
                    self.update_item(result, fields, "Saved.")
            else:
                self.create_item(folder, result)

        self.app.push_screen(ItemFormScreen(folder.kind, item), done)

    def _new_event(self, folder: Folder) -> None:
        """An appointment in a calendar folder opened from the tree (e.g. a public calendar)."""
        from tui.screens.event_form import EventEdit, EventFormScreen

        now = self.medapp.now()
        assert now.tzinfo is not None
        start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)

        def done(edit: EventEdit | None) -> None:
            if edit is not None:
                self.create_item(folder, edit.event)

        self.app.push_screen(EventFormScreen(folder.name, None, tz=now.tzinfo, start=start), done)

    @work(group="update", exit_on_error=False)
    async def create_item(self, folder: Folder, item: Item) -> None:
        created = await self.medapp.session.create(folder, item)
        self.post_message(msg.ItemCreated(created, "Created."))

    def on_item_created(self, message: msg.ItemCreated) -> None:
        self.notify(message.note)
        if self.folder is not None and message.item.folder_id in (None, self.folder.id):
            self.open_folder(self.folder, search=self.search_text)

    def action_complete_item(self) -> None:
        item = self.current_item()
        if isinstance(item, Task):
            done = item.status is not TaskStatus.COMPLETED
            changed = dataclasses.replace(
                item,
                status=TaskStatus.COMPLETED if done else TaskStatus.NOT_STARTED,
                percent_complete=100 if done else 0,
                completed=self.medapp.now() if done else None,
            )
            self.update_item(
                changed,
                ["status", "percent_complete", "completed"],
                "Completed." if done else "Reopened.",
            )


_ITEM_ACTIONS = {
    "reply", "reply_all", "forward", "delete", "toggle_read", "toggle_flag", "set_due",
    "categories", "importance", "move", "attachments", "edit_item", "complete_item", "open_item",
}  # fmt: skip


def _changed_fields(before: Item | None, after: Item) -> list[str]:
    if before is None:
        return []
    return [
        f.name
        for f in dataclasses.fields(after)
        if f.name not in ("id", "change_key", "body_is_html")
        and getattr(before, f.name, None) != getattr(after, f.name)
    ]


__all__ = ["ContextBar", "MailScreen"]
