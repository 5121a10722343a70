"""NTLM logins (raw and inside Negotiate) against the lab's authenticator, over real HTTP."""

from __future__ import annotations

import base64
import logging
import stat
from collections.abc import Iterator

import pytest
import requests
import spnego
from requests_ntlm import HttpNtlmAuth

from exlab.auth import LabAuthenticator
from exlab.auth.ntlm_users import md4, nt_hash
from exlab.demo import open_demo
from exlab.lab import LabUser
from tests.lab.authserver import DEMO_PASSWORD, Org, Served, demo_org, make_app, serve

ASSISTENZ = "assistenz@musterstadt.example"


@pytest.fixture(scope="module")
def auth() -> Iterator[LabAuthenticator]:
    authenticator = LabAuthenticator(
        demo_org(), ntlm_passwords={ASSISTENZ: DEMO_PASSWORD, "chef@musterstadt.example": "x"}
    )
    yield authenticator
    authenticator.close()


@pytest.fixture(scope="module")
def server(auth: LabAuthenticator) -> Iterator[Served]:
    with serve(make_app(auth)) as served:
        yield served


def _header(scheme: str, token: bytes) -> dict[str, str]:
    return {"Authorization": f"{scheme} {base64.b64encode(token).decode()}"}


def _server_token(r: requests.Response, scheme: str) -> bytes:
    offered = [v for v in r.raw.headers.getlist("WWW-Authenticate") if v.startswith(scheme + " ")]
    assert len(offered) == 1, r.raw.headers.getlist("WWW-Authenticate")
    return base64.b64decode(offered[0].split(" ", 1)[1])


def _handshake(url: str, user: str, password: str, protocol: str = "ntlm") -> requests.Response:
    """The three NTLM legs on one connection, as exchangelib sends them."""
    scheme = "NTLM" if protocol == "ntlm" else "Negotiate"
    s = requests.Session()
    client = spnego.client(user, password, hostname="127.0.0.1", service="HTTP", protocol=protocol)
    r = s.post(url, headers=_header(scheme, client.step()), timeout=10)
    assert r.status_code == 401
    return s.post(url, headers=_header(scheme, client.step(_server_token(r, scheme))), timeout=10)


@pytest.mark.parametrize("user", ["MUSTERSTADT\\assistenz", ASSISTENZ, "assistenz"])
def test_ntlm_login_names_the_mailbox(server: Served, user: str) -> None:
    r = _handshake(server.url, user, DEMO_PASSWORD)
    assert r.status_code == 200
    assert r.text == ASSISTENZ


def test_ntlm_inside_negotiate_names_the_mailbox(server: Served) -> None:
    r = _handshake(server.url, "MUSTERSTADT\\assistenz", DEMO_PASSWORD, protocol="negotiate")
    assert r.status_code == 200
    assert r.text == ASSISTENZ


def test_ntlm_wrong_password_is_401(server: Served) -> None:
    r = _handshake(server.url, "MUSTERSTADT\\assistenz", "Demo-2025!")
    assert r.status_code == 401
    assert "NTLM" in r.raw.headers.getlist("WWW-Authenticate")


def test_ntlm_unknown_user_and_user_without_ntlm_password_are_refused(server: Served) -> None:
    assert _handshake(server.url, "MUSTERSTADT\\nobody", DEMO_PASSWORD).status_code == 401
    assert _handshake(server.url, "MUSTERSTADT\\chef", DEMO_PASSWORD).status_code == 401


def test_ntlm_foreign_domain_is_refused(server: Served) -> None:
    assert _handshake(server.url, "EVIL\\assistenz", DEMO_PASSWORD).status_code == 401


def test_requests_ntlm_as_used_by_exchangelib_logs_in_repeatedly(server: Served) -> None:
    s = requests.Session()
    s.auth = HttpNtlmAuth("MUSTERSTADT\\assistenz", DEMO_PASSWORD)
    for _ in range(3):
        r = s.post(server.url, data=b"<x/>", timeout=10)
        assert r.status_code == 200
        assert r.text == ASSISTENZ


def test_requests_ntlm_with_wrong_password_ends_in_401(server: Served) -> None:
    s = requests.Session()
    s.auth = HttpNtlmAuth("MUSTERSTADT\\assistenz", "nope")
    assert s.post(server.url, timeout=10).status_code == 401


def test_the_last_leg_on_another_connection_does_not_log_in(server: Served) -> None:
    client = spnego.client("MUSTERSTADT\\assistenz", DEMO_PASSWORD, protocol="ntlm")
    r = requests.post(server.url, headers=_header("NTLM", client.step()), timeout=10)
    final = client.step(_server_token(r, "NTLM"))
    other = requests.Session()
    r2 = other.post(server.url, headers=_header("NTLM", final), timeout=10)
    assert r2.status_code == 401


@pytest.mark.parametrize(
    "token",
    [
        b"NTLMSSP\x00\x03\x00\x00\x00" + b"\x00" * 60,
        b"NTLMSSP\x00\x01\x00\x00\x00",
        b"\x00" * 7,
        b"x",
    ],
)
def test_garbage_ntlm_tokens_are_401_never_500(server: Served, token: bytes) -> None:
    for scheme in ("NTLM", "Negotiate"):
        r = requests.post(server.url, headers=_header(scheme, token), timeout=10)
        assert r.status_code == 401, (scheme, token)


class _Directory(Org):
    """An org that lists its users, as `exlab.Lab.users()` does."""

    def users(self) -> list[LabUser]:
        return [
            LabUser("chef@musterstadt.example", "Dr. Anna Berg", "user", True),
            LabUser(ASSISTENZ, "Tom Weber", "user", True),
            LabUser("poststelle@musterstadt.example", "Poststelle", "shared", False),
        ]


def test_by_default_ntlm_knows_users_whose_password_is_the_demo_password() -> None:
    org = _Directory({"chef@musterstadt.example": "changed-1", ASSISTENZ: DEMO_PASSWORD})
    auth = LabAuthenticator(org)
    with serve(make_app(auth)) as served:
        assert _handshake(served.url, "MUSTERSTADT\\assistenz", DEMO_PASSWORD).text == ASSISTENZ
        assert _handshake(served.url, "MUSTERSTADT\\chef", DEMO_PASSWORD).status_code == 401
        assert _handshake(served.url, "MUSTERSTADT\\chef", "changed-1").status_code == 401
    auth.close()


def test_ntlm_knows_the_demo_labs_logins_without_being_told() -> None:
    lab = open_demo(None)
    auth = LabAuthenticator(lab)
    with serve(make_app(auth)) as served:
        assert _handshake(served.url, "MUSTERSTADT\\chef", DEMO_PASSWORD).text == (
            "chef@musterstadt.example"
        )
        assert _handshake(served.url, "MUSTERSTADT\\poststelle", DEMO_PASSWORD).status_code == 401
    auth.close()


def test_ntlm_user_file_is_private_holds_no_plaintext_and_goes_away(server: Served) -> None:
    auth = LabAuthenticator(demo_org(), ntlm_passwords={ASSISTENZ: DEMO_PASSWORD})
    with serve(make_app(auth)) as served:
        assert _handshake(served.url, "assistenz", DEMO_PASSWORD).status_code == 200
        path = auth.ntlm_user_file
        assert path is not None and path.exists()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        content = path.read_text()
        assert DEMO_PASSWORD not in content
        assert nt_hash(DEMO_PASSWORD).hex().upper() in content
    auth.close()
    assert not path.exists()


def test_handshake_tokens_stay_out_of_debug_logs(
    server: Served, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert _handshake(server.url, "MUSTERSTADT\\assistenz", DEMO_PASSWORD).status_code == 200
    assert "TlRMTVNT" not in caplog.text  # base64 of "NTLMSS", the start of every NTLM token
    assert DEMO_PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("login", "address"),
    [
        ("MUSTERSTADT\\assistenz", ASSISTENZ),
        ("assistenz@MUSTERSTADT.EXAMPLE", ASSISTENZ),
        ("assistenz@musterstadt.example", ASSISTENZ),
        ("assistenz@OTHER.REALM", None),
        ("HTTP/localhost@MUSTERSTADT.EXAMPLE", None),
        ("a@b@MUSTERSTADT.EXAMPLE", None),
    ],
)
def test_accepted_principals_map_to_lab_mailboxes_only(
    auth: LabAuthenticator, login: str, address: str | None
) -> None:
    assert auth.principal_address(login) == address


@pytest.mark.parametrize(
    ("data", "digest"),
    [
        (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
        (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
        (b"message digest", "d9130a8164549fe818874806e1c7014b"),
        (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
    ],
)
def test_md4_matches_rfc_1320_vectors(data: bytes, digest: str) -> None:
    assert md4(data).hex() == digest


def test_nt_hash_of_password_is_the_known_value() -> None:
    assert nt_hash("password").hex() == "8846f7eaee8fb117ad06bdd830b7586c"
