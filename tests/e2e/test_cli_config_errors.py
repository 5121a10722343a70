"""Configuration named on the command line: a missing or unusable file stops the command with one
line and exit 2 (invalid input, as documented) before anything starts or listens."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_cli_profile import cli

REPO = Path(__file__).resolve().parents[2]


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.strip()


@pytest.mark.parametrize(
    "args",
    [
        ("api", "serve", "--port", "0", "--config"),
        ("--config",),  # the root option, read by every settings-reading command
    ],
    ids=["api-serve", "root"],
)
def test_a_config_file_named_explicitly_must_exist(tmp_path: Path, args: tuple[str, ...]) -> None:
    missing = tmp_path / "nonexistent.toml"
    command = (*args, str(missing)) if args[0] == "api" else (*args, str(missing), "config", "show")
    result = cli(*command)
    assert result.returncode == 2
    assert one_line(result) == f"medbridge: The configuration file {missing} does not exist."
    assert result.stdout == ""


def test_config_set_may_create_the_file_named_with_config(tmp_path: Path) -> None:
    new = tmp_path / "new.toml"
    result = cli("--config", str(new), "config", "set", "tui.page_size", "40")
    assert result.returncode == 0, result.stderr
    assert "page_size = 40" in new.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("tui.page_size", "abc", "[tui] page_size must be a whole number from 10 to 1000."),
        ("tiu.page_size", "40", "tiu is no table of the settings (they are api, keymap, med, "),
        ("keymap.quit", "42", '[keymap] quit must be a key like "ctrl+r" or a list of keys.'),
        ("med.profiles.buero.user", "anna", "Profile 'buero' needs `user`, an e-mail address."),
        ("med.profiles.buero.auth", "pin", "Profile 'buero': auth must be one of basic, ntlm, "),
        ("med.profiles.buero.colour", "red", "Profile 'buero' has unknown settings: colour."),
    ],
    ids=["tui-value", "table-typo", "keymap-value", "profile-user", "profile-auth", "profile-key"],
)
def test_config_set_refuses_a_value_its_reader_would_refuse_and_keeps_the_file(
    tmp_path: Path, name: str, value: str, reason: str
) -> None:
    """Once written, such a value stopped the TUI (or every mail command) at its next start."""
    config = tmp_path / "config.toml"
    before = '[tui]\npage_size = 40\n\n[med.profiles.buero]\nserver = "https://ex.example/EWS"\n'
    config.write_text(before, encoding="utf-8")
    result = cli("--config", str(config), "config", "set", name, value)
    assert result.returncode == 2
    assert one_line(result).startswith(f"medbridge: {name} not saved: {reason}")
    assert config.read_text(encoding="utf-8") == before


def test_config_set_writes_a_profile_one_key_at_a_time(tmp_path: Path) -> None:
    """What a profile still lacks is no reason to refuse the key that is there."""
    config = tmp_path / "config.toml"
    for name, value in [
        ("med.profiles.buero.server", "https://ex.example/EWS"),
        ("med.profiles.buero.user", "anna@ex.example"),
        ("med.default_profile", "buero"),
    ]:
        result = cli("--config", str(config), "config", "set", name, value)
        assert result.returncode == 0, result.stderr
    shown = cli("--config", str(config), "profile", "list")
    assert shown.returncode == 0, shown.stderr
    assert "buero" in shown.stdout and "anna@ex.example" in shown.stdout


def test_api_serve_without_an_api_table_has_nothing_to_serve(tmp_path: Path) -> None:
    config = tmp_path / "api.toml"
    config.write_text("[tui]\npage_size = 40\n", encoding="utf-8")
    result = cli("api", "serve", "--port", "0", "--config", str(config))
    assert result.returncode == 2
    line = one_line(result)
    assert line.startswith(f"medbridge: {config} has no [api] table: nothing to serve")
    assert "Uvicorn running" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "cannot read {path}: No such file or directory"),
        ("[messenger\n", "{path} is not valid TOML: "),
        ('[bridge]\nmode = "poll"\n', "{path}: "),
    ],
    ids=["missing", "invalid-toml", "no-messenger"],
)
def test_bridge_with_an_unusable_config_is_exit_2_naming_the_file_once(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    path = tmp_path / "bridge.toml"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    for command in ("check", "run"):
        result = cli("bridge", command, "--config", str(path))
        assert result.returncode == 2, (command, result.stderr)
        line = one_line(result)
        assert line.startswith("medbridge: " + reason.format(path=path)), line
        assert line.count(str(path)) == 1, line


def _profiles_file(tmp_path: Path) -> None:
    config = tmp_path / "xdg_config_home" / "medbridge" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "".join(
            f'[med.profiles.{name}]\nserver = "http://127.0.0.1:9/EWS/Exchange.asmx"\n'
            'user = "assistenz@musterstadt.example"\n'
            for name in ("dienst", "buero")
        ),
        encoding="utf-8",
    )


def test_an_unknown_profile_is_a_usage_error_listing_the_profiles(tmp_path: Path) -> None:
    _profiles_file(tmp_path)
    result = cli("mail", "ls", "-p", "nosuchprofile")
    assert result.returncode == 2
    assert one_line(result) == (
        "medbridge: No profile named 'nosuchprofile'; the profiles are: buero, dienst."
    )


def test_the_readme_documents_every_exit_code_the_cli_uses() -> None:
    from bridge.commands._med import EXIT_CODES

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    sentence = " ".join(readme.split("Errors print one line and exit non-zero (", 1)[1].split())
    documented = {int(code) for code in re.findall(r"(?:^|; |, )(\d) ", sentence.split(")")[0])}
    assert documented == {1, *EXIT_CODES.values()}
    assert "port" in sentence  # 1: what a user meets most, a port already taken
