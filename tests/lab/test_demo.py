"""The demo organisation: who exists, who may do what."""

from __future__ import annotations

from pathlib import Path

from med.lab import Lab
from med.lab.access import effective_rights
from med.lab.demo import ASSISTENZ, CHEF, DEMO_PASSWORD, POSTSTELLE, SACHBEARBEITUNG, TEAMKALENDER
from med.lab.store import PUBLIC, Folder


def _folder(lab: Lab, owner: str, name: str) -> Folder:
    found = lab.store.distinguished_folder(owner, name)
    assert found is not None
    return found


def test_demo_users_and_logins() -> None:
    lab = Lab.open(demo=True)
    users = {u.address: u for u in lab.users()}
    assert users[CHEF].display_name == "Dr. Anna Berg" and users[CHEF].has_login
    assert users[POSTSTELLE].kind == "shared" and not users[POSTSTELLE].has_login
    assert lab.check_password(ASSISTENZ, DEMO_PASSWORD)
    assert PUBLIC not in users


def test_demo_rights_match_the_documented_organisation() -> None:
    lab = Lab.open(demo=True)
    store = lab.store
    inbox = _folder(lab, CHEF, "inbox")
    contacts = _folder(lab, CHEF, "contacts")
    assert effective_rights(store, ASSISTENZ, inbox).edit == "all"
    assert not effective_rights(store, ASSISTENZ, inbox).view_private
    assert effective_rights(store, ASSISTENZ, contacts).edit == "none"
    assert effective_rights(store, ASSISTENZ, contacts).read == "full"
    assert not effective_rights(store, SACHBEARBEITUNG, inbox).folder_visible
    vorgaenge = next(f for f in store.children(inbox.id) if f.display_name == "Vorgänge")
    assert effective_rights(store, ASSISTENZ, vorgaenge).edit == "all"
    assert effective_rights(store, SACHBEARBEITUNG, _folder(lab, POSTSTELLE, "inbox")).edit == "all"
    team = _folder(lab, TEAMKALENDER, "calendar")
    assert effective_rights(store, SACHBEARBEITUNG, team).create_items
    assert effective_rights(store, SACHBEARBEITUNG, team).edit == "own"


def test_demo_public_folders_have_per_folder_permissions() -> None:
    lab = Lab.open(demo=True)
    store = lab.store
    root = lab.public_root()
    tops = {f.display_name: f for f in store.children(root.id)}
    assert {f.folder_class for f in tops.values()} == {
        "IPF.Note",
        "IPF.Appointment",
        "IPF.Contact",
        "IPF.Task",
        "IPF.StickyNote",
    }
    verwaltung = tops["Verwaltung"]
    assert effective_rights(store, ASSISTENZ, verwaltung).edit == "all"
    assert effective_rights(store, SACHBEARBEITUNG, verwaltung).edit == "none"
    assert effective_rights(store, SACHBEARBEITUNG, verwaltung).read == "full"
    bauhof_sub = store.children(tops["Aufgaben Bauhof"].id)[0]
    assert effective_rights(store, SACHBEARBEITUNG, bauhof_sub).edit == "own"


def test_demo_is_seeded_once_per_store(tmp_path: Path) -> None:
    path = tmp_path / "lab.sqlite"
    Lab.open(path, demo=True).close()
    lab = Lab.open(path, demo=True)
    assert len([u for u in lab.users() if u.address == CHEF]) == 1


def test_demo_flag_leaves_another_organisation_alone(tmp_path: Path) -> None:
    path = tmp_path / "own.sqlite"
    own = Lab.open(path)
    own.add_mailbox("boss@elsewhere.example", "Boss", password="pw")
    own.close()
    lab = Lab.open(path, demo=True)
    assert [u.address for u in lab.users()] == ["boss@elsewhere.example"]
