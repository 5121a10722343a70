"""The demo organisation: who exists, who may do what."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from exlab import Lab
from exlab.core import items as store_items
from exlab.core.access import effective_rights
from exlab.core.recurrence import Recurrence, occurrence_dates
from exlab.core.store import PUBLIC, Folder
from exlab.demo import (
    ASSISTENZ,
    CHEF,
    DEMO_PASSWORD,
    LEITSTELLE,
    POSTSTELLE,
    SACHBEARBEITUNG,
    TEAMKALENDER,
    open_demo,
)

BERLIN = ZoneInfo("Europe/Berlin")


def _folder(lab: Lab, owner: str, name: str) -> Folder:
    found = lab.store.distinguished_folder(owner, name)
    assert found is not None
    return found


def test_demo_users_and_logins() -> None:
    lab = open_demo()
    users = {u.address: u for u in lab.users()}
    assert users[CHEF].display_name == "Dr. Anna Berg" and users[CHEF].has_login
    assert users[POSTSTELLE].kind == "shared" and not users[POSTSTELLE].has_login
    assert lab.check_password(ASSISTENZ, DEMO_PASSWORD)
    assert PUBLIC not in users


def test_demo_rights_match_the_documented_organisation() -> None:
    lab = open_demo()
    store = lab.store
    inbox = _folder(lab, CHEF, "inbox")
    contacts = _folder(lab, CHEF, "contacts")
    assert effective_rights(store, ASSISTENZ, inbox).edit == "all"
    assert not effective_rights(store, ASSISTENZ, inbox).view_private
    assert effective_rights(store, ASSISTENZ, contacts).edit == "none"
    assert effective_rights(store, ASSISTENZ, contacts).read == "full"
    assert not effective_rights(store, SACHBEARBEITUNG, inbox).folder_visible
    vorgaenge = next(f for f in store.children(inbox.id) if f.display_name == "Vorgänge")
    assert effective_rights(store, ASSISTENZ, vorgaenge).edit == "all"
    assert effective_rights(store, SACHBEARBEITUNG, _folder(lab, POSTSTELLE, "inbox")).edit == "all"
    team = _folder(lab, TEAMKALENDER, "calendar")
    assert effective_rights(store, SACHBEARBEITUNG, team).create_items
    assert effective_rights(store, SACHBEARBEITUNG, team).edit == "own"


def test_demo_public_folders_have_per_folder_permissions() -> None:
    lab = open_demo()
    store = lab.store
    root = lab.public_root()
    tops = {f.display_name: f for f in store.children(root.id)}
    assert {f.folder_class for f in tops.values()} == {
        "IPF.Note",
        "IPF.Appointment",
        "IPF.Contact",
        "IPF.Task",
        "IPF.StickyNote",
    }
    verwaltung = tops["Verwaltung"]
    assert effective_rights(store, ASSISTENZ, verwaltung).edit == "all"
    assert effective_rights(store, SACHBEARBEITUNG, verwaltung).edit == "none"
    assert effective_rights(store, SACHBEARBEITUNG, verwaltung).read == "full"
    bauhof_sub = store.children(tops["Aufgaben Bauhof"].id)[0]
    assert effective_rights(store, SACHBEARBEITUNG, bauhof_sub).edit == "own"


def test_demo_is_seeded_once_per_store(tmp_path: Path) -> None:
    path = tmp_path / "lab.sqlite"
    open_demo(path).close()
    lab = open_demo(path)
    assert len([u for u in lab.users() if u.address == CHEF]) == 1


def test_demo_flag_leaves_another_organisation_alone(tmp_path: Path) -> None:
    path = tmp_path / "own.sqlite"
    own = Lab.open(path)
    own.add_mailbox("boss@elsewhere.example", "Boss", password="pw")
    own.close()
    lab = open_demo(path)
    assert [u.address for u in lab.users()] == ["boss@elsewhere.example"]


def _seeded(today: datetime) -> Lab:
    from exlab.demo import seed

    lab = Lab.open()
    lab.clock = lambda: today
    seed(lab)
    return lab


# A Wednesday, a Saturday and a Sunday: whatever day the lab is started on.
SEED_DAYS = [datetime(2026, 11, 25, 9, tzinfo=UTC), datetime(2026, 11, 28, 9, tzinfo=UTC)]
SEED_DAYS.append(datetime(2027, 3, 7, 9, tzinfo=UTC))


@pytest.mark.parametrize("today", SEED_DAYS, ids=lambda d: d.strftime("%a"))
def test_demo_business_appointments_fall_on_working_days(today: datetime) -> None:
    lab = _seeded(today)
    weekend: list[str] = []
    for owner in (CHEF, LEITSTELLE, TEAMKALENDER, SACHBEARBEITUNG):
        for item in store_items.items_in(lab.store, _folder(lab, owner, "calendar").id):
            props = item.props
            if props.get("item:Sensitivity") == "Private" or not props.get("calendar:Start"):
                continue
            start = datetime.fromisoformat(props["calendar:Start"]).astimezone(BERLIN)
            days = [start.date()]
            if "calendar:Recurrence" in props:
                rec = Recurrence.from_json(props["calendar:Recurrence"])
                days = [
                    d
                    for _, d in occurrence_dates(
                        rec, until=today.date().replace(year=today.year + 2)
                    )
                ]
                assert days[0] == start.date(), props["item:Subject"]  # master on 1st occurrence
            weekend += [f"{props['item:Subject']} {d}" for d in days if d.weekday() >= 5]
    assert weekend == []


def _chef_mail(lab: Lab) -> list[store_items.Item]:
    inbox = _folder(lab, CHEF, "inbox")
    folders = [inbox, *lab.store.children(inbox.id), _folder(lab, CHEF, "sentitems")]
    return [i for f in folders for i in store_items.items_in(lab.store, f.id)]


@pytest.mark.parametrize("today", SEED_DAYS, ids=lambda d: d.strftime("%a"))
def test_demo_mails_refer_to_plausible_dates(today: datetime) -> None:
    for item in _chef_mail(_seeded(today)):
        subject = item.props.get("item:Subject", "")
        received = item.props.get("item:DateTimeReceived") or item.props.get("item:DateTimeSent")
        if minutes := re.search(r"Dienstbesprechung vom (\d\d)\.(\d\d)\.(\d{4})", subject):
            day, month, year = (int(g) for g in minutes.groups())
            held = date(year, month, day)
            assert held <= datetime.fromisoformat(received).date(), subject
            assert held.weekday() < 5, subject
        if week := re.search(r"KW (\d+)", subject):
            assert 1 <= int(week.group(1)) <= 53, subject
        if report := re.search(r"Jahresbericht .* (\d{4})", subject):
            assert int(report.group(1)) < datetime.fromisoformat(received).year, subject


@pytest.mark.parametrize("hour", [4, 9])
def test_demo_mail_never_arrives_after_the_demo_starts(hour: int) -> None:
    """Started before seven (UTC), the demo once showed mail received later that morning."""
    started = datetime(2026, 12, 7, hour, 5, tzinfo=UTC)
    received = [
        datetime.fromisoformat(item.props["item:DateTimeReceived"])
        for item in _chef_mail(_seeded(started))
        if item.props.get("item:DateTimeReceived")
    ]
    assert received and max(received) <= started


def test_demo_bodies_vary_and_announced_attachments_are_there() -> None:
    lab = _seeded(SEED_DAYS[0])
    inbox = store_items.items_in(lab.store, _folder(lab, CHEF, "inbox").id)
    mails = [i for i in inbox if i.item_class == "IPM.Note"]
    bodies = {i.props["item:Body"]["text"] for i in mails}
    assert len(bodies) > len(mails) // 4
    for item in mails:
        text = item.props["item:Body"]["text"]
        if "anbei" in text or "attached" in text:
            assert store_items.attachments_of(lab.store, item.id), item.props["item:Subject"]


def test_demo_meeting_request_says_when_and_where() -> None:
    lab = _seeded(SEED_DAYS[1])
    inbox = store_items.items_in(lab.store, _folder(lab, CHEF, "inbox").id)
    [request] = [i for i in inbox if i.item_class == "IPM.Schedule.Meeting.Request"]
    text = request.props["item:Body"]["text"]
    assert "Wann:" in text and "14:00" in text and "Raum 112" in text


def test_demo_items_are_the_same_for_the_same_day() -> None:
    def snapshot(lab: Lab) -> list[tuple[str, str]]:
        return sorted(
            (i.props.get("item:Subject", ""), json.dumps(i.props.get("item:Body"), sort_keys=True))
            for i in _chef_mail(lab)
        )

    assert snapshot(_seeded(SEED_DAYS[0])) == snapshot(_seeded(SEED_DAYS[0]))
