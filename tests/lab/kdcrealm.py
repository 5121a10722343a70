"""One real KDC per test process (xdist worker), started on first use and stopped at exit."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from exlab.auth.kdc import LabKdc, find_kdc_binary, start_kdc
from tests.lab.authserver import DEMO_PASSWORD

DEMO_USERS = {
    "chef@musterstadt.example": DEMO_PASSWORD,
    "assistenz@musterstadt.example": DEMO_PASSWORD,
    "sachbearbeitung@musterstadt.example": DEMO_PASSWORD,
}

_shared: LabKdc | None = None


def require_kdc() -> None:
    if find_kdc_binary() is None:
        pytest.skip("krb5kdc is not installed (Debian: apt install krb5-kdc krb5-admin-server)")


def shared_kdc(tmp_path_factory: pytest.TempPathFactory) -> LabKdc:
    """The process's KDC; starting a realm costs a KDC start, so tests share one."""
    global _shared
    require_kdc()
    if _shared is None or not _shared.running:
        _shared = start_kdc(tmp_path_factory.mktemp("realm"), DEMO_USERS)
    return _shared


def optional_kdc(tmp_path_factory: pytest.TempPathFactory) -> LabKdc | None:
    """The process's KDC, or None where krb5kdc is missing (NTLM and Basic tests still run)."""
    return shared_kdc(tmp_path_factory) if find_kdc_binary() is not None else None


def keytab_options(kdc: LabKdc | None) -> dict[str, Any]:
    """LabAuthenticator keyword arguments for Kerberos, if there is a KDC."""
    return {"keytab": kdc.keytab, "realm": kdc.realm} if kdc is not None else {}


@dataclass
class Tickets:
    """A test's own ticket cache, with KRB5_CONFIG and KRB5CCNAME set for this process."""

    kdc: LabKdc
    ccache: Path

    def kinit(
        self, user: str, password: str = DEMO_PASSWORD, *, forwardable: bool = False
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.kdc.client_env(self.ccache)}
        return subprocess.run(
            ["kinit", *(["-f"] if forwardable else []), self.kdc.principal(user)],
            input=password + "\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )


def use_tickets(kdc: LabKdc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tickets:
    ccache = tmp_path / "ccache"
    for name, value in kdc.client_env(ccache).items():
        monkeypatch.setenv(name, value)
    return Tickets(kdc, ccache)


def tickets_issued(kdc: LabKdc, principal: str) -> int:
    """Ticket-granting tickets the KDC issued to `principal` (from its log)."""
    log = (kdc.directory / "kdc.log").read_text()
    wanted = f"{principal} for krbtgt/"
    return sum(
        1 for line in log.splitlines() if "AS_REQ" in line and "ISSUE" in line and wanted in line
    )
