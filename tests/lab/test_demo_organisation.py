"""The demo organisation as its users meet it over EWS: shared mailboxes set up with FullAccess
and SendAs, a delegate with folder grants only, and a calendar busy every week."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest
from exchangelib import EWSDateTime, EWSTimeZone, Message
from exchangelib.errors import ErrorAccessDenied

from exlab.demo import ASSISTENZ, CHEF, LEITSTELLE, POSTSTELLE, SACHBEARBEITUNG
from tests.lab.conftest import LabServer


@pytest.mark.parametrize("functional", ["poststelle", "leitstelle"])
@pytest.mark.parametrize("staff", ["assistenz", "sachbearbeitung"])
def test_the_team_has_full_access_to_every_folder_of_a_functional_mailbox(
    lab: LabServer, functional: str, staff: str
) -> None:
    account = lab.account(staff, functional)
    for folder in (account.sent, account.trash, account.contacts, account.inbox, account.calendar):
        folder.refresh()
        rights = folder.effective_rights
        assert rights is not None and rights.read and rights.modify, folder.name
        list(folder.all().only("subject")[:3])
    draft = Message(account=account, folder=account.sent, subject="Ablage", body="x")
    draft.save()
    assert account.sent.get(id=draft.id).subject == "Ablage"


def test_the_team_sends_as_the_functional_mailbox_not_on_its_behalf(lab: LabServer) -> None:
    account = lab.account("sachbearbeitung", "poststelle")
    Message(
        account=account,
        folder=account.sent,
        subject="Eingangsbestätigung Az. 17",
        body="Ihr Schreiben ist eingegangen.",
        to_recipients=[CHEF],
    ).send_and_save()
    got = lab.account("chef").inbox.get(subject="Eingangsbestätigung Az. 17")
    assert got.author.email_address == POSTSTELLE
    assert got.sender.email_address == POSTSTELLE
    kept = account.sent.get(subject="Eingangsbestätigung Az. 17")
    assert kept.author.email_address == POSTSTELLE


def test_the_bosss_delegate_keeps_folder_grants_only(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    with pytest.raises(ErrorAccessDenied):
        list(account.sent.all().only("subject")[:1])
    Message(
        account=account,
        subject="Im Auftrag",
        author=CHEF,
        body="x",
        to_recipients=[SACHBEARBEITUNG],
    ).send(save_copy=False)
    got = lab.account("sachbearbeitung").inbox.get(subject="Im Auftrag")
    assert got.author.email_address == CHEF
    assert got.sender.email_address == ASSISTENZ


def test_someone_outside_the_team_has_no_access_to_a_functional_mailbox(lab: LabServer) -> None:
    account = lab.account("chef", "leitstelle")
    with pytest.raises(ErrorAccessDenied):
        list(account.inbox.all().only("subject")[:1])
    assert LEITSTELLE != CHEF


def test_every_week_shows_one_series_at_least_twice(lab: LabServer) -> None:
    account = lab.account("assistenz", "chef")
    tz = EWSTimeZone("Europe/Berlin")
    today = date.today()
    monday = today - timedelta(days=today.weekday())
    for week in range(-2, 6):
        start = monday + timedelta(weeks=week)
        view = account.calendar.view(
            start=_at(tz, start),
            end=_at(tz, start + timedelta(days=7)),
        ).only("subject", "type")
        per_series = Counter(i.subject for i in view if i.type in ("Occurrence", "Exception"))
        assert per_series and max(per_series.values()) >= 2, (start, per_series)


def _at(tz: EWSTimeZone, day: date) -> EWSDateTime:
    return EWSDateTime(day.year, day.month, day.day, tzinfo=tz)
