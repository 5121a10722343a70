"""FindPeople and GetPersona (Exchange 2013 operations, newer than the schemas at hand) over
HTTP with exchangelib: a contacts folder as personas, searched, paged and fetched."""

from __future__ import annotations

import pytest
from exchangelib.errors import ErrorAccessDenied

from tests.lab.conftest import LabServer


def test_find_people_lists_the_contacts_as_personas_sorted_by_name(lab: LabServer) -> None:
    account = lab.account("chef")
    people = list(account.contacts.people())
    contacts = [c for c in account.contacts.all() if c.display_name]
    assert len(people) == len(contacts) > 3
    names = [p.display_name for p in people]
    assert names == sorted(names, key=str.lower)
    hoffmann = next(p for p in people if p.display_name == "Dr. Jana Hoffmann")
    assert hoffmann.email_address.email_address == "j.hoffmann@klinikum-musterstadt.example"


def test_find_people_searches_names_and_addresses(lab: LabServer) -> None:
    account = lab.account("chef")
    found = list(account.contacts.people().filter("klinikum"))
    assert [p.display_name for p in found] == ["Dr. Jana Hoffmann"]


def test_get_persona_fetches_one_person_in_full(lab: LabServer) -> None:
    account = lab.account("chef")
    first = next(iter(account.contacts.people()))
    [persona] = list(account.fetch_personas([first]))
    assert persona.display_name == first.display_name
    assert persona.email_addresses and persona.email_addresses[0].email_address


def test_a_delegate_without_rights_finds_no_one(lab: LabServer) -> None:
    with pytest.raises(ErrorAccessDenied):
        list(lab.account("sachbearbeitung", "chef").contacts.people())
