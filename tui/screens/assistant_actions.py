"""The mail screen's way to the mailbox's settings and to the search over all mailboxes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from med import Folder, Mailbox, MailboxKind

if TYPE_CHECKING:
    from tui.app import MedApp


class AssistantActions:
    """Mixed into `MailScreen`: `O` out of office and rules of the mailbox shown, `S` search
    across mailboxes."""

    folder: Folder | None

    if TYPE_CHECKING:  # the screen's own

        @property
        def medapp(self) -> MedApp: ...

        def open_folder(
            self, folder: Folder, *, search: str | None = None, profile: str | None = None
        ) -> None: ...

    def _settings_mailbox(self) -> Mailbox:
        """The mailbox of the folder shown (an archive's owner; one's own for public folders)."""
        ws = self.medapp.workspace
        shown = ws.mailbox_of(self.folder) if self.folder is not None else None
        if shown is not None and shown.kind is not MailboxKind.PUBLIC:
            return ws.mailbox(shown.address) or shown
        own = next((m for m in ws.mailboxes if m.kind is MailboxKind.OWN), None)
        return own or Mailbox(ws.user, ws.user, MailboxKind.OWN)

    def action_mailbox_settings(self) -> None:
        from tui.screens.mailbox_settings import MailboxSettingsScreen

        self.medapp.push_screen(MailboxSettingsScreen(self._settings_mailbox()))

    def action_search_mailboxes(self) -> None:
        from tui.screens.mailbox_search import MailboxSearchScreen

        def chosen(target: tuple[Folder, str, str] | None) -> None:
            if target is not None:
                folder, text, profile = target
                self.open_folder(folder, search=text, profile=profile)

        self.medapp.push_screen(MailboxSearchScreen(), chosen)
