"""The systemd units under deploy/ start commands that exist, with options the CLI knows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bridge.cli import app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))


def exec_start(unit: Path) -> list[str]:
    """The ExecStart command line, continuation lines joined and systemd's %-specifiers and
    ${VARIABLES} replaced by sample values."""
    text = unit.read_text(encoding="utf-8").replace("\\\n", " ")
    line = next(ln for ln in text.splitlines() if ln.startswith("ExecStart="))
    line = line.removeprefix("ExecStart=")
    line = line.replace("%i", "8471").replace("%H", "host")
    line = re.sub(r"\$\{\w+\}", "8000", line)
    return shlex.split(line)


def test_there_are_units_for_the_messenger_the_bridge_and_the_api() -> None:
    commands = {tuple(exec_start(u)[1:3]) for u in UNITS}
    assert commands == {("messenger", "serve"), ("bridge", "run"), ("api", "serve")}


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_every_option_of_the_unit_is_one_the_cli_knows(unit: Path) -> None:
    argv = exec_start(unit)
    assert argv[0].endswith("/medbridge")
    # --help is eager: the options before it are parsed (an unknown one fails), nothing runs.
    result = CliRunner().invoke(app, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_an_unknown_option_would_be_caught() -> None:
    result = CliRunner().invoke(app, ["messenger", "serve", "--no-such-option", "1", "--help"])
    assert result.exit_code != 0
