"""`medbridge demo`'s pieces: the lab in a thread and the assistant's profile against it."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bridge.demo import DEMO_START_FOLDER, LabThread, demo_profile
from exlab.demo import DEMO_PASSWORD
from med import DelegateSession, MailboxKind


async def test_demo_assistant_sees_chefs_inbox_and_the_lab_stops_on_exit(tmp_path: Path) -> None:
    with LabThread(tmp_path / "demo.sqlite") as lab:
        port = lab.port
        session = DelegateSession.open(demo_profile(lab.ews_url), password=DEMO_PASSWORD)
        try:
            inbox = await session.default_folder("chef@musterstadt.example", "inbox")
            page = await session.items(inbox)
            assert len(page.items) > 0
            kinds = {box.address: box.kind for box in await session.mailboxes()}
            assert kinds["chef@musterstadt.example"] is MailboxKind.DELEGATED
            assert kinds["poststelle@musterstadt.example"] is MailboxKind.FUNCTIONAL
            assert kinds["leitstelle@musterstadt.example"] is MailboxKind.FUNCTIONAL
            assert kinds["teamkalender@musterstadt.example"] is MailboxKind.SHARED
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


# A traceback from a thread is what the user saw.
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
async def test_the_demo_messenger_starts_again_on_the_file_it_left(tmp_path: Path) -> None:
    """The second `make demo` found names the first run's server had sealed and could not
    read them without the server's key (a traceback before the TUI)."""
    from bridge.demo import MessengerThread
    from messenger.client import MessengerClient

    for _ in range(2):
        with MessengerThread(tmp_path / "messenger", fast_hashes=True) as chat:
            client = MessengerClient(chat.url)
            try:
                await client.login("assistenz@musterstadt.example", DEMO_PASSWORD)
                [entry] = await client.directory("chef@musterstadt.example")
                assert entry["email"] == "chef@musterstadt.example"
            finally:
                await client.aclose()


async def test_the_demo_tui_opens_on_the_bosss_inbox(tmp_path: Path) -> None:
    from tests.tui.conftest import settle
    from tui.app import make_app
    from tui.config import TuiConfig
    from tui.widgets.context_bar import ContextBar

    with LabThread(tmp_path / "demo.sqlite") as lab:
        session = DelegateSession.open(demo_profile(lab.ews_url), password=DEMO_PASSWORD)
        config = TuiConfig(drafts_dir=tmp_path / "drafts", animations=False)
        app = make_app(session, config, start_folder=DEMO_START_FOLDER)
        try:
            async with app.run_test(size=(150, 40)) as pilot:
                await settle(pilot)
                header = str(app.screen.query_one(ContextBar).render())
                assert "Dr. Anna Berg" in header
                assert "Posteingang" in header
        finally:
            await session.close()


async def test_demo_bridge_posts_a_new_mail_in_chefs_inbox_to_assistenz(tmp_path: Path) -> None:
    import uuid

    from bridge.demo import BridgeThread, MessengerThread, demo_bridge_config
    from messenger.client import MessengerClient
    from messenger.client.e2e import DecryptedMessage, E2ESession
    from messenger.crypto import DeviceKeys
    from tests.e2e.bridge_harness import mail_chef_once_watched, until

    with (
        LabThread(tmp_path / "demo.sqlite") as lab,
        MessengerThread(tmp_path / "messenger", fast_hashes=True) as chat,
    ):
        client = MessengerClient(chat.url)
        await client.login("assistenz@musterstadt.example", DEMO_PASSWORD)
        assert client.user_id is not None
        e2e = E2ESession.for_client(client, DeviceKeys.generate(client.user_id, uuid.uuid4().hex))
        await e2e.register_device("Telefon")
        config = demo_bridge_config(lab.ews_url, chat.url, tmp_path / "bridge", mode="pull")
        lena = DelegateSession.open(
            demo_profile(lab.ews_url, "sachbearbeitung@musterstadt.example"),
            password=DEMO_PASSWORD,
        )
        received: list[str] = []
        try:
            with BridgeThread(config) as bridge:
                assert bridge.worker is not None
                await until(lambda: "chef@musterstadt.example" in bridge.worker.held(), 30)
                await mail_chef_once_watched(bridge, lena, "Demo: Sitzungsvorlage")
                async with client.events() as stream:
                    while not any("Demo: Sitzungsvorlage" in text for text in received):
                        event = await stream.next(timeout=30)
                        for result in await e2e.handle_event(event):
                            if isinstance(result, DecryptedMessage):
                                received.append(result.body)
        finally:
            await lena.close()
            await client.aclose()
    assert any(text.startswith("[Mail #") for text in received)
