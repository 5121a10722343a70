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
