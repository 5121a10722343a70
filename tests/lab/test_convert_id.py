"""ConvertId reads the mailbox from the id itself, as Exchange does (exchangelib over HTTP)."""

from __future__ import annotations

from exchangelib.properties import EWS_ID, HEX_ENTRY_ID, AlternateId

from exlab.demo import CHEF
from tests.lab.conftest import LabServer

PLACEHOLDER = "placeholder@nowhere.example"


def test_the_request_mailbox_is_a_placeholder_and_the_answer_names_the_owner(
    lab: LabServer,
) -> None:
    account = lab.account("assistenz", "chef")
    [converted] = account.protocol.convert_ids(
        [AlternateId(id=account.inbox.id, format=EWS_ID, mailbox=PLACEHOLDER)],
        destination_format=HEX_ENTRY_ID,
    )
    assert isinstance(converted, AlternateId), converted
    assert converted.mailbox == CHEF
    [back] = account.protocol.convert_ids(
        [AlternateId(id=converted.id, format=HEX_ENTRY_ID, mailbox=PLACEHOLDER)],
        destination_format=EWS_ID,
    )
    assert back.id == account.inbox.id and back.mailbox == CHEF


def test_an_item_id_converts_under_its_own_mailbox(lab: LabServer) -> None:
    account = lab.account("chef")
    item = next(iter(account.inbox.all().only("id")[:1]))
    own = lab.account("assistenz")
    [converted] = own.protocol.convert_ids(
        [AlternateId(id=item.id, format=EWS_ID, mailbox=own.primary_smtp_address)],
        destination_format=HEX_ENTRY_ID,
    )
    assert isinstance(converted, AlternateId), converted
    assert converted.mailbox == CHEF
