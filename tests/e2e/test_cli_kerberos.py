"""The CLI with a Kerberos profile against the lab and a real KDC: errors are one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exlab import Lab
from exlab.auth import LabAuthenticator
from exlab.auth.kdc import LabKdc
from exlab.server import create_app
from tests.e2e.conftest import ASSISTENZ, CHEF
from tests.lab.authserver import serve
from tests.lab.kdcrealm import shared_kdc, use_tickets

pytestmark = pytest.mark.kerberos
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> LabKdc:
    return shared_kdc(tmp_path_factory)


@pytest.fixture
def kerberos_lab(kdc: LabKdc, demo_template: Path, tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "lab.sqlite"
    shutil.copyfile(demo_template, path)
    lab = Lab.open(path)
    auth = LabAuthenticator(lab, keytab=kdc.keytab, realm=kdc.realm)
    with serve(create_app(lab, authenticator=auth)) as served:
        yield f"http://127.0.0.1:{served.port}/EWS/Exchange.asmx"
    auth.close()
    lab.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
        env=dict(os.environ),
        stdin=subprocess.DEVNULL,
    )


def test_without_a_ticket_the_cli_says_one_line_and_no_library_internals(
    kdc: LabKdc, kerberos_lab: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickets = use_tickets(kdc, tmp_path, monkeypatch)  # an empty ticket cache
    added = cli("profile", "add", "k", "--server", kerberos_lab, "--user", ASSISTENZ,
                "--auth", "kerberos", "--version", "Exchange2016")  # fmt: skip
    assert added.returncode == 0, added.stderr
    refused = cli("mail", "ls", "-m", CHEF)
    assert refused.returncode == 3
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]
    assert refused.stderr.startswith("medbridge: ") and "kinit" in refused.stderr
    assert tickets.kinit(ASSISTENZ).returncode == 0
    listed = cli("mail", "ls", "-m", CHEF, "--limit", "2")
    assert listed.returncode == 0, listed.stderr
    assert listed.stderr == ""
