# ruff: noqa: E501  (XML request bodies read better unbroken)
"""Every implemented operation answers in the shape of Microsoft's EWS schema (Exchange2010_SP2).

Requests go over HTTP to the lab like a client's; each response's SOAP Body child (and the
ServerVersionInfo header) is validated with lxml against messages.xsd/types.xsd.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import httpx
import pytest

from exlab.demo import DEMO_PASSWORD
from tests.lab.conftest import LabServer
from tests.lab.schema import assert_valid_ews

TODAY = date.today().isoformat()
NEXT_WEEK = (date.today() + timedelta(days=7)).isoformat()
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"


def call(lab: LabServer, body: str, user: str = "chef", version: str = "Exchange2010_SP2") -> bytes:
    envelope = (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}" xmlns:t="{T}"'
        f' xmlns:m="{M}"><s:Header><t:RequestServerVersion Version="{version}"/></s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )
    answer = httpx.post(
        lab.url,
        content=envelope.encode(),
        auth=(f"{user}@musterstadt.example", DEMO_PASSWORD),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return answer.content


def mailbox(address: str) -> str:
    return f"<t:Mailbox><t:EmailAddress>{address}@musterstadt.example</t:EmailAddress></t:Mailbox>"


def distinguished(name: str, owner: str | None = None) -> str:
    inner = mailbox(owner) if owner else ""
    return f'<t:DistinguishedFolderId Id="{name}">{inner}</t:DistinguishedFolderId>'


ALL_PROPS = (
    "<m:FolderShape><t:BaseShape>AllProperties</t:BaseShape><t:AdditionalProperties>"
    '<t:ExtendedFieldURI PropertyTag="0x3613" PropertyType="String"/>'
    '<t:FieldURI FieldURI="folder:PermissionSet"/></t:AdditionalProperties></m:FolderShape>'
)


def get_folder(*ids: str) -> str:
    return f"<m:GetFolder>{ALL_PROPS}<m:FolderIds>{''.join(ids)}</m:FolderIds></m:GetFolder>"


CASES = {
    "GetFolder-own": (
        "chef",
        get_folder(
            *(distinguished(n) for n in ("root", "inbox", "calendar", "contacts", "tasks", "notes"))
        ),
    ),
    "GetFolder-delegate": (
        "assistenz",
        get_folder(distinguished("inbox", "chef"), distinguished("calendar", "chef")),
    ),
    "GetFolder-denied": ("sachbearbeitung", get_folder(distinguished("inbox", "chef"))),
    "GetFolder-public-archive": (
        "chef",
        get_folder(
            distinguished("publicfoldersroot"),
            distinguished("archiveroot"),
            distinguished("archivemsgfolderroot"),
        ),
    ),
    "FindFolder": (
        "assistenz",
        '<m:FindFolder Traversal="Deep">'
        + ALL_PROPS
        + '<m:IndexedPageFolderView MaxEntriesReturned="5" Offset="1" BasePoint="Beginning"/>'
        + '<m:Restriction><t:Not><t:IsEqualTo><t:FieldURI FieldURI="folder:DisplayName"/>'
        + '<t:FieldURIOrConstant><t:Constant Value="Kalender"/></t:FieldURIOrConstant>'
        + "</t:IsEqualTo></t:Not></m:Restriction>"
        + f"<m:ParentFolderIds>{distinguished('root', 'chef')}</m:ParentFolderIds></m:FindFolder>",
    ),
    "FindFolder-public-deep-refused": (
        "chef",
        '<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>'
        + f"<m:ParentFolderIds>{distinguished('publicfoldersroot')}</m:ParentFolderIds></m:FindFolder>",
    ),
    "SyncFolderHierarchy": (
        "chef",
        "<m:SyncFolderHierarchy><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>"
        + f"<m:SyncFolderId>{distinguished('msgfolderroot')}</m:SyncFolderId></m:SyncFolderHierarchy>",
    ),
    "ResolveNames": (
        "assistenz",
        '<m:ResolveNames ReturnFullContactData="true"><m:UnresolvedEntry>Berg</m:UnresolvedEntry>'
        "<m:UnresolvedEntry>s</m:UnresolvedEntry><m:UnresolvedEntry>Niemand</m:UnresolvedEntry></m:ResolveNames>",
    ),
    "ConvertId-probe": (
        "chef",
        '<m:ConvertId DestinationFormat="EntryId"><m:SourceIds>'
        '<t:AlternateId Format="EwsId" Id="DUMMY" Mailbox="DUMMY"/></m:SourceIds></m:ConvertId>',
    ),
    "GetDelegate": (
        "chef",
        '<m:GetDelegate IncludePermissions="true"><m:Mailbox><t:EmailAddress>chef@musterstadt.example</t:EmailAddress></m:Mailbox></m:GetDelegate>',
    ),
    "GetDelegate-denied": (
        "sachbearbeitung",
        '<m:GetDelegate IncludePermissions="true"><m:Mailbox><t:EmailAddress>chef@musterstadt.example</t:EmailAddress></m:Mailbox></m:GetDelegate>',
    ),
    "GetServerTimeZones": (
        "chef",
        '<m:GetServerTimeZones ReturnFullTimeZoneData="true"><m:Ids><t:Id>W. Europe Standard Time</t:Id>'
        "<t:Id>UTC</t:Id><t:Id>Eastern Standard Time</t:Id></m:Ids></m:GetServerTimeZones>",
    ),
    "GetUserConfiguration": (
        "chef",
        '<m:GetUserConfiguration><m:UserConfigurationName Name="OWA.UserOptions">'
        + distinguished("root")
        + "</m:UserConfigurationName><m:UserConfigurationProperties>All</m:UserConfigurationProperties>"
        "</m:GetUserConfiguration>",
    ),
    "GetUserAvailability": (
        "assistenz",
        "<m:GetUserAvailabilityRequest><t:TimeZone><t:Bias>-60</t:Bias>"
        "<t:StandardTime><t:Bias>0</t:Bias><t:Time>03:00:00</t:Time><t:DayOrder>5</t:DayOrder><t:Month>10</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime>"
        "<t:DaylightTime><t:Bias>-60</t:Bias><t:Time>02:00:00</t:Time><t:DayOrder>5</t:DayOrder><t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime>"
        "</t:TimeZone><m:MailboxDataArray>"
        + "".join(
            f"<t:MailboxData><t:Email><t:Address>{who}@musterstadt.example</t:Address></t:Email>"
            "<t:AttendeeType>Required</t:AttendeeType><t:ExcludeConflicts>false</t:ExcludeConflicts></t:MailboxData>"
            for who in ("chef", "teamkalender", "niemand")
        )
        + "</m:MailboxDataArray><t:FreeBusyViewOptions><t:TimeWindow>"
        f"<t:StartTime>{TODAY}T00:00:00</t:StartTime><t:EndTime>{NEXT_WEEK}T00:00:00</t:EndTime></t:TimeWindow>"
        "<t:MergedFreeBusyIntervalInMinutes>60</t:MergedFreeBusyIntervalInMinutes>"
        "<t:RequestedView>DetailedMerged</t:RequestedView></t:FreeBusyViewOptions>"
        "</m:GetUserAvailabilityRequest>",
    ),
    "GetUserOofSettings": (
        "chef",
        "<m:GetUserOofSettingsRequest><t:Mailbox><t:Address>chef@musterstadt.example</t:Address>"
        "</t:Mailbox></m:GetUserOofSettingsRequest>",
    ),
    "GetUserOofSettings-denied": (
        "assistenz",
        "<m:GetUserOofSettingsRequest><t:Mailbox><t:Address>chef@musterstadt.example</t:Address>"
        "</t:Mailbox></m:GetUserOofSettingsRequest>",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_response_validates_against_the_ews_schema(lab: LabServer, case: str) -> None:
    user, body = CASES[case]
    assert_valid_ews(call(lab, body, user))


def test_folder_changes_validate_against_the_ews_schema(lab: LabServer) -> None:
    created = call(
        lab,
        f"<m:CreateFolder><m:ParentFolderId>{distinguished('inbox')}</m:ParentFolderId><m:Folders>"
        "<t:Folder><t:FolderClass>IPF.Note</t:FolderClass><t:DisplayName>Prüfung</t:DisplayName>"
        "</t:Folder><t:CalendarFolder><t:DisplayName>Termine Prüfung</t:DisplayName></t:CalendarFolder>"
        "</m:Folders></m:CreateFolder>",
    )
    assert_valid_ews(created)
    folder_id, change_key = re.findall(rb'<t:FolderId Id="([^"]+)" ChangeKey="([^"]+)"', created)[0]
    ident = f'<t:FolderId Id="{folder_id.decode()}" ChangeKey="{change_key.decode()}"/>'
    updated = call(
        lab,
        f"<m:UpdateFolder><m:FolderChanges><t:FolderChange>{ident}<t:Updates><t:SetFolderField>"
        '<t:FieldURI FieldURI="folder:DisplayName"/><t:Folder><t:DisplayName>Geprüft</t:DisplayName>'
        "</t:Folder></t:SetFolderField></t:Updates></t:FolderChange></m:FolderChanges></m:UpdateFolder>",
    )
    assert_valid_ews(updated)
    moved = call(
        lab,
        f"<m:MoveFolder><m:ToFolderId>{distinguished('msgfolderroot')}</m:ToFolderId>"
        f"<m:FolderIds>{ident}</m:FolderIds></m:MoveFolder>",
    )
    assert_valid_ews(moved)
    deleted = call(
        lab,
        f'<m:DeleteFolder DeleteType="HardDelete"><m:FolderIds>{ident}</m:FolderIds></m:DeleteFolder>',
    )
    assert_valid_ews(deleted)
    assert b"NoError" in deleted


def test_response_shape_follows_the_requested_version(lab: LabServer) -> None:
    body = get_folder(distinguished("inbox"))
    old = call(lab, body, version="Exchange2010_SP2")
    new = call(lab, body, version="Exchange2016")
    assert b"<t:DistinguishedFolderId>inbox</t:DistinguishedFolderId>" not in old
    assert b"<t:DistinguishedFolderId>inbox</t:DistinguishedFolderId>" in new


def test_the_validator_rejects_a_response_out_of_schema_order(lab: LabServer) -> None:
    good = call(lab, get_folder(distinguished("inbox")))
    # DisplayName before FolderId breaks BaseFolderType's sequence.
    name = re.search(rb"<t:DisplayName>[^<]*</t:DisplayName>", good)
    assert name is not None
    bad = good.replace(name.group(0), b"").replace(b"<t:Folder>", b"<t:Folder>" + name.group(0))
    with pytest.raises(AssertionError, match="does not validate"):
        assert_valid_ews(bad)
