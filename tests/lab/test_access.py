"""Effective rights: owner, permission entries, default entry, delegates and ViewPrivateItems."""

from __future__ import annotations

import pytest

from exlab import Lab
from exlab.core.access import ROLES, Rights, effective_rights, grant, role_of, set_delegate
from exlab.core.store import Folder


@pytest.fixture
def lab() -> Lab:
    lab = Lab.open()
    lab.add_mailbox("chef@x.example", "Chef", password="pw")
    lab.add_mailbox("assi@x.example", "Assi", password="pw")
    lab.add_mailbox("other@x.example", "Other", password="pw")
    return lab


def folder(lab: Lab, owner: str, name: str) -> Folder:
    found = lab.store.distinguished_folder(owner, name)
    assert found is not None
    return found


def test_owner_has_every_right_including_private_items(lab: Lab) -> None:
    rights = effective_rights(lab.store, "chef@x.example", folder(lab, "chef@x.example", "inbox"))
    assert rights.read == "full" and rights.edit == "all" and rights.folder_owner
    assert rights.view_private


def test_stranger_without_entries_has_no_rights(lab: Lab) -> None:
    rights = effective_rights(lab.store, "other@x.example", folder(lab, "chef@x.example", "inbox"))
    assert rights == Rights()
    assert not rights.folder_visible


def test_default_entry_applies_when_the_user_has_none(lab: Lab) -> None:
    calendar = folder(lab, "chef@x.example", "calendar")
    grant(lab.store, calendar.id, "default", "FreeBusyTimeOnly")
    grant(lab.store, calendar.id, "assi@x.example", "Reviewer")
    assert effective_rights(lab.store, "other@x.example", calendar).read == "freebusy_time"
    assert not effective_rights(lab.store, "other@x.example", calendar).folder_visible
    assert effective_rights(lab.store, "assi@x.example", calendar).read == "full"


def test_delegate_editor_without_view_private_sees_no_private_items(lab: Lab) -> None:
    set_delegate(lab.store, "chef@x.example", "assi@x.example", {"calendar": "Editor"})
    calendar = folder(lab, "chef@x.example", "calendar")
    rights = effective_rights(lab.store, "assi@x.example", calendar)
    assert rights.edit == "all" and rights.create_items and not rights.view_private
    # Like Outlook, the delegate can walk from the root to the granted folder.
    assert effective_rights(
        lab.store, "assi@x.example", folder(lab, "chef@x.example", "root")
    ).folder_visible
    assert (
        effective_rights(lab.store, "assi@x.example", folder(lab, "chef@x.example", "inbox"))
        == Rights()
    )


def test_delegate_with_view_private_items_sees_them(lab: Lab) -> None:
    set_delegate(
        lab.store, "chef@x.example", "assi@x.example", {"inbox": "Reviewer"}, view_private=True
    )
    rights = effective_rights(lab.store, "assi@x.example", folder(lab, "chef@x.example", "inbox"))
    assert rights.read == "full" and rights.edit == "none" and rights.view_private


def test_roles_round_trip_and_custom_rights_are_custom() -> None:
    for name, rights in ROLES.items():
        assert role_of(rights) == name
    assert role_of(Rights(read="full", create_items=True, edit="all")) == "Custom"


def test_unknown_role_is_refused(lab: Lab) -> None:
    with pytest.raises(ValueError, match="unknown permission level"):
        grant(lab.store, folder(lab, "chef@x.example", "inbox").id, "default", "Boss")
