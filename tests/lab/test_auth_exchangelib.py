"""exchangelib against the real lab server, logging in with NTLM and with Negotiate/Kerberos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exlab import Lab
from exlab.auth import LabAuthenticator
from exlab.auth.kdc import LabKdc, start_kdc
from exlab.demo import DEMO_PASSWORD, open_demo
from med.auth.negotiate import NEGOTIATE, NoTicket, register
from tests.lab.authserver import Served, serve
from tests.lab.kdcrealm import (
    DEMO_USERS,
    Tickets,
    keytab_options,
    optional_kdc,
    shared_kdc,
    use_tickets,
)

create_app = pytest.importorskip("exlab.server", reason="needs the lab's EWS server").create_app

ASSISTENZ = "assistenz@musterstadt.example"
CHEF = "chef@musterstadt.example"


@pytest.fixture(scope="module")
def demo_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = open_demo(tmp_path_factory.mktemp("auth-lab") / "lab.sqlite")
    yield lab
    lab.close()


@pytest.fixture(scope="module")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> LabKdc:
    return shared_kdc(tmp_path_factory)


@pytest.fixture(scope="session")
def realm(tmp_path_factory: pytest.TempPathFactory) -> LabKdc | None:
    return optional_kdc(tmp_path_factory)


@pytest.fixture(scope="module")
def ews(demo_lab: Lab, realm: LabKdc | None) -> Iterator[Served]:
    auth = LabAuthenticator(demo_lab, **keytab_options(realm))
    with serve(create_app(demo_lab, authenticator=auth)) as served:
        yield served
    auth.close()
    from exchangelib.protocol import close_connections

    close_connections()


@pytest.fixture
def tickets(kdc: LabKdc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tickets:
    return use_tickets(kdc, tmp_path, monkeypatch)


def _account(url: str, auth_type: str, credentials: Any, mailbox: str) -> Any:
    from exchangelib import DELEGATE, Account, Build, Configuration, Version

    config = Configuration(
        service_endpoint=url,
        credentials=credentials,
        auth_type=auth_type,
        version=Version(build=Build(15, 1)),
    )
    return Account(
        primary_smtp_address=mailbox, access_type=DELEGATE, config=config, autodiscover=False
    )


def test_exchangelib_ntlm_delegate_reads_the_boss_inbox(ews: Served) -> None:
    from exchangelib import NTLM, Credentials

    account = _account(ews.url, NTLM, Credentials("MUSTERSTADT\\assistenz", DEMO_PASSWORD), CHEF)
    assert account.inbox.name == "Posteingang"


def test_exchangelib_ntlm_with_an_email_login_and_version_probe(ews: Served) -> None:
    from exchangelib import DELEGATE, NTLM, Account, Configuration, Credentials

    config = Configuration(
        service_endpoint=ews.url, credentials=Credentials(ASSISTENZ, DEMO_PASSWORD), auth_type=NTLM
    )
    account = Account(ASSISTENZ, access_type=DELEGATE, config=config, autodiscover=False)
    assert account.root.name


def test_exchangelib_ntlm_wrong_password_is_unauthorized(ews: Served) -> None:
    from exchangelib import NTLM, Credentials
    from exchangelib.errors import UnauthorizedError

    with pytest.raises(UnauthorizedError):
        _ = _account(ews.url, NTLM, Credentials(ASSISTENZ, "Demo-2025!"), CHEF).inbox


@pytest.mark.kerberos
def test_exchangelib_negotiate_with_a_kinit_ticket_gets_folders(
    ews: Served, tickets: Tickets
) -> None:
    register()
    assert tickets.kinit(ASSISTENZ).returncode == 0
    account = _account(ews.url.replace("127.0.0.1", "localhost"), NEGOTIATE, None, CHEF)
    assert account.inbox.name == "Posteingang"
    assert account.calendar.name == "Kalender"


@pytest.mark.kerberos
def test_exchangelib_negotiate_with_a_password_and_no_ticket_cache(
    ews: Served, tickets: Tickets
) -> None:
    from exchangelib import Credentials

    register()
    credentials = Credentials("assistenz@MUSTERSTADT.EXAMPLE", DEMO_PASSWORD)
    account = _account(ews.url, NEGOTIATE, credentials, CHEF)
    assert account.inbox.name == "Posteingang"
    assert not tickets.ccache.exists()


@pytest.mark.kerberos
def test_exchangelib_negotiate_without_a_ticket_raises_no_ticket(
    ews: Served, tickets: Tickets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NTLM_USER_FILE", raising=False)  # the lab in this process sets it
    register()
    with pytest.raises(NoTicket):
        _ = _account(ews.url, NEGOTIATE, None, CHEF).inbox


@pytest.mark.kerberos
def test_the_lab_server_answers_a_stale_ticket_with_401(
    ews: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tickets from a recreated realm (same names, new keys) are refused, not a server error."""
    import base64

    import requests
    import spnego

    old = start_kdc(tmp_path / "old-realm", DEMO_USERS)
    try:
        assert use_tickets(old, tmp_path, monkeypatch).kinit(ASSISTENZ).returncode == 0
        client = spnego.client(hostname="127.0.0.1", service="HTTP", protocol="negotiate")
        token = base64.b64encode(client.step()).decode()
        with requests.Session() as session:
            r = session.post(ews.url, headers={"Authorization": f"Negotiate {token}"}, timeout=10)
        assert r.status_code == 401
        assert "Negotiate" in r.raw.headers.getlist("WWW-Authenticate")
    finally:
        old.stop()
