"""Helpers for item tests that speak SOAP to the lab in process (no HTTP)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

import exlab.ews.attachments
import exlab.ews.items
import exlab.ews.notifications
import exlab.ews.sync  # noqa: F401  (registers the operations)
from exlab import Lab
from exlab.core import items as store_items
from exlab.demo import open_demo
from exlab.ews import soap
from tests.lab.schema import assert_valid_ews

CHEF = "chef@musterstadt.example"
ASSISTENZ = "assistenz@musterstadt.example"
NS = (
    'xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"'
)
M = "{http://schemas.microsoft.com/exchange/services/2006/messages}"
T = "{http://schemas.microsoft.com/exchange/services/2006/types}"
ALL_FIELDS = "".join(
    f'<t:FieldURI FieldURI="{uri}"/>'
    for uri in (
        "item:Subject",
        "item:Body",
        "item:Attachments",
        "item:DateTimeReceived",
        "item:Size",
        "item:Categories",
        "item:Importance",
        "item:Sensitivity",
        "item:HasAttachments",
        "item:EffectiveRights",
        "item:DisplayTo",
        "item:ReminderIsSet",
        "message:From",
        "message:Sender",
        "message:ToRecipients",
        "message:IsRead",
        "calendar:Start",
        "calendar:End",
        "calendar:Recurrence",
        "calendar:ModifiedOccurrences",
        "calendar:DeletedOccurrences",
        "calendar:FirstOccurrence",
        "calendar:LastOccurrence",
        "calendar:RequiredAttendees",
        "calendar:Organizer",
        "calendar:StartTimeZone",
        "calendar:CalendarItemType",
        "contacts:EmailAddresses",
        "contacts:PhoneNumbers",
        "task:DueDate",
        "task:Status",
        "meeting:AssociatedCalendarItemId",
        "meetingRequest:MeetingRequestType",
        "postitem:PostedTime",
    )
) + (
    '<t:ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/>'
    '<t:ExtendedFieldURI PropertyTag="0x36" PropertyType="Integer"/>'
    '<t:ExtendedFieldURI PropertyTag="0x0E07" PropertyType="Integer"/>'
    '<t:ExtendedFieldURI DistinguishedPropertySetId="Task" PropertyId="33029" '
    'PropertyType="SystemTime"/>'
)


def envelope(body: str, version: str = "Exchange2010_SP2") -> bytes:
    return (
        f'<s:Envelope {NS}><s:Header><t:RequestServerVersion Version="{version}"/></s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def demo_lab() -> Iterator[Lab]:
    """A demo organisation in memory (wrap as a fixture in the test module)."""
    lab = open_demo()
    yield lab
    lab.close()


def call(lab: Lab, user: str, body: str, *, validate: bool = True) -> ET.Element:
    result = soap.handle(lab, user, envelope(body))
    assert result.status == 200, result.body[:500]
    if validate:
        assert_valid_ews(result.body)
    root = ET.fromstring(result.body)
    messages = root.find(f".//{M}ResponseMessages")
    assert messages is not None
    return messages


def codes(messages: ET.Element) -> list[str]:
    return [el.findtext(f"{M}ResponseCode", "") for el in messages]


def folder_of(lab: Lab, mailbox: str, name: str) -> str:
    folder = lab.store.distinguished_folder(mailbox, name)
    assert folder is not None
    return folder.id


def find(lab: Lab, mailbox: str, name: str, predicate: object) -> store_items.Item:
    for item in store_items.items_in(lab.store, folder_of(lab, mailbox, name)):
        if callable(predicate) and predicate(item):
            return item
    raise LookupError(name)
