"""Folder operations over HTTP with the unmodified exchangelib, as a delegate would use them."""

from __future__ import annotations

import pytest
from exchangelib.errors import ErrorAccessDenied
from exchangelib.folders import SHALLOW, Folder, FolderCollection, SingleFolderQuerySet

from med.lab.demo import ASSISTENZ
from tests.lab.conftest import LabServer

OWN_ONLY = {"Gesendete Elemente", "Entwürfe", "Gelöschte Elemente", "Junk-E-Mail", "Postausgang"}


def names(folders: object) -> set[str]:
    return {f.name for f in folders}  # type: ignore[attr-defined]


def test_delegate_walks_the_boss_tree_and_sees_only_granted_folders(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    seen = names(account.root.walk())
    assert {"Posteingang", "Kalender", "Kontakte", "Aufgaben", "Vorgänge", "Kreistag"} <= seen
    assert not seen & OWN_ONLY
    assert account.inbox.name == "Posteingang"
    assert account.calendar.name == "Kalender"


def test_owner_sees_every_default_folder(lab: LabServer) -> None:
    account = lab.account("chef")
    seen = names(account.root.walk())
    assert seen >= OWN_ONLY
    assert {"Posteingang", "Kalender", "Notizen", "Voicemail"} <= seen
    assert account.inbox.effective_rights.view_private_items


def test_delegate_rights_are_reported_on_the_folder(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    rights = account.inbox.effective_rights
    assert rights.read and rights.create_contents and not rights.view_private_items
    contacts_rights = account.contacts.effective_rights
    assert contacts_rights.read and not contacts_rights.create_contents
    entries = {
        p.user_id.primary_smtp_address or p.user_id.distinguished_user: p
        for p in account.inbox.permission_set.permissions
    }
    assert entries[ASSISTENZ].edit_items == "All"
    assert entries["Default"].read_items == "None"


def test_clerk_without_rights_gets_access_denied_on_the_boss_folders(lab: LabServer) -> None:
    account = lab.account("sachbearbeitung", "chef")
    with pytest.raises(ErrorAccessDenied):
        _ = account.root
    with pytest.raises(ErrorAccessDenied):
        _ = account.inbox


def test_functional_mailbox_is_reachable_for_staff(lab: LabServer) -> None:
    account = lab.account("sachbearbeitung", "poststelle")
    assert account.inbox.name == "Posteingang"
    assert "Eingangsbuch" in names(account.inbox.walk())
    assert account.calendar.effective_rights.create_contents


def test_public_folder_tree_is_walked_level_by_level(lab: LabServer) -> None:
    account = lab.account("assistenz")
    root = account.public_folders_root
    tops = names(root.children)
    assert tops == {
        "Verwaltung",
        "Termine Kreistag",
        "Adressen extern",
        "Aufgaben Bauhof",
        "Notizen",
    }
    assert {"Rundschreiben", "Dienstanweisungen", "Winterdienst", "Behörden"} <= names(root.walk())
    verwaltung = next(f for f in root.children if f.name == "Verwaltung")
    assert verwaltung.effective_rights.create_contents  # assistenz is Editor there
    adressen = next(f for f in root.children if f.name == "Adressen extern")
    assert not adressen.effective_rights.create_contents  # Reviewer only
    assert adressen.folder_class == "IPF.Contact"


def test_archive_tree_of_the_boss(lab: LabServer) -> None:
    account = lab.account("chef")
    archive = account.archive_root
    assert {"Online-Archiv", "2024", "2025", "Posteingang"} <= names(archive.walk())
    assert account.archive_msg_folder_root.name == "Online-Archiv"


def test_find_folder_pages_until_includes_last_item(lab: LabServer) -> None:
    account = lab.account("chef")
    top = account.msg_folder_root
    everything = list(FolderCollection(account=account, folders=[top]).find_folders(depth=SHALLOW))
    paged = list(
        FolderCollection(account=account, folders=[top]).find_folders(depth=SHALLOW, page_size=3)
    )
    assert len(everything) >= 12
    assert [f.id for f in paged] == [f.id for f in everything]


def test_find_folder_restriction_on_display_name(lab: LabServer) -> None:
    account = lab.account("chef")
    top = SingleFolderQuerySet(account=account, folder=account.msg_folder_root)
    found = list(top.filter(name="Posteingang"))
    assert [f.name for f in found] == ["Posteingang"]
    public = SingleFolderQuerySet(account=account, folder=account.public_folders_root)
    termine = list(public.filter(name__icontains="kreistag"))
    assert [f.name for f in termine] == ["Termine Kreistag"]


def test_sync_folder_hierarchy_reports_creates_updates_and_deletes(lab: LabServer) -> None:
    account = lab.account("chef")
    top = account.msg_folder_root
    initial = list(top.sync_hierarchy())
    assert {"Posteingang", "Vorgänge"} <= {f.name for kind, f in initial if kind == "create"}
    state = top.folder_sync_state

    new = Folder(parent=account.inbox, name="Haushalt 2027", folder_class="IPF.Note")
    new.save()
    after_create = list(top.sync_hierarchy(sync_state=state))
    assert [(kind, f.name) for kind, f in after_create] == [("create", "Haushalt 2027")]
    state = top.folder_sync_state

    new.name = "Haushalt 2028"
    new.save()
    after_update = list(top.sync_hierarchy(sync_state=state))
    assert [(kind, f.name) for kind, f in after_update] == [("update", "Haushalt 2028")]
    state = top.folder_sync_state

    deleted_id = new.id
    new.delete()
    after_delete = list(top.sync_hierarchy(sync_state=state))
    assert [(kind, f.id) for kind, f in after_delete] == [("delete", deleted_id)]


def test_delegate_cannot_create_subfolders_where_only_editor(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    with pytest.raises(ErrorAccessDenied):
        Folder(parent=account.inbox, name="Nicht erlaubt").save()
