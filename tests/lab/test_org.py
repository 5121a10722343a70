"""Organisation operations over HTTP with the unmodified exchangelib."""

from __future__ import annotations

import pytest
from exchangelib.errors import ErrorAccessDenied, ErrorNameResolutionNoResults
from exchangelib.properties import EWS_ID, HEX_ENTRY_ID, AlternateId

from exlab.demo import ASSISTENZ, CHEF
from tests.lab.conftest import LabServer


def test_version_is_detected_from_the_convert_id_probe(lab: LabServer) -> None:
    account = lab.account("chef", autodetect=True)
    build = account.version.build
    assert (build.major_version, build.minor_version) == (15, 1)
    assert build.major_build > 0
    assert account.version.api_version == "Exchange2016"
    assert account.inbox.name == "Posteingang"


def test_resolve_names_finds_staff_by_surname_address_and_prefix(lab: LabServer) -> None:
    protocol = lab.account("assistenz").protocol
    [weber] = protocol.resolve_names(["Weber"])
    assert weber.email_address == ASSISTENZ and weber.name == "Tom Weber"
    [(mailbox, contact)] = protocol.resolve_names([f"SMTP:{CHEF}"], return_full_contact_data=True)
    assert mailbox.email_address == CHEF
    assert contact.display_name == "Dr. Anna Berg"
    both = protocol.resolve_names(["leit", "post"])
    assert {m.email_address for m in both} == {
        "leitstelle@musterstadt.example",
        "poststelle@musterstadt.example",
    }


def test_resolve_names_reports_ambiguity_and_no_match(lab: LabServer) -> None:
    protocol = lab.account("assistenz").protocol
    several = protocol.resolve_names(["s"])
    assert len(several) >= 2  # sachbearbeitung, sitzungssaal (a warning, all results)
    [nothing] = protocol.resolve_names(["Niemand Unbekannt"])
    assert isinstance(nothing, ErrorNameResolutionNoResults)


def test_convert_id_round_trips_between_formats(lab: LabServer) -> None:
    account = lab.account("chef")
    inbox_id = account.inbox.id
    [hex_id] = account.protocol.convert_ids(
        [AlternateId(id=inbox_id, format=EWS_ID, mailbox=CHEF)], destination_format=HEX_ENTRY_ID
    )
    assert hex_id.format == HEX_ENTRY_ID and hex_id.id != inbox_id
    [back] = account.protocol.convert_ids(
        [AlternateId(id=hex_id.id, format=HEX_ENTRY_ID, mailbox=CHEF)], destination_format=EWS_ID
    )
    assert back.id == inbox_id


def test_get_delegate_lists_the_assistant_with_folder_levels(lab: LabServer) -> None:
    for user in ("chef", "assistenz"):
        [delegate] = lab.account(user, "chef").delegates
        assert delegate.user_id.primary_smtp_address == ASSISTENZ
        levels = delegate.delegate_permissions
        assert levels.calendar_folder_permission_level == "Editor"
        assert levels.inbox_folder_permission_level == "Editor"
        assert levels.tasks_folder_permission_level == "Editor"
        assert levels.contacts_folder_permission_level == "Reviewer"
        assert levels.notes_folder_permission_level == "None"
        assert delegate.receive_copies_of_meeting_messages is True
        assert delegate.view_private_items is False


def test_get_delegate_is_denied_to_a_stranger(lab: LabServer) -> None:
    with pytest.raises(ErrorAccessDenied):
        _ = lab.account("sachbearbeitung", "chef").delegates


def test_server_time_zones_include_central_europe(lab: LabServer) -> None:
    protocol = lab.account("chef").protocol
    zones = {z.id: z for z in protocol.get_timezones(return_full_timezone_data=True)}
    berlin = zones["W. Europe Standard Time"]
    assert "Berlin" in berlin.name
    assert {p.name for p in berlin.periods} == {"Standard", "Daylight"}
    assert "UTC" in zones


def test_owa_user_options_carry_the_time_zone(lab: LabServer) -> None:
    account = lab.account("chef")
    config = account.root.get_user_configuration(name="OWA.UserOptions")
    assert config.dictionary["timezone"] == "W. Europe Standard Time"
    delegate_root = lab.account("assistenz", "chef").root
    with pytest.raises(ErrorAccessDenied):
        delegate_root.get_user_configuration(name="OWA.UserOptions")


def test_out_of_office_settings_for_the_owner_only(lab: LabServer) -> None:
    settings = lab.account("chef").oof_settings
    assert settings.state == "Disabled"
    with pytest.raises(ErrorAccessDenied):
        _ = lab.account("assistenz", "chef").oof_settings
