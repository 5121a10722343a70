"""One settings model: the user's file (XDG path, MEDBRIDGE_CONFIG, --config), MEDBRIDGE_*
variables, and managed configuration (managed.toml, AppConfig-style managed.json) whose keys
win and are locked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge import settings
from bridge.cli import app
from bridge.settings import Source

PROFILE = (
    '[med.profiles.buero]\nserver = "https://mail.musterstadt.example/EWS/Exchange.asmx"\n'
    'user = "assistenz@musterstadt.example"\n'
)


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "xdg_config_home" / "medbridge" / "config.toml"
    path.parent.mkdir(parents=True)
    return path


@pytest.fixture
def managed(tmp_path: Path) -> Path:
    directory = tmp_path / "managed"
    directory.mkdir()
    return directory


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _shown(*args: str) -> dict[str, dict[str, object]]:
    code, out, err = _cli(*args, "config", "show", "--json")
    assert code == 0, err
    return {s["name"]: s for s in json.loads(out)["settings"]}


def test_the_user_file_at_the_xdg_path_is_read(user_file: Path) -> None:
    user_file.write_text("[tui]\npage_size = 50\n" + PROFILE, encoding="utf-8")
    loaded = settings.load()
    assert loaded.table("tui") == {"page_size": 50}
    assert loaded.table("med")["profiles"]["buero"]["user"] == "assistenz@musterstadt.example"
    setting = loaded.get("tui", "page_size")
    assert setting is not None and setting.source is Source.FILE and not setting.locked
    assert setting.origin == str(user_file)


def test_config_option_and_variable_name_another_file(
    tmp_path: Path, user_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_file.write_text("[tui]\npage_size = 50\n", encoding="utf-8")
    other = tmp_path / "other.toml"
    other.write_text("[tui]\npage_size = 70\n", encoding="utf-8")
    assert _shown("--config", str(other))["tui.page_size"]["value"] == 70
    assert _shown()["tui.page_size"]["value"] == 50  # the option holds for its run only
    monkeypatch.setenv("MEDBRIDGE_CONFIG", str(other))
    assert _shown()["tui.page_size"]["origin"] == str(other)


def test_environment_variables_override_the_file(
    user_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_file.write_text("[tui]\npage_size = 50\n" + PROFILE, encoding="utf-8")
    monkeypatch.setenv("MEDBRIDGE_TUI__PAGE_SIZE", "80")
    monkeypatch.setenv("MEDBRIDGE_MED__PROFILES__BUERO__SERVER", "https://ex.example/EWS/x.asmx")
    monkeypatch.setenv("MEDBRIDGE_PASSWORD", "not a setting")
    shown = _shown()
    assert shown["tui.page_size"] == {
        "name": "tui.page_size",
        "value": 80,
        "source": "environment",
        "origin": "MEDBRIDGE_TUI__PAGE_SIZE",
        "locked": False,
    }
    profile = shown["med.profiles.buero.server"]
    assert profile["value"] == "https://ex.example/EWS/x.asmx"
    assert shown["med.profiles.buero.user"]["source"] == "file"  # the rest of the table stays
    assert not any("password" in name for name in shown)


def test_a_managed_toml_key_wins_and_is_locked(
    user_file: Path, managed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_file.write_text('[tui]\npage_size = 50\neditor = "nano"\n', encoding="utf-8")
    monkeypatch.setenv("MEDBRIDGE_TUI__PAGE_SIZE", "80")
    (managed / "managed.toml").write_text("[tui]\npage_size = 30\n", encoding="utf-8")

    shown = _shown()
    assert shown["tui.page_size"]["value"] == 30
    assert shown["tui.page_size"]["locked"] is True
    assert shown["tui.editor"]["locked"] is False

    code, out, _ = _cli("config", "show")
    assert code == 0
    assert f"tui.page_size = 30  (managed: {managed / 'managed.toml'})  [locked]" in out

    code, out, _ = _cli("locate")
    assert code == 0
    assert f"managed: {managed / 'managed.toml'} (present)" in out
    assert f"locked: tui.page_size (set by {managed / 'managed.toml'})" in out

    before = user_file.read_text(encoding="utf-8")
    code, _, err = _cli("config", "set", "tui.page_size", "99")
    assert code == 2
    assert "tui.page_size is locked by your administrator" in err
    assert user_file.read_text(encoding="utf-8") == before
    # Keys the administrator left alone stay the user's to change.
    assert _cli("config", "set", "tui.editor", '"vim"')[0] == 0
    assert _shown()["tui.editor"]["value"] == "vim"


def test_an_appconfig_json_manages_keys_and_profiles(user_file: Path, managed: Path) -> None:
    user_file.write_text(PROFILE, encoding="utf-8")
    (managed / "managed.toml").write_text("[tui]\nanimations = true\n", encoding="utf-8")
    (managed / "managed.json").write_text(
        json.dumps(
            {
                "tui.animations": False,
                "med.default_profile": "dienst",
                "med.profiles.dienst": {
                    "server": "https://mail.musterstadt.example/EWS/Exchange.asmx",
                    "user": "poststelle@musterstadt.example",
                    "auth": "kerberos",
                },
            }
        ),
        encoding="utf-8",
    )
    shown = _shown()
    assert shown["tui.animations"]["value"] is False  # the JSON wins over managed.toml
    assert shown["med.default_profile"]["locked"] is True

    code, out, _ = _cli("profile", "list")
    assert code == 0
    assert "* dienst" in out and "(locked)" in out.split("* dienst")[1].splitlines()[0]
    code, _, err = _cli("profile", "remove", "dienst")
    assert code == 2 and "locked" in err
    code, _, err = _cli(
        "profile",
        "add",
        "privat",
        "--server",
        "https://x.example/EWS/Exchange.asmx",
        "--user",
        "a@x.example",
        "--default",
    )
    assert code == 2 and "med.default_profile is locked" in err
    # The user's own profile is still theirs.
    assert _cli("profile", "remove", "buero")[0] == 0


def test_unusable_managed_configuration_is_one_clear_line(managed: Path) -> None:
    (managed / "managed.json").write_text("{not json", encoding="utf-8")
    code, _, err = _cli("config", "show")
    assert code == 2
    assert err.startswith(
        f"medbridge: The configuration file {managed / 'managed.json'} is not valid"
    )
    assert "Traceback" not in err


def test_the_api_reads_its_table_from_the_same_merged_settings(
    user_file: Path, managed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.api import SettingsError, load_settings

    user_file.write_text("[api]\nrate_per_minute = 100\nmax_page_size = 50\n", encoding="utf-8")
    monkeypatch.setenv("MEDBRIDGE_API__RATE_PER_MINUTE", "120")
    (managed / "managed.toml").write_text("[api]\nmax_page_size = 20\n", encoding="utf-8")
    settings = load_settings()
    assert (settings.rate_per_minute, settings.max_page_size) == (120, 20)
    monkeypatch.setenv("MEDBRIDGE_API__MAX_BODY_BYTES", "12")
    with pytest.raises(SettingsError, match=r"\[api\] max_body_bytes"):
        load_settings()
