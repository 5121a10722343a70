"""Item XML and MIME conversions, and props keys that clients may spell in several ways."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring

from exlab import Lab
from exlab.core import items as store_items
from exlab.core.mime import from_mime, to_mime
from exlab.ews import itemxml
from tests.lab.items_soap import CHEF, NS, M, T, call, codes, demo_lab, folder_of


@pytest.fixture
def lab() -> Iterator[Lab]:
    yield from demo_lab()


def el(xml: str) -> Element:
    parsed: Element = fromstring(f"<t:X {NS}>{xml}</t:X>")
    return parsed[0]


def test_named_property_keys_agree_for_set_name_and_guid_and_decimal_or_hex_id() -> None:
    by_name = el(
        '<t:ExtendedFieldURI DistinguishedPropertySetId="Task" PropertyId="33029" '
        'PropertyType="SystemTime"/>'
    )
    by_guid = el(
        '<t:ExtendedFieldURI PropertySetId="00062003-0000-0000-C000-000000000046" '
        'PropertyId="0x8105" PropertyType="SystemTime"/>'
    )
    assert itemxml.ext_key(by_name) == itemxml.ext_key(by_guid) == store_items.PID_LID_TASK_DUE
    tag = el('<t:ExtendedFieldURI PropertyTag="0x0E07" PropertyType="Integer"/>')
    assert itemxml.ext_key(tag) == store_items.PR_MESSAGE_FLAGS


def test_unknown_property_type_is_refused() -> None:
    with pytest.raises(itemxml.ItemXmlError):
        itemxml.ext_key(el('<t:ExtendedFieldURI PropertyTag="0x1090" PropertyType="Blob"/>'))


def test_message_parses_into_props_with_typed_extended_values() -> None:
    element, props = itemxml.parse_item(
        el(
            '<t:Message><t:Subject>Hallo</t:Subject><t:Body BodyType="HTML">&lt;b&gt;x'
            "&lt;/b&gt;</t:Body><t:Categories><t:String>Rot</t:String></t:Categories>"
            '<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x1090" '
            'PropertyType="Integer"/><t:Value>2</t:Value></t:ExtendedProperty>'
            "<t:ToRecipients><t:Mailbox><t:Name>Tom</t:Name><t:EmailAddress>tom@x.example"
            "</t:EmailAddress></t:Mailbox></t:ToRecipients>"
            "<t:IsRead>true</t:IsRead></t:Message>"
        )
    )
    assert element == "Message"
    assert props["item:Subject"] == "Hallo"
    assert props["item:Body"] == {"type": "HTML", "text": "<b>x</b>"}
    assert props["item:Categories"] == ["Rot"]
    assert props[store_items.PR_FLAG_STATUS] == 2
    assert props["message:ToRecipients"] == [{"name": "Tom", "email": "tom@x.example"}]
    assert props["message:IsRead"] is True


def test_writes_to_mapi_views_land_on_named_fields() -> None:
    props = store_items.apply_changes(
        {"item:Sensitivity": "Normal"},
        {store_items.PR_SENSITIVITY: 2, store_items.PR_MESSAGE_FLAGS: 1},
    )
    assert props == {"item:Sensitivity": "Private", "message:IsRead": True}


def test_mime_round_trip_keeps_headers_and_body() -> None:
    props = {
        "item:Subject": "Grüße aus Musterstadt",
        "message:From": {"name": "Dr. Anna Berg", "email": CHEF},
        "message:ToRecipients": [{"name": "Tom Weber", "email": "assistenz@musterstadt.example"}],
        "item:Body": {"type": "Text", "text": "Hallo Tom,\nbis morgen."},
        "item:Importance": "High",
        "item:DateTimeSent": "2026-11-20T08:00:00Z",
    }
    back = from_mime(to_mime(props))
    assert back["item:Subject"] == props["item:Subject"]
    assert back["message:From"] == {"name": "Dr. Anna Berg", "email": CHEF}
    assert back["message:ToRecipients"][0]["email"] == "assistenz@musterstadt.example"
    assert back["item:Body"]["text"].strip() == "Hallo Tom,\nbis morgen."
    assert back["item:Importance"] == "High"
    assert back["item:DateTimeSent"] == "2026-11-20T08:00:00Z"


def test_create_item_from_mime_content(lab: Lab) -> None:
    raw = (
        b"From: Presse <presse@musterstadt.example>\r\nTo: chef@musterstadt.example\r\n"
        b"Subject: Pressespiegel\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        b"Heute: 3 Artikel.\r\n"
    )
    messages = call(
        lab,
        CHEF,
        '<m:CreateItem MessageDisposition="SaveOnly"><m:SavedItemFolderId>'
        '<t:DistinguishedFolderId Id="inbox"/></m:SavedItemFolderId><m:Items><t:Message>'
        f"<t:MimeContent>{base64.b64encode(raw).decode()}</t:MimeContent>"
        "</t:Message></m:Items></m:CreateItem>",
    )
    assert codes(messages) == ["NoError"]
    inbox = folder_of(lab, CHEF, "inbox")
    created = [
        i
        for i in store_items.items_in(lab.store, inbox)
        if i.props.get("item:Subject") == "Pressespiegel"
    ]
    assert created[0].props["item:Body"]["text"].strip() == "Heute: 3 Artikel."


def test_restriction_on_an_indexed_contact_field(lab: Lab) -> None:
    messages = call(
        lab,
        CHEF,
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>Default</t:BaseShape>'
        '</m:ItemShape><m:Restriction><t:Contains ContainmentMode="Substring" '
        'ContainmentComparison="IgnoreCase"><t:IndexedFieldURI FieldURI="contacts:EmailAddress" '
        'FieldIndex="EmailAddress1"/><t:Constant Value="klinikum"/></t:Contains></m:Restriction>'
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="contacts"/></m:ParentFolderIds>'
        "</m:FindItem>",
    )
    names = [c.findtext(f"{T}DisplayName") for c in messages[0].iter(f"{T}Contact")]
    assert names == ["Dr. Jana Hoffmann"]
    assert messages[0].find(f"{M}RootFolder") is not None


def test_deep_find_includes_subfolders_and_text_body_is_converted(lab: Lab) -> None:
    shallow = call(
        lab,
        CHEF,
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        '</m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="1" Offset="0" '
        'BasePoint="Beginning"/><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/>'
        "</m:ParentFolderIds></m:FindItem>",
    )
    deep = call(
        lab,
        CHEF,
        '<m:FindItem Traversal="Deep"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        '</m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="1" Offset="0" '
        'BasePoint="Beginning"/><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/>'
        "</m:ParentFolderIds></m:FindItem>",
    )

    def total(messages: Element) -> int:
        root = messages[0].find(f"{M}RootFolder")
        assert root is not None
        return int(root.get("TotalItemsInView", "0"))

    assert total(deep) > total(shallow)
    item = store_items.items_in(lab.store, folder_of(lab, CHEF, "inbox"))[0]
    from exlab.core.targets import item_ews_id

    got = call(
        lab,
        CHEF,
        "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:BodyType>HTML"
        '</t:BodyType><t:AdditionalProperties><t:FieldURI FieldURI="item:Body"/>'
        "</t:AdditionalProperties></m:ItemShape><m:ItemIds>"
        f'<t:ItemId Id="{item_ews_id(item)}"/></m:ItemIds></m:GetItem>',
    )
    body = got[0].find(f"{M}Items/{T}Message/{T}Body")
    assert body is not None and body.get("BodyType") == "HTML"
    assert (body.text or "").startswith("<html>")


CAL = '<m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId>'


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape><m:ItemIds>"
            '<t:ItemId Id="bm9wZQ=="/></m:ItemIds></m:GetItem>',
            "ErrorInvalidIdMalformed",
        ),
        (
            '<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message><t:MimeContent>'
            "%%%</t:MimeContent></t:Message></m:Items></m:CreateItem>",
            "ErrorInvalidValueForProperty",
        ),
        (
            f"<m:CreateItem>{CAL}<m:Items><t:CalendarItem><t:Start>2027-01-01T10:00:00Z"
            "</t:Start><t:End>2027-01-01T09:00:00Z</t:End></t:CalendarItem></m:Items>"
            "</m:CreateItem>",
            "ErrorCalendarEndDateIsEarlierThanStartDate",
        ),
        (
            f"<m:CreateItem>{CAL}<m:Items><t:CalendarItem><t:Start>2027-01-01T10:00:00Z"
            "</t:Start><t:End>2027-01-01T11:00:00Z</t:End><t:Recurrence><t:WeeklyRecurrence>"
            "<t:Interval>1</t:Interval><t:DaysOfWeek></t:DaysOfWeek></t:WeeklyRecurrence>"
            "<t:NoEndRecurrence><t:StartDate>2027-01-01</t:StartDate></t:NoEndRecurrence>"
            "</t:Recurrence></t:CalendarItem></m:Items></m:CreateItem>",
            "ErrorCalendarInvalidRecurrence",
        ),
        (
            '<m:CreateItem MessageDisposition="SaveOnly"><m:Items><t:Message>'
            '<t:ExtendedProperty><t:ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/>'
            "<t:Value>zwei</t:Value></t:ExtendedProperty></t:Message></m:Items></m:CreateItem>",
            "ErrorInvalidValueForProperty",
        ),
        (
            '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
            "</m:ItemShape><m:Restriction><t:Near/></m:Restriction><m:ParentFolderIds>"
            '<t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>',
            "ErrorInvalidRestriction",
        ),
        (
            '<m:CreateItem MessageDisposition="SendOnly"><m:Items><t:Message><t:Subject>x'
            "</t:Subject></t:Message></m:Items></m:CreateItem>",
            "ErrorInvalidRecipients",
        ),
    ],
)
def test_bad_item_requests_get_typed_errors_and_change_nothing(
    lab: Lab, body: str, code: str
) -> None:
    before = lab.store.query_one("SELECT COUNT(*) AS n FROM items")
    messages = call(lab, CHEF, body)
    assert codes(messages) == [code]
    assert lab.store.query_one("SELECT COUNT(*) AS n FROM items")["n"] == before["n"]  # type: ignore[index]


MATCH_ALL = (
    '<m:Restriction><t:Not><t:Exists><t:FieldURI FieldURI="item:InReplyTo"/></t:Exists>'
    "</t:Not></m:Restriction>"
)


@pytest.mark.parametrize("user", [CHEF, "assistenz@musterstadt.example"])
@pytest.mark.parametrize(
    "order",
    [
        "",
        '<t:FieldOrder Order="Descending"><t:FieldURI FieldURI="item:DateTimeReceived"/>'
        "</t:FieldOrder>",
        '<t:FieldOrder Order="Ascending"><t:FieldURI FieldURI="message:IsRead"/></t:FieldOrder>'
        '<t:FieldOrder Order="Descending"><t:ExtendedFieldURI PropertyTag="0x1090" '
        'PropertyType="Integer"/></t:FieldOrder>',
    ],
)
def test_sql_paged_listing_equals_the_general_path(lab: Lab, user: str, order: str) -> None:
    def page(offset: int, restriction: str) -> tuple[list[str], str]:
        sort = f"<m:SortOrder>{order}</m:SortOrder>" if order else ""
        messages = call(
            lab,
            user,
            '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
            f'</m:ItemShape><m:IndexedPageItemView MaxEntriesReturned="40" Offset="{offset}" '
            f'BasePoint="Beginning"/>{restriction}{sort}<m:ParentFolderIds>'
            f'<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>{CHEF}'
            "</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></m:ParentFolderIds>"
            "</m:FindItem>",
        )
        root = messages[0].find(f"{M}RootFolder")
        assert root is not None
        ids = [str(el.get("Id")) for el in root.iter(f"{T}ItemId")]
        return ids, f"{root.get('TotalItemsInView')}/{root.get('IncludesLastItemInRange')}"

    for offset in (0, 120, 240):
        assert page(offset, "") == page(offset, MATCH_ALL)


def test_appointment_mime_is_icalendar_with_rule_and_exceptions(lab: Lab) -> None:
    from icalendar import Calendar

    from exlab.core.targets import item_ews_id

    calendar = folder_of(lab, CHEF, "calendar")
    jour_fixe = next(
        i for i in store_items.items_in(lab.store, calendar) if "lab:deleted" in i.props
    )
    messages = call(
        lab,
        CHEF,
        "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>"
        "<t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape><m:ItemIds>"
        f'<t:ItemId Id="{item_ews_id(jour_fixe)}"/></m:ItemIds></m:GetItem>',
    )
    mime = messages[0].findtext(f"{M}Items/{T}CalendarItem/{T}MimeContent")
    assert mime
    event = next(iter(Calendar.from_ical(base64.b64decode(mime)).walk("VEVENT")))
    assert str(event["SUMMARY"]) == "Jour fixe Verwaltungsvorstand"
    assert event["RRULE"]["FREQ"] == ["WEEKLY"] and event["RRULE"]["BYDAY"] == ["MO"]
    assert event.decoded("DTSTART").hour == 9  # Berlin wall-clock time
    assert "EXDATE" in event
