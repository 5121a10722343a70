"""`medbridge tui` with a messenger account configured badly stops with one line (exit 2)
before it signs in anywhere, and never prints the password."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli_config_errors import one_line
from tests.e2e.test_cli_profile import cli

PROFILE = (
    '[med.profiles.dienst]\nserver = "http://127.0.0.1:9/EWS/Exchange.asmx"\n'
    'user = "assistenz@musterstadt.example"\n'
)


def test_messenger_account_without_password_source(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        PROFILE + '[messenger.dienst]\nserver = "http://127.0.0.1:9"\nuser = "a@b.example"\n',
        encoding="utf-8",
    )
    result = cli("--config", str(config), "tui", "--profile", "dienst")
    assert result.returncode == 2
    assert one_line(result) == (
        f"medbridge: {config}: [messenger.dienst] needs `password_env` or `password_file`."
    )


def test_messenger_password_variable_must_be_set(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        PROFILE + '[messenger.dienst]\nserver = "http://127.0.0.1:9"\nuser = "a@b.example"\n'
        'password_env = "CHAT_PASSWORD_FOR_TEST"\n',
        encoding="utf-8",
    )
    result = cli(
        "--config", str(config), "tui", "--profile", "dienst", env={"CHAT_PASSWORD_FOR_TEST": ""}
    )
    assert result.returncode == 2
    assert "the variable CHAT_PASSWORD_FOR_TEST is not set" in one_line(result)
