"""Calendar times as Exchange reads and writes them, over HTTP (raw SOAP and exchangelib).

Local times sent with StartTimeZone/EndTimeZone (MeetingTimeZone for Exchange 2007, or the
request's TimeZoneContext) are read in that zone; all-day events span whole days in their zone;
a recurrence's StartDate/EndDate carry the zone's offset.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date

import httpx
from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone
from exchangelib.recurrence import EndDatePattern, Recurrence, WeeklyPattern

from tests.lab.conftest import LabServer
from tests.lab.schema import assert_valid_ews

M = "{http://schemas.microsoft.com/exchange/services/2006/messages}"
T = "{http://schemas.microsoft.com/exchange/services/2006/types}"
BERLIN = EWSTimeZone("Europe/Berlin")


def answer(response: httpx.Response) -> ET.Element:
    assert response.status_code == 200, response.text[:500]
    assert_valid_ews(response.content)
    found = ET.fromstring(response.content).find(f".//{M}ResponseMessages")
    assert found is not None
    assert found[0].findtext(f"{M}ResponseCode") == "NoError", response.text[:800]
    return found


def create(
    lab: LabServer, item_xml: str, *, version: str = "Exchange2016", header: str = ""
) -> str:
    messages = answer(
        lab.soap(
            "chef",
            '<m:CreateItem SendMeetingInvitations="SendToNone"><m:SavedItemFolderId>'
            '<t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId>'
            f"<m:Items>{item_xml}</m:Items></m:CreateItem>",
            version=version,
            header_xml=header,
        )
    )
    item_id = messages[0].find(f"{M}Items/{T}CalendarItem/{T}ItemId")
    assert item_id is not None
    return str(item_id.get("Id"))


def stored(lab: LabServer, item_id: str, *fields: str) -> ET.Element:
    uris = "".join(f'<t:FieldURI FieldURI="{f}"/>' for f in fields)
    messages = answer(
        lab.soap(
            "chef",
            "<m:GetItem><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>"
            f"<t:AdditionalProperties>{uris}</t:AdditionalProperties></m:ItemShape>"
            f'<m:ItemIds><t:ItemId Id="{item_id}"/></m:ItemIds></m:GetItem>',
        )
    )
    item = messages[0].find(f"{M}Items/{T}CalendarItem")
    assert item is not None
    return item


def test_local_times_are_read_in_start_and_end_time_zones(lab: LabServer) -> None:
    item_id = create(
        lab,
        "<t:CalendarItem><t:Subject>Ortszeit</t:Subject>"
        "<t:Start>2026-12-04T13:37:00</t:Start><t:End>2026-12-04T09:00:00</t:End>"
        '<t:StartTimeZone Id="W. Europe Standard Time"/>'
        '<t:EndTimeZone Id="Eastern Standard Time"/></t:CalendarItem>',
    )
    item = stored(lab, item_id, "calendar:Start", "calendar:End")
    assert item.findtext(f"{T}Start") == "2026-12-04T12:37:00Z"  # 13:37 in Berlin
    assert item.findtext(f"{T}End") == "2026-12-04T14:00:00Z"  # 09:00 in New York


def test_an_exchange_2007_meeting_time_zone_reads_local_times(lab: LabServer) -> None:
    item_id = create(
        lab,
        "<t:CalendarItem><t:Subject>Pazifik</t:Subject>"
        "<t:Start>2027-01-15T09:00:00</t:Start><t:End>2027-01-15T10:00:00</t:End>"
        '<t:MeetingTimeZone TimeZoneName="Pacific Standard Time">'
        "<t:BaseOffset>PT8H</t:BaseOffset></t:MeetingTimeZone></t:CalendarItem>",
        version="Exchange2007_SP1",
    )
    item = stored(lab, item_id, "calendar:Start", "calendar:End")
    assert item.findtext(f"{T}Start") == "2027-01-15T17:00:00Z"
    assert item.findtext(f"{T}End") == "2027-01-15T18:00:00Z"


def test_the_time_zone_context_reads_local_times_without_item_zones(lab: LabServer) -> None:
    item_id = create(
        lab,
        "<t:CalendarItem><t:Subject>Kontext</t:Subject>"
        "<t:Start>2027-07-01T10:00:00</t:Start><t:End>2027-07-01T11:00:00</t:End>"
        "</t:CalendarItem>",
        header='<t:TimeZoneContext><t:TimeZoneDefinition Id="Tokyo Standard Time"/>'
        "</t:TimeZoneContext>",
    )
    item = stored(lab, item_id, "calendar:Start", "calendar:StartTimeZone")
    assert item.findtext(f"{T}Start") == "2027-07-01T01:00:00Z"
    zone = item.find(f"{T}StartTimeZone")
    assert zone is not None and zone.get("Id") == "Tokyo Standard Time"


def test_update_reads_a_local_start_in_the_items_zone(lab: LabServer) -> None:
    item_id = create(
        lab,
        "<t:CalendarItem><t:Subject>Verschoben</t:Subject>"
        "<t:Start>2026-12-04T09:00:00Z</t:Start><t:End>2026-12-04T10:00:00Z</t:End>"
        '<t:StartTimeZone Id="W. Europe Standard Time"/></t:CalendarItem>',
    )
    answer(
        lab.soap(
            "chef",
            '<m:UpdateItem ConflictResolution="AlwaysOverwrite" '
            'SendMeetingInvitationsOrCancellations="SendToNone"><m:ItemChanges><t:ItemChange>'
            f'<t:ItemId Id="{item_id}"/><t:Updates><t:SetItemField>'
            '<t:FieldURI FieldURI="calendar:Start"/><t:CalendarItem>'
            "<t:Start>2026-12-04T08:00:00</t:Start></t:CalendarItem></t:SetItemField>"
            "</t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>",
        )
    )
    item = stored(lab, item_id, "calendar:Start")
    assert item.findtext(f"{T}Start") == "2026-12-04T07:00:00Z"


def test_an_all_day_event_spans_whole_days_in_its_zone(lab: LabServer) -> None:
    item_id = create(
        lab,
        "<t:CalendarItem><t:Subject>Betriebsausflug</t:Subject>"
        "<t:Start>2027-06-10T13:00:00</t:Start><t:End>2027-06-11T15:30:00</t:End>"
        "<t:IsAllDayEvent>true</t:IsAllDayEvent>"
        '<t:StartTimeZone Id="W. Europe Standard Time"/></t:CalendarItem>',
    )
    item = stored(lab, item_id, "calendar:Start", "calendar:End")
    # Berlin summer time: local midnight is 22:00 UTC the day before.
    assert item.findtext(f"{T}Start") == "2027-06-09T22:00:00Z"
    assert item.findtext(f"{T}End") == "2027-06-11T22:00:00Z"
    account = lab.account("chef")
    [event] = account.fetch(ids=[(item_id, None)])
    assert (event.start, event.end) == (date(2027, 6, 10), date(2027, 6, 11))


def test_recurrence_dates_carry_the_zone_offset(lab: LabServer) -> None:
    account = lab.account("chef")
    start = EWSDateTime(2026, 12, 7, 9, 0, tzinfo=BERLIN)
    series = CalendarItem(
        account=account,
        folder=account.calendar,
        subject="Wochenrunde",
        start=start,
        end=start.replace(hour=10),
        recurrence=Recurrence(
            pattern=WeeklyPattern(interval=1, weekdays=[1]),
            boundary=EndDatePattern(start=date(2026, 12, 7), end=date(2027, 6, 28)),
        ),
    )
    series.save()
    item = stored(lab, series.id, "calendar:Recurrence")
    assert item.findtext(f".//{T}EndDateRecurrence/{T}StartDate") == "2026-12-07+01:00"
    assert item.findtext(f".//{T}EndDateRecurrence/{T}EndDate") == "2027-06-28+02:00"
    [again] = account.fetch(ids=[(series.id, series.changekey)])
    assert again.recurrence.boundary.start == date(2026, 12, 7)
    assert again.recurrence.boundary.end == date(2027, 6, 28)
