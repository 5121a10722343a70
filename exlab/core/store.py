"""The lab's SQLite store: one connection, one lock, write transactions that roll back whole.

Everything the simulated Exchange organisation knows lives here (mailboxes, folders, folder
permissions, delegates, the folder change log), so a lab opened again on the same file is the same
organisation. Every table (items, attachments, change logs, subscriptions included) is created
when a store opens; the DDL is idempotent (`CREATE TABLE IF NOT EXISTS ...`), so opening an
existing file changes nothing.
"""

from __future__ import annotations

import base64
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

MailboxKind = Literal["user", "shared", "room", "public"]
PUBLIC = "public"
"""The mailbox column of public folders."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mailboxes (
    address TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'shared', 'room', 'public')),
    password_hash TEXT,
    has_archive INTEGER NOT NULL DEFAULT 0,
    time_zone TEXT NOT NULL DEFAULT 'W. Europe Standard Time',
    meeting_delivery TEXT NOT NULL DEFAULT 'DelegatesAndSendInformationToMe'
);
CREATE TABLE IF NOT EXISTS folders (
    id TEXT PRIMARY KEY,
    change_key TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    parent_id TEXT REFERENCES folders (id),
    distinguished TEXT,
    display_name TEXT NOT NULL,
    folder_class TEXT,
    hidden INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    search_class TEXT,
    search_scope TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS folders_distinguished
    ON folders (mailbox, distinguished) WHERE distinguished IS NOT NULL;
CREATE INDEX IF NOT EXISTS folders_parent ON folders (parent_id);
CREATE TABLE IF NOT EXISTS folder_permissions (
    folder_id TEXT NOT NULL REFERENCES folders (id) ON DELETE CASCADE,
    principal TEXT NOT NULL,
    role TEXT NOT NULL,
    read TEXT NOT NULL,
    create_items INTEGER NOT NULL,
    create_subfolders INTEGER NOT NULL,
    edit TEXT NOT NULL,
    del TEXT NOT NULL,
    folder_owner INTEGER NOT NULL,
    folder_visible INTEGER NOT NULL,
    folder_contact INTEGER NOT NULL,
    PRIMARY KEY (folder_id, principal)
);
CREATE TABLE IF NOT EXISTS delegates (
    owner TEXT NOT NULL,
    delegate TEXT NOT NULL,
    view_private INTEGER NOT NULL DEFAULT 0,
    receive_meeting_copies INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (owner, delegate)
);
CREATE TABLE IF NOT EXISTS folder_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    mailbox TEXT NOT NULL,
    folder_id TEXT NOT NULL,
    change TEXT NOT NULL CHECK (change IN ('create', 'update', 'delete'))
);
-- Items: one row each, props as JSON keyed by EWS FieldURI names (see exlab.core.items).
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    change_key TEXT NOT NULL,
    folder_id TEXT NOT NULL,
    mailbox TEXT NOT NULL,
    item_class TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    master_id TEXT,
    props TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_folder ON items (folder_id);
CREATE INDEX IF NOT EXISTS items_master ON items (master_id) WHERE master_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS item_attachments (
    id TEXT PRIMARY KEY,
    item_id TEXT NOT NULL,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    content_id TEXT,
    is_inline INTEGER NOT NULL DEFAULT 0,
    last_modified TEXT NOT NULL,
    content BLOB NOT NULL,
    embedded TEXT
);
CREATE INDEX IF NOT EXISTS item_attachments_item ON item_attachments (item_id);
CREATE TABLE IF NOT EXISTS item_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    folder_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    change TEXT NOT NULL CHECK (change IN ('in', 'mod', 'out')),
    event TEXT NOT NULL,
    old_folder_id TEXT,
    at TEXT NOT NULL,
    private INTEGER NOT NULL DEFAULT 0,
    old_item_id TEXT
);
CREATE INDEX IF NOT EXISTS item_changes_folder ON item_changes (folder_id, seq);
CREATE INDEX IF NOT EXISTS item_changes_item ON item_changes (folder_id, item_id, seq);
CREATE TABLE IF NOT EXISTS item_subscriptions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('pull', 'streaming', 'push')),
    folder_ids TEXT,
    mailbox TEXT NOT NULL,
    event_types TEXT NOT NULL,
    watermark INTEGER NOT NULL,
    timeout_minutes INTEGER NOT NULL,
    push_url TEXT,
    status_minutes INTEGER
);
-- Mailbox-level permissions (exlab.core.mailbox_rights).
CREATE TABLE IF NOT EXISTS mailbox_permissions (
    mailbox TEXT NOT NULL,
    principal TEXT NOT NULL,
    access_right TEXT NOT NULL CHECK (access_right IN ('FullAccess', 'SendAs')),
    PRIMARY KEY (mailbox, principal, access_right)
);
-- Automatic replies (exlab.core.oof).
CREATE TABLE IF NOT EXISTS oof_settings (
    address TEXT PRIMARY KEY,
    state TEXT NOT NULL CHECK (state IN ('Disabled', 'Enabled', 'Scheduled')),
    audience TEXT NOT NULL CHECK (audience IN ('None', 'Known', 'All')),
    start TEXT,
    end TEXT,
    internal_reply TEXT NOT NULL,
    external_reply TEXT NOT NULL
);
-- Distribution groups and room lists (exlab.core.directory).
CREATE TABLE IF NOT EXISTS directory_groups (
    address TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('distribution', 'roomlist'))
);
CREATE TABLE IF NOT EXISTS directory_members (
    group_address TEXT NOT NULL REFERENCES directory_groups (address) ON DELETE CASCADE,
    member TEXT NOT NULL,
    PRIMARY KEY (group_address, member)
);
-- What the directory knows of a room mailbox (exlab.core.scheduling).
CREATE TABLE IF NOT EXISTS room_details (
    address TEXT PRIMARY KEY,
    capacity INTEGER,
    building TEXT,
    floor TEXT,
    equipment TEXT NOT NULL DEFAULT '',
    wheelchair INTEGER NOT NULL DEFAULT 0
);
-- App registrations of the lab's OAuth authority (exlab.graph.apps).
CREATE TABLE IF NOT EXISTS app_registrations (
    client_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('public', 'confidential')),
    redirect_uris TEXT NOT NULL,
    roles TEXT NOT NULL,
    secret_hint TEXT,
    secret_hash TEXT
);
-- Inbox rules (exlab.core.rules): what the server applies on delivery, in priority order.
CREATE TABLE IF NOT EXISTS inbox_rules (
    id TEXT PRIMARY KEY,
    mailbox TEXT NOT NULL,
    display_name TEXT NOT NULL,
    priority INTEGER NOT NULL,
    enabled INTEGER NOT NULL,
    rule TEXT NOT NULL
);
-- Folder-associated user configurations (GetUserConfiguration and its siblings).
CREATE TABLE IF NOT EXISTS user_configurations (
    folder_id TEXT NOT NULL,
    name TEXT NOT NULL,
    change_key TEXT NOT NULL,
    dictionary TEXT,
    xml_data TEXT,
    binary_data TEXT,
    PRIMARY KEY (folder_id, name)
);
"""

# Columns added after a table first shipped: (table, column, its definition). A store file
# written before gets them when it opens.
_ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("folders", "search_class", "TEXT"),
    ("folders", "search_scope", "TEXT"),
    ("item_attachments", "embedded", "TEXT"),
    ("item_changes", "old_item_id", "TEXT"),
    ("directory_groups", "moderated", "INTEGER NOT NULL DEFAULT 0"),
)


def new_key() -> str:
    """A fresh internal key for a row (folders, items): 32 hex digits."""
    return uuid.uuid4().hex


def new_change_key() -> str:
    """A change key in the shape Exchange uses: an opaque base64 blob, new on every change."""
    return base64.b64encode(b"\x01\x00\x00\x00" + secrets.token_bytes(16)).decode("ascii")


def utc_text(moment: datetime) -> str:
    """Timestamps are stored as ISO 8601 in UTC with a Z, as EWS writes them."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    """A stored timestamp (`utc_text`) back as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Mailbox:
    address: str
    display_name: str
    kind: MailboxKind
    password_hash: str | None
    has_archive: bool
    time_zone: str
    meeting_delivery: str


@dataclass(frozen=True)
class Folder:
    id: str
    change_key: str
    mailbox: str
    parent_id: str | None
    distinguished: str | None
    display_name: str
    folder_class: str | None
    hidden: bool
    created: str
    last_modified: str
    search_class: str | None = None
    """A search folder's criterion: items whose class starts with this (None: a plain folder)."""
    search_scope: str | None = None
    """The folder a search folder looks in."""

    @property
    def is_search(self) -> bool:
        return self.search_scope is not None


def _mailbox(row: sqlite3.Row) -> Mailbox:
    return Mailbox(
        address=row["address"],
        display_name=row["display_name"],
        kind=row["kind"],
        password_hash=row["password_hash"],
        has_archive=bool(row["has_archive"]),
        time_zone=row["time_zone"],
        meeting_delivery=row["meeting_delivery"],
    )


def _folder(row: sqlite3.Row) -> Folder:
    return Folder(
        id=row["id"],
        change_key=row["change_key"],
        mailbox=row["mailbox"],
        parent_id=row["parent_id"],
        distinguished=row["distinguished"],
        display_name=row["display_name"],
        folder_class=row["folder_class"],
        hidden=bool(row["hidden"]),
        created=row["created"],
        last_modified=row["last_modified"],
        search_class=row["search_class"],
        search_scope=row["search_scope"],
    )


class Store:
    """A SQLite database (a file, or memory when `path` is None) shared by all lab threads.

    One connection guarded by a re-entrant lock: the lab's load is a handful of clients, and a
    single writer keeps transactions simple and honest. A nested `transaction()` in the same thread
    becomes a savepoint, so a failing inner step rolls back only itself.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        target = str(self.path) if self.path is not None else ":memory:"
        self._conn = sqlite3.connect(target, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        if self.path is not None:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        self._lock = threading.RLock()
        self._depth = 0
        self._closed = False
        self._conn.executescript(_SCHEMA)
        for table, column, definition in _ADDED_COLUMNS:
            present = {r["name"] for r in self._conn.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                self._conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    # -- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: commits on success, rolls back everything on an exception."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the lab store is closed")
            outer = self._depth == 0
            name = f"sp{self._depth}"
            self._conn.execute("BEGIN IMMEDIATE" if outer else f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self._conn
            except BaseException:
                self._depth -= 1
                if outer:
                    self._conn.execute("ROLLBACK")
                else:
                    self._conn.execute(f"ROLLBACK TO {name}")
                    self._conn.execute(f"RELEASE {name}")
                raise
            self._depth -= 1
            self._conn.execute("COMMIT" if outer else f"RELEASE {name}")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Read rows (inside the caller's transaction when there is one)."""
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def query_one(
        self, sql: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._conn.execute(sql, params).fetchone()
            return row

    @property
    def closed(self) -> bool:
        """True once the lab shut down; long-running work (streams) ends when it sees this."""
        return self._closed

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    # -- meta -----------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.query_one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- mailboxes ------------------------------------------------------------------------------

    def add_mailbox(
        self,
        address: str,
        display_name: str,
        kind: MailboxKind,
        *,
        password_hash: str | None = None,
        has_archive: bool = False,
        time_zone: str = "W. Europe Standard Time",
    ) -> Mailbox:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO mailboxes (address, display_name, kind, password_hash, has_archive,"
                " time_zone) VALUES (?, ?, ?, ?, ?, ?)",
                (address.lower(), display_name, kind, password_hash, int(has_archive), time_zone),
            )
        found = self.mailbox(address)
        assert found is not None
        return found

    def mailbox(self, address: str) -> Mailbox | None:
        row = self.query_one("SELECT * FROM mailboxes WHERE address = ?", (address.lower(),))
        return None if row is None else _mailbox(row)

    def mailboxes(self) -> list[Mailbox]:
        return [_mailbox(r) for r in self.query("SELECT * FROM mailboxes ORDER BY address")]

    def update_mailbox(self, address: str, **fields: Any) -> None:
        allowed = {
            "display_name",
            "password_hash",
            "has_archive",
            "time_zone",
            "meeting_delivery",
        }
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown mailbox fields: {sorted(unknown)}")
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE mailboxes SET {assignments} WHERE address = ?",  # noqa: S608 (names checked)
                (*fields.values(), address.lower()),
            )

    # -- folders --------------------------------------------------------------------------------

    def add_folder(
        self,
        mailbox: str,
        display_name: str,
        *,
        parent_id: str | None,
        folder_class: str | None = "IPF.Note",
        distinguished: str | None = None,
        hidden: bool = False,
        now: datetime | None = None,
        folder_id: str | None = None,
        search: tuple[str, str] | None = None,
    ) -> Folder:
        """A folder; `search` = (item class prefix, scope folder id) makes it a search folder
        whose contents are the scope's items of that class (as Exchange's search folders)."""
        stamp = utc_text(now or datetime.now(UTC))
        key = folder_id or new_key()
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO folders (id, change_key, mailbox, parent_id, distinguished,"
                " display_name, folder_class, hidden, created, last_modified, search_class,"
                " search_scope) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    new_change_key(),
                    mailbox.lower(),
                    parent_id,
                    distinguished,
                    display_name,
                    folder_class,
                    int(hidden),
                    stamp,
                    stamp,
                    search[0] if search else None,
                    search[1] if search else None,
                ),
            )
            self._log_folder_change(conn, mailbox.lower(), key, "create")
        found = self.folder(key)
        assert found is not None
        return found

    def folder(self, folder_id: str) -> Folder | None:
        row = self.query_one("SELECT * FROM folders WHERE id = ?", (folder_id,))
        return None if row is None else _folder(row)

    def distinguished_folder(self, mailbox: str, name: str) -> Folder | None:
        row = self.query_one(
            "SELECT * FROM folders WHERE mailbox = ? AND distinguished = ?",
            (mailbox.lower(), name),
        )
        return None if row is None else _folder(row)

    def children(self, folder_id: str) -> list[Folder]:
        rows = self.query(
            "SELECT * FROM folders WHERE parent_id = ? ORDER BY display_name, id", (folder_id,)
        )
        return [_folder(r) for r in rows]

    def folder_counts(self, folder_id: str) -> tuple[int, int]:
        """(total, unread) items of a folder, for TotalCount and UnreadCount; only messages
        count as unread (calendar items, contacts, tasks and notes have no read state)."""
        folder = self.folder(folder_id)
        if folder is not None and folder.search_scope is not None:
            members = self.query_one(
                "SELECT COUNT(*) AS n, SUM(CASE WHEN COALESCE(json_extract(props,"
                " '$.\"message:IsRead\"'), 0) = 0 THEN 1 ELSE 0 END) AS unread FROM items"
                " WHERE folder_id = ? AND master_id IS NULL AND item_class LIKE ? || '%'",
                (folder.search_scope, folder.search_class or ""),
            )
            if members is None:
                return 0, 0
            return int(members["n"] or 0), int(members["unread"] or 0)
        row = self.query_one(
            "SELECT COUNT(*) AS n, SUM(CASE WHEN item_class NOT LIKE 'IPM.Appointment%'"
            " AND item_class NOT LIKE 'IPM.Contact%' AND item_class NOT LIKE 'IPM.Task%'"
            " AND item_class NOT LIKE 'IPM.StickyNote%' AND item_class NOT LIKE 'IPM.DistList%'"
            " AND COALESCE(json_extract(props, '$.\"message:IsRead\"'), 0) = 0 THEN 1 ELSE 0 END)"
            " AS unread FROM items WHERE folder_id = ? AND master_id IS NULL",
            (folder_id,),
        )
        if row is None:
            return 0, 0
        return int(row["n"] or 0), int(row["unread"] or 0)

    def folders_of(self, mailbox: str) -> list[Folder]:
        rows = self.query(
            "SELECT * FROM folders WHERE mailbox = ? ORDER BY rowid", (mailbox.lower(),)
        )
        return [_folder(r) for r in rows]

    def update_folder(
        self,
        folder_id: str,
        *,
        display_name: str | None = None,
        parent_id: str | None = None,
        now: datetime | None = None,
    ) -> Folder:
        """Rename or move a folder; every change gets a new change key and a change-log entry."""
        current = self.folder(folder_id)
        if current is None:
            raise KeyError(folder_id)
        with self.transaction() as conn:
            conn.execute(
                "UPDATE folders SET display_name = ?, parent_id = ?, change_key = ?,"
                " last_modified = ? WHERE id = ?",
                (
                    display_name if display_name is not None else current.display_name,
                    parent_id if parent_id is not None else current.parent_id,
                    new_change_key(),
                    utc_text(now or datetime.now(UTC)),
                    folder_id,
                ),
            )
            self._log_folder_change(conn, current.mailbox, folder_id, "update")
        updated = self.folder(folder_id)
        assert updated is not None
        return updated

    def set_folder_class(self, folder_id: str, folder_class: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "UPDATE folders SET folder_class = ? WHERE id = ?", (folder_class, folder_id)
            )

    def delete_folder(self, folder_id: str) -> None:
        """Delete a folder with its subtree (permissions go with it)."""
        current = self.folder(folder_id)
        if current is None:
            raise KeyError(folder_id)
        doomed = [current, *self.descendants(folder_id)]
        with self.transaction() as conn:
            for folder in reversed(doomed):
                conn.execute("DELETE FROM folders WHERE id = ?", (folder.id,))
                self._log_folder_change(conn, folder.mailbox, folder.id, "delete")

    def descendants(self, folder_id: str) -> list[Folder]:
        """All folders below one, depth first, parents before children."""
        found: list[Folder] = []
        stack = list(reversed(self.children(folder_id)))
        while stack:
            folder = stack.pop()
            found.append(folder)
            stack.extend(reversed(self.children(folder.id)))
        return found

    @staticmethod
    def _log_folder_change(
        conn: sqlite3.Connection, mailbox: str, folder_id: str, change: str
    ) -> None:
        conn.execute(
            "INSERT INTO folder_changes (mailbox, folder_id, change) VALUES (?, ?, ?)",
            (mailbox, folder_id, change),
        )

    def folder_changes(self, mailbox: str, after: int) -> list[tuple[int, str, str]]:
        """(seq, folder id, change) for a mailbox's folders since a sync state's sequence number."""
        rows = self.query(
            "SELECT seq, folder_id, change FROM folder_changes WHERE mailbox = ? AND seq > ?"
            " ORDER BY seq",
            (mailbox.lower(), after),
        )
        return [(int(r["seq"]), str(r["folder_id"]), str(r["change"])) for r in rows]

    def last_folder_change(self, mailbox: str) -> int:
        row = self.query_one(
            "SELECT COALESCE(MAX(seq), 0) AS seq FROM folder_changes WHERE mailbox = ?",
            (mailbox.lower(),),
        )
        return 0 if row is None else int(row["seq"])

    # -- permissions and delegates --------------------------------------------------------------

    def set_permission(self, folder_id: str, principal: str, role: str, **rights: Any) -> None:
        """Store one permission entry; `rights` are the columns (see `access.rights_row`)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO folder_permissions (folder_id, principal, role, read, create_items,"
                " create_subfolders, edit, del, folder_owner, folder_visible, folder_contact)"
                " VALUES (:folder_id, :principal, :role, :read, :create_items, :create_subfolders,"
                " :edit, :del, :folder_owner, :folder_visible, :folder_contact)"
                " ON CONFLICT (folder_id, principal) DO UPDATE SET role = excluded.role,"
                " read = excluded.read, create_items = excluded.create_items,"
                " create_subfolders = excluded.create_subfolders, edit = excluded.edit,"
                " del = excluded.del, folder_owner = excluded.folder_owner,"
                " folder_visible = excluded.folder_visible,"
                " folder_contact = excluded.folder_contact",
                {"folder_id": folder_id, "principal": principal.lower(), "role": role, **rights},
            )

    def remove_permission(self, folder_id: str, principal: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "DELETE FROM folder_permissions WHERE folder_id = ? AND principal = ?",
                (folder_id, principal.lower()),
            )

    def permission(self, folder_id: str, principal: str) -> sqlite3.Row | None:
        return self.query_one(
            "SELECT * FROM folder_permissions WHERE folder_id = ? AND principal = ?",
            (folder_id, principal.lower()),
        )

    def permissions(self, folder_id: str) -> list[sqlite3.Row]:
        return self.query(
            "SELECT * FROM folder_permissions WHERE folder_id = ? ORDER BY principal != 'default',"
            " principal != 'anonymous', principal",
            (folder_id,),
        )

    def set_delegate(
        self,
        owner: str,
        delegate: str,
        *,
        view_private: bool = False,
        receive_meeting_copies: bool = False,
    ) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO delegates (owner, delegate, view_private, receive_meeting_copies)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (owner, delegate) DO UPDATE SET"
                " view_private = excluded.view_private,"
                " receive_meeting_copies = excluded.receive_meeting_copies",
                (owner.lower(), delegate.lower(), int(view_private), int(receive_meeting_copies)),
            )

    def delegate(self, owner: str, delegate: str) -> sqlite3.Row | None:
        return self.query_one(
            "SELECT * FROM delegates WHERE owner = ? AND delegate = ?",
            (owner.lower(), delegate.lower()),
        )

    def delegates(self, owner: str) -> list[sqlite3.Row]:
        return self.query(
            "SELECT * FROM delegates WHERE owner = ? ORDER BY delegate", (owner.lower(),)
        )
