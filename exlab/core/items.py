"""Items in the lab's store: rows, attachments, and the per-folder change log.

An item is one row with its folder, owner mailbox, class, creator and a ``props`` JSON dict
keyed by EWS FieldURI names and ``ext:`` keys (see ``exlab.ews.itemxml.ext_key``). Some
MAPI properties Outlook relies on are views of named fields (PR_SENSITIVITY is
``item:Sensitivity``, PR_MESSAGE_FLAGS carries ``message:IsRead``); ``effective_props`` adds
them for reading, filtering and sorting, and ``apply_changes`` maps writes to them back.

Every change appends to ``item_changes`` (per folder: an item came ``in``, was ``mod``ified,
went ``out``), which feeds SyncFolderItems and notifications.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from exlab.core.store import (
    Folder,
    Store,
    new_change_key,
    new_key,
    utc_text,
)

SENSITIVITY = {"Normal": 0, "Personal": 1, "Private": 2, "Confidential": 3}
IMPORTANCE = {"Low": 0, "Normal": 1, "High": 2}
# MAPI keys, named as exlab.ews.itemxml.tag_key/named_key write them.
PR_IMPORTANCE = "ext:tag:0x17:Integer"
PR_MESSAGE_CLASS = "ext:tag:0x1a:String"
PR_SENSITIVITY = "ext:tag:0x36:Integer"
PR_SUBJECT = "ext:tag:0x37:String"
PR_MESSAGE_DELIVERY_TIME = "ext:tag:0xe06:SystemTime"
PR_MESSAGE_FLAGS = "ext:tag:0xe07:Integer"
PR_FLAG_STATUS = "ext:tag:0x1090:Integer"
PR_FLAG_COMPLETE_TIME = "ext:tag:0x1091:SystemTime"
PID_LID_RECURRING = "ext:set:00062002-0000-0000-c000-000000000046:0x8223:Boolean"
PID_LID_TASK_START = "ext:set:00062003-0000-0000-c000-000000000046:0x8104:SystemTime"
PID_LID_TASK_DUE = "ext:set:00062003-0000-0000-c000-000000000046:0x8105:SystemTime"
PID_LID_TASK_COMPLETE = "ext:set:00062003-0000-0000-c000-000000000046:0x810f:SystemTime"
PID_LID_FLAG_REQUEST = "ext:set:00062008-0000-0000-c000-000000000046:0x8530:String"
MSGFLAG_READ, MSGFLAG_UNSENT, MSGFLAG_HASATTACH = 0x1, 0x8, 0x10


def element_for_class(item_class: str) -> str:
    """The EWS element for an item class (IPM.StickyNote and voicemail are Messages)."""
    c = item_class.lower()
    if c.startswith("ipm.appointment"):
        return "CalendarItem"
    if c.startswith("ipm.contact"):
        return "Contact"
    if c.startswith("ipm.task"):
        return "Task"
    if c.startswith("ipm.distlist"):
        return "DistributionList"
    if c.startswith("ipm.post"):
        return "PostItem"
    if c.startswith("ipm.schedule.meeting.request"):
        return "MeetingRequest"
    if c.startswith("ipm.schedule.meeting.resp"):
        return "MeetingResponse"
    if c.startswith("ipm.schedule.meeting.canceled"):
        return "MeetingCancellation"
    return "Message"


@dataclass
class Item:
    id: str
    change_key: str
    folder_id: str
    mailbox: str
    item_class: str
    created_by: str
    created: str
    last_modified: str
    master_id: str | None
    props: dict[str, Any] = field(default_factory=dict)

    @property
    def is_private(self) -> bool:
        return self.props.get("item:Sensitivity") == "Private"


@dataclass(frozen=True)
class Attachment:
    id: str
    item_id: str
    name: str
    content_type: str
    content_id: str | None
    is_inline: bool
    last_modified: str
    content: bytes
    embedded: dict[str, Any] | None = None
    """An attached item (ItemAttachment): {"item_class", "props", "attachments"}, where
    attachments are the embedded item's own, nested the same way (file contents in base64)."""

    def as_dict(self, ews_id: str) -> dict[str, Any]:
        size = len(self.content)
        if self.embedded is not None:
            size = len(json.dumps(self.embedded, ensure_ascii=False).encode())
        return {
            "id": ews_id,
            "name": self.name,
            "content_type": self.content_type,
            "content_id": self.content_id,
            "is_inline": self.is_inline,
            "last_modified": self.last_modified,
            "size": size,
            "content": self.content,
            "kind": "file" if self.embedded is None else "item",
            "item": self.embedded,
        }


def _item(row: sqlite3.Row) -> Item:
    return Item(
        id=row["id"],
        change_key=row["change_key"],
        folder_id=row["folder_id"],
        mailbox=row["mailbox"],
        item_class=row["item_class"],
        created_by=row["created_by"],
        created=row["created"],
        last_modified=row["last_modified"],
        master_id=row["master_id"],
        props=json.loads(row["props"]),
    )


def _attachment(row: sqlite3.Row) -> Attachment:
    return Attachment(
        id=row["id"],
        item_id=row["item_id"],
        name=row["name"],
        content_type=row["content_type"],
        content_id=row["content_id"],
        is_inline=bool(row["is_inline"]),
        last_modified=row["last_modified"],
        content=bytes(row["content"]),
        embedded=json.loads(row["embedded"]) if row["embedded"] else None,
    )


# -- change log -------------------------------------------------------------------------------


def log_change(
    conn: sqlite3.Connection,
    folder_id: str,
    item_id: str,
    change: str,
    event: str,
    at: str,
    old_folder_id: str | None = None,
    *,
    private: bool = False,
    old_item_id: str | None = None,
) -> None:
    """One log entry; ``private`` records whether the item was private then (delegates
    without ViewPrivateItems never saw it, so sync and notifications leave it out)."""
    conn.execute(
        "INSERT INTO item_changes (folder_id, item_id, change, event, old_folder_id, at,"
        " private, old_item_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (folder_id, item_id, change, event, old_folder_id, at, int(private), old_item_id),
    )


def last_seq(store: Store) -> int:
    row = store.query_one("SELECT COALESCE(MAX(seq), 0) AS s FROM item_changes")
    return 0 if row is None else int(row["s"])


@dataclass(frozen=True)
class Change:
    seq: int
    folder_id: str
    item_id: str
    change: str
    event: str
    old_folder_id: str | None
    at: str
    private: bool = False
    old_item_id: str | None = None
    """A move's item id before it (a moved item gets a new id)."""


def changes_after(store: Store, seq: int, folder_ids: list[str] | None = None) -> list[Change]:
    """Log entries after ``seq``, optionally for some folders only, oldest first."""
    if folder_ids is None:
        rows = store.query("SELECT * FROM item_changes WHERE seq > ? ORDER BY seq", (seq,))
    else:
        marks = ",".join("?" for _ in folder_ids)
        rows = store.query(
            f"SELECT * FROM item_changes WHERE seq > ? AND folder_id IN ({marks})"  # noqa: S608
            " ORDER BY seq",
            (seq, *folder_ids),
        )
    return [
        Change(
            int(r["seq"]),
            r["folder_id"],
            r["item_id"],
            r["change"],
            r["event"],
            r["old_folder_id"],
            r["at"],
            bool(r["private"]),
            r["old_item_id"],
        )
        for r in rows
    ]


def present_at(
    store: Store, folder_id: str, item_id: str, seq: int, *, hide_private: bool = False
) -> bool:
    """Whether the item was in the folder right after log entry ``seq`` (and visible, when
    private items are hidden from the asker)."""
    row = store.query_one(
        "SELECT change, private FROM item_changes WHERE folder_id = ? AND item_id = ?"
        " AND seq <= ? ORDER BY seq DESC LIMIT 1",
        (folder_id, item_id, seq),
    )
    if row is None or row["change"] == "out":
        return False
    return not (hide_private and row["private"])


# -- items ------------------------------------------------------------------------------------


def get_item(store: Store, item_id: str) -> Item | None:
    row = store.query_one("SELECT * FROM items WHERE id = ?", (item_id,))
    return None if row is None else _item(row)


def items_in(store: Store, folder_id: str) -> list[Item]:
    """Items of a folder in creation order (occurrence exceptions live with their master); of a
    search folder, the matching items of the folder it looks in (they stay where they are)."""
    folder = store.folder(folder_id)
    if folder is not None and folder.search_scope is not None:
        rows = store.query(
            "SELECT * FROM items WHERE folder_id = ? AND master_id IS NULL"
            " AND item_class LIKE ? || '%' ORDER BY rowid",
            (folder.search_scope, folder.search_class or ""),
        )
        return [_item(r) for r in rows]
    rows = store.query(
        "SELECT * FROM items WHERE folder_id = ? AND master_id IS NULL ORDER BY rowid",
        (folder_id,),
    )
    return [_item(r) for r in rows]


# Stored fields whose JSON values SQLite orders exactly as the lab's sort does (timestamps,
# numbers, booleans): listings sorted by them are paged in SQL.
SQL_SORTABLE = frozenset(
    {
        "item:DateTimeReceived",
        "item:DateTimeSent",
        "item:DateTimeCreated",
        "calendar:Start",
        "calendar:End",
        "task:DueDate",
        "task:StartDate",
        "message:IsRead",
        PR_FLAG_STATUS,
        PR_FLAG_COMPLETE_TIME,
        PID_LID_TASK_START,
        PID_LID_TASK_DUE,
    }
)


def page_in(
    store: Store,
    folder_id: str,
    sort: list[tuple[str, bool]],
    *,
    hide_private: bool,
    offset: int,
    limit: int,
) -> tuple[list[Item], int]:
    """(page, total) of a folder sorted by ``SQL_SORTABLE`` keys (ascending flags), ties in
    creation order, without reading the whole folder."""
    for key, _ in sort:
        if key not in SQL_SORTABLE:
            raise ValueError(f"{key} cannot be sorted in SQL")
    where = "folder_id = ? AND master_id IS NULL"
    if hide_private:
        where += " AND COALESCE(json_extract(props, '$.\"item:Sensitivity\"'), '') != 'Private'"
    order = "".join(
        f"json_extract(props, '$.\"{key}\"') {'ASC' if asc else 'DESC'}, " for key, asc in sort
    )
    total_row = store.query_one(f"SELECT COUNT(*) AS n FROM items WHERE {where}", (folder_id,))  # noqa: S608
    rows = store.query(
        f"SELECT * FROM items WHERE {where} ORDER BY {order}rowid LIMIT ? OFFSET ?",  # noqa: S608
        (folder_id, limit, offset),
    )
    return [_item(r) for r in rows], 0 if total_row is None else int(total_row["n"])


def exceptions_of(store: Store, master_id: str) -> list[Item]:
    rows = store.query("SELECT * FROM items WHERE master_id = ? ORDER BY rowid", (master_id,))
    return [_item(r) for r in rows]


def count_in(store: Store, folder_id: str) -> int:
    row = store.query_one(
        "SELECT COUNT(*) AS n FROM items WHERE folder_id = ? AND master_id IS NULL", (folder_id,)
    )
    return 0 if row is None else int(row["n"])


def create_item(
    store: Store,
    folder: Folder,
    item_class: str,
    props: Mapping[str, Any],
    *,
    created_by: str,
    now: datetime,
    event: str = "created",
    master_id: str | None = None,
    item_id: str | None = None,
) -> Item:
    """Insert an item (and log it, unless it is an occurrence exception of a master)."""
    stamp = utc_text(now)
    key = item_id or new_key()
    stored = apply_changes({}, props)
    stored.setdefault("item:DateTimeCreated", stamp)
    stored.setdefault("item:DateTimeReceived", stamp)
    item = Item(
        key,
        new_change_key(),
        folder.id,
        folder.mailbox,
        item_class,
        created_by.lower(),
        stamp,
        stamp,
        master_id,
        stored,
    )
    with store.transaction() as conn:
        _insert(conn, item)
        if master_id is None:
            log_change(conn, folder.id, key, "in", event, stamp, private=item.is_private)
    return item


def _insert(conn: sqlite3.Connection, item: Item) -> None:
    conn.execute(
        "INSERT INTO items (id, change_key, folder_id, mailbox, item_class, created_by, created,"
        " last_modified, master_id, props) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            item.id,
            item.change_key,
            item.folder_id,
            item.mailbox,
            item.item_class,
            item.created_by,
            item.created,
            item.last_modified,
            item.master_id,
            json.dumps(item.props, ensure_ascii=False),
        ),
    )


def save_item(store: Store, item: Item, now: datetime, *, event: str = "modified") -> Item:
    """Write changed props (and class) back with a new change key, and log the change."""
    clip_texts(item.props)
    item.change_key = new_change_key()
    item.last_modified = utc_text(now)
    with store.transaction() as conn:
        conn.execute(
            "UPDATE items SET change_key = ?, last_modified = ?, item_class = ?, props = ?"
            " WHERE id = ?",
            (
                item.change_key,
                item.last_modified,
                item.item_class,
                json.dumps(item.props, ensure_ascii=False),
                item.id,
            ),
        )
        logged = item.master_id or item.id
        folder_id = item.folder_id
        if item.master_id is not None:
            master = conn.execute(
                "SELECT folder_id FROM items WHERE id = ?", (item.master_id,)
            ).fetchone()
            if master is not None:
                folder_id = master["folder_id"]
        log_change(
            conn, folder_id, logged, "mod", event, item.last_modified, private=item.is_private
        )
    return item


def move_item(store: Store, item: Item, target: Folder, now: datetime) -> Item:
    """Move to another folder (also across mailboxes); exceptions follow their master.

    The moved item gets a new id, as in Exchange (the old id stops resolving); attachments,
    exceptions and meeting requests pointing at it follow the new id.
    """
    stamp = utc_text(now)
    old_folder, old_id = item.folder_id, item.id
    item.id = new_key()
    item.folder_id, item.mailbox = target.id, target.mailbox
    item.change_key = new_change_key()
    item.last_modified = stamp
    with store.transaction() as conn:
        conn.execute(
            "UPDATE items SET id = ?, folder_id = ?, mailbox = ?, change_key = ?,"
            " last_modified = ? WHERE id = ?",
            (item.id, target.id, target.mailbox, item.change_key, stamp, old_id),
        )
        conn.execute(
            "UPDATE items SET master_id = ?, folder_id = ?, mailbox = ? WHERE master_id = ?",
            (item.id, target.id, target.mailbox, old_id),
        )
        conn.execute("UPDATE item_attachments SET item_id = ? WHERE item_id = ?", (item.id, old_id))
        conn.execute(
            "UPDATE items SET props = json_set(props, '$.\"lab:calendar_item\"', ?)"
            " WHERE json_extract(props, '$.\"lab:calendar_item\"') = ?",
            (item.id, old_id),
        )
        log_change(conn, old_folder, old_id, "out", "moved", stamp, private=item.is_private)
        log_change(
            conn,
            target.id,
            item.id,
            "in",
            "moved",
            stamp,
            old_folder_id=old_folder,
            private=item.is_private,
            old_item_id=old_id,
        )
    return item


def copy_item(store: Store, item: Item, target: Folder, *, by: str, now: datetime) -> Item:
    """A copy with new ids (attachments and occurrence exceptions copied along)."""
    copy = create_item(
        store, target, item.item_class, item.props, created_by=by, now=now, event="copied"
    )
    copy_attachments(store, item.id, copy.id, now)
    for exc in exceptions_of(store, item.id):
        new_exc = create_item(
            store, target, exc.item_class, exc.props, created_by=by, now=now, master_id=copy.id
        )
        copy_attachments(store, exc.id, new_exc.id, now)
    return copy


def copy_attachments(store: Store, source: str, target: str, now: datetime) -> None:
    for att in attachments_of(store, source):
        add_attachment(
            store,
            target,
            att.name,
            att.content_type,
            att.content,
            now=now,
            content_id=att.content_id,
            is_inline=att.is_inline,
            embedded=att.embedded,
        )


def delete_item(store: Store, item: Item, now: datetime) -> None:
    """Remove an item for good, with its attachments and occurrence exceptions."""
    with store.transaction() as conn:
        ids = [item.id] + [
            r["id"] for r in conn.execute("SELECT id FROM items WHERE master_id = ?", (item.id,))
        ]
        for key in ids:
            conn.execute("DELETE FROM item_attachments WHERE item_id = ?", (key,))
            conn.execute("DELETE FROM items WHERE id = ?", (key,))
        if item.master_id is None:
            log_change(
                conn,
                item.folder_id,
                item.id,
                "out",
                "deleted",
                utc_text(now),
                private=item.is_private,
            )


# -- attachments ------------------------------------------------------------------------------


def attachments_of(store: Store, item_id: str) -> list[Attachment]:
    rows = store.query(
        "SELECT * FROM item_attachments WHERE item_id = ? ORDER BY rowid", (item_id,)
    )
    return [_attachment(r) for r in rows]


def items_with_attachments(store: Store, folder_id: str) -> set[str]:
    """Ids of a folder's items that have attachments (one query for a whole listing)."""
    rows = store.query(
        "SELECT DISTINCT a.item_id FROM item_attachments a JOIN items i ON i.id = a.item_id"
        " WHERE i.folder_id = ?",
        (folder_id,),
    )
    return {str(r["item_id"]) for r in rows}


def get_attachment(store: Store, attachment_id: str) -> Attachment | None:
    row = store.query_one("SELECT * FROM item_attachments WHERE id = ?", (attachment_id,))
    return None if row is None else _attachment(row)


def add_attachment(
    store: Store,
    item_id: str,
    name: str,
    content_type: str,
    content: bytes,
    *,
    now: datetime,
    content_id: str | None = None,
    is_inline: bool = False,
    embedded: dict[str, Any] | None = None,
) -> Attachment:
    """A file attachment, or with `embedded` an attached item (see `Attachment.embedded`)."""
    att = Attachment(
        new_key(),
        item_id,
        name,
        content_type or ("" if embedded is not None else "application/octet-stream"),
        content_id,
        is_inline,
        utc_text(now),
        content,
        embedded,
    )
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO item_attachments (id, item_id, name, content_type, content_id,"
            " is_inline, last_modified, content, embedded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                att.id,
                item_id,
                att.name,
                att.content_type,
                content_id,
                int(is_inline),
                att.last_modified,
                content,
                json.dumps(embedded, ensure_ascii=False) if embedded is not None else None,
            ),
        )
    return att


def remove_attachment(store: Store, attachment_id: str) -> None:
    with store.transaction() as conn:
        conn.execute("DELETE FROM item_attachments WHERE id = ?", (attachment_id,))


# -- MAPI views of named fields -------------------------------------------------------------------


TEXT_LIMITS = {"item:Subject": 255, "calendar:Location": 255}
"""Text properties the store keeps only so long (in UTF-16 code units), as Exchange cuts them."""


def clip_utf16(text: str, limit: int) -> str:
    """`text` cut to `limit` UTF-16 code units, never splitting a surrogate pair."""
    if len(text) <= limit // 2:
        return text
    units = text.encode("utf-16-le")
    if len(units) <= 2 * limit:
        return text
    return units[: 2 * limit].decode("utf-16-le", errors="ignore")


def clip_texts(props: dict[str, Any]) -> dict[str, Any]:
    """`props` with over-long text properties cut to Exchange's lengths (in place)."""
    for key, limit in TEXT_LIMITS.items():
        value = props.get(key)
        if isinstance(value, str):
            props[key] = clip_utf16(value, limit)
    return props


def apply_changes(current: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``current`` with ``changes`` applied; writes to mirrored MAPI keys land on named fields.

    A value of None deletes the key (DeleteItemField).
    """
    out = dict(current)
    for key, value in changes.items():
        if key == PR_SENSITIVITY:
            names = {v: k for k, v in SENSITIVITY.items()}
            key, value = "item:Sensitivity", None if value is None else names.get(int(value))
        elif key == PR_IMPORTANCE:
            names = {v: k for k, v in IMPORTANCE.items()}
            key, value = "item:Importance", None if value is None else names.get(int(value))
        elif key == PR_SUBJECT:
            key = "item:Subject"
        elif key == PR_MESSAGE_FLAGS:
            key, value = (
                "message:IsRead",
                None if value is None else bool(int(value) & MSGFLAG_READ),
            )
        elif key == PR_MESSAGE_DELIVERY_TIME:
            key = "item:DateTimeReceived"
        elif key in (PR_MESSAGE_CLASS, PID_LID_RECURRING):
            continue
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return clip_texts(out)


def effective_props(item: Item, *, has_attachments: bool = False) -> dict[str, Any]:
    """The item's props plus the MAPI views of named fields and the row's own columns."""
    p = dict(item.props)
    p["item:ItemClass"] = item.item_class
    p["item:DateTimeCreated"] = p.get("item:DateTimeCreated", item.created)
    p["item:LastModifiedTime"] = item.last_modified
    p["item:HasAttachments"] = has_attachments
    p[PR_MESSAGE_CLASS] = item.item_class
    p.setdefault("item:Sensitivity", "Normal")
    p.setdefault("item:Importance", "Normal")
    p[PR_SENSITIVITY] = SENSITIVITY.get(p["item:Sensitivity"], 0)
    p[PR_IMPORTANCE] = IMPORTANCE.get(p["item:Importance"], 1)
    if "item:Subject" in p:
        p[PR_SUBJECT] = p["item:Subject"]
    if "item:DateTimeReceived" in p:
        p[PR_MESSAGE_DELIVERY_TIME] = p["item:DateTimeReceived"]
    flags = 0
    if p.get("message:IsRead"):
        flags |= MSGFLAG_READ
    if p.get("item:IsDraft"):
        flags |= MSGFLAG_UNSENT
    if has_attachments:
        flags |= MSGFLAG_HASATTACH
    p[PR_MESSAGE_FLAGS] = flags
    for key in ("contacts:EmailAddresses", "contacts:PhoneNumbers", "contacts:ImAddresses"):
        for index, value in (p.get(key) or {}).items():
            p[f"{key}:{index}"] = value
    for index, parts in (p.get("contacts:PhysicalAddresses") or {}).items():
        for part, value in parts.items():
            p[f"contacts:PhysicalAddresses:{index}:{part}"] = value
    if item.item_class.startswith("IPM.Appointment"):
        recurring = "calendar:Recurrence" in p or p.get("calendar:CalendarItemType") in (
            "Occurrence",
            "Exception",
        )
        p["calendar:IsRecurring"] = recurring
        p[PID_LID_RECURRING] = recurring
    return p


# Keys whose value effective_props sets over whatever the props hold.
_COMPUTED = frozenset(
    {
        "item:ItemClass",
        "item:LastModifiedTime",
        "item:HasAttachments",
        "calendar:IsRecurring",
        PR_MESSAGE_CLASS,
        PR_SENSITIVITY,
        PR_IMPORTANCE,
        PR_SUBJECT,
        PR_MESSAGE_DELIVERY_TIME,
        PR_MESSAGE_FLAGS,
        PID_LID_RECURRING,
    }
)


class LazyProps(Mapping[str, Any]):
    """An item's effective props, computed only when a key is not plainly stored.

    Filtering and sorting a large folder mostly reads stored fields; this spares building
    the full view for every item.
    """

    def __init__(self, item: Item, *, has_attachments: bool) -> None:
        self._item = item
        self._has_attachments = has_attachments
        self._full: dict[str, Any] | None = None

    def _all(self) -> dict[str, Any]:
        if self._full is None:
            self._full = effective_props(self._item, has_attachments=self._has_attachments)
        return self._full

    def __getitem__(self, key: str) -> Any:
        stored = self._item.props
        if key in stored and key not in _COMPUTED:
            return stored[key]
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())
