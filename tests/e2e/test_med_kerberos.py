"""Kerberos (Negotiate) sign-in of a DelegateSession against the lab with a real MIT KDC."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from exlab import Lab
from exlab.auth import LabAuthenticator
from exlab.auth.kdc import LabKdc
from exlab.server import create_app
from med import AuthMethod, DelegateSession, ItemQuery, KerberosError, Profile
from tests.e2e.conftest import ASSISTENZ, CHEF
from tests.lab.authserver import serve
from tests.lab.kdcrealm import shared_kdc, use_tickets

pytestmark = pytest.mark.kerberos


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
    from exchangelib.protocol import close_connections

    close_connections()  # no cached login state for a later server on the same port


async def test_ticket_from_kinit_opens_the_boss_mailbox(
    kdc: LabKdc, kerberos_lab: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tickets = use_tickets(kdc, tmp_path, monkeypatch)
    assert tickets.kinit(ASSISTENZ).returncode == 0
    profile = Profile(
        "k", kerberos_lab, ASSISTENZ, AuthMethod.KERBEROS, version="Exchange2016", mailboxes=(CHEF,)
    )
    async with DelegateSession.open(profile) as session:
        assert session.user == ASSISTENZ
        inbox = await session.default_folder(CHEF, "inbox")
        page = await session.items(inbox, ItemQuery(limit=3))
        assert len(page.items) == 3


async def test_without_a_ticket_the_error_says_to_run_kinit(
    kdc: LabKdc, kerberos_lab: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_tickets(kdc, tmp_path, monkeypatch)  # an empty ticket cache
    profile = Profile("k", kerberos_lab, ASSISTENZ, AuthMethod.KERBEROS, version="Exchange2016")
    async with DelegateSession.open(profile) as session:
        with pytest.raises(KerberosError, match="kinit"):
            await session.mailboxes()
