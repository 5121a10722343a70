"""What the user works in: the mailboxes and their folder trees, loaded once and shared by screens.

Plain data (no widgets), filled from `DelegateSession` results by the app's loader worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from med.model import Folder, FolderKind, FolderNode, Mailbox, MailboxKind

#: Order of mailbox kinds in the tree: own first, public folders and archives last.
KIND_ORDER = {
    MailboxKind.OWN: 0,
    MailboxKind.DELEGATED: 1,
    MailboxKind.FUNCTIONAL: 2,
    MailboxKind.SHARED: 3,
    MailboxKind.ROOM: 4,
    MailboxKind.PUBLIC: 5,
    MailboxKind.ARCHIVE: 6,
}


@dataclass
class Workspace:
    user: str = ""
    mailboxes: list[Mailbox] = field(default_factory=list)
    trees: dict[str, FolderNode] = field(default_factory=dict)  # Mailbox.key → tree
    folders: dict[str, Folder] = field(default_factory=dict)  # id → folder
    owner_of: dict[str, Mailbox] = field(default_factory=dict)  # folder id → its mailbox

    def add_tree(self, mailbox: Mailbox, tree: FolderNode) -> None:
        if mailbox not in self.mailboxes:
            self.mailboxes.append(mailbox)
            self.mailboxes.sort(key=lambda m: (KIND_ORDER.get(m.kind, 9), m.display_name))
        self.trees[mailbox.key] = tree
        for folder in tree.walk():
            self.folders[folder.id] = folder
            self.owner_of[folder.id] = mailbox

    def update_folder(self, folder: Folder) -> None:
        self.folders[folder.id] = folder

    def mailbox_of(self, folder: Folder) -> Mailbox | None:
        return self.owner_of.get(folder.id)

    def mailbox(self, address: str) -> Mailbox | None:
        return next(
            (m for m in self.mailboxes if m.address == address and m.kind != MailboxKind.ARCHIVE),
            None,
        )

    def iter_folders(self, kind: FolderKind | None = None) -> Iterator[tuple[Mailbox, Folder]]:
        for mailbox in self.mailboxes:
            tree = self.trees.get(mailbox.key)
            if tree is None:
                continue
            for folder in tree.walk()[1:]:  # the root is the mailbox itself
                if kind is None or folder.kind is kind:
                    yield mailbox, folder

    def default_folder(self, mailbox: Mailbox, distinguished: str) -> Folder | None:
        tree = self.trees.get(mailbox.key)
        if tree is None:
            return None
        return next((f for f in tree.walk() if f.distinguished == distinguished), None)

    def calendars(self) -> list[tuple[Mailbox, Folder]]:
        """Every calendar the user can open: own, delegated, functional, team, public."""
        return list(self.iter_folders(FolderKind.CALENDAR))

    def senders(self) -> list[Mailbox]:
        """Mailboxes a message can go out from: own, then owners we act for, then functional."""
        return [
            m
            for m in self.mailboxes
            if m.kind in (MailboxKind.OWN, MailboxKind.DELEGATED, MailboxKind.FUNCTIONAL)
        ]
