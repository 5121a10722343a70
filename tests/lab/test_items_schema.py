"""Item operation responses validate against the Exchange2010_SP2 schemas (element order too)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from exlab import Lab
from exlab.core import items as store_items
from exlab.core.targets import item_ews_id
from exlab.ews.ids import encode_id
from tests.lab.items_soap import (
    ALL_FIELDS,
    ASSISTENZ,
    CHEF,
    M,
    T,
    call,
    codes,
    demo_lab,
    find,
    folder_of,
)


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from demo_lab()


def get_item_body(ids: list[str], extra: str = "") -> str:
    id_xml = "".join(f'<t:ItemId Id="{i}"/>' for i in ids)
    return (
        "<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape>"
        f"{extra}<t:AdditionalProperties>{ALL_FIELDS}</t:AdditionalProperties></m:ItemShape>"
        f"<m:ItemIds>{id_xml}</m:ItemIds></m:GetItem>"
    )


def test_find_item_page_with_restriction_and_sort_validates(lab: Lab) -> None:
    body = (
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        f"<t:AdditionalProperties>{ALL_FIELDS}</t:AdditionalProperties></m:ItemShape>"
        '<m:IndexedPageItemView MaxEntriesReturned="25" Offset="0" BasePoint="Beginning"/>'
        "<m:Restriction><t:Not><t:IsEqualTo>"
        '<t:ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/>'
        '<t:FieldURIOrConstant><t:Constant Value="1"/></t:FieldURIOrConstant>'
        "</t:IsEqualTo></t:Not></m:Restriction>"
        '<m:SortOrder><t:FieldOrder Order="Descending">'
        '<t:FieldURI FieldURI="item:DateTimeReceived"/></t:FieldOrder></m:SortOrder>'
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="inbox">'
        f"<t:Mailbox><t:EmailAddress>{CHEF}</t:EmailAddress></t:Mailbox>"
        "</t:DistinguishedFolderId></m:ParentFolderIds></m:FindItem>"
    )
    messages = call(lab, ASSISTENZ, body)
    root = messages[0].find(f"{M}RootFolder")
    assert root is not None
    assert root.get("IncludesLastItemInRange") == "false"
    assert len(root.find(f"{T}Items") or []) == 25


def test_get_item_all_properties_of_every_item_kind_validates(lab: Lab) -> None:
    chef_items = [
        find(lab, CHEF, "inbox", lambda i: bool(store_items.attachments_of(lab.store, i.id))),
        find(lab, CHEF, "inbox", lambda i: i.props.get(store_items.PR_FLAG_STATUS) == 2),
        find(lab, CHEF, "inbox", lambda i: i.item_class.startswith("IPM.Schedule")),
        find(lab, CHEF, "calendar", lambda i: "lab:deleted" in i.props),
        find(lab, CHEF, "calendar", lambda i: bool(i.props.get("calendar:RequiredAttendees"))),
        find(lab, CHEF, "contacts", lambda i: True),
        find(lab, CHEF, "tasks", lambda i: True),
        find(lab, CHEF, "notes", lambda i: True),
        find(lab, CHEF, "voicemail", lambda i: True),
    ]
    ids = [item_ews_id(i) for i in chef_items]
    master = chef_items[3]
    exception = store_items.exceptions_of(lab.store, master.id)[0]
    ids.append(item_ews_id(exception))
    ids.append(encode_id("occurrence", f"{master.id}:1"))
    messages = call(
        lab, CHEF, get_item_body(ids, "<t:IncludeMimeContent>true</t:IncludeMimeContent>")
    )
    assert codes(messages) == ["NoError"] * len(ids)
    tags = [msg.find(f"{M}Items")[0].tag.split("}")[1] for msg in messages]  # type: ignore[index]
    assert tags[:3] == ["Message", "Message", "MeetingRequest"]
    assert tags[3:5] == ["CalendarItem", "CalendarItem"]
    assert tags[5:9] == ["Contact", "Task", "Message", "Message"]
    master_el = messages[3].find(f"{M}Items/{T}CalendarItem")
    assert master_el is not None
    assert master_el.findtext(f"{T}CalendarItemType") == "RecurringMaster"
    assert master_el.find(f"{T}ModifiedOccurrences") is not None
    assert master_el.find(f"{T}DeletedOccurrences") is not None
    mime = messages[0].findtext(f"{M}Items/{T}Message/{T}MimeContent")
    assert mime and b"Content-Disposition: attachment" in base64.b64decode(mime)


def test_public_folder_post_validates(lab: Lab) -> None:
    root = lab.store.distinguished_folder("public", "publicfoldersroot")
    assert root is not None
    verwaltung = next(f for f in lab.store.children(root.id) if f.display_name == "Verwaltung")
    post = store_items.items_in(lab.store, verwaltung.id)[0]
    messages = call(lab, ASSISTENZ, get_item_body([item_ews_id(post)]))
    assert messages[0].find(f"{M}Items/{T}PostItem") is not None


def test_calendar_view_validates_and_expands(lab: Lab) -> None:
    body = (
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>Default</t:BaseShape>'
        "</m:ItemShape>"
        '<m:CalendarView StartDate="2026-11-01T00:00:00Z" EndDate="2027-01-31T00:00:00Z"/>'
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds>'
        "</m:FindItem>"
    )
    messages = call(lab, CHEF, body)
    kinds = [el.findtext(f"{T}CalendarItemType") for el in messages[0].iter(f"{T}CalendarItem")]
    assert {"Single", "Occurrence", "Exception"} <= set(kinds)


def test_write_operations_validate(lab: Lab) -> None:
    inbox = f'<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>{CHEF}'
    inbox += "</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"
    created = call(
        lab,
        ASSISTENZ,
        '<m:CreateItem MessageDisposition="SaveOnly">'
        f"<m:SavedItemFolderId>{inbox}</m:SavedItemFolderId><m:Items><t:Message>"
        '<t:Subject>Test</t:Subject><t:Body BodyType="HTML">&lt;p&gt;Hallo&lt;/p&gt;</t:Body>'
        "<t:Importance>High</t:Importance></t:Message></m:Items></m:CreateItem>",
    )
    item_id = created[0].find(f"{M}Items/{T}Message/{T}ItemId")
    assert item_id is not None
    iid = item_id.get("Id")
    updated = call(
        lab,
        ASSISTENZ,
        '<m:UpdateItem ConflictResolution="AlwaysOverwrite" MessageDisposition="SaveOnly">'
        f'<m:ItemChanges><t:ItemChange><t:ItemId Id="{iid}"/><t:Updates>'
        '<t:SetItemField><t:FieldURI FieldURI="item:Subject"/><t:Message>'
        "<t:Subject>Neu</t:Subject></t:Message></t:SetItemField>"
        '<t:AppendToItemField><t:FieldURI FieldURI="item:Body"/><t:Message>'
        '<t:Body BodyType="HTML">&lt;p&gt;mehr&lt;/p&gt;</t:Body></t:Message>'
        "</t:AppendToItemField>"
        '<t:DeleteItemField><t:FieldURI FieldURI="item:Importance"/></t:DeleteItemField>'
        "</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>",
    )
    assert codes(updated) == ["NoError"]
    content = base64.b64encode(b"hello").decode()
    att = call(
        lab,
        ASSISTENZ,
        f'<m:CreateAttachment><m:ParentItemId Id="{iid}"/><m:Attachments><t:FileAttachment>'
        f"<t:Name>a.txt</t:Name><t:ContentType>text/plain</t:ContentType>"
        f"<t:Content>{content}</t:Content></t:FileAttachment></m:Attachments>"
        "</m:CreateAttachment>",
    )
    att_id = att[0].find(f"{M}Attachments/{T}FileAttachment/{T}AttachmentId")
    assert att_id is not None
    got = call(
        lab,
        ASSISTENZ,
        f'<m:GetAttachment><m:AttachmentIds><t:AttachmentId Id="{att_id.get("Id")}"/>'
        "</m:AttachmentIds></m:GetAttachment>",
    )
    assert got[0].findtext(f"{M}Attachments/{T}FileAttachment/{T}Content") == content
    copied = call(
        lab,
        ASSISTENZ,
        f"<m:CopyItem><m:ToFolderId>{inbox}</m:ToFolderId>"
        f'<m:ItemIds><t:ItemId Id="{iid}"/></m:ItemIds></m:CopyItem>',
    )
    assert codes(copied) == ["NoError"]
    deleted_att = call(
        lab,
        ASSISTENZ,
        f'<m:DeleteAttachment><m:AttachmentIds><t:AttachmentId Id="{att_id.get("Id")}"/>'
        "</m:AttachmentIds></m:DeleteAttachment>",
    )
    assert codes(deleted_att) == ["NoError"]
    gone = call(
        lab,
        ASSISTENZ,
        f'<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="{iid}"/>'
        "</m:ItemIds></m:DeleteItem>",
    )
    assert codes(gone) == ["NoError"]
    again = call(lab, ASSISTENZ, get_item_body([iid or ""]))
    assert codes(again) == ["ErrorItemNotFound"]


def test_denied_write_answers_access_denied_and_changes_nothing(lab: Lab) -> None:
    contacts = folder_of(lab, CHEF, "contacts")
    before = store_items.count_in(lab.store, contacts)
    folder = f'<t:DistinguishedFolderId Id="contacts"><t:Mailbox><t:EmailAddress>{CHEF}'
    folder += "</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId>"
    messages = call(
        lab,
        ASSISTENZ,
        f"<m:CreateItem><m:SavedItemFolderId>{folder}</m:SavedItemFolderId><m:Items>"
        "<t:Contact><t:DisplayName>Eva</t:DisplayName></t:Contact>"
        "<t:Contact><t:DisplayName>Max</t:DisplayName></t:Contact></m:Items></m:CreateItem>",
    )
    assert codes(messages) == ["ErrorAccessDenied", "ErrorAccessDenied"]
    assert store_items.count_in(lab.store, contacts) == before


def test_sync_and_notifications_validate(lab: Lab) -> None:
    folder = '<t:DistinguishedFolderId Id="inbox"/>'
    sync = call(
        lab,
        CHEF,
        "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
        f"<m:SyncFolderId>{folder}</m:SyncFolderId><m:MaxChangesReturned>10"
        "</m:MaxChangesReturned></m:SyncFolderItems>",
    )
    assert sync[0].findtext(f"{M}IncludesLastItemInRange") == "false"
    pull = call(
        lab,
        CHEF,
        f"<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds>{folder}</t:FolderIds>"
        "<t:EventTypes><t:EventType>NewMailEvent</t:EventType>"
        "<t:EventType>CreatedEvent</t:EventType></t:EventTypes><t:Timeout>10</t:Timeout>"
        "</m:PullSubscriptionRequest></m:Subscribe>",
    )
    sub_id = pull[0].findtext(f"{M}SubscriptionId")
    watermark = pull[0].findtext(f"{M}Watermark")
    stream = call(
        lab,
        CHEF,
        f"<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds>{folder}</t:FolderIds>"
        "<t:EventTypes><t:EventType>NewMailEvent</t:EventType></t:EventTypes>"
        "</m:StreamingSubscriptionRequest></m:Subscribe>",
    )
    stream_id = stream[0].findtext(f"{M}SubscriptionId")
    call(
        lab,
        ASSISTENZ,
        '<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:Message>'
        "<t:Subject>Hallo</t:Subject><t:ToRecipients><t:Mailbox>"
        f"<t:EmailAddress>{CHEF}</t:EmailAddress></t:Mailbox></t:ToRecipients>"
        "</t:Message></m:Items></m:CreateItem>",
    )
    events = call(
        lab,
        CHEF,
        f"<m:GetEvents><m:SubscriptionId>{sub_id}</m:SubscriptionId>"
        f"<m:Watermark>{watermark}</m:Watermark></m:GetEvents>",
    )
    note = events[0].find(f"{M}Notification")
    assert note is not None
    assert [c.tag.split("}")[1] for c in note][3:] == ["CreatedEvent", "NewMailEvent"]
    streamed = call(
        lab,
        CHEF,
        f"<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>{stream_id}"
        "</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout>"
        "</m:GetStreamingEvents>",
    )
    assert streamed[0].find(f"{M}Notifications/{T}Notification/{T}NewMailEvent") is not None
    assert streamed[0].findtext(f"{M}ConnectionStatus") == "Closed"
    done = call(
        lab, CHEF, f"<m:Unsubscribe><m:SubscriptionId>{sub_id}</m:SubscriptionId></m:Unsubscribe>"
    )
    assert codes(done) == ["NoError"]
