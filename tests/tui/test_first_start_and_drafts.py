"""The first start typed by hand, the keymap checked at start, drafts that are (not) kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input
from typer.testing import CliRunner

from bridge.cli import app as cli_app
from tui.app import make_app
from tui.config import TuiConfig
from tui.screens.first_start import FirstStartScreen

SIZE = (100, 50)


async def test_typing_in_the_wizard_fields_never_triggers_its_keys(config: TuiConfig) -> None:
    app = make_app(None, config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FirstStartScreen)
        await pilot.press(*"https://mail.dienst.de/EWS/Exchange.asmx")
        await pilot.press("tab", *"pia.dorn@dienst.de")
        await pilot.press("tab", "d", "p")  # on the sign-in choice: still the wizard
        await pilot.press("tab", *"chef@dienst.de, post@dienst.de")
        await pilot.pause()
        assert app.screen is screen  # "d" did not start the demo, "p" nothing else
        assert (
            screen.query_one("#server", Input).value == "https://mail.dienst.de/EWS/Exchange.asmx"
        )
        assert screen.query_one("#user", Input).value == "pia.dorn@dienst.de"
        assert screen.query_one("#mailboxes", Input).value == "chef@dienst.de, post@dienst.de"
        name = screen.query_one("#name", Input)
        name.focus()
        await pilot.press("ctrl+a", "ctrl+k", *"dp")
        assert name.value == "dp"


def test_a_malformed_key_binding_stops_the_start_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text('[keymap]\nreply-all = "ctlr+r"\n', encoding="utf-8")
    monkeypatch.setenv("MEDBRIDGE_CONFIG", str(config_file))
    for command in (["demo"], ["tui"]):
        result = CliRunner().invoke(cli_app, command)
        assert result.exit_code == 2, command
        (line,) = result.stderr.strip().splitlines()  # nothing started before it
        assert "reply-all" in line and "'ctlr+r' is no key" in line
