"""Delegate grants are folder permissions: GetFolder's PermissionSet and GetDelegate agree."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import defusedxml.ElementTree as DET

from exlab.core.access import ROLES, Rights
from exlab.demo import ASSISTENZ, CHEF
from tests.lab.conftest import LabServer
from tests.lab.schema import assert_valid_ews
from tests.lab.test_folders import soap

T = "{http://schemas.microsoft.com/exchange/services/2006/types}"
DELEGATE_FOLDERS = {"inbox": "Editor", "tasks": "Editor", "contacts": "Reviewer"}


def _get_permissions(lab: LabServer, folder: str) -> dict[str, Element]:
    """The owner's view of a default folder's PermissionSet: principal -> entry element."""
    body = soap(
        lab,
        CHEF,
        "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties>"
        '<t:FieldURI FieldURI="folder:PermissionSet"/></t:AdditionalProperties></m:FolderShape>'
        f'<m:FolderIds><t:DistinguishedFolderId Id="{folder}"/></m:FolderIds></m:GetFolder>',
    )
    assert_valid_ews(body)
    entries: dict[str, Element] = {}
    for entry in DET.fromstring(body).iter():
        if entry.tag in (f"{T}Permission", f"{T}CalendarPermission"):
            user = entry.find(f"{T}UserId")
            assert user is not None
            name = user.findtext(f"{T}PrimarySmtpAddress") or user.findtext(
                f"{T}DistinguishedUser", ""
            )
            entries[name.lower()] = entry
    return entries


def _level(entry: Element) -> str:
    return entry.findtext(f"{T}PermissionLevel") or entry.findtext(
        f"{T}CalendarPermissionLevel", ""
    )


def _delegate_levels(lab: LabServer) -> dict[str, str]:
    body = soap(
        lab,
        CHEF,
        '<m:GetDelegate IncludePermissions="true"><m:Mailbox>'
        f"<t:EmailAddress>{CHEF}</t:EmailAddress></m:Mailbox></m:GetDelegate>",
    )
    perms = next(e for e in DET.fromstring(body).iter() if e.tag == f"{T}DelegatePermissions")
    return {
        child.tag.removeprefix(T).removesuffix("FolderPermissionLevel").lower(): child.text or ""
        for child in perms
    }


def _set_inbox_entry(lab: LabServer, entry: str) -> bytes:
    folder_id = _get_folder_id(lab, "inbox")
    return soap(
        lab,
        CHEF,
        "<m:UpdateFolder><m:FolderChanges><t:FolderChange>"
        f'<t:FolderId Id="{folder_id}"/><t:Updates><t:SetFolderField>'
        '<t:FieldURI FieldURI="folder:PermissionSet"/><t:Folder><t:PermissionSet>'
        f"<t:Permissions>{entry}</t:Permissions></t:PermissionSet></t:Folder></t:SetFolderField>"
        "</t:Updates></t:FolderChange></m:FolderChanges></m:UpdateFolder>",
    )


def _get_folder_id(lab: LabServer, folder: str) -> str:
    body = soap(
        lab,
        CHEF,
        "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"
        f'<m:FolderIds><t:DistinguishedFolderId Id="{folder}"/></m:FolderIds></m:GetFolder>',
    )
    return next(e for e in DET.fromstring(body).iter() if e.tag == f"{T}FolderId").get("Id", "")


def test_owner_sees_the_delegate_role_on_every_granted_folder(lab: LabServer) -> None:
    delegate = _delegate_levels(lab)
    for folder, role in {**DELEGATE_FOLDERS, "calendar": "Editor"}.items():
        entry = _get_permissions(lab, folder)[ASSISTENZ]
        assert _level(entry) == role == delegate[folder]
        expected = ROLES[role]
        assert entry.findtext(f"{T}EditItems") == {"all": "All", "none": "None"}[expected.edit]
        assert entry.findtext(f"{T}ReadItems") == "FullDetails"
        assert entry.findtext(f"{T}CanCreateItems") == str(expected.create_items).lower()


def test_exchangelib_reads_the_delegate_rights_on_the_inbox_as_editor(lab: LabServer) -> None:
    # exchangelib 5 looks for the level of a plain Permission under the calendar element name,
    # so a client must derive the role from the rights, which therefore have to be exact.
    account = lab.account("chef")
    for folder, role in (
        (account.inbox, "Editor"),
        (account.tasks, "Editor"),
        (account.contacts, "Reviewer"),
    ):
        [entry] = [
            p
            for p in folder.permission_set.permissions
            if p.user_id.primary_smtp_address == ASSISTENZ
        ]
        rights = Rights(
            read="full" if entry.read_items == "FullDetails" else "none",
            create_items=entry.can_create_items,
            create_subfolders=entry.can_create_subfolders,
            edit={"All": "all", "Owned": "own", "None": "none"}[entry.edit_items],
            delete={"All": "all", "Owned": "own", "None": "none"}[entry.delete_items],
            folder_owner=entry.is_folder_owner,
            folder_visible=entry.is_folder_visible,
            folder_contact=entry.is_folder_contact,
        )
        assert rights == ROLES[role], folder.name


def test_writing_the_permission_set_changes_what_get_delegate_reports(lab: LabServer) -> None:
    reviewer = (
        f"<t:Permission><t:UserId><t:PrimarySmtpAddress>{ASSISTENZ}</t:PrimarySmtpAddress>"
        "</t:UserId><t:PermissionLevel>Reviewer</t:PermissionLevel></t:Permission>"
    )
    assert b"NoError" in _set_inbox_entry(lab, reviewer)
    assert _delegate_levels(lab)["inbox"] == "Reviewer"
    assert _level(_get_permissions(lab, "inbox")[ASSISTENZ]) == "Reviewer"
    assert _delegate_levels(lab)["calendar"] == "Editor"


def test_custom_entry_with_editor_rights_round_trips_as_editor(lab: LabServer) -> None:
    # What a client sends back after reading the entry's rights: the role is recognised.
    entry = _get_permissions(lab, "inbox")[ASSISTENZ]
    rights = "".join(
        f"<t:{name}>{entry.findtext(T + name)}</t:{name}>"
        for name in (
            "CanCreateItems",
            "CanCreateSubFolders",
            "IsFolderOwner",
            "IsFolderVisible",
            "IsFolderContact",
            "EditItems",
            "DeleteItems",
            "ReadItems",
        )
    )
    custom = (
        f"<t:Permission><t:UserId><t:PrimarySmtpAddress>{ASSISTENZ}</t:PrimarySmtpAddress>"
        f"</t:UserId>{rights}<t:PermissionLevel>Custom</t:PermissionLevel></t:Permission>"
    )
    assert b"NoError" in _set_inbox_entry(lab, custom)
    assert _level(_get_permissions(lab, "inbox")[ASSISTENZ]) == "Editor"
    assert _delegate_levels(lab)["inbox"] == "Editor"


def test_dropping_the_entry_removes_the_delegate_inbox_grant(lab: LabServer) -> None:
    default = (
        "<t:Permission><t:UserId><t:DistinguishedUser>Default</t:DistinguishedUser></t:UserId>"
        "<t:PermissionLevel>None</t:PermissionLevel></t:Permission>"
    )
    assert b"NoError" in _set_inbox_entry(lab, default)
    assert ASSISTENZ not in _get_permissions(lab, "inbox")
    levels = _delegate_levels(lab)
    assert levels["inbox"] == "None" and levels["calendar"] == "Editor"
