"""The client SDK's public surface: complete, sorted, and free of server code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import messenger.client as client

REPO = Path(__file__).resolve().parents[2]


def test_client_exports_are_sorted_and_public() -> None:
    assert client.__all__ == sorted(client.__all__)
    public = {n for n in dir(client) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(client.__all__)


def test_importing_the_client_loads_no_server_or_database_code() -> None:
    code = "import sys, messenger.client\nprint('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    modules = set(out.stdout.split())
    for heavy in ("fastapi", "sqlalchemy", "messenger.server", "messenger.store", "redis"):
        assert heavy not in modules
