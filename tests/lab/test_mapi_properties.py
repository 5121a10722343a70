"""Computed MAPI properties asked for by PropertyTag, with exchangelib's extended properties."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from exchangelib import CalendarItem, Folder, Message
from exchangelib.extended_properties import ExtendedProperty
from exchangelib.items import Item

from tests.lab.conftest import LabServer


def tagged(tag: int, kind: str) -> type[ExtendedProperty]:
    return type(f"Tag{tag:04X}", (ExtendedProperty,), {"property_tag": tag, "property_type": kind})


class InstanceType(ExtendedProperty):  # type: ignore[misc]
    distinguished_property_set_id = "PublicStrings"
    property_name = "urn:schemas:calendar:instancetype"
    property_type = "Integer"


ITEM_PROPS: dict[str, type[ExtendedProperty]] = {
    "imap_uid": tagged(0x0E23, "Integer"),
    "message_size": tagged(0x0E08, "Integer"),
    "last_modified": tagged(0x3008, "SystemTime"),
    "last_verb": tagged(0x1081, "Integer"),
    "icon_index": tagged(0x1080, "Integer"),
    "message_flags": tagged(0x0E07, "Integer"),
    "url_name": tagged(0x10F3, "String"),
    "mapi_display_name": tagged(0x3001, "String"),
    "unknown_tag": tagged(0x7FF0, "Integer"),
}
FOLDER_PROPS: dict[str, type[ExtendedProperty]] = {
    "content_count": tagged(0x3602, "Integer"),
    "content_unread": tagged(0x3603, "Integer"),
    "has_subfolders": tagged(0x360A, "Boolean"),
    "ctag": tagged(0x670A, "SystemTime"),
    "folder_modified": tagged(0x3008, "SystemTime"),
    "uid_next": tagged(0x6751, "Integer"),
    "highest_uid": tagged(0x6752, "Integer"),
    "unknown_folder_tag": tagged(0x7FF1, "Integer"),
}


@pytest.fixture
def registered() -> Iterator[None]:
    """exchangelib learns the properties the way its users register them, and forgets after."""
    for cls in (Message, CalendarItem):
        for name, prop in ITEM_PROPS.items():
            cls.register(name, prop)
    CalendarItem.register("instance_type", InstanceType)
    for name, prop in FOLDER_PROPS.items():
        Folder.register(name, prop)
    yield
    for cls in (Message, CalendarItem):
        for name in ITEM_PROPS:
            cls.deregister(name)
    CalendarItem.deregister("instance_type")
    for name in FOLDER_PROPS:
        Folder.deregister(name)


def _messages(folder: Any) -> list[Item]:
    return [i for i in folder.all() if isinstance(i, Message)]


@pytest.mark.usefixtures("registered")
def test_item_properties_are_computed_and_an_unknown_tag_is_absent(lab: LabServer) -> None:
    account = lab.account("chef")
    messages = _messages(account.inbox)
    assert messages
    uids = [m.imap_uid for m in messages]
    assert all(isinstance(u, int) and u > 0 for u in uids)
    assert len(set(uids)) == len(uids)
    first = messages[0]
    assert first.message_size == first.size and first.message_size > 0
    assert first.last_modified == first.last_modified_time
    assert first.url_name.endswith(".EML")
    assert first.mapi_display_name == first.subject
    assert first.icon_index == (0x100 if first.is_read else 0x101)
    assert first.message_flags & 0x1 == (1 if first.is_read else 0)
    assert first.last_verb is None and first.unknown_tag is None


@pytest.mark.usefixtures("registered")
def test_the_imap_uid_grows_for_new_and_moved_in_items(lab: LabServer) -> None:
    account = lab.account("chef")
    before = max(m.imap_uid for m in _messages(account.inbox))
    new = Message(account=account, folder=account.inbox, subject="UID-Probe", body="x")
    new.save()
    fresh = account.inbox.get(id=new.id)
    assert fresh.imap_uid > before
    fresh.move(account.junk)
    moved = account.junk.get(subject="UID-Probe")
    moved.move(account.inbox)
    back = account.inbox.get(subject="UID-Probe")
    assert back.imap_uid > fresh.imap_uid


@pytest.mark.usefixtures("registered")
def test_a_reply_leaves_the_last_verb_and_icon_on_the_original(lab: LabServer) -> None:
    account = lab.account("chef")
    original = _messages(account.inbox)[0]
    original.reply(subject="AW: Test", body="Danke", to_recipients=[account.primary_smtp_address])
    again = account.inbox.get(id=original.id)
    assert again.last_verb == 102
    assert again.icon_index == 0x105


@pytest.mark.usefixtures("registered")
def test_calendar_items_carry_their_instance_type(lab: LabServer) -> None:
    account = lab.account("chef")
    kinds = {i.type: i.instance_type for i in account.calendar.all() if i.type}
    assert kinds.get("RecurringMaster") == 1
    assert kinds.get("Single") == 0
    assert all(isinstance(i.imap_uid, int) for i in account.calendar.all())


@pytest.mark.usefixtures("registered")
def test_folder_properties_give_counts_subfolders_and_a_moving_ctag(lab: LabServer) -> None:
    account = lab.account("chef")
    inbox = account.root.get_folder(account.inbox)
    inbox.refresh()
    assert inbox.content_count == inbox.total_count
    assert inbox.content_unread == inbox.unread_count
    assert inbox.has_subfolders is (inbox.child_folder_count > 0)
    assert inbox.uid_next == inbox.highest_uid + 1
    assert inbox.unknown_folder_tag is None
    assert inbox.ctag is not None and inbox.folder_modified is not None
    ctag = inbox.ctag
    later = datetime.now(UTC) + timedelta(hours=1)
    lab.lab.clock = lambda: later
    Message(account=account, folder=account.inbox, subject="ctag", body="x").save()
    inbox.refresh()
    assert inbox.ctag > ctag
    assert inbox.content_count == inbox.total_count
    assert inbox.highest_uid + 1 == inbox.uid_next
