"""The mailbox tree: own, delegated, functional, team, public and archive mailboxes."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from med.model import Folder, FolderNode, Mailbox, MailboxKind
from tui.presenter import folder_label, mailbox_label
from tui.workspace import KIND_ORDER

TreeData = Mailbox | Folder


class FolderTree(Tree[TreeData]):
    """Top level: one node per mailbox; below it, that mailbox's folders."""

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
        self._mailbox_nodes: dict[str, TreeNode[TreeData]] = {}
        self._folder_nodes: dict[str, TreeNode[TreeData]] = {}

    def add_mailbox(self, mailbox: Mailbox, tree: FolderNode) -> None:
        if mailbox.key in self._mailbox_nodes:
            self._mailbox_nodes[mailbox.key].remove()
        # Keep mailboxes in kind order whatever order they arrive in.
        rank = (KIND_ORDER[mailbox.kind], mailbox.display_name)
        before = next(
            (
                child
                for child in self.root.children
                if isinstance(child.data, Mailbox)
                and (KIND_ORDER[child.data.kind], child.data.display_name) > rank
            ),
            None,
        )
        expand = mailbox.kind in (MailboxKind.OWN, MailboxKind.DELEGATED)
        node = self.root.add(mailbox_label(mailbox), data=mailbox, before=before, expand=expand)
        self._mailbox_nodes[mailbox.key] = node
        for child in tree.children:
            self._add_folder(node, child)

    def _add_folder(self, parent: TreeNode[TreeData], node: FolderNode) -> None:
        label = folder_label(node.folder)
        if node.children:
            branch = parent.add(label, data=node.folder)
            for child in node.children:
                self._add_folder(branch, child)
            self._folder_nodes[node.folder.id] = branch
        else:
            self._folder_nodes[node.folder.id] = parent.add_leaf(label, data=node.folder)

    def update_folder(self, folder: Folder) -> None:
        node = self._folder_nodes.get(folder.id)
        if node is not None:
            node.data = folder
            node.set_label(folder_label(folder))

    def select_folder(self, folder_id: str) -> None:
        """Move the cursor to a folder (expanding its parents) and open it."""
        node = self._folder_nodes.get(folder_id)
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
