"""Opening several profiles: how the user names them, and what is refused with one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_cli import run_cli
from tui.app import make_app
from tui.config import ConfigError, TuiConfig
from tui.messaging import MessengerAccount, MessengerHub
from tui.profiles import OpenProfile, ProfileState

PROFILES = (
    '[med.profiles.kreis]\nserver = "http://127.0.0.1:9/EWS/Exchange.asmx"\n'
    'user = "assistenz@musterstadt.example"\n'
    '[med.profiles.klinik]\nserver = "http://127.0.0.1:9/EWS/Exchange.asmx"\n'
    'user = "berater@klinikum.example"\n'
)


def _config_file(tmp_path: Path, extra: str = "") -> None:
    config = tmp_path / "xdg_config_home" / "medbridge" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(PROFILES + extra, encoding="utf-8")


def test_tui_profiles_setting_lists_the_profiles_to_open(tmp_path: Path) -> None:
    config = TuiConfig.from_mapping({"profiles": ["kreis", "klinik"]}, {}, drafts_dir=tmp_path)
    assert config.profiles == ("kreis", "klinik")
    assert TuiConfig.from_mapping({}, {}, drafts_dir=tmp_path).profiles == ()


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (["kreis", "kreis"], "[tui] profiles: The profile 'kreis' is named twice"),
        ([1, "kreis"], "[tui] profiles must be a list of profile names"),
        (["", "kreis"], "[tui] profiles must be a list of profile names"),
    ],
)
def test_bad_tui_profiles_setting_says_what_to_change(
    tmp_path: Path, value: Any, says: str
) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        TuiConfig.from_mapping({"profiles": value}, {}, drafts_dir=tmp_path)
    assert str(caught.value).startswith(says)


def test_the_same_profile_twice_on_the_command_line_is_one_line(tmp_path: Path) -> None:
    _config_file(tmp_path)
    result = run_cli("tui", "--profile", "kreis", "--profile", "kreis")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "medbridge: The profile 'kreis' is named twice; open each profile once."
    )


def test_an_unknown_profile_among_several_is_one_line(tmp_path: Path) -> None:
    _config_file(tmp_path)
    result = run_cli("tui", "-p", "kreis", "-p", "nosuch")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "medbridge: No profile named 'nosuch'; the profiles are: klinik, kreis."
    )


def test_a_bad_profiles_setting_stops_the_start(tmp_path: Path) -> None:
    _config_file(tmp_path, '[tui]\nprofiles = ["kreis", "kreis"]\n')
    result = run_cli("tui")
    assert result.returncode == 2
    assert "[tui] profiles: The profile 'kreis' is named twice" in result.stderr
    assert "Traceback" not in result.stderr


def test_each_profile_has_its_messenger_and_the_active_one_is_shown(tmp_path: Path) -> None:
    app = make_app(
        None,
        TuiConfig(drafts_dir=tmp_path),
        profiles=[OpenProfile("kreis", None), OpenProfile("klinik", None)],
    )
    hub = MessengerHub(post=lambda message: None)
    for name in ("kreis", "klinik"):
        hub.add(
            MessengerAccount(name, "http://127.0.0.1:9", f"{name}@chat", "pw", tmp_path / name),
            client_factory=lambda url: object(),  # type: ignore[arg-type,return-value]
        )
    app.messenger = hub
    assert hub.active == "kreis"
    app.use_profile("klinik")
    assert hub.active == "klinik" and app.active == "klinik"
    assert hub.get() is hub.connections["klinik"]
    # A profile that could not be opened is failed from the start, with its reason.
    assert app.profiles["kreis"].state is ProfileState.FAILED
    assert app.profiles["kreis"].error == "The profile could not be opened."
