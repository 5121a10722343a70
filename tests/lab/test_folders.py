"""Folder operations over HTTP with the unmodified exchangelib, as a delegate would use them."""

from __future__ import annotations

import httpx
import pytest
from exchangelib.errors import ErrorAccessDenied
from exchangelib.folders import SHALLOW, Folder, FolderCollection, SingleFolderQuerySet

from exlab.demo import ASSISTENZ, CHEF, DEMO_PASSWORD, SACHBEARBEITUNG
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


def test_owner_renames_a_folder_and_the_delegate_keeps_access(lab: LabServer) -> None:
    account = lab.account("chef")
    folder = next(f for f in account.inbox.children if f.name == "Vorgänge")
    folder.name = "Vorgänge 2026"
    folder.save(update_fields=["name"])
    delegate = lab.account("assistenz", "chef")
    renamed = next(f for f in delegate.inbox.children if f.name == "Vorgänge 2026")
    assert renamed.effective_rights.create_contents


def test_permission_set_out_of_schema_order_is_refused_and_changes_nothing(
    lab: LabServer,
) -> None:
    # Some clients (exchangelib 5) write Permission entries with UserId last and a
    # CalendarPermissionLevel inside a plain Permission; Exchange's schema validation refuses
    # the whole request. Sent raw, so the test does not depend on any client's serializer.
    inbox = lab.account("chef").inbox
    folder = next(f for f in inbox.children if f.name == "Vorgänge")
    entry = (
        "<t:Permission><t:CanCreateSubfolders>false</t:CanCreateSubfolders>"
        "<t:CalendarPermissionLevel>Reviewer</t:CalendarPermissionLevel>"
        f"<t:UserId><t:PrimarySmtpAddress>{SACHBEARBEITUNG}</t:PrimarySmtpAddress></t:UserId>"
        "</t:Permission>"
    )
    update = (
        "<m:UpdateFolder><m:FolderChanges><t:FolderChange>"
        f'<t:FolderId Id="{folder.id}" ChangeKey="{folder.changekey}"/><t:Updates>'
        '<t:SetFolderField><t:FieldURI FieldURI="folder:DisplayName"/>'
        "<t:Folder><t:DisplayName>Umbenannt</t:DisplayName></t:Folder></t:SetFolderField>"
        '<t:SetFolderField><t:FieldURI FieldURI="folder:PermissionSet"/><t:Folder>'
        f"<t:PermissionSet><t:Permissions>{entry}</t:Permissions></t:PermissionSet>"
        "</t:Folder></t:SetFolderField></t:Updates></t:FolderChange></m:FolderChanges>"
        "</m:UpdateFolder>"
    )
    answer = httpx.post(lab.url, content=envelope(update), auth=(CHEF, DEMO_PASSWORD), timeout=30)
    assert answer.status_code == 500
    assert b"ErrorSchemaValidation" in answer.content
    again = lab.account("assistenz", "chef")
    assert "Vorgänge" in names(again.inbox.children)


def test_owner_grants_a_colleague_reviewer_with_update_folder(lab: LabServer) -> None:
    inbox = lab.account("chef").inbox
    entries = "".join(
        f"<t:Permission><t:UserId>{user}</t:UserId><t:PermissionLevel>{level}</t:PermissionLevel>"
        "</t:Permission>"
        for user, level in (
            ("<t:DistinguishedUser>Default</t:DistinguishedUser>", "None"),
            (f"<t:PrimarySmtpAddress>{ASSISTENZ}</t:PrimarySmtpAddress>", "Editor"),
            (f"<t:PrimarySmtpAddress>{SACHBEARBEITUNG}</t:PrimarySmtpAddress>", "Reviewer"),
        )
    )
    update = (
        "<m:UpdateFolder><m:FolderChanges><t:FolderChange>"
        f'<t:FolderId Id="{inbox.id}" ChangeKey="{inbox.changekey}"/><t:Updates><t:SetFolderField>'
        '<t:FieldURI FieldURI="folder:PermissionSet"/><t:Folder><t:PermissionSet><t:Permissions>'
        f"{entries}</t:Permissions></t:PermissionSet></t:Folder></t:SetFolderField></t:Updates>"
        "</t:FolderChange></m:FolderChanges></m:UpdateFolder>"
    )
    get = (
        "<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>"
        f'<m:FolderIds><t:FolderId Id="{inbox.id}"/></m:FolderIds></m:GetFolder>'
    )
    assert b"ErrorAccessDenied" in soap(lab, SACHBEARBEITUNG, get)
    assert b"NoError" in soap(lab, CHEF, update)
    # Without Folder visible on the root, exchangelib's Account cannot walk there (as with
    # Exchange); the folder itself answers by id.
    seen = soap(lab, SACHBEARBEITUNG, get)
    assert (
        b"<t:Read>true</t:Read>" in seen and b"<t:CreateContents>false</t:CreateContents>" in seen
    )


def envelope(body: str) -> str:
    return (
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"'
        ' xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )


def soap(lab: LabServer, user: str, body: str) -> bytes:
    answer = httpx.post(lab.url, content=envelope(body), auth=(user, DEMO_PASSWORD), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.content


def test_delete_to_deleted_items_moves_the_folder_then_removes_it(lab: LabServer) -> None:
    account = lab.account("chef")
    folder = Folder(parent=account.inbox, name="Alt", folder_class="IPF.Note")
    folder.save()
    Folder(parent=folder, name="Älter", folder_class="IPF.Note").save()
    folder.delete(delete_type="MoveToDeletedItems")
    fresh = lab.account("chef")
    assert "Alt" not in names(fresh.inbox.children)
    moved = next(f for f in fresh.trash.children if f.name == "Alt")
    assert names(moved.children) == {"Älter"}
    moved.delete(delete_type="MoveToDeletedItems")  # already in Deleted Items: gone for good
    assert "Alt" not in names(lab.account("chef").trash.children)


def test_delegate_syncs_only_the_folders_it_may_see(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    created = {f.name for kind, f in account.root.sync_hierarchy() if kind == "create"}
    assert {"Posteingang", "Kalender", "Vorgänge"} <= created
    assert not created & OWN_ONLY


def test_find_folder_restriction_on_the_container_class_property(lab: LabServer) -> None:
    body = (
        '<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>Default</t:BaseShape>'
        "</m:FolderShape><m:Restriction><t:IsEqualTo>"
        '<t:ExtendedFieldURI PropertyTag="0x3613" PropertyType="String"/>'
        '<t:FieldURIOrConstant><t:Constant Value="IPF.Appointment"/></t:FieldURIOrConstant>'
        '</t:IsEqualTo></m:Restriction><m:ParentFolderIds><t:DistinguishedFolderId Id="root"/>'
        "</m:ParentFolderIds></m:FindFolder>"
    )
    answer = soap(lab, CHEF, body)
    assert answer.count(b"<t:CalendarFolder>") == 2  # Kalender and Repräsentation
    assert b"<t:Folder>" not in answer
