from __future__ import annotations

import dataclasses

import pytest

from med import (
    Delegate,
    DelegateLevel,
    EditScope,
    Folder,
    FolderKind,
    Permission,
    ReadAccess,
    Rights,
    Role,
)
from med.permissions import (
    ROLE_RIGHTS,
    combine,
    effective_rights,
    permission_for_role,
    rights_for_role,
    role_for_rights,
)

BOSS = "chef@musterstadt.example"
TOM = "assistenz@musterstadt.example"
LENA = "sachbearbeitung@musterstadt.example"

CAL = Folder(
    id="c", mailbox=BOSS, name="Kalender", kind=FolderKind.CALENDAR, distinguished="calendar"
)
CONTACTS = Folder(
    id="k", mailbox=BOSS, name="Kontakte", kind=FolderKind.CONTACTS, distinguished="contacts"
)
TOM_DELEGATE = Delegate(
    TOM,
    "Tom Weber",
    {
        "calendar": DelegateLevel.EDITOR,
        "inbox": DelegateLevel.EDITOR,
        "tasks": DelegateLevel.EDITOR,
        "contacts": DelegateLevel.REVIEWER,
    },
)


@pytest.mark.parametrize("role", [r for r in Role if r is not Role.CUSTOM])
def test_every_role_maps_to_rights_and_back(role: Role) -> None:
    assert role_for_rights(rights_for_role(role)) is role


def test_rights_matching_no_role_are_custom() -> None:
    odd = dataclasses.replace(rights_for_role(Role.REVIEWER), delete=EditScope.ALL)
    assert role_for_rights(odd) is Role.CUSTOM


def test_roles_as_outlook_defines_them() -> None:
    editor, author = ROLE_RIGHTS[Role.EDITOR], ROLE_RIGHTS[Role.AUTHOR]
    assert (editor.edit, editor.delete, editor.create_subfolders) == (
        EditScope.ALL,
        EditScope.ALL,
        False,
    )
    assert (author.edit, author.delete) == (EditScope.OWN, EditScope.OWN)
    assert ROLE_RIGHTS[Role.NON_EDITING_AUTHOR].edit is EditScope.NONE
    assert ROLE_RIGHTS[Role.NON_EDITING_AUTHOR].delete is EditScope.OWN
    assert ROLE_RIGHTS[Role.CONTRIBUTOR].read is ReadAccess.NONE
    assert ROLE_RIGHTS[Role.CONTRIBUTOR].create_items
    assert ROLE_RIGHTS[Role.FREE_BUSY_TIME_ONLY].read is ReadAccess.FREEBUSY_TIME
    assert (
        ROLE_RIGHTS[Role.OWNER].folder_owner
        and not ROLE_RIGHTS[Role.PUBLISHING_EDITOR].folder_owner
    )


def test_custom_role_has_no_fixed_rights() -> None:
    with pytest.raises(ValueError):
        rights_for_role(Role.CUSTOM)


def test_owner_has_everything_including_private_items() -> None:
    assert effective_rights(BOSS, CAL, []) == Rights.full()


def test_delegate_editor_on_calendar_without_view_private() -> None:
    default = permission_for_role("default", Role.FREE_BUSY_TIME_ONLY)
    rights = effective_rights(TOM, CAL, [default], [TOM_DELEGATE])
    assert role_for_rights(rights) is Role.EDITOR
    assert not rights.view_private


def test_delegate_reviewer_on_contacts_cannot_create() -> None:
    rights = effective_rights(TOM, CONTACTS, [], [TOM_DELEGATE])
    assert rights.can_read_items and not rights.create_items


def test_view_private_comes_with_the_delegate_grant() -> None:
    trusted = dataclasses.replace(TOM_DELEGATE, view_private=True)
    assert effective_rights(TOM, CAL, [], [trusted]).view_private


def test_user_without_grant_gets_the_default_entry() -> None:
    default = permission_for_role("default", Role.FREE_BUSY_TIME_ONLY)
    rights = effective_rights(LENA, CAL, [default], [TOM_DELEGATE])
    assert rights.read is ReadAccess.FREEBUSY_TIME and not rights.can_read_items


def test_named_entry_replaces_default_rather_than_adding() -> None:
    perms = [permission_for_role("default", Role.AUTHOR), permission_for_role(LENA, Role.REVIEWER)]
    rights = effective_rights(LENA, CAL, perms)
    assert not rights.create_items and rights.can_read_items


def test_delegate_grant_only_applies_to_default_folders() -> None:
    sub = Folder(id="s", mailbox=BOSS, name="Projekte", kind=FolderKind.MAIL)
    assert effective_rights(TOM, sub, [], [TOM_DELEGATE]) == Rights()


def test_combine_takes_the_widest_of_each_right() -> None:
    merged = combine([rights_for_role(Role.REVIEWER), rights_for_role(Role.CONTRIBUTOR)])
    assert merged.can_read_items and merged.create_items
    assert role_for_rights(merged) is Role.CUSTOM


def test_permission_entries_carry_the_role() -> None:
    p = permission_for_role(TOM, Role.EDITOR, "Tom Weber")
    assert p == Permission(TOM, Role.EDITOR, ROLE_RIGHTS[Role.EDITOR], "Tom Weber")
