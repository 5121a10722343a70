"""Contact indexed fields round-trip as on Exchange: phone numbers, e-mail, IM and postal
addresses created, changed entry by entry and removed with exchangelib over HTTP."""

from __future__ import annotations

from exchangelib import Contact
from exchangelib.indexed_properties import EmailAddress, ImAddress, PhoneNumber, PhysicalAddress

from tests.lab.conftest import LabServer


def _by_label(entries: object) -> dict[str, object]:
    assert isinstance(entries, list)
    return {e.label: e for e in entries}


def test_contact_indexed_fields_round_trip(lab: LabServer) -> None:
    account = lab.account("chef")
    contact = Contact(
        account=account,
        folder=account.contacts,
        given_name="Jana",
        surname="Krüger",
        display_name="Jana Krüger",
        phone_numbers=[
            PhoneNumber(label="BusinessPhone", phone_number="+49 30 1234-0"),
            PhoneNumber(label="MobilePhone", phone_number="+49 170 555 01 02"),
        ],
        email_addresses=[
            EmailAddress(label="EmailAddress1", email="j.krueger@beispiel.example"),
            EmailAddress(label="EmailAddress2", email="jana@privat.example"),
        ],
        im_addresses=[ImAddress(label="ImAddress1", im_address="sip:j.krueger@beispiel.example")],
        physical_addresses=[
            PhysicalAddress(
                label="Business",
                street="Hauptstraße 1",
                city="Musterstadt",
                state="NRW",
                country="Deutschland",
                zipcode="12345",
            ),
            PhysicalAddress(label="Home", street="Gartenweg 7", city="Musterdorf"),
        ],
    )
    contact.save()
    [stored] = account.fetch(ids=[(contact.id, contact.changekey)])
    phones = _by_label(stored.phone_numbers)
    assert phones["BusinessPhone"].phone_number == "+49 30 1234-0"
    assert phones["MobilePhone"].phone_number == "+49 170 555 01 02"
    mails = _by_label(stored.email_addresses)
    assert mails["EmailAddress2"].email == "jana@privat.example"
    assert _by_label(stored.im_addresses)["ImAddress1"].im_address == (
        "sip:j.krueger@beispiel.example"
    )
    business = _by_label(stored.physical_addresses)["Business"]
    assert (business.street, business.city, business.state, business.country, business.zipcode) == (
        "Hauptstraße 1",
        "Musterstadt",
        "NRW",
        "Deutschland",
        "12345",
    )

    # Changed entry by entry: one number changes, one goes; the business city changes only.
    stored.phone_numbers = [PhoneNumber(label="BusinessPhone", phone_number="+49 30 9876-0")]
    stored.physical_addresses = [
        PhysicalAddress(
            label="Business",
            street="Hauptstraße 1",
            city="Neustadt",
            state="NRW",
            country="Deutschland",
            zipcode="12345",
        )
    ]
    stored.im_addresses = None
    stored.save(update_fields=["phone_numbers", "physical_addresses", "im_addresses"])
    [changed] = account.fetch(ids=[(stored.id, stored.changekey)])
    assert {p.label: p.phone_number for p in changed.phone_numbers} == {
        "BusinessPhone": "+49 30 9876-0"
    }
    addresses = _by_label(changed.physical_addresses)
    assert set(addresses) == {"Business"}
    assert addresses["Business"].street == "Hauptstraße 1"
    assert addresses["Business"].city == "Neustadt"
    assert changed.im_addresses is None
    assert len(changed.email_addresses) == 2
