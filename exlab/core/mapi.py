"""MAPI properties Exchange computes for items and folders, asked for by ``PropertyTag``.

IMAP gateways and sync clients (DavMail-style) read the IMAP UID (PR_INTERNET_ARTICLE_NUMBER),
sizes, last-modified times, the last verb, icon indexes and a folder's ctag
(PR_LOCAL_COMMIT_TIME_MAX) as extended properties rather than as named EWS fields. Exchange
derives them from the store; so does the lab. A tag the lab does not know is simply absent from
the answer, as on Exchange.

The IMAP UID is the sequence number of the change that put the item into its folder: unique and
increasing per folder, and new when an item moves in, as an IMAP UID must be.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from exlab.core import items as store_items
from exlab.core.caller import Caller
from exlab.core.items import Item
from exlab.core.store import Folder, Store, utc_text

# -- property keys: how the store names MAPI properties in an item's props ----------------------

DISTINGUISHED_SETS = {
    "Address": "00062004-0000-0000-c000-000000000046",
    "Appointment": "00062002-0000-0000-c000-000000000046",
    "CalendarAssistant": "11000e07-b51b-40d6-af21-caa85edab1d0",
    "Common": "00062008-0000-0000-c000-000000000046",
    "InternetHeaders": "00020386-0000-0000-c000-000000000046",
    "Meeting": "6ed8da90-450b-101b-98da-00aa003f1305",
    "PublicStrings": "00020329-0000-0000-c000-000000000046",
    "Sharing": "00062040-0000-0000-c000-000000000046",
    "Task": "00062003-0000-0000-c000-000000000046",
    "UnifiedMessaging": "4442858e-a9e3-4e80-b900-317a210cc15b",
}
PROPERTY_TYPES = {
    "ApplicationTime",
    "Binary",
    "Boolean",
    "CLSID",
    "Currency",
    "Double",
    "Float",
    "Integer",
    "Long",
    "Short",
    "SystemTime",
    "String",
}


def tag_key(tag: int, prop_type: str) -> str:
    """Key of a MAPI tagged property, e.g. ``ext:tag:0x1090:Integer``."""
    return f"ext:tag:{tag:#x}:{prop_type}"


def named_key(set_id: str, prop: int | str, prop_type: str) -> str:
    """Key of a named property; the set may be a GUID or a distinguished set name."""
    guid = DISTINGUISHED_SETS.get(set_id, set_id).lower()
    name = f"{prop:#x}" if isinstance(prop, int) else prop
    return f"ext:set:{guid}:{name}:{prop_type}"


def value_from_text(prop_type: str, text: str) -> Any:
    """A property value as the store keeps it, from its text (ValueError if malformed)."""
    base = prop_type.removesuffix("Array")
    if base in ("Integer", "Long", "Short", "Currency"):
        return int(text)
    if base == "Boolean":
        return text.strip().lower() in ("true", "1")
    if base in ("Double", "Float", "ApplicationTime"):
        return float(text)
    if base == "SystemTime":
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return utc_text(moment)
    return text


def value_text(value: Any) -> str:
    """A stored property value as its text (booleans as EWS and Graph write them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# Item properties (tags as tag_key writes them).
PR_INTERNET_ARTICLE_NUMBER = "ext:tag:0xe23:Integer"
PR_MESSAGE_SIZE = "ext:tag:0xe08:Integer"
PR_LAST_MODIFICATION_TIME = "ext:tag:0x3008:SystemTime"
PR_LAST_VERB_EXECUTED = "ext:tag:0x1081:Integer"
PR_LAST_VERB_EXECUTION_TIME = "ext:tag:0x1082:SystemTime"
PR_ICON_INDEX = "ext:tag:0x1080:Integer"
PR_URL_COMP_NAME = "ext:tag:0x10f3:String"
PR_DISPLAY_NAME = "ext:tag:0x3001:String"
INSTANCE_TYPE = (
    "ext:set:00020329-0000-0000-c000-000000000046:urn:schemas:calendar:instancetype:Integer"
)

# Folder properties by tag number.
PR_CONTENT_COUNT = 0x3602
PR_CONTENT_UNREAD = 0x3603
PR_SUBFOLDERS = 0x360A
PR_LOCAL_COMMIT_TIME_MAX = 0x670A
PR_FOLDER_LAST_MODIFICATION_TIME = 0x3008
PR_ARTICLE_NUM_NEXT = 0x6751
PR_IMAP_LAST_ARTICLE_ID = 0x6752

# PR_LAST_VERB_EXECUTED values (MS-OXOMSG) and the icon each leaves on the original.
VERB_OF_RESPONSE = {"ReplyToItem": 102, "ReplyAllToItem": 103, "ForwardItem": 104}
_ICON_OF_VERB = {102: 0x105, 103: 0x105, 104: 0x106}


def article_number(store: Store, item: Item) -> int | None:
    """The item's IMAP UID in its folder: the change that brought it in."""
    row = store.query_one(
        "SELECT MAX(seq) AS n FROM item_changes WHERE folder_id = ? AND item_id = ?"
        " AND change = 'in'",
        (item.folder_id, item.id),
    )
    return int(row["n"]) if row is not None and row["n"] is not None else None


def _icon_index(item: Item, props: dict[str, Any]) -> int:
    """PR_ICON_INDEX as Outlook shows it (MS-OXOMSG, MS-OXOCAL, MS-OXOCNTC, MS-OXOTASK)."""
    cls = item.item_class
    recurring = bool(props.get("calendar:IsRecurring"))
    meeting = bool(props.get("calendar:IsMeeting"))
    if cls.startswith("IPM.Appointment"):
        return 0x400 + (2 if meeting else 0) + (1 if recurring else 0)
    if cls.startswith("IPM.Schedule.Meeting.Request"):
        return 0x404
    if cls.startswith("IPM.Schedule.Meeting.Resp.Pos"):
        return 0x405
    if cls.startswith("IPM.Schedule.Meeting.Resp.Neg"):
        return 0x406
    if cls.startswith("IPM.Schedule.Meeting.Resp.Tent"):
        return 0x407
    if cls.startswith("IPM.Schedule.Meeting.Canceled"):
        return 0x408
    if cls.startswith("IPM.DistList"):
        return 0x202
    if cls.startswith("IPM.Contact"):
        return 0x200
    if cls.startswith("IPM.Task"):
        return 0x500
    if cls.startswith("IPM.StickyNote"):
        return 0x301
    verb = props.get(PR_LAST_VERB_EXECUTED)
    if isinstance(verb, int) and verb in _ICON_OF_VERB:
        return _ICON_OF_VERB[verb]
    if props.get("item:IsDraft"):
        return 0x103
    return 0x100 if props.get("message:IsRead") else 0x101


def _url_name(item: Item, props: dict[str, Any]) -> str:
    """PR_URL_COMP_NAME: the subject made safe for a URL segment, with Exchange's suffix."""
    subject = str(props.get("item:Subject") or "").strip()
    safe = "".join("_" if ch in '/\\:*?"<>|' else ch for ch in subject) or item.id
    return f"{safe}.EML"


def add_item_properties(
    store: Store, item: Item, props: dict[str, Any], *, size: int, is_calendar: bool
) -> None:
    """Put the computed MAPI properties into an item's outgoing props."""
    number = article_number(store, item)
    if number is not None:
        props[PR_INTERNET_ARTICLE_NUMBER] = number
    props[PR_MESSAGE_SIZE] = size
    props[PR_LAST_MODIFICATION_TIME] = item.last_modified
    props[PR_ICON_INDEX] = _icon_index(item, props)
    props[PR_URL_COMP_NAME] = _url_name(item, props)
    name = props.get("contacts:DisplayName") or props.get("item:Subject")
    if name:
        props[PR_DISPLAY_NAME] = str(name)
    if is_calendar:
        kind = props.get("calendar:CalendarItemType", "Single")
        props[INSTANCE_TYPE] = {
            "Single": 0,
            "RecurringMaster": 1,
            "Occurrence": 2,
            "Exception": 3,
        }.get(str(kind), 0)


def record_last_verb(store: Store, original: Item, response: str, now: datetime) -> None:
    """Stamp the original of a sent reply or forward, as Exchange does (Outlook's icons)."""
    original.props[PR_LAST_VERB_EXECUTED] = VERB_OF_RESPONSE[response]
    original.props[PR_LAST_VERB_EXECUTION_TIME] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    store_items.save_item(store, original, now)


def folder_property(caller: Caller, folder: Folder, tag: int) -> str | None:
    """The text of a computed folder property, or None when the folder has none."""
    store = caller.lab.store
    if tag in (PR_CONTENT_COUNT, PR_CONTENT_UNREAD):
        total, unread = store.folder_counts(folder.id)
        return str(total if tag == PR_CONTENT_COUNT else unread)
    if tag == PR_SUBFOLDERS:
        return "true" if store.children(folder.id) else "false"
    if tag in (PR_LOCAL_COMMIT_TIME_MAX, PR_FOLDER_LAST_MODIFICATION_TIME):
        row = store.query_one(
            "SELECT MAX(at) AS at FROM item_changes WHERE folder_id = ?", (folder.id,)
        )
        latest = str(row["at"]) if row is not None and row["at"] else ""
        return max(latest, folder.last_modified)
    if tag in (PR_ARTICLE_NUM_NEXT, PR_IMAP_LAST_ARTICLE_ID):
        row = store.query_one(
            "SELECT MAX(seq) AS n FROM item_changes WHERE folder_id = ? AND change = 'in'",
            (folder.id,),
        )
        highest = int(row["n"]) if row is not None and row["n"] is not None else 0
        return str(highest + 1 if tag == PR_ARTICLE_NUM_NEXT else highest)
    return None
