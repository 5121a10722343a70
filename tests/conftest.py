"""Keep the machine out of the tests: no user config, tickets, NTLM user files, proxies or
MEDBRIDGE_* leak in."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

_KEEP = {"MEDBRIDGE_TEST_PG", "MEDBRIDGE_TEST_REDIS"}
# NTLM_USER_FILE: an in-process lab's NTLM acceptor leaves it set (exlab.auth.handshake), and
# pyspnego's initiators take credentials from it too: a later Kerberos test without a ticket
# then logged in over NTLM instead of failing.
_PREFIXES = (
    "MEDBRIDGE_",
    "KRB5",
    "NTLM_USER_FILE",
    "LM_COMPAT_LEVEL",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
)


@pytest.fixture(autouse=True)
def clean_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.upper().startswith(_PREFIXES) and name not in _KEEP:
            monkeypatch.delenv(name, raising=False)
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    # The machine's managed configuration (/etc/medbridge) stays out too.
    monkeypatch.setenv("MEDBRIDGE_MANAGED_DIR", str(tmp_path / "managed"))
    yield
