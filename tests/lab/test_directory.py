"""Room finder, distribution lists and mail tips over HTTP with exchangelib; raw answers
checked against the Exchange schemas."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from exchangelib import EWSDateTime, EWSTimeZone
from exchangelib.errors import ErrorNameResolutionNoResults

from exlab import Lab
from exlab.demo import (
    ASSISTENZ,
    CHEF,
    RAEUME,
    SACHBEARBEITUNG,
    SITZUNGSSAAL,
    VERWALTUNGSVORSTAND,
)
from exlab.ews import soap
from tests.lab.conftest import LabServer
from tests.lab.items_soap import demo_lab, envelope
from tests.lab.schema import assert_valid_ews


@pytest.fixture(scope="module")
def memory_lab() -> Iterator[Lab]:
    yield from demo_lab()


def test_the_room_finder_lists_room_lists_then_rooms(lab: LabServer) -> None:
    protocol = lab.account("assistenz").protocol
    [room_list] = protocol.get_roomlists()
    assert room_list.email_address == RAEUME and room_list.name == "Räume Kreishaus"
    [room] = protocol.get_rooms(RAEUME)
    assert room.email_address == SITZUNGSSAAL and room.name == "Sitzungssaal 1"


def test_a_room_is_a_mailbox_whose_calendar_answers_free_busy(lab: LabServer) -> None:
    account = lab.account("assistenz")
    tz = EWSTimeZone("Europe/Berlin")
    start = EWSDateTime.now(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    [(room_view)] = list(
        account.protocol.get_free_busy_info(
            accounts=[(lab.account("assistenz", "sitzungssaal"), "Required", False)],
            start=start,
            end=start + timedelta(days=7),
        )
    )
    subjects = {event.details.subject for event in room_view.calendar_events or []}
    assert {"Personalversammlung", "Bürgersprechstunde"} <= subjects


def test_an_unknown_room_list_has_no_rooms(lab: LabServer) -> None:
    with pytest.raises(ErrorNameResolutionNoResults):
        list(lab.account("assistenz").protocol.get_rooms("niemand@musterstadt.example"))


def test_expand_dl_lists_the_members(lab: LabServer) -> None:
    members = lab.account("sachbearbeitung").protocol.expand_dl(VERWALTUNGSVORSTAND)
    assert {m.email_address for m in members} == {CHEF, ASSISTENZ, SACHBEARBEITUNG}
    assert {m.mailbox_type for m in members} == {"Mailbox"}
    with pytest.raises(ErrorNameResolutionNoResults):
        lab.account("sachbearbeitung").protocol.expand_dl("chef@musterstadt.example")


@pytest.mark.parametrize(
    "body",
    [
        "<m:GetRoomLists/>",
        f"<m:GetRooms><m:RoomList><t:EmailAddress>{RAEUME}</t:EmailAddress></m:RoomList>"
        "</m:GetRooms>",
        f"<m:ExpandDL><m:Mailbox><t:EmailAddress>{VERWALTUNGSVORSTAND}</t:EmailAddress>"
        "</m:Mailbox></m:ExpandDL>",
        f"<m:GetMailTips><m:SendingAs><t:EmailAddress>{ASSISTENZ}</t:EmailAddress></m:SendingAs>"
        f"<m:Recipients><t:Mailbox><t:EmailAddress>{VERWALTUNGSVORSTAND}</t:EmailAddress>"
        "</t:Mailbox><t:Mailbox><t:EmailAddress>wer@musterstadt.example</t:EmailAddress>"
        "</t:Mailbox></m:Recipients><m:MailTipsRequested>All</m:MailTipsRequested>"
        "</m:GetMailTips>",
    ],
)
def test_directory_answers_are_schema_valid(memory_lab: Lab, body: str) -> None:
    result = soap.handle(memory_lab, ASSISTENZ, envelope(body))
    assert result.status == 200, result.body[:300]
    assert b'ResponseClass="Success"' in result.body
    assert_valid_ews(result.body)


def test_mail_tips_count_group_members_and_flag_unknown_internal_recipients(
    memory_lab: Lab,
) -> None:
    import xml.etree.ElementTree as ET

    from tests.lab.items_soap import T

    body = (
        f"<m:GetMailTips><m:SendingAs><t:EmailAddress>{ASSISTENZ}</t:EmailAddress></m:SendingAs>"
        f"<m:Recipients><t:Mailbox><t:EmailAddress>{VERWALTUNGSVORSTAND}</t:EmailAddress>"
        "</t:Mailbox><t:Mailbox><t:EmailAddress>wer@musterstadt.example</t:EmailAddress>"
        "</t:Mailbox></m:Recipients></m:GetMailTips>"
    )
    root = ET.fromstring(soap.handle(memory_lab, ASSISTENZ, envelope(body)).body)
    group, unknown = list(root.iter(f"{{{soap.M_NS}}}MailTips"))
    assert group.findtext(f"{T}TotalMemberCount") == "3"
    assert group.findtext(f"{T}InvalidRecipient") == "false"
    assert unknown.findtext(f"{T}InvalidRecipient") == "true"
