"""Every command's --help shows its text as written: bracketed TOML table names such as `[api]`
must not be taken for rich markup and vanish."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import typer
from typer.testing import CliRunner

from bridge.cli import app

BRACKETED = re.compile(r"\[+[^\[\]\s]+\]+")


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group below `command` (typer's vendored click types, hence Any)."""
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _commands(sub, (*path, name))


def _written(command: Any) -> set[str]:
    texts = [command.help or "", *(getattr(p, "help", None) or "" for p in command.params)]
    # The help as meant: an escaped bracket (`\[api]`) shows as `[api]`.
    return {m for t in texts for m in BRACKETED.findall(t.replace("\\[", "["))}


def test_every_help_keeps_its_bracketed_names() -> None:
    root = typer.main.get_command(app)
    runner = CliRunner()
    checked, lost = 0, {}
    for path, command in _commands(root):
        expected = _written(command)
        if not expected:
            continue
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, (path, result.output)
        shown = " ".join(result.output.split())
        missing = sorted(name for name in expected if name not in shown)
        if missing:
            lost[" ".join(path)] = missing
        checked += 1
    assert lost == {}
    assert checked >= 2  # at least `api serve` and `api keygen` name TOML tables
