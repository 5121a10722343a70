"""The morning day sheet of the notification bridge: configured by `[[day_sheet]]`, built from
the lab over EWS and recorded in the bridge's real outbox exactly once per day and recipient,
also across a restart; only for a mailbox whose lease the worker holds."""

from __future__ import annotations

import tomllib
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from bridge.notify.chat import KEY_STRENGTH
from bridge.notify.config import ConfigError, parse_config
from bridge.notify.daysheet import DaySheetJob
from bridge.notify.render import render
from bridge.notify.store import BridgeStore
from med import DelegateSession
from tests.e2e.backends.test_scheduling import BERLIN, DAY, at, busy
from tests.e2e.conftest import ASSISTENZ, CHEF, LabServer, backend_for
from tests.unit.test_bridge_config import BASE, RULE

SHEET = """
[[day_sheet]]
mailbox = "chef@musterstadt.example"
to = ["user:assistenz@musterstadt.example", "group:Vorzimmer"]
at = "07:00"
time_zone = "Europe/Berlin"
"""
OPS, MEM = KEY_STRENGTH["interactive"]


def parse(text: str):
    return parse_config(tomllib.loads(text), data_dir=Path("/data"), worker_id="w")


def test_day_sheet_settings_are_checked() -> None:
    [spec] = parse(BASE + RULE + SHEET).day_sheets
    assert spec.mailbox == CHEF and spec.at == time(7)
    assert spec.to == ("user:assistenz@musterstadt.example", "group:Vorzimmer")
    with pytest.raises(ConfigError, match="watched mailboxes"):
        parse(BASE + RULE + SHEET.replace("chef@", "niemand@"))
    with pytest.raises(ConfigError, match="time of day"):
        parse(BASE + RULE + SHEET.replace('"07:00"', '"sieben"'))
    with pytest.raises(ConfigError, match="recipient"):
        parse(BASE + RULE + SHEET.replace("group:Vorzimmer", "Vorzimmer"))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[BridgeStore]:
    opened = await BridgeStore.open(f"sqlite:///{tmp_path / 'bridge.db'}")
    await opened.unlock("keys passphrase", opslimit=OPS, memlimit=MEM)
    yield opened
    await opened.close()


async def test_sheet_is_recorded_once_per_day_and_recipient(
    lab: LabServer, store: BridgeStore, tmp_path: Path
) -> None:
    busy(lab.lab, CHEF, at(8), at(10), "Haushaltsklausur")
    [spec] = parse(BASE + RULE + SHEET).day_sheets
    session = DelegateSession(backend_for(lab, ASSISTENZ), mailboxes=(CHEF,))
    now = [at(6, 59)]
    woken: list[bool] = []
    held = {CHEF}

    async def session_for(mailbox: str) -> DelegateSession:
        return session

    def job() -> DaySheetJob:
        return DaySheetJob(
            [spec], store, session_for, lambda: held, lambda: woken.append(True), lambda: now[0]
        )

    try:
        first = job()
        assert await first.tick() == 0  # not yet seven
        now[0] = at(7, 5)
        held.clear()
        assert await first.tick() == 0  # another worker holds the mailbox
        held.add(CHEF)
        assert await first.tick() == 2 and woken == [True]
        assert await first.tick() == 0
        assert await job().tick() == 0  # a restarted worker adds nothing either
        rows = await store.due(None)
        assert sorted(r.route for r in rows) == ["group:Vorzimmer", f"user:{ASSISTENZ}"]
        text = render(rows[0].payload, rows[0].id)
        assert "Tagesübersicht Dr. Anna Berg" in text and "08:00–10:00 Haushaltsklausur" in text
        # The next day brings the next sheet.
        now[0] = at(7, 5) + timedelta(days=1)
        assert await job().tick() == 2
        saturday = datetime.combine(DAY + timedelta(days=3), time(9), BERLIN)
        now[0] = saturday
        assert await job().tick() == 0  # weekdays only
    finally:
        await session.close()
