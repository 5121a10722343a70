"""SyncFolderItems: a client applying the answers ends with exactly the folder's items.

Hypothesis interleaves creates, updates, deletes and moves with sync rounds of random size;
the client's copy must never see an update or delete for an item it does not know, nor a
create for one it does, and after syncing to the end it must equal the folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exlab import Lab
from exlab.core import items as store_items
from exlab.core.access import set_delegate
from exlab.core.store import Folder
from exlab.ews.ids import decode_id
from tests.lab.items_soap import M, T, call, codes

USER = "owner@lab.example"
DELEGATE = "delegate@lab.example"
NOW = datetime(2027, 1, 1, tzinfo=UTC)


def fresh_lab() -> tuple[Lab, Folder, Folder]:
    lab = Lab.open()
    lab.add_mailbox(USER, "Owner")
    lab.add_mailbox(DELEGATE, "Delegate")
    set_delegate(lab.store, USER, DELEGATE, {"inbox": "Editor"}, view_private=False)
    inbox = lab.store.distinguished_folder(USER, "inbox")
    assert inbox is not None
    other = lab.add_folder(inbox, "Ablage")
    return lab, inbox, other


def sync_round(
    lab: Lab, state: str, max_changes: int, user: str = USER
) -> tuple[list[tuple[str, str]], str, bool]:
    state_xml = f"<m:SyncState>{state}</m:SyncState>" if state else ""
    messages = call(
        lab,
        user,
        "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
        '<m:SyncFolderId><t:DistinguishedFolderId Id="inbox">'
        f"<t:Mailbox><t:EmailAddress>{USER}</t:EmailAddress></t:Mailbox>"
        "</t:DistinguishedFolderId></m:SyncFolderId>"
        f"{state_xml}<m:MaxChangesReturned>{max_changes}</m:MaxChangesReturned>"
        "</m:SyncFolderItems>",
        validate=False,
    )
    assert codes(messages) == ["NoError"]
    msg = messages[0]
    changes: list[tuple[str, str]] = []
    box = msg.find(f"{M}Changes")
    assert box is not None
    for change in box:
        kind = change.tag.split("}")[1]
        id_el = next(change.iter(f"{T}ItemId"))
        changes.append((kind, decode_id(id_el.get("Id"))[1]))
    return (
        changes,
        msg.findtext(f"{M}SyncState", ""),
        msg.findtext(f"{M}IncludesLastItemInRange") == "true",
    )


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.integers(0, 99)),
        st.tuples(
            st.sampled_from(["update", "delete", "move_out", "move_in", "private", "public"]),
            st.integers(0, 50),
        ),
        st.tuples(st.just("sync"), st.integers(1, 4)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, user=st.sampled_from([USER, DELEGATE]))
@example(ops=[("create", 1), ("create", 0), ("sync", 1), ("delete", 0)], user=USER)
@example(ops=[("create", 0), ("create", 1), ("sync", 1), ("update", 1), ("delete", 0)], user=USER)
@example(ops=[("create", 0), ("private", 0), ("sync", 2), ("delete", 0)], user=DELEGATE)
def test_client_copy_converges_to_folder_content(ops: list[tuple[str, int]], user: str) -> None:
    lab, inbox, other = fresh_lab()
    store = lab.store
    known: set[str] = set()
    state = ""

    def apply(changes: list[tuple[str, str]]) -> None:
        for kind, key in changes:
            if kind == "Create":
                assert key not in known
                known.add(key)
            elif kind == "Update":
                assert key in known
            else:
                assert kind == "Delete" and key in known
                known.remove(key)

    for step, (op, n) in enumerate(ops):
        inside = store_items.items_in(store, inbox.id)
        outside = store_items.items_in(store, other.id)
        if op == "create":
            # Ids sort in an order hypothesis chooses (the sync pages in id order).
            store_items.create_item(
                store,
                inbox,
                "IPM.Note",
                {"item:Subject": "x"},
                created_by=USER,
                now=NOW,
                item_id=f"{n:02d}{step:030x}",
            )
        elif op == "update" and inside:
            item = inside[n % len(inside)]
            item.props["item:Subject"] = "y"
            store_items.save_item(store, item, NOW)
        elif op in ("private", "public") and inside:
            item = inside[n % len(inside)]
            item.props["item:Sensitivity"] = "Private" if op == "private" else "Normal"
            store_items.save_item(store, item, NOW)
        elif op == "delete" and inside:
            store_items.delete_item(store, inside[n % len(inside)], NOW)
        elif op == "move_out" and inside:
            store_items.move_item(store, inside[n % len(inside)], other, NOW)
        elif op == "move_in" and outside:
            store_items.move_item(store, outside[n % len(outside)], inbox, NOW)
        elif op == "sync":
            changes, state, _ = sync_round(lab, state, n, user)
            assert len(changes) <= n
            apply(changes)
    for _ in range(200):
        changes, state, done = sync_round(lab, state, 3, user)
        apply(changes)
        if done:
            break
    visible = {
        i.id for i in store_items.items_in(store, inbox.id) if user == USER or not i.is_private
    }
    assert known == visible
    lab.close()


@pytest.fixture
def lab() -> Iterator[Lab]:
    lab, _, _ = fresh_lab()
    yield lab
    lab.close()


def test_foreign_sync_state_is_refused(lab: Lab) -> None:
    messages = call(
        lab,
        USER,
        "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
        '<m:SyncFolderId><t:DistinguishedFolderId Id="inbox"/></m:SyncFolderId>'
        "<m:SyncState>bm90IG91cnM=</m:SyncState><m:MaxChangesReturned>5</m:MaxChangesReturned>"
        "</m:SyncFolderItems>",
    )
    assert codes(messages) == ["ErrorInvalidSyncStateData"]


def test_sync_pages_end_with_includes_last_item_in_range(lab: Lab) -> None:
    inbox = lab.store.distinguished_folder(USER, "inbox")
    assert inbox is not None
    for i in range(7):
        store_items.create_item(
            lab.store, inbox, "IPM.Note", {"item:Subject": f"m{i}"}, created_by=USER, now=NOW
        )
    state, seen, rounds = "", [], 0
    while True:
        changes, state, done = sync_round(lab, state, 3)
        seen += changes
        rounds += 1
        if done:
            break
    assert rounds == 3 and len(seen) == 7
    assert sync_round(lab, state, 3) == ([], state, True)
