"""`medbridge demo` end to end in the TUI: the lab, the messenger and the bridge in this process;
assistenz signed in to the messenger sees a mail that reaches chef's inbox in her pane."""

from __future__ import annotations

from pathlib import Path

from bridge.demo import (
    DEMO_START_FOLDER,
    DEMO_USER,
    BridgeThread,
    LabThread,
    MessengerThread,
    demo_bridge_config,
    demo_profile,
)
from exlab.demo import DEMO_PASSWORD
from med import DelegateSession
from tests.e2e.bridge_harness import mail_chef_once_watched, until
from tests.tui.conftest import settle
from tests.tui.screentext import screen_text
from tui.app import make_app
from tui.config import TuiConfig
from tui.messaging import ConnectionState, MessengerAccount


async def test_a_bridged_mail_shows_in_assistenz_pane(tmp_path: Path) -> None:
    with (
        LabThread(tmp_path / "demo.sqlite") as lab,
        MessengerThread(tmp_path / "messenger", fast_hashes=True) as chat,
    ):
        profile = demo_profile(lab.ews_url)
        session = DelegateSession.open(profile, password=DEMO_PASSWORD)
        lena = DelegateSession.open(
            demo_profile(lab.ews_url, "sachbearbeitung@musterstadt.example"),
            password=DEMO_PASSWORD,
        )
        account = MessengerAccount(
            profile=profile.name,
            server=chat.url,
            user=DEMO_USER,
            password=DEMO_PASSWORD,
            state_dir=tmp_path / "chat",
        )
        app = make_app(
            session,
            TuiConfig(drafts_dir=tmp_path / "drafts", animations=False),
            start_folder=DEMO_START_FOLDER,
            messenger_accounts={profile.name: account},
        )
        config = demo_bridge_config(lab.ews_url, chat.url, tmp_path / "bridge", mode="pull")
        try:
            async with app.run_test(size=(120, 34)) as pilot:
                assert app.messenger is not None
                conn = app.messenger.current
                assert conn is not None
                await until(lambda: conn.state is ConnectionState.ONLINE, 60)
                with BridgeThread(config) as bridge:
                    await mail_chef_once_watched(bridge, lena, "Demo: Sitzungsvorlage")
                    await pilot.press("6")
                    await until(
                        lambda: "Demo: Sitzungsvorlage" in screen_text(app),
                        90,
                        lambda: screen_text(app),
                    )
                    text = screen_text(app)
                    assert "bridge ✓" in text  # the bridge's device is cross-signed
                    assert "Mail #" in text  # shown as the bridge's card
                    assert "Enter: open the item" in text
                    await settle(pilot)
        finally:
            await lena.close()
            await session.close()
