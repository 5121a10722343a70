"""The layers hold at run time too: headless packages never drag in the UI or the servers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def loaded_modules(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "statement", ["import med", "import messenger", "import bridge.cli", "import bridge.notify"]
)
def test_headless_packages_load_no_textual(statement: str) -> None:
    assert "textual" not in loaded_modules(statement)


def test_med_loads_no_web_framework_or_lab() -> None:
    modules = loaded_modules("import med")
    assert "fastapi" not in modules
    assert "exlab" not in modules


def test_no_bridge_module_but_the_cli_loads_the_tui() -> None:
    # Every module of the package, those added later included, found by walking it.
    statement = (
        "import importlib, pkgutil, bridge\n"
        "for info in pkgutil.walk_packages(bridge.__path__, 'bridge.'):\n"
        "    if info.name != 'bridge.cli':\n"
        "        importlib.import_module(info.name)"
    )
    modules = loaded_modules(statement)
    assert "bridge.commands.config" in modules  # the walk reached the commands
    assert not {m for m in modules if m == "tui" or m.startswith(("tui.", "textual"))}


def test_the_bridge_loads_neither_the_messenger_server_nor_the_lab() -> None:
    modules = loaded_modules("import bridge.notify")
    assert "messenger.server" not in modules
    assert "exlab" not in modules
