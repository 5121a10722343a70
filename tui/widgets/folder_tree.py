"""The mailbox tree: own, delegated, functional, team, public and archive mailboxes; with
several profiles open, grouped under one node per profile (organisation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from med.model import Folder, FolderNode, Mailbox, MailboxKind
from tui.presenter import folder_label, mailbox_label
from tui.workspace import KIND_ORDER


@dataclass(frozen=True)
class ProfileNode:
    """The tree's node of one profile (only while several are open)."""

    name: str


TreeData = Mailbox | Folder | ProfileNode


class FolderTree(Tree[TreeData]):
    """Top level: one node per mailbox; below it, that mailbox's folders. With several
    profiles, one node per profile above its mailboxes."""

    # Movement keys come from the screen's keymap (j/k act on the focused pane); keep only enter.
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select_cursor", "Open", show=False)]

    DEFAULT_CSS = """
    FolderTree { width: 32; border-right: solid $panel-lighten-2; }
    FolderTree:focus { border-right: thick $accent; }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__("Mailboxes", **kwargs)  # type: ignore[arg-type]
        self.show_root = False
        self.guide_depth = 2
        # Keyed by (profile, id): two organisations may use the same ids and addresses.
        self._mailbox_nodes: dict[tuple[str, str], TreeNode[TreeData]] = {}
        self._folder_nodes: dict[tuple[str, str], TreeNode[TreeData]] = {}
        self._profile_nodes: dict[str, TreeNode[TreeData]] = {}

    def add_profile(self, name: str, label: str) -> None:
        """A top-level node for a profile; its mailboxes go below it."""
        if name not in self._profile_nodes:
            self._profile_nodes[name] = self.root.add(label, data=ProfileNode(name), expand=True)
        else:
            self._profile_nodes[name].set_label(label)

    def clear_profile(self, name: str) -> None:
        """Forget a profile's mailboxes (before loading it again)."""
        for key in [k for k in self._mailbox_nodes if k[0] == name]:
            self._mailbox_nodes.pop(key).remove()
        for key in [k for k in self._folder_nodes if k[0] == name]:
            del self._folder_nodes[key]

    def profile_of(self, node: TreeNode[TreeData] | None) -> str:
        """The profile a node belongs to ("" with a single profile)."""
        while node is not None:
            if isinstance(node.data, ProfileNode):
                return node.data.name
            node = node.parent
        return ""

    def add_mailbox(self, mailbox: Mailbox, tree: FolderNode, profile: str = "") -> None:
        if (profile, mailbox.key) in self._mailbox_nodes:
            self._mailbox_nodes[(profile, mailbox.key)].remove()
        parent = self._profile_nodes.get(profile, self.root)
        # Keep mailboxes in kind order whatever order they arrive in.
        rank = (KIND_ORDER[mailbox.kind], mailbox.display_name)
        before = next(
            (
                child
                for child in parent.children
                if isinstance(child.data, Mailbox)
                and (KIND_ORDER[child.data.kind], child.data.display_name) > rank
            ),
            None,
        )
        expand = mailbox.kind in (MailboxKind.OWN, MailboxKind.DELEGATED)
        node = parent.add(mailbox_label(mailbox), data=mailbox, before=before, expand=expand)
        self._mailbox_nodes[(profile, mailbox.key)] = node
        for child in tree.children:
            self._add_folder(node, child, profile)

    def _add_folder(self, parent: TreeNode[TreeData], node: FolderNode, profile: str) -> None:
        label = folder_label(node.folder)
        if node.children:
            branch = parent.add(label, data=node.folder)
            for child in node.children:
                self._add_folder(branch, child, profile)
            self._folder_nodes[(profile, node.folder.id)] = branch
        else:
            self._folder_nodes[(profile, node.folder.id)] = parent.add_leaf(label, data=node.folder)

    def update_folder(self, folder: Folder, profile: str = "") -> None:
        node = self._folder_nodes.get((profile, folder.id))
        if node is not None:
            node.data = folder
            node.set_label(folder_label(folder))

    def select_folder(self, folder_id: str, profile: str = "") -> None:
        """Move the cursor to a folder (expanding its parents) and open it."""
        node = self._folder_nodes.get((profile, folder_id))
        if node is None:
            return
        parent = node.parent
        while parent is not None:
            parent.expand()
            parent = parent.parent
        self.call_after_refresh(self._select, node)

    def _select(self, node: TreeNode[TreeData]) -> None:
        self.move_cursor(node)
        self.select_node(node)
