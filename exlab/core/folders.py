"""Exchange's folder names: the distinguished folders of a mailbox and how a new one is laid out.

One place for the names both faces resolve (EWS `DistinguishedFolderId`, Graph well-known
folder names) and for the default folders every new mailbox (and archive) gets.
"""

from __future__ import annotations

from datetime import datetime

from exlab.core.errors import ExchangeError
from exlab.core.store import PUBLIC, Folder, Store

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
    ("conversationhistory", "Unterhaltungsverlauf", "IPF.Note"),
    ("syncissues", "Synchronisierungsprobleme", "IPF.Note"),
)
"""The folders of the visible tree (Top of Information Store), as a new mailbox has them."""

SYNC_ISSUES: tuple[tuple[str, str, str], ...] = (
    ("conflicts", "Konflikte", "IPF.Note"),
    ("localfailures", "Lokale Fehler", "IPF.Note"),
    ("serverfailures", "Serverfehler", "IPF.Note"),
)
CONTACTS_HIDDEN: tuple[tuple[str, str, str], ...] = (
    ("recipientcache", "Recipient Cache", "IPF.Contact.RecipientCache"),
    ("quickcontacts", "Quick Contacts", "IPF.Contact.MOC.QuickContacts"),
    ("imcontactlist", "IM Contact List", "IPF.Contact.MOC.ImContactList"),
)
"""Contacts subfolders Exchange keeps for itself (hidden from the folder list)."""

SYSTEM_FOLDERS: tuple[tuple[str | None, str], ...] = (
    (None, "Common Views"),
    (None, "Deferred Action"),
    ("searchfolders", "Finder"),
    ("recoverableitemsroot", "Recoverable Items"),
    (None, "Schedule"),
    (None, "Shortcuts"),
    (None, "Spooler Queue"),
    (None, "System"),
    (None, "Views"),
)
"""The non-IPM subtree beside Top of Information Store (no folder class, names not localised)."""

RECOVERABLE_ITEMS = (
    ("deletions", "Deletions"),
    ("purges", "Purges"),
    ("versions", "Versions"),
)

SEARCH_FOLDERS: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "voicemail",
        "Voicemail",
        "IPF.Note.Microsoft.Voicemail",
        "IPM.Note.Microsoft.Voicemail",
        "inbox",
    ),
    ("todosearch", "To-Do Search", "IPF.Task", "IPM.Task", "tasks"),
)
"""Search folders under Finder: (name, display name, folder class, item class, scope). Unified
Messaging delivers voicemail to the Inbox; the Voicemail folder is a search folder over it."""

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
    """The folders a new Exchange mailbox has (and its archive's, when it has one): the root
    (named `root`, no class), the system folders beside Top of Information Store, the default
    folders, and the search folders under Finder."""
    root = store.add_folder(
        address, "root", parent_id=None, folder_class=None, distinguished="root", now=now
    )
    system: dict[str, str] = {}
    for name, display in SYSTEM_FOLDERS:
        folder = store.add_folder(
            address, display, parent_id=root.id, folder_class=None, distinguished=name, now=now
        )
        system[name or display] = folder.id
    for name, display in RECOVERABLE_ITEMS:
        store.add_folder(
            address,
            display,
            parent_id=system["recoverableitemsroot"],
            folder_class=None,
            distinguished=f"recoverableitems{name}",
            now=now,
        )
    top = store.add_folder(
        address,
        "Oberste Ebene des Informationsspeichers",
        parent_id=root.id,
        folder_class="IPF.Note",
        distinguished="msgfolderroot",
        now=now,
    )
    made: dict[str, str] = {}
    for name, display, folder_class in DEFAULT_FOLDERS:
        made[name] = store.add_folder(
            address,
            display,
            parent_id=top.id,
            folder_class=folder_class,
            distinguished=name,
            now=now,
        ).id
    for parent, children, hidden in (
        ("syncissues", SYNC_ISSUES, False),
        ("contacts", CONTACTS_HIDDEN, True),
    ):
        for name, display, folder_class in children:
            store.add_folder(
                address,
                display,
                parent_id=made[parent],
                folder_class=folder_class,
                distinguished=name,
                hidden=hidden,
                now=now,
            )
    for name, display, folder_class, item_class, scope in SEARCH_FOLDERS:
        store.add_folder(
            address,
            display,
            parent_id=system["searchfolders"],
            folder_class=folder_class,
            distinguished=name,
            now=now,
            search=(item_class, made[scope]),
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
        arecoverable = store.add_folder(
            address,
            "Recoverable Items",
            parent_id=aroot.id,
            folder_class=None,
            distinguished="archiverecoverableitemsroot",
            now=now,
        )
        for name, display in RECOVERABLE_ITEMS:
            store.add_folder(
                address,
                display,
                parent_id=arecoverable.id,
                folder_class=None,
                distinguished=f"archiverecoverableitems{name}",
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


def archive_target(store: Store, source: Folder, now: datetime) -> Folder:
    """Where ArchiveItem puts items of `source`: the same place in the archive, its folder path
    kept (Inbox/Vorgänge goes to the archive's Inbox/Vorgänge, made when missing), as Exchange
    preserves the hierarchy. Calendar, contact and task folders, public folders and the archive
    itself cannot be archived from."""
    if source.mailbox == PUBLIC:
        raise ExchangeError(
            "ErrorCannotArchiveItemsInPublicFolders", "Items in public folders cannot be archived."
        )
    if (source.folder_class or "").startswith(("IPF.Appointment", "IPF.Contact", "IPF.Task")):
        raise ExchangeError(
            "ErrorCannotArchiveCalendarContactTaskFolderException",
            "Calendar, contact and task folders cannot be archived.",
        )
    chain: list[Folder] = []
    current: Folder | None = source
    while current is not None and current.distinguished != "msgfolderroot":
        if current.distinguished in ("archiveroot", "archivemsgfolderroot"):
            raise ExchangeError(
                "ErrorCannotArchiveItemsInArchiveMailbox", "The items are in the archive already."
            )
        chain.append(current)
        current = store.folder(current.parent_id) if current.parent_id else None
    if current is None:
        raise ExchangeError("ErrorFolderNotFound", "Only mail folders can be archived from.")
    top = store.distinguished_folder(source.mailbox, "archivemsgfolderroot")
    if top is None:
        raise ExchangeError("ErrorArchiveMailboxNotEnabled", "The mailbox has no archive.")
    target = top
    for index, folder in enumerate(reversed(chain)):
        twin = ARCHIVE_TWINS.get(folder.distinguished or "") if index == 0 else None
        found = store.distinguished_folder(source.mailbox, twin) if twin else None
        if found is None:
            found = next(
                (c for c in store.children(target.id) if c.display_name == folder.display_name),
                None,
            )
        if found is None:
            found = store.add_folder(
                source.mailbox,
                folder.display_name,
                parent_id=target.id,
                folder_class=folder.folder_class,
                now=now,
            )
        target = found
    return target


ARCHIVE_TWINS = {"inbox": "archiveinbox", "deleteditems": "archivedeleteditems"}
"""Default folders whose place in the archive is a default folder of the archive."""
