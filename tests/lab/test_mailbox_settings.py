"""Automatic replies and user configurations over HTTP with exchangelib, and the raw SOAP
answers checked against the Exchange schemas."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from exchangelib import OofSettings
from exchangelib.errors import ErrorAccessDenied, ErrorItemNotFound

from exlab import Lab
from exlab.demo import CHEF, POSTSTELLE
from tests.lab.conftest import LabServer
from tests.lab.items_soap import M, T, call, codes, demo_lab


@pytest.fixture(scope="module")
def memory_lab() -> Iterator[Lab]:
    yield from demo_lab()


def test_the_owner_sets_scheduled_automatic_replies_and_reads_them_back(lab: LabServer) -> None:
    account = lab.account("chef")
    assert account.oof_settings.state == OofSettings.DISABLED
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    account.oof_settings = OofSettings(
        state=OofSettings.SCHEDULED,
        external_audience="Known",
        start=start,
        end=start + timedelta(days=3),
        internal_reply="Bis Donnerstag im Urlaub; Vertretung: Tom Weber.",
        external_reply="Ich bin bis Donnerstag nicht im Haus.",
    )
    back = account.oof_settings
    assert back.state == OofSettings.SCHEDULED and back.external_audience == "Known"
    assert back.start == start and back.end == start + timedelta(days=3)
    assert back.internal_reply == "Bis Donnerstag im Urlaub; Vertretung: Tom Weber."
    tip = account.mail_tips
    assert tip.out_of_office is not None
    assert tip.out_of_office.reply_body == "Bis Donnerstag im Urlaub; Vertretung: Tom Weber."


def test_a_delegate_may_not_change_the_bosss_automatic_replies(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    with pytest.raises(ErrorAccessDenied):
        account.oof_settings = OofSettings(state=OofSettings.DISABLED)


def test_full_access_manages_a_shared_mailboxs_automatic_replies(lab: LabServer) -> None:
    account = lab.account("sachbearbeitung", "poststelle")
    account.oof_settings = OofSettings(
        state=OofSettings.ENABLED, internal_reply="Heute geschlossen.", external_reply="Zu."
    )
    assert lab.account("assistenz", "poststelle").oof_settings.state == OofSettings.ENABLED
    assert POSTSTELLE.startswith("poststelle")


def test_user_configurations_are_created_read_updated_and_deleted(lab: LabServer) -> None:
    account = lab.account("chef")
    folder = account.calendar
    folder.create_user_configuration(
        name="Lab.Probe", dictionary={"Farbe": "blau", "Anzahl": 3}, xml_data=b"<a>1</a>"
    )
    got = folder.get_user_configuration(name="Lab.Probe")
    assert got.dictionary == {"Farbe": "blau", "Anzahl": 3}
    assert got.xml_data == b"<a>1</a>" and got.id
    folder.update_user_configuration(name="Lab.Probe", binary_data=b"\x00\x01")
    again = folder.get_user_configuration(name="Lab.Probe")
    assert again.binary_data == b"\x00\x01" and again.xml_data == b"<a>1</a>"
    assert again.dictionary == {"Farbe": "blau", "Anzahl": 3}
    folder.delete_user_configuration(name="Lab.Probe")
    with pytest.raises(ErrorItemNotFound):
        folder.get_user_configuration(name="Lab.Probe")


def test_a_delegate_cannot_write_the_bosss_configurations(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    with pytest.raises(ErrorAccessDenied):
        account.calendar.create_user_configuration(name="Lab.Probe", dictionary={"a": "b"})


def test_oof_and_configuration_answers_are_schema_valid(memory_lab: Lab) -> None:
    mailbox = f"<t:Mailbox><t:Address>{CHEF}</t:Address></t:Mailbox>"
    set_body = (
        f"<m:SetUserOofSettingsRequest>{mailbox}<t:UserOofSettings>"
        "<t:OofState>Enabled</t:OofState><t:ExternalAudience>All</t:ExternalAudience>"
        "<t:InternalReply><t:Message>Weg</t:Message></t:InternalReply>"
        "<t:ExternalReply><t:Message>Away</t:Message></t:ExternalReply>"
        "</t:UserOofSettings></m:SetUserOofSettingsRequest>"
    )
    from exlab.ews import soap
    from tests.lab.items_soap import envelope
    from tests.lab.schema import assert_valid_ews

    for body in (
        set_body,
        f"<m:GetUserOofSettingsRequest>{mailbox}</m:GetUserOofSettingsRequest>",
    ):
        result = soap.handle(memory_lab, CHEF, envelope(body))
        assert result.status == 200 and b'ResponseClass="Success"' in result.body
        assert_valid_ews(result.body)
    name = '<t:DistinguishedFolderId Id="calendar"/>'
    created = call(
        memory_lab,
        CHEF,
        f'<m:CreateUserConfiguration><m:UserConfiguration><t:UserConfigurationName Name="X.Y">'
        f"{name}</t:UserConfigurationName><t:XmlData>PGEvPg==</t:XmlData></m:UserConfiguration>"
        "</m:CreateUserConfiguration>",
    )
    assert codes(created) == ["NoError"]
    got = call(
        memory_lab,
        CHEF,
        f'<m:GetUserConfiguration><m:UserConfigurationName Name="X.Y">{name}'
        "</m:UserConfigurationName><m:UserConfigurationProperties>All"
        "</m:UserConfigurationProperties></m:GetUserConfiguration>",
    )
    assert got.findtext(f".//{M}UserConfiguration/{T}XmlData") == "PGEvPg=="
