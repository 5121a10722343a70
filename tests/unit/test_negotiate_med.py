"""Kerberos through med's DelegateSession: the lab with a KDC, a profile with auth=kerberos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exlab.auth import LabAuthenticator
from exlab.auth.kdc import LabKdc
from exlab.demo import DEMO_PASSWORD, open_demo
from med.auth.negotiate import kerberos_principal
from med.errors import KerberosError
from med.model import AuthMethod, Profile
from med.service import DelegateSession
from tests.lab.authserver import Served, serve
from tests.lab.kdcrealm import Tickets, shared_kdc, tickets_issued, use_tickets

pytestmark = pytest.mark.kerberos

create_app = pytest.importorskip("exlab.server", reason="needs the lab's EWS server").create_app

ASSISTENZ = "assistenz@musterstadt.example"
CHEF = "chef@musterstadt.example"


@pytest.fixture(scope="module")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> LabKdc:
    return shared_kdc(tmp_path_factory)


@pytest.fixture(scope="module")
def ews(tmp_path_factory: pytest.TempPathFactory, kdc: LabKdc) -> Iterator[Served]:
    lab = open_demo(tmp_path_factory.mktemp("med-kerberos") / "lab.sqlite")
    auth = LabAuthenticator(lab, keytab=kdc.keytab, realm=kdc.realm)
    with serve(create_app(lab, authenticator=auth)) as served:
        yield served
    auth.close()
    lab.close()


@pytest.fixture
def tickets(kdc: LabKdc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tickets:
    # The lab's NTLM acceptor runs in this process and sets NTLM_USER_FILE, which pyspnego's
    # Negotiate client would take as NTLM credentials; a real client has no such file.
    monkeypatch.delenv("NTLM_USER_FILE", raising=False)
    return use_tickets(kdc, tmp_path, monkeypatch)


def _profile(url: str) -> Profile:
    return Profile(
        name="lab", server=url, user=ASSISTENZ, auth=AuthMethod.KERBEROS, version="Exchange2016"
    )


async def test_delegate_session_with_a_kinit_ticket_opens_the_boss_inbox(
    ews: Served, tickets: Tickets
) -> None:
    assert tickets.kinit(ASSISTENZ).returncode == 0
    async with DelegateSession.open(_profile(ews.url)) as session:
        inbox = await session.default_folder(CHEF, "inbox")
    assert inbox.name == "Posteingang"


async def test_delegate_session_with_a_password_and_a_mail_style_login(
    ews: Served, tickets: Tickets
) -> None:
    before = tickets_issued(tickets.kdc, "assistenz@MUSTERSTADT.EXAMPLE")
    async with DelegateSession.open(_profile(ews.url), password=DEMO_PASSWORD) as session:
        inbox = await session.default_folder(CHEF, "inbox")
    assert inbox.name == "Posteingang"
    assert not tickets.ccache.exists()
    # Kerberos, not the NTLM fallback: the KDC issued a ticket for the mail-style login
    assert tickets_issued(tickets.kdc, "assistenz@MUSTERSTADT.EXAMPLE") > before


async def test_delegate_session_without_a_ticket_says_to_run_kinit(
    ews: Served, tickets: Tickets
) -> None:
    with pytest.raises(KerberosError) as info:
        async with DelegateSession.open(_profile(ews.url)) as session:
            await session.default_folder(CHEF, "inbox")
    assert "kinit" in str(info.value)


def test_mail_style_logins_name_the_upper_case_realm() -> None:
    assert kerberos_principal(ASSISTENZ) == "assistenz@MUSTERSTADT.EXAMPLE"
    assert kerberos_principal("assistenz@MUSTERSTADT.EXAMPLE") == "assistenz@MUSTERSTADT.EXAMPLE"
    assert kerberos_principal("assistenz") == "assistenz"
