"""The lab store: durable, transactional, and extensible by other lab modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from exlab import Lab
from exlab.core.store import Store


def test_store_on_file_keeps_mailboxes_and_folders_after_reopen(tmp_path: Path) -> None:
    path = tmp_path / "lab.sqlite"
    lab = Lab.open(path)
    lab.add_mailbox("Chef@Musterstadt.example", "Dr. Anna Berg", password="pw-1")
    inbox = lab.store.distinguished_folder("chef@musterstadt.example", "inbox")
    assert inbox is not None
    lab.close()

    again = Lab.open(path)
    assert again.store.distinguished_folder("chef@musterstadt.example", "inbox") == inbox
    assert again.check_password("chef@musterstadt.example", "pw-1")
    again.close()


def test_failed_transaction_changes_nothing() -> None:
    store = Store()
    store.add_mailbox("a@x.example", "A", "user")
    with pytest.raises(RuntimeError), store.transaction():
        store.add_mailbox("b@x.example", "B", "user")
        store.update_mailbox("a@x.example", display_name="Changed")
        raise RuntimeError("boom")
    assert store.mailbox("b@x.example") is None
    mailbox = store.mailbox("a@x.example")
    assert mailbox is not None and mailbox.display_name == "A"


def test_failed_inner_step_rolls_back_only_itself() -> None:
    store = Store()
    with store.transaction():
        store.add_mailbox("a@x.example", "A", "user")
        with pytest.raises(ValueError), store.transaction():
            store.add_mailbox("b@x.example", "B", "user")
            raise ValueError("inner")
    assert store.mailbox("a@x.example") is not None
    assert store.mailbox("b@x.example") is None


def test_a_new_store_has_the_item_tables_before_any_item_module_is_used() -> None:
    store = Store()
    tables = {r["name"] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"items", "item_attachments", "item_changes", "item_subscriptions"} <= tables


def test_new_mailbox_has_default_folders_and_archive_tree() -> None:
    lab = Lab.open()
    lab.add_mailbox("chef@x.example", "Chef", archive=True)
    store = lab.store
    root = store.distinguished_folder("chef@x.example", "root")
    top = store.distinguished_folder("chef@x.example", "msgfolderroot")
    assert root is not None and top is not None and top.parent_id == root.id
    names = {f.distinguished for f in store.children(top.id)}
    assert {"inbox", "calendar", "contacts", "tasks", "notes", "sentitems"} <= names
    calendar = store.distinguished_folder("chef@x.example", "calendar")
    assert calendar is not None and calendar.folder_class == "IPF.Appointment"
    archive_root = store.distinguished_folder("chef@x.example", "archiveroot")
    assert archive_root is not None and archive_root.parent_id is None
    assert store.distinguished_folder("chef@x.example", "archiveinbox") is not None


def test_folder_changes_are_logged_per_mailbox() -> None:
    lab = Lab.open()
    lab.add_mailbox("a@x.example", "A")
    start = lab.store.last_folder_change("a@x.example")
    inbox = lab.store.distinguished_folder("a@x.example", "inbox")
    assert inbox is not None
    sub = lab.store.add_folder("a@x.example", "Projekte", parent_id=inbox.id)
    renamed = lab.store.update_folder(sub.id, display_name="Projekte 2026")
    assert renamed.change_key != sub.change_key
    lab.store.delete_folder(sub.id)
    changes = [(f, c) for _, f, c in lab.store.folder_changes("a@x.example", start)]
    assert changes == [(sub.id, "create"), (sub.id, "update"), (sub.id, "delete")]


def test_wrong_password_and_passwordless_mailbox_are_refused() -> None:
    lab = Lab.open()
    lab.add_mailbox("a@x.example", "A", password="right")
    lab.add_mailbox("post@x.example", "Post", "shared")
    assert lab.check_password("A@x.example", "right")
    assert lab.check_password("a@x.example", "right")  # the remembered check
    assert not lab.check_password("a@x.example", "wrong")
    assert not lab.check_password("post@x.example", "")
    assert not lab.check_password("nobody@x.example", "right")
    lab.set_password("a@x.example", "new")
    assert not lab.check_password("a@x.example", "right")
    assert lab.check_password("a@x.example", "new")
