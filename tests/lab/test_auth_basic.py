"""Basic logins against the lab's authenticator, over a real HTTP connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from exlab.auth import LabAuthenticator, mailbox_address
from exlab.demo import open_demo
from tests.lab.authserver import DEMO_PASSWORD, Org, Served, demo_org, make_app, serve


@pytest.fixture(scope="module")
def org() -> Org:
    return demo_org()


@pytest.fixture(scope="module")
def server(org: Org) -> Iterator[Served]:
    with serve(make_app(LabAuthenticator(org))) as served:
        yield served


def test_basic_login_with_the_right_password_names_the_mailbox(server: Served) -> None:
    r = requests.post(server.url, auth=("assistenz@musterstadt.example", DEMO_PASSWORD), timeout=10)
    assert r.status_code == 200
    assert r.text == "assistenz@musterstadt.example"


@pytest.mark.parametrize(
    "login", ["assistenz", "MUSTERSTADT\\assistenz", "Assistenz@MUSTERSTADT.EXAMPLE"]
)
def test_basic_login_accepts_the_usual_windows_login_forms(server: Served, login: str) -> None:
    r = requests.post(server.url, auth=(login, DEMO_PASSWORD), timeout=10)
    assert r.status_code == 200
    assert r.text == "assistenz@musterstadt.example"


def test_wrong_password_is_401_with_all_three_schemes_offered(server: Served) -> None:
    r = requests.post(server.url, auth=("assistenz", "wrong"), timeout=10)
    assert r.status_code == 401
    offered = r.raw.headers.getlist("WWW-Authenticate")
    assert offered == ["Negotiate", "NTLM", 'Basic realm="musterstadt.example"']


def test_no_credentials_is_a_401_challenge(server: Served) -> None:
    r = requests.post(server.url, timeout=10)
    assert r.status_code == 401
    assert "NTLM" in r.raw.headers.getlist("WWW-Authenticate")


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!notbase64",
        "Basic bm9jb2xvbg==",  # "nocolon"
        "Basic " + "//79",  # not UTF-8
        "Bearer abc",
        "Digest username=x",
        "NTLM " + "A" * 10,
        "Negotiate %%%",
    ],
)
def test_malformed_authorization_is_401_never_500(server: Served, header: str) -> None:
    r = requests.post(server.url, headers={"Authorization": header}, timeout=10)
    assert r.status_code == 401


def test_unknown_user_and_foreign_domain_are_refused(server: Served) -> None:
    for login in ("nobody", "EVIL\\assistenz", "poststelle"):
        r = requests.post(server.url, auth=(login, DEMO_PASSWORD), timeout=10)
        assert r.status_code == 401, login


def test_basic_against_the_demo_lab_and_a_changed_password() -> None:
    lab = open_demo(None)
    with serve(make_app(LabAuthenticator(lab))) as served:
        r = requests.post(served.url, auth=("chef", DEMO_PASSWORD), timeout=10)
        assert r.text == "chef@musterstadt.example"
        lab.set_password("chef@musterstadt.example", "Neu-2026!")
        old = requests.post(served.url, auth=("chef", DEMO_PASSWORD), timeout=10)
        assert old.status_code == 401
        new = requests.post(served.url, auth=("chef", "Neu-2026!"), timeout=10)
        assert new.status_code == 200
        # functional mailboxes have no login
        r = requests.post(served.url, auth=("poststelle", DEMO_PASSWORD), timeout=10)
        assert r.status_code == 401


class _Exploding:
    def check_password(self, address: str, password: str) -> bool:
        raise RuntimeError("store is gone")


def test_a_failing_password_store_gives_401_not_500() -> None:
    with serve(make_app(LabAuthenticator(_Exploding()))) as served:
        r = requests.post(served.url, auth=("chef", DEMO_PASSWORD), timeout=10)
        assert r.status_code == 401


@pytest.mark.parametrize(
    ("login", "address"),
    [
        ("chef", "chef@musterstadt.example"),
        ("musterstadt.example\\CHEF", "chef@musterstadt.example"),
        ("chef@MUSTERSTADT.EXAMPLE", "chef@musterstadt.example"),
        ("chef@other.example", "chef@other.example"),
        ("OTHER\\chef", None),
        ("", None),
        ("a@b@c", None),
        ("@musterstadt.example", None),
    ],
)
def test_login_names_map_to_mailbox_addresses(login: str, address: str | None) -> None:
    assert mailbox_address(login) == address
