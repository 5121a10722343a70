"""One search over every mailbox the user works in: own, the boss's, functional and shared
mailboxes (their inboxes) and the public mail folders. Hits come grouped by mailbox; a mailbox
that cannot be searched says why in its heading, and the others still count. Choosing a hit
opens its folder filtered by the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from med import Folder, FolderKind, MailboxKind, MedError, SearchResults
from tui.screens.base import MedModal

#: Mailboxes searched by their inbox.
SEARCHED_KINDS = (
    MailboxKind.OWN,
    MailboxKind.DELEGATED,
    MailboxKind.FUNCTIONAL,
    MailboxKind.SHARED,
)


@dataclass
class SearchDone(Message):
    results: SearchResults | None
    error: str = ""


class MailboxSearchScreen(MedModal[tuple[Folder, str] | None]):
    DEFAULT_CSS = """
    MailboxSearchScreen { align: center middle; }
    MailboxSearchScreen > Vertical {
        width: 110; height: 90%; border: thick $accent; background: $surface; padding: 0 1;
    }
    MailboxSearchScreen #msearch-status { height: auto; color: $text-muted; }
    MailboxSearchScreen OptionList { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close", priority=True)]

    def __init__(self) -> None:
        super().__init__()
        self.results: SearchResults | None = None
        self._hits: dict[str, tuple[Folder, str]] = {}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Search all mailboxes[/b]")
            yield Input(placeholder="words in subject, text or sender; Enter", id="msearch-query")
            yield Static("", id="msearch-status", markup=False)
            yield OptionList(id="msearch-hits")

    def targets(self) -> list[str | Folder]:
        ws = self.medapp.workspace
        out: list[str | Folder] = [m.address for m in ws.mailboxes if m.kind in SEARCHED_KINDS]
        for mailbox in ws.mailboxes:
            tree = ws.trees.get(mailbox.key)
            if mailbox.kind is MailboxKind.PUBLIC and tree is not None:
                out += [c.folder for c in tree.children if c.folder.kind is FolderKind.MAIL]
        return out

    @on(Input.Submitted, "#msearch-query")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            self.query_one("#msearch-status", Static).update("Searching…")
            self.search(text)

    @work(exclusive=True, group="mailbox-search", exit_on_error=False)
    async def search(self, text: str) -> None:
        try:
            results = await self.medapp.session.search_mailboxes(text, self.targets())
        except MedError as exc:
            self.post_message(SearchDone(None, str(exc)))
            return
        self.post_message(SearchDone(results))

    def on_search_done(self, message: SearchDone) -> None:
        status = self.query_one("#msearch-status", Static)
        hits = self.query_one("#msearch-hits", OptionList)
        hits.clear_options()
        self._hits = {}
        self.results = message.results
        if message.results is None:
            status.update(message.error)
            return
        ws = self.medapp.workspace
        options: list[Option] = []
        total = 0
        for group in message.results.groups:
            box = ws.mailbox(group.mailbox)
            name = box.display_name if box is not None else group.mailbox
            if group.folder is not None and group.folder.distinguished != "inbox":
                name += f" / {group.folder.name}"
            if group.error is not None:
                options.append(Option(f"── {name}: not searched — {group.error}", disabled=True))
                continue
            more = "+" if group.more else ""
            options.append(Option(f"── {name}: {len(group.items)}{more}", disabled=True))
            for item in group.items:
                key = f"hit{len(self._hits)}"
                if group.folder is not None:
                    self._hits[key] = (group.folder, message.results.query)
                options.append(Option(f"   {item.subject or '(no subject)'}", id=key))
                total += 1
        hits.add_options(options)
        failed = len(message.results.failed)
        status.update(
            f"{total} hit(s)" + (f"; {failed} mailbox(es) could not be searched" if failed else "")
        )
        if total:
            hits.focus()
            hits.highlighted = next(i for i, o in enumerate(options) if not o.disabled)

    @on(OptionList.OptionSelected, "#msearch-hits")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        target = self._hits.get(event.option.id or "")
        if target is not None:
            self.dismiss(target)

    def action_close(self) -> None:
        self.dismiss(None)
