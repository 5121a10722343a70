"""The demo organisation: a district administration with a clinic's control room.

Users, functional and shared mailboxes, a room, an archive, the public folder tree, folder
permissions and delegates, as the documentation and training describe them. Items come from
`exlab.demo_items.seed_items`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from exlab.core.access import grant, grant_visibility, set_delegate
from exlab.core.directory import add_group
from exlab.core.mailbox_rights import add_mailbox_permission
from exlab.core.scheduling import set_room_details
from exlab.demo_items import seed_items

if TYPE_CHECKING:
    from exlab.core.store import Folder
    from exlab.lab import Lab

DOMAIN = "musterstadt.example"
DEMO_PASSWORD = "Demo-2026!"  # noqa: S105 (the documented password of the demo organisation)

CHEF = f"chef@{DOMAIN}"
ASSISTENZ = f"assistenz@{DOMAIN}"
SACHBEARBEITUNG = f"sachbearbeitung@{DOMAIN}"
POSTSTELLE = f"poststelle@{DOMAIN}"
LEITSTELLE = f"leitstelle@{DOMAIN}"
TEAMKALENDER = f"teamkalender@{DOMAIN}"
SITZUNGSSAAL = f"sitzungssaal@{DOMAIN}"
RAEUME = f"raeume@{DOMAIN}"
VERWALTUNGSVORSTAND = f"verwaltungsvorstand@{DOMAIN}"
FUNCTIONAL_TEAM = (ASSISTENZ, SACHBEARBEITUNG)
"""Who works in the functional mailboxes (poststelle, leitstelle)."""

# Public folders: (name, folder class, subfolders, {principal: role}); `default` is everyone.
PUBLIC_FOLDERS: tuple[tuple[str, str, tuple[str, ...], dict[str, str]], ...] = (
    (
        "Verwaltung",
        "IPF.Note",
        ("Rundschreiben", "Dienstanweisungen"),
        {"default": "Reviewer", ASSISTENZ: "Editor", CHEF: "Owner"},
    ),
    (
        "Termine Kreistag",
        "IPF.Appointment",
        ("Ausschüsse",),
        {"default": "Reviewer", ASSISTENZ: "Editor", CHEF: "Owner"},
    ),
    (
        "Adressen extern",
        "IPF.Contact",
        ("Behörden", "Kliniken"),
        {"default": "Reviewer", ASSISTENZ: "Reviewer", CHEF: "Owner"},
    ),
    (
        "Aufgaben Bauhof",
        "IPF.Task",
        ("Winterdienst", "Grünpflege"),
        {"default": "Reviewer", SACHBEARBEITUNG: "Author", CHEF: "Owner"},
    ),
    (
        "Notizen",
        "IPF.StickyNote",
        ("Besprechungen",),
        {"default": "Reviewer", CHEF: "Owner"},
    ),
)


def open_demo(path: str | Path | None = None) -> Lab:
    """A lab on `path` (memory when None) holding the demo organisation.

    An empty store is seeded; a store that already holds an organisation (the demo or another)
    is left as it is. `Lab.open` never seeds: the demo is its callers' choice.
    """
    from exlab.lab import Lab

    lab = Lab.open(path)
    if lab.store.get_meta("demo") is None and not lab.store.mailboxes():
        seed(lab)
    return lab


def seed(lab: Lab) -> None:
    """Create the demo organisation in an empty lab (one transaction: all or nothing)."""
    store = lab.store
    with store.transaction():
        lab.add_mailbox(CHEF, "Dr. Anna Berg", password=DEMO_PASSWORD, archive=True)
        lab.add_mailbox(ASSISTENZ, "Tom Weber", password=DEMO_PASSWORD)
        lab.add_mailbox(SACHBEARBEITUNG, "Lena Koch", password=DEMO_PASSWORD)
        lab.add_mailbox(POSTSTELLE, "Poststelle", "shared")
        lab.add_mailbox(LEITSTELLE, "Leitstelle", "shared")
        lab.add_mailbox(TEAMKALENDER, "Teamkalender", "shared")
        lab.add_mailbox(SITZUNGSSAAL, "Sitzungssaal 1", "room")

        # Exchange's default calendar sharing: everyone sees free/busy times.
        for owner in (CHEF, ASSISTENZ, SACHBEARBEITUNG, POSTSTELLE, LEITSTELLE):
            grant(store, _folder(lab, owner, "calendar").id, "default", "FreeBusyTimeOnly")
        grant(
            store,
            _folder(lab, SITZUNGSSAAL, "calendar").id,
            "default",
            "FreeBusyTimeAndSubjectAndLocation",
        )

        set_delegate(
            store,
            CHEF,
            ASSISTENZ,
            {"calendar": "Editor", "inbox": "Editor", "tasks": "Editor", "contacts": "Reviewer"},
            view_private=False,
            receive_meeting_copies=True,
        )
        # The boss's own subfolders inherit the delegate's grants, as new folders do in Exchange.
        inbox = _folder(lab, CHEF, "inbox")
        for name in ("Vorgänge", "Kreistag", "Klinikverbund"):
            lab.add_folder(inbox, name)
        lab.add_folder(_folder(lab, CHEF, "calendar"), "Repräsentation")
        store.update_mailbox(CHEF, meeting_delivery="DelegatesAndSendInformationToMe")

        # Chef's archive.
        archive_top = _folder(lab, CHEF, "archivemsgfolderroot")
        for year in ("2024", "2025"):
            lab.add_folder(archive_top, year)

        # Functional mailboxes are shared mailboxes as organisations set them up: their team
        # holds FullAccess (every folder, Sent Items included) and SendAs. The boss's delegate
        # above keeps folder grants only.
        for functional in (POSTSTELLE, LEITSTELLE):
            for staff in FUNCTIONAL_TEAM:
                add_mailbox_permission(store, functional, staff, "FullAccess")
                add_mailbox_permission(store, functional, staff, "SendAs")
        lab.add_folder(_folder(lab, POSTSTELLE, "inbox"), "Eingangsbuch")
        lab.add_folder(_folder(lab, LEITSTELLE, "inbox"), "Einsatzberichte")

        # Directory: the room list Outlook's room finder shows, and a distribution group.
        add_group(store, RAEUME, "Räume Kreishaus", "roomlist", [SITZUNGSSAAL])
        set_room_details(
            store,
            SITZUNGSSAAL,
            capacity=40,
            building="Kreishaus",
            floor="1. OG",
            equipment=("Beamer", "Videokonferenz", "Mikrofonanlage"),
            wheelchair=True,
        )
        add_group(
            store,
            VERWALTUNGSVORSTAND,
            "Verwaltungsvorstand",
            "distribution",
            [CHEF, ASSISTENZ, SACHBEARBEITUNG],
        )

        # The team calendar: every member of staff may add appointments.
        grant(store, _folder(lab, TEAMKALENDER, "calendar").id, "default", "Author")
        grant_visibility(store, TEAMKALENDER, "default")

        # Public folders.
        root = lab.public_root()
        grant(store, root.id, "default", "Reviewer")
        for name, folder_class, subs, roles in PUBLIC_FOLDERS:
            top = lab.add_folder(root, name, folder_class)
            for principal, role in roles.items():
                grant(store, top.id, principal, role)
            for sub_name in subs:
                lab.add_folder(top, sub_name, folder_class)

        seed_items(lab)
        store.set_meta("demo", DOMAIN)


def _folder(lab: Lab, owner: str, name: str) -> Folder:
    found = lab.store.distinguished_folder(owner, name)
    if found is None:
        raise LookupError(f"{owner} has no {name} folder")
    return found
