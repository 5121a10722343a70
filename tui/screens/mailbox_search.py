"""One search over every mailbox the user works in: own, the boss's, functional and shared
mailboxes (their inboxes) and the public mail folders. Hits come grouped by mailbox; a mailbox
that cannot be searched says why in its heading, and the others still count. Choosing a hit
opens its folder filtered by the same words. With several profiles open the search spans every
ready profile, each through its own session, and each heading names the organisation.
"""

from __future__ import annotations

import asyncio
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
from med.mailbox_settings import MailboxHits
from tui.profiles import OpenProfile, ProfileState
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
    """Each profile's results (profile name, results), or why the whole search failed."""

    results: list[tuple[str, SearchResults]] | None
    error: str = ""


#: What choosing a hit gives: its folder, the words searched and the folder's profile.
SearchHit = tuple[Folder, str, str]


class MailboxSearchScreen(MedModal[SearchHit | None]):
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
        #: Every profile's groups in one (profile order), once a search answered.
        self.results: SearchResults | None = None
        #: The same, per profile: (profile name, its results).
        self.by_profile: list[tuple[str, SearchResults]] = []
        self._hits: dict[str, SearchHit] = {}

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("[b]Search all mailboxes[/b]")
            yield Input(placeholder="words in subject, text or sender; Enter", id="msearch-query")
            yield Static("", id="msearch-status", markup=False)
            yield OptionList(id="msearch-hits")

    def targets(self, profile: str | None = None) -> list[str | Folder]:
        """What one profile's search covers (the active profile's by default)."""
        ws = self.medapp.profiles[profile if profile is not None else self.medapp.active].workspace
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
        ready = [
            p
            for p in self.medapp.profiles.values()
            if p.session is not None and p.state is ProfileState.READY
        ]
        if not ready:  # nothing loaded yet: the active profile answers (or says why not)
            ready = [self.medapp.profile]

        async def one(profile: OpenProfile) -> tuple[str, SearchResults] | str:
            assert profile.session is not None
            try:
                found = await profile.session.search_mailboxes(text, self.targets(profile.name))
            except MedError as exc:
                return f"{self.medapp.organisation_prefix(profile.name)}{exc}"
            return profile.name, found

        answers = await asyncio.gather(*(one(p) for p in ready))
        results = [a for a in answers if not isinstance(a, str)]
        errors = [a for a in answers if isinstance(a, str)]
        if not results:
            self.post_message(SearchDone(None, "; ".join(errors)))
            return
        self.post_message(SearchDone(results, "; ".join(errors)))

    def on_search_done(self, message: SearchDone) -> None:
        status = self.query_one("#msearch-status", Static)
        hits = self.query_one("#msearch-hits", OptionList)
        hits.clear_options()
        self._hits = {}
        if message.results is None:
            self.results, self.by_profile = None, []
            status.update(message.error)
            return
        self.by_profile = message.results
        self.results = SearchResults(
            message.results[0][1].query, tuple(g for _, r in message.results for g in r.groups)
        )
        options: list[Option] = []
        total = 0
        failed = 0
        for profile, results in message.results:
            ws = self.medapp.profiles[profile].workspace
            org = self.medapp.organisation_prefix(profile)
            failed += len(results.failed)
            for group in results.groups:
                box = ws.mailbox(group.mailbox)
                name = org + (box.display_name if box is not None else group.mailbox)
                total += self._add_group(options, group, name, results.query, profile)
        hits.add_options(options)
        status.update(
            f"{total} hit(s)"
            + (f"; {failed} mailbox(es) could not be searched" if failed else "")
            + (f"; {message.error}" if message.error else "")
        )
        if total:
            hits.focus()
            hits.highlighted = next(i for i, o in enumerate(options) if not o.disabled)

    def _add_group(
        self, options: list[Option], group: MailboxHits, name: str, query: str, profile: str
    ) -> int:
        """One mailbox's heading and hits; the number of hits."""
        total = 0
        if group.folder is not None and group.folder.distinguished != "inbox":
            name += f" / {group.folder.name}"
        if group.error is not None:
            options.append(Option(f"── {name}: not searched — {group.error}", disabled=True))
            return 0
        more = "+" if group.more else ""
        options.append(Option(f"── {name}: {len(group.items)}{more}", disabled=True))
        for item in group.items:
            key = f"hit{len(self._hits)}"
            if group.folder is not None:
                self._hits[key] = (group.folder, query, profile)
            options.append(Option(f"   {item.subject or '(no subject)'}", id=key))
            total += 1
        return total

    @on(OptionList.OptionSelected, "#msearch-hits")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        target = self._hits.get(event.option.id or "")
        if target is not None:
            self.dismiss(target)

    def action_close(self) -> None:
        self.dismiss(None)
