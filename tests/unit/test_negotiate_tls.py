"""Logins bound to the TLS channel (Extended Protection): the client sends RFC 5929 bindings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from exlab.auth import LabAuthenticator
from exlab.auth.kdc import LabKdc
from exlab.graph.tls import LabTls, ensure_tls
from med.auth.negotiate import LoginRefused, NegotiateAuth, tls_channel_bindings
from tests.lab.authserver import DEMO_PASSWORD, Served, demo_org, make_app, serve
from tests.lab.kdcrealm import Tickets, keytab_options, optional_kdc, shared_kdc, use_tickets

ASSISTENZ = "assistenz@musterstadt.example"


def _der(tls: LabTls) -> bytes:
    return x509.load_pem_x509_certificate(tls.cert_file.read_bytes()).public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> LabTls:
    return ensure_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def other_tls(tmp_path_factory: pytest.TempPathFactory) -> LabTls:
    """Another certificate, as a TLS-terminating proxy in the middle would present."""
    return ensure_tls(tmp_path_factory.mktemp("other-tls"))


@pytest.fixture(scope="module")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> LabKdc:
    return shared_kdc(tmp_path_factory)


@pytest.fixture(scope="session")
def realm(tmp_path_factory: pytest.TempPathFactory) -> LabKdc | None:
    return optional_kdc(tmp_path_factory)


def _server(kdc: LabKdc | None, served_tls: LabTls, expected: LabTls) -> Iterator[Served]:
    auth = LabAuthenticator(
        demo_org(),
        ntlm_passwords={ASSISTENZ: DEMO_PASSWORD},
        tls_certificate=_der(expected),
        **keytab_options(kdc),
    )
    with serve(make_app(auth), ssl=served_tls.uvicorn_options()) as served:
        yield served
    auth.close()


@pytest.fixture(scope="module")
def bound(realm: LabKdc | None, tls: LabTls) -> Iterator[Served]:
    """A lab on https that checks the bindings against its own certificate."""
    yield from _server(realm, tls, tls)


@pytest.fixture(scope="module")
def behind_proxy(realm: LabKdc | None, tls: LabTls, other_tls: LabTls) -> Iterator[Served]:
    """The lab expects `other_tls` (its real certificate) but clients see `tls` (the proxy's)."""
    yield from _server(realm, tls, other_tls)


@pytest.fixture
def tickets(kdc: LabKdc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tickets:
    return use_tickets(kdc, tmp_path, monkeypatch)


def _post(url: str, auth: NegotiateAuth, tls: LabTls) -> requests.Response:
    with requests.Session() as s:
        s.auth = auth
        # per request: REQUESTS_CA_BUNDLE in the environment would override Session.verify
        return s.post(url, data=b"<soap/>", timeout=10, verify=str(tls.ca_file))


def test_ntlm_over_https_is_bound_to_the_servers_certificate(bound: Served, tls: LabTls) -> None:
    auth = NegotiateAuth("MUSTERSTADT\\assistenz", DEMO_PASSWORD, protocol="ntlm")
    assert _post(bound.url, auth, tls).text == ASSISTENZ


def test_ntlm_through_a_tls_proxy_is_refused(behind_proxy: Served, tls: LabTls) -> None:
    auth = NegotiateAuth("MUSTERSTADT\\assistenz", DEMO_PASSWORD, protocol="ntlm")
    with pytest.raises(LoginRefused):
        _post(behind_proxy.url, auth, tls)


@pytest.mark.kerberos
def test_kerberos_over_https_is_bound_to_the_servers_certificate(
    bound: Served, tls: LabTls, tickets: Tickets
) -> None:
    assert tickets.kinit(ASSISTENZ).returncode == 0
    assert _post(bound.url, NegotiateAuth(protocol="kerberos"), tls).text == ASSISTENZ


@pytest.mark.kerberos
def test_kerberos_through_a_tls_proxy_is_refused(
    behind_proxy: Served, tls: LabTls, tickets: Tickets
) -> None:
    assert tickets.kinit(ASSISTENZ).returncode == 0
    with pytest.raises(LoginRefused):
        _post(behind_proxy.url, NegotiateAuth(protocol="kerberos"), tls)


def test_bindings_follow_rfc_5929(tls: LabTls) -> None:
    der = _der(tls)
    cert = x509.load_der_x509_certificate(der)
    bindings = tls_channel_bindings(der)
    assert bindings.application_data == b"tls-server-end-point:" + cert.fingerprint(
        cert.signature_hash_algorithm  # type: ignore[arg-type]
    )
