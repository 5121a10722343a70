"""Exchange's folder names: the distinguished folders of a mailbox and how a new one is laid out.

One place for the names both faces resolve (EWS `DistinguishedFolderId`, Graph well-known
folder names) and for the default folders every new mailbox (and archive) gets.
"""

from __future__ import annotations

from datetime import datetime

from exlab.core.store import Store

# (distinguished name, German display name as a German-language mailbox shows it, folder class)
DEFAULT_FOLDERS: tuple[tuple[str, str, str], ...] = (
    ("inbox", "Posteingang", "IPF.Note"),
    ("drafts", "Entwürfe", "IPF.Note"),
    ("sentitems", "Gesendete Elemente", "IPF.Note"),
    ("deleteditems", "Gelöschte Elemente", "IPF.Note"),
    ("outbox", "Postausgang", "IPF.Note"),
    ("junkemail", "Junk-E-Mail", "IPF.Note"),
    ("calendar", "Kalender", "IPF.Appointment"),
    ("contacts", "Kontakte", "IPF.Contact"),
    ("tasks", "Aufgaben", "IPF.Task"),
    ("notes", "Notizen", "IPF.StickyNote"),
    ("journal", "Journal", "IPF.Journal"),
    ("voicemail", "Voicemail", "IPF.Note.Microsoft.Voicemail"),
)
ARCHIVE_FOLDERS: tuple[tuple[str, str, str], ...] = (
    ("archiveinbox", "Posteingang", "IPF.Note"),
    ("archivedeleteditems", "Gelöschte Elemente", "IPF.Note"),
)


KNOWN_DISTINGUISHED = frozenset(
    {
        "calendar",
        "contacts",
        "deleteditems",
        "drafts",
        "inbox",
        "journal",
        "notes",
        "outbox",
        "sentitems",
        "tasks",
        "msgfolderroot",
        "publicfoldersroot",
        "root",
        "junkemail",
        "searchfolders",
        "voicemail",
        "recoverableitemsroot",
        "recoverableitemsdeletions",
        "recoverableitemsversions",
        "recoverableitemspurges",
        "archiveroot",
        "archivemsgfolderroot",
        "archivedeleteditems",
        "archiveinbox",
        "archiverecoverableitemsroot",
        "archiverecoverableitemsdeletions",
        "archiverecoverableitemsversions",
        "archiverecoverableitemspurges",
        "syncissues",
        "conflicts",
        "localfailures",
        "serverfailures",
        "recipientcache",
        "quickcontacts",
        "conversationhistory",
        "adminauditlogs",
        "todosearch",
        "mycontacts",
        "directory",
        "imcontactlist",
        "peopleconnect",
        "favorites",
    }
)


GRAPH_WELL_KNOWN = (
    "inbox",
    "drafts",
    "sentitems",
    "deleteditems",
    "junkemail",
    "outbox",
    "msgfolderroot",
    "calendar",
    "contacts",
    "tasks",
)
"""Well-known folder names Graph accepts in place of an id (lower case)."""


def add_default_folders(store: Store, address: str, *, archive: bool, now: datetime) -> None:
    """The folders a new Exchange mailbox has (and its archive's, when it has one)."""
    root = store.add_folder(
        address, "Root", parent_id=None, folder_class=None, distinguished="root", now=now
    )
    top = store.add_folder(
        address,
        "Oberste Ebene des Informationsspeichers",
        parent_id=root.id,
        folder_class="IPF.Note",
        distinguished="msgfolderroot",
        now=now,
    )
    for name, display, folder_class in DEFAULT_FOLDERS:
        store.add_folder(
            address,
            display,
            parent_id=top.id,
            folder_class=folder_class,
            distinguished=name,
            now=now,
        )
    if archive:
        aroot = store.add_folder(
            address,
            "Archiv",
            parent_id=None,
            folder_class=None,
            distinguished="archiveroot",
            now=now,
        )
        atop = store.add_folder(
            address,
            "Online-Archiv",
            parent_id=aroot.id,
            folder_class="IPF.Note",
            distinguished="archivemsgfolderroot",
            now=now,
        )
        for name, display, folder_class in ARCHIVE_FOLDERS:
            store.add_folder(
                address,
                display,
                parent_id=atop.id,
                folder_class=folder_class,
                distinguished=name,
                now=now,
            )
