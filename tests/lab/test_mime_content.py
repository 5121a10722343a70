"""MimeContent as Exchange gives it: iCalendar for calendar items, RFC 5322 for messages."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes, policy

from exchangelib import CalendarItem, EWSDateTime, EWSTimeZone, Message
from icalendar import Calendar

from tests.lab.conftest import LabServer


def test_a_calendar_items_mime_content_is_the_bare_icalendar_with_its_zone(
    lab: LabServer,
) -> None:
    account = lab.account("chef")
    berlin = EWSTimeZone("Europe/Berlin")
    start = EWSDateTime(2027, 1, 14, 13, 37, tzinfo=berlin)
    item = CalendarItem(
        account=account,
        folder=account.calendar,
        subject="MIME-Probe",
        start=start,
        end=start + timedelta(hours=1),
    )
    item.save()
    [fetched] = account.fetch(ids=[item], only_fields=["mime_content"])
    raw = fetched.mime_content
    assert raw.startswith(b"BEGIN:VCALENDAR")
    calendar = Calendar.from_ical(raw)
    [zone] = calendar.walk("VTIMEZONE")
    assert str(zone["TZID"]) == "W. Europe Standard Time"
    rules = {sub.name: sub for sub in zone.subcomponents}
    assert rules["DAYLIGHT"]["RRULE"]["BYMONTH"] == [3]
    assert rules["DAYLIGHT"]["RRULE"]["BYDAY"] == ["-1SU"]
    assert rules["STANDARD"]["RRULE"]["BYMONTH"] == [10]
    assert rules["STANDARD"]["TZOFFSETTO"].td == timedelta(hours=1)
    [event] = calendar.walk("VEVENT")
    assert str(event["SUMMARY"]) == "MIME-Probe"
    assert event["DTSTART"].params["TZID"] == "W. Europe Standard Time"
    assert event["DTSTART"].to_ical() == b"20270114T133700"


def test_a_messages_mime_content_stays_an_internet_message(lab: LabServer) -> None:
    account = lab.account("chef")
    message = next(i for i in account.inbox.all().only("subject", "mime_content")[:5] if i.subject)
    assert isinstance(message, Message)
    parsed = message_from_bytes(message.mime_content, policy=policy.default)
    assert parsed["Subject"] == message.subject
    assert not message.mime_content.startswith(b"BEGIN:VCALENDAR")
