"""The Negotiate client (med.auth.negotiate) against the lab's authenticator and a real KDC."""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import krb5
import pytest
import requests
from fastapi import FastAPI, Request
from starlette.responses import PlainTextResponse, Response

from exlab.auth import LabAuthenticator
from exlab.auth.kdc import LabKdc, start_kdc
from med.auth.negotiate import (
    NEGOTIATE,
    ClockSkew,
    KdcUnreachable,
    LoginRefused,
    NegotiateAuth,
    NegotiateError,
    NoTicket,
    ServerNotVerified,
    UnknownServer,
    WrongPassword,
    register,
    translate,
)
from tests.lab.authserver import DEMO_PASSWORD, Served, demo_org, make_app, serve
from tests.lab.kdcrealm import (
    DEMO_USERS,
    Tickets,
    keytab_options,
    optional_kdc,
    shared_kdc,
    tickets_issued,
    use_tickets,
)

ASSISTENZ = "assistenz@musterstadt.example"
PRINCIPAL = "assistenz@MUSTERSTADT.EXAMPLE"


@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> LabKdc:
    return shared_kdc(tmp_path_factory)


@pytest.fixture(scope="session")
def realm(tmp_path_factory: pytest.TempPathFactory) -> LabKdc | None:
    return optional_kdc(tmp_path_factory)


@pytest.fixture(scope="module")
def server(realm: LabKdc | None) -> Iterator[Served]:
    auth = LabAuthenticator(
        demo_org(), ntlm_passwords={ASSISTENZ: DEMO_PASSWORD}, **keytab_options(realm)
    )
    with serve(make_app(auth)) as served:
        yield served
    auth.close()


@pytest.fixture
def tickets(kdc: LabKdc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tickets:
    return use_tickets(kdc, tmp_path, monkeypatch)


def _get(url: str, auth: NegotiateAuth) -> requests.Response:
    with requests.Session() as s:
        s.auth = auth
        return s.post(url, data=b"<soap/>", timeout=10)


@pytest.mark.kerberos
def test_ticket_cache_login_after_kinit_with_verified_server(
    server: Served, tickets: Tickets
) -> None:
    assert tickets.kinit(ASSISTENZ).returncode == 0
    r = _get(server.url, NegotiateAuth(require_mutual=True))
    assert r.status_code == 200
    assert r.text == ASSISTENZ


@pytest.mark.kerberos
def test_one_session_logs_in_for_every_request(server: Served, tickets: Tickets) -> None:
    assert tickets.kinit(ASSISTENZ).returncode == 0
    with requests.Session() as s:
        s.auth = NegotiateAuth(protocol="kerberos")
        assert [s.post(server.url, timeout=10).text for _ in range(3)] == [ASSISTENZ] * 3


@pytest.mark.kerberos
def test_password_login_gets_its_ticket_in_memory_only(server: Served, tickets: Tickets) -> None:
    r = _get(server.url, NegotiateAuth(PRINCIPAL, DEMO_PASSWORD, protocol="kerberos"))
    assert r.text == ASSISTENZ
    assert not tickets.ccache.exists()


@pytest.mark.kerberos
def test_without_a_ticket_the_error_says_to_run_kinit(
    server: Served, tickets: Tickets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lab's NTLM acceptor runs in this process and sets NTLM_USER_FILE, which pyspnego's
    # Negotiate client would take as NTLM credentials; a real client has no such file.
    monkeypatch.delenv("NTLM_USER_FILE", raising=False)
    for protocol in ("kerberos", "negotiate"):
        with pytest.raises(NoTicket) as info:
            _get(server.url, NegotiateAuth(protocol=protocol))  # type: ignore[arg-type]
        assert "kinit" in str(info.value)
        assert "HTTP/127.0.0.1" in str(info.value)


@pytest.mark.kerberos
def test_wrong_password_is_a_wrong_password_error(server: Served, tickets: Tickets) -> None:
    with pytest.raises(WrongPassword) as info:
        _get(server.url, NegotiateAuth(PRINCIPAL, "Demo-2025!", protocol="kerberos"))
    assert PRINCIPAL in str(info.value)
    with pytest.raises(WrongPassword):
        _get(server.url, NegotiateAuth("nobody@MUSTERSTADT.EXAMPLE", "x", protocol="kerberos"))


@pytest.mark.kerberos
def test_a_host_without_service_key_is_an_unknown_server(server: Served, tickets: Tickets) -> None:
    assert tickets.kinit(ASSISTENZ).returncode == 0
    auth = NegotiateAuth(protocol="kerberos", hostname="mail.musterstadt.example")
    with pytest.raises(UnknownServer) as info:
        _get(server.url, auth)
    assert "HTTP/mail.musterstadt.example" in str(info.value)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.kerberos
def test_an_unreachable_kdc_is_reported_as_such(
    server: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "krb5.conf"
    conf.write_text(
        "[libdefaults]\n default_realm = MUSTERSTADT.EXAMPLE\n udp_preference_limit = 1\n"
        " dns_lookup_kdc = false\n"
        f"[realms]\n MUSTERSTADT.EXAMPLE = {{\n  kdc = 127.0.0.1:{_dead_port()}\n }}\n"
    )
    monkeypatch.setenv("KRB5_CONFIG", str(conf))
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'cc'}")
    with pytest.raises(KdcUnreachable):
        _get(server.url, NegotiateAuth(PRINCIPAL, DEMO_PASSWORD, protocol="kerberos"))


@pytest.mark.kerberos
def test_a_kdc_clock_far_off_is_a_clock_skew_error(
    kdc: LabKdc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real KRB_AP_ERR_SKEW from the KDC, by moving this client's krb5 clock an hour ahead.

    MIT clients adopt the KDC's time on a pre-auth round trip unless kdc_timesync is off.
    """
    conf = tmp_path / "krb5.conf"
    text = kdc.krb5_config.read_text()
    conf.write_text(text.replace("[libdefaults]\n", "[libdefaults]\n\tkdc_timesync = 0\n", 1))
    monkeypatch.setenv("KRB5_CONFIG", str(conf))
    ctx = krb5.init_context()
    krb5.set_real_time(ctx, int(time.time()) + 3600, 0)
    principal = krb5.parse_name_flags(ctx, PRINCIPAL.encode())
    opt = krb5.get_init_creds_opt_alloc(ctx)
    with pytest.raises(krb5.Krb5Error) as info:
        krb5.get_init_creds_password(ctx, principal, opt, password=DEMO_PASSWORD.encode())
    error = translate(info.value, spn="HTTP/localhost", user=PRINCIPAL)
    assert isinstance(error, ClockSkew)
    assert "clock" in error.hint.lower()


@pytest.mark.kerberos
def test_a_ticket_from_a_recreated_realm_is_refused_cleanly(
    server: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = start_kdc(tmp_path / "old-realm", DEMO_USERS)
    try:
        stale = use_tickets(old, tmp_path, monkeypatch)
        assert stale.kinit(ASSISTENZ).returncode == 0
        with pytest.raises(LoginRefused):
            _get(server.url, NegotiateAuth(protocol="kerberos"))
    finally:
        old.stop()


@pytest.mark.kerberos
def test_a_password_login_asks_the_kdc_once_for_many_requests(
    server: Served, kdc: LabKdc, tickets: Tickets
) -> None:
    before = tickets_issued(kdc, PRINCIPAL)
    with requests.Session() as s:
        s.auth = NegotiateAuth(PRINCIPAL, DEMO_PASSWORD)
        assert [s.post(server.url, timeout=10).text for _ in range(3)] == [ASSISTENZ] * 3
    assert tickets_issued(kdc, PRINCIPAL) - before == 1


@pytest.mark.kerberos
def test_negotiate_with_a_password_falls_back_to_ntlm_without_a_kdc(
    server: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = tmp_path / "krb5.conf"
    conf.write_text(
        "[libdefaults]\n default_realm = MUSTERSTADT.EXAMPLE\n udp_preference_limit = 1\n"
        f"[realms]\n MUSTERSTADT.EXAMPLE = {{\n  kdc = 127.0.0.1:{_dead_port()}\n }}\n"
    )
    monkeypatch.setenv("KRB5_CONFIG", str(conf))
    assert _get(server.url, NegotiateAuth(PRINCIPAL, DEMO_PASSWORD)).text == ASSISTENZ


@pytest.mark.kerberos
def test_an_expired_ticket_got_with_the_password_is_renewed(
    server: Served, kdc: LabKdc, tickets: Tickets
) -> None:
    short = "kurzzeit@musterstadt.example"
    principal = kdc.principal(short)
    if principal not in kdc.principals():
        kdc.add_user(short, DEMO_PASSWORD)
        kdc.kadmin(f'modprinc -maxlife "2 seconds" {principal}')
    with requests.Session() as s:
        s.auth = NegotiateAuth(principal, DEMO_PASSWORD, protocol="kerberos")
        issued_at = time.time()
        assert s.post(server.url, timeout=10).text == short
        started = tickets_issued(kdc, principal)
        while time.time() < issued_at + 3:  # the ticket lives 2 seconds
            time.sleep(0.1)
        assert s.post(server.url, timeout=10).text == short
    assert tickets_issued(kdc, principal) == started + 1


def test_ntlm_login_with_password(server: Served) -> None:
    r = _get(server.url, NegotiateAuth("MUSTERSTADT\\assistenz", DEMO_PASSWORD, protocol="ntlm"))
    assert r.text == ASSISTENZ


def test_ntlm_wrong_password_is_login_refused(server: Served) -> None:
    with pytest.raises(LoginRefused) as info:
        _get(server.url, NegotiateAuth("MUSTERSTADT\\assistenz", "nope", protocol="ntlm"))
    assert "MUSTERSTADT\\assistenz" in str(info.value)


def test_a_server_that_offers_no_negotiate_gets_the_401_back() -> None:
    app = FastAPI()

    @app.post("/EWS/Exchange.asmx")
    async def basic_only() -> Response:
        return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="x"'})

    with serve(app) as served:
        r = _get(served.url, NegotiateAuth("MUSTERSTADT\\assistenz", "x", protocol="ntlm"))
    assert r.status_code == 401


def test_a_forged_mutual_token_is_not_trusted(kdc: LabKdc, tickets: Tickets) -> None:
    """A server that accepts anything and answers with garbage cannot prove it is the service."""
    app = FastAPI()

    @app.post("/EWS/Exchange.asmx")
    async def anything(request: Request) -> Response:
        if "authorization" not in request.headers:
            return Response(status_code=401, headers={"WWW-Authenticate": "Negotiate"})
        forged = base64.b64encode(b"\xa1\x07\x30\x05\xa0\x03\x0a\x01\x00").decode()
        return PlainTextResponse("ok", headers={"WWW-Authenticate": f"Negotiate {forged}"})

    assert tickets.kinit(ASSISTENZ).returncode == 0
    with serve(app) as served, pytest.raises(ServerNotVerified):
        _get(served.url, NegotiateAuth(protocol="kerberos"))


def test_the_password_never_shows_in_repr() -> None:
    auth = NegotiateAuth("MUSTERSTADT\\assistenz", DEMO_PASSWORD)
    assert DEMO_PASSWORD not in repr(auth)


def test_every_error_reads_as_a_sentence_with_advice() -> None:
    for cls in (NoTicket, WrongPassword, ClockSkew, UnknownServer, KdcUnreachable, LoginRefused):
        error = cls("Something went wrong")
        assert issubclass(cls, NegotiateError)
        assert str(error).startswith("Something went wrong. ")
        assert error.hint.endswith(".")


def test_unknown_failures_become_a_generic_negotiate_error() -> None:
    error = translate(ValueError("boom"), spn="HTTP/x", user=None)
    assert type(error) is NegotiateError
    assert "HTTP/x" in str(error)


def test_register_makes_exchangelib_accept_the_negotiate_auth_type() -> None:
    from exchangelib import Configuration, Credentials
    from exchangelib.transport import get_auth_instance

    assert register() == NEGOTIATE == register()
    endpoint = "http://127.0.0.1:1/EWS/Exchange.asmx"
    config = Configuration(service_endpoint=endpoint, auth_type=NEGOTIATE)
    assert config.auth_type == NEGOTIATE
    assert isinstance(get_auth_instance(NEGOTIATE), NegotiateAuth)
    with_password = get_auth_instance(NEGOTIATE, username=PRINCIPAL, password=DEMO_PASSWORD)
    assert with_password.username == PRINCIPAL
    Configuration(
        service_endpoint=endpoint,
        credentials=Credentials(PRINCIPAL, DEMO_PASSWORD),
        auth_type=NEGOTIATE,
    )


@pytest.mark.kerberos
def test_exchangelib_session_with_negotiate_uses_the_ticket(
    server: Served, tickets: Tickets
) -> None:
    from exchangelib import Configuration
    from exchangelib.protocol import Protocol

    register()
    assert tickets.kinit(ASSISTENZ).returncode == 0
    protocol = Protocol(config=Configuration(service_endpoint=server.url, auth_type=NEGOTIATE))
    session = protocol.create_session()
    try:
        r = session.post(server.url, data=b"<soap/>", timeout=10)
    finally:
        session.close()
    assert r.status_code == 200
    assert r.text == ASSISTENZ
