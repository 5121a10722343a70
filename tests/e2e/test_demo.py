"""`medbridge demo`'s pieces: the lab in a thread and the assistant's profile against it."""

from __future__ import annotations

import socket
from pathlib import Path

from bridge.demo import DEMO_MAILBOXES, LabThread, demo_profile
from med import DelegateSession
from med.lab.demo import DEMO_PASSWORD


async def test_demo_assistant_sees_chefs_inbox_and_the_lab_stops_on_exit(tmp_path: Path) -> None:
    with LabThread(tmp_path / "demo.sqlite") as lab:
        port = lab.port
        session = DelegateSession.open(demo_profile(lab.ews_url), password=DEMO_PASSWORD)
        try:
            inbox = await session.default_folder("chef@musterstadt.example", "inbox")
            page = await session.items(inbox)
            assert len(page.items) > 0
            owners = {box.address for box in await session.mailboxes()}
            assert set(DEMO_MAILBOXES) <= owners
        finally:
            await session.close()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the demo lab still listens after exit"


def test_demo_store_keeps_its_data_across_runs(tmp_path: Path) -> None:
    store = tmp_path / "demo.sqlite"
    with LabThread(store) as first:
        users = first.lab.users()
    with LabThread(store) as second:
        assert second.lab.users() == users
