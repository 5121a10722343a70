from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_locate_prints_xdg_paths_under_the_test_home(tmp_path: Path) -> None:
    result = run_cli("locate")
    assert result.returncode == 0, result.stderr
    assert f"config: {tmp_path}/xdg_config_home/medbridge/config.toml" in result.stdout


def test_unknown_command_fails_without_traceback() -> None:
    result = run_cli("no-such-command")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr


def test_tui_with_an_unknown_profile_is_one_line_and_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "xdg_config_home" / "medbridge" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        '[med.profiles.buero]\nserver = "http://127.0.0.1:9/EWS/Exchange.asmx"\n'
        'user = "assistenz@musterstadt.example"\n',
        encoding="utf-8",
    )
    result = run_cli("tui", "--profile", "nosuch")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "medbridge: No profile named 'nosuch'; the profiles are: buero."
    )


def test_api_serve_with_a_wrong_setting_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "api.toml"
    config.write_text("[api]\nrate_per_minute = 0\n", encoding="utf-8")
    result = run_cli("api", "serve", "--config", str(config), "--port", "0")
    assert result.returncode == 2
    assert "rate_per_minute" in result.stderr and "Traceback" not in result.stderr


def test_api_keygen_prints_a_key_once_and_only_its_hash_to_store() -> None:
    import hashlib

    result = run_cli(
        "api", "keygen", "--caller", "assistenz@musterstadt.example", "--scope", "send"
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.splitlines()[0].removeprefix("key (shown once): ")
    assert key.startswith("mbk_")
    stored = result.stdout.split("[[api.keys]]", 1)[1]
    assert key not in stored
    assert hashlib.sha256(key.encode()).hexdigest() in stored
    assert 'scopes = ["send"]' in stored


def test_bridge_with_a_broken_config_is_one_line_and_nothing_starts(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text('[messenger]\nserver = "http://127.0.0.1:9"\n', encoding="utf-8")
    for command in ("check", "run"):
        result = run_cli("bridge", command, "--config", str(config))
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
        assert result.stderr.strip() == f"medbridge: {config}: messenger.user is required"


def test_bridge_check_prints_what_would_be_watched(tmp_path: Path) -> None:
    config = tmp_path / "bridge.toml"
    config.write_text(
        """
[messenger]
server = "http://127.0.0.1:9"
user = "bridge@musterstadt.example"
password_env = "P"

[identities.service]
server = "http://127.0.0.1:9/EWS/Exchange.asmx"
user = "assistenz@musterstadt.example"
password_env = "P"

[[watch]]
mailbox = "chef@musterstadt.example"
folders = ["inbox", "calendar"]
identity = "service"

[[rule]]
name = "all"
to = ["user:assistenz@musterstadt.example"]
""",
        encoding="utf-8",
    )
    result = run_cli("bridge", "check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "watch chef@musterstadt.example: inbox, calendar as service",
        "rule all → user:assistenz@musterstadt.example",
    ]
