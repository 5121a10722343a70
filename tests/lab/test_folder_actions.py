"""EmptyFolder, MarkAsJunk, ExportItems and UploadItems over HTTP with exchangelib; the raw
answers of the Exchange 2010 SP1 operations checked against the schemas (MarkAsJunk is an
Exchange 2013 operation, newer than the schemas at hand)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from exchangelib import Message
from exchangelib.errors import ErrorAccessDenied, ErrorCorruptData

from exlab import Lab
from exlab.core import items as store_items
from exlab.core.targets import item_ews_id
from exlab.demo import CHEF
from tests.lab.conftest import LabServer
from tests.lab.items_soap import M, T, call, codes, demo_lab, find, folder_of


@pytest.fixture(scope="module")
def memory_lab() -> Iterator[Lab]:
    yield from demo_lab()


def test_empty_folder_removes_every_item_and_with_subfolders_the_subfolders(
    lab: LabServer,
) -> None:
    account = lab.account("chef")
    for i in range(3):
        Message(account=account, folder=account.junk, subject=f"Werbung {i}", body="x").save()
    below = account.junk.__class__(parent=account.junk, name="Alt")
    below.save()
    account.junk.empty(delete_sub_folders=False)
    assert account.junk.all().count() == 0
    assert [f.name for f in account.junk.children] == ["Alt"]
    account.junk.refresh()
    account.junk.empty(delete_sub_folders=True)
    account.junk.refresh()
    assert account.junk.child_folder_count == 0


def test_empty_folder_needs_delete_rights_on_every_item(lab: LabServer) -> None:
    """The delegate reads the boss's contacts (Reviewer) but may not empty them."""
    before = lab.account("chef").contacts.all().count()
    with pytest.raises(ErrorAccessDenied):
        lab.account("assistenz", "chef").contacts.empty()
    assert lab.account("chef").contacts.all().count() == before


def test_mark_as_junk_moves_to_junk_and_back(lab: LabServer) -> None:
    account = lab.account("chef")
    message = Message(account=account, folder=account.inbox, subject="Gewinnspiel", body="x")
    message.save()
    message.mark_as_junk(is_junk=True, move_item=True)  # takes the answer's MovedItemId
    assert account.junk.get(subject="Gewinnspiel").id == message.id
    assert not account.inbox.filter(subject="Gewinnspiel").exists()
    message.mark_as_junk(is_junk=False, move_item=True)
    assert account.inbox.get(subject="Gewinnspiel").id == message.id


def test_an_exported_item_uploads_as_a_copy_and_over_itself(lab: LabServer) -> None:
    account = lab.account("chef")
    original = account.inbox.all().order_by("-datetime_received")[0]
    [data] = account.export([original])
    [(new_id, _)] = account.upload([(account.drafts, data)])
    copy = account.drafts.get(id=new_id)
    assert copy.subject == original.subject and copy.id != original.id
    copy.subject = "Geändert"
    copy.save(update_fields=["subject"])
    [(same_id, _)] = account.upload([(account.drafts, ((copy.id, copy.changekey), False, data))])
    assert same_id == copy.id
    assert account.drafts.get(id=copy.id).subject == original.subject
    [refused] = account.upload([(account.drafts, "bm90IGFuIGV4cG9ydA==")])
    assert isinstance(refused, ErrorCorruptData)


def test_export_and_upload_answers_are_schema_valid(memory_lab: Lab) -> None:
    item = find(memory_lab, CHEF, "inbox", lambda i: True)
    exported = call(
        memory_lab,
        CHEF,
        f'<m:ExportItems><m:ItemIds><t:ItemId Id="{item_ews_id(item)}"/></m:ItemIds>'
        "</m:ExportItems>",
    )
    assert codes(exported) == ["NoError"]
    data = exported.findtext(f".//{M}Data")
    assert data
    drafts = folder_of(memory_lab, CHEF, "drafts")
    before = len(store_items.items_in(memory_lab.store, drafts))
    uploaded = call(
        memory_lab,
        CHEF,
        '<m:UploadItems><m:Items><t:Item CreateAction="CreateNew">'
        '<t:ParentFolderId Id="' + _folder_id(drafts) + f'"/><t:Data>{data}</t:Data></t:Item>'
        "</m:Items></m:UploadItems>",
    )
    assert codes(uploaded) == ["NoError"]
    assert len(store_items.items_in(memory_lab.store, drafts)) == before + 1
    emptied = call(
        memory_lab,
        CHEF,
        '<m:EmptyFolder DeleteType="HardDelete" DeleteSubFolders="false"><m:FolderIds>'
        f'<t:FolderId Id="{_folder_id(drafts)}"/></m:FolderIds></m:EmptyFolder>',
    )
    assert codes(emptied) == ["NoError"]
    assert store_items.items_in(memory_lab.store, drafts) == []
    assert T  # the types namespace is used by the shared helpers' answers


def _folder_id(folder_key: str) -> str:
    from exlab.core.ids import encode_id

    return encode_id("folder", folder_key)
