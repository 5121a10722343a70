"""Sign-in methods in one table (med.auth.SIGN_INS): backends, the CLI and profiles ask it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from med import AuthMethod, DelegateSession, InvalidInput, Profile
from med.auth import SIGN_INS, PasswordUse, login, sign_in
from med.config import profile_from_mapping

EWS = "https://mail.musterstadt.example/EWS/Exchange.asmx"
USER = "assistenz@musterstadt.example"


def test_every_method_is_registered_with_a_factory_that_exists() -> None:
    assert set(SIGN_INS) == set(AuthMethod)
    for method, entry in SIGN_INS.items():
        assert entry.method is method and entry.backends
        module, _, function = entry.factory.partition(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_a_backend_refuses_a_method_it_does_not_take_naming_those_it_does() -> None:
    with pytest.raises(
        InvalidInput, match="graph backend does not sign in with ntlm; it takes oauth"
    ):
        sign_in(AuthMethod.NTLM, "graph")
    with pytest.raises(InvalidInput, match=r"'x': The ews backend .* basic, ntlm, kerberos"):
        profile_from_mapping("x", {"server": EWS, "user": USER, "auth": "oauth"})
    # A Graph profile without `auth` signs in with OAuth.
    graph = profile_from_mapping(
        "g", {"server": "https://graph.example", "user": USER, "backend": "graph"}
    )
    assert graph.auth is AuthMethod.OAUTH


def test_passwords_as_each_method_wants_them(tmp_path: Path) -> None:
    basic = Profile("b", EWS, USER, AuthMethod.BASIC)
    with pytest.raises(InvalidInput, match="basic sign-in needs a password"):
        login(basic)
    assert login(basic, password="pw").requests_auth == "basic"
    ticket = login(Profile("k", EWS, USER, AuthMethod.KERBEROS))
    assert ticket.requests_auth == "Negotiate" and ticket.password is None
    oauth = Profile("g", "https://graph.example", USER, AuthMethod.OAUTH, "graph")
    with pytest.raises(InvalidInput, match="oauth sign-in takes no password"):
        login(oauth, password="pw")
    assert login(oauth, token_cache=tmp_path / "t.json").token is not None
    assert SIGN_INS[AuthMethod.KERBEROS].password_use is PasswordUse.OPTIONAL


async def test_kerberos_needs_no_setup_call_before_open() -> None:
    # The EWS backend registers Negotiate in exchangelib's auth map itself.
    from exchangelib.transport import AUTH_TYPE_MAP

    AUTH_TYPE_MAP.pop("Negotiate", None)
    async with DelegateSession.open(Profile("k", EWS, USER, AuthMethod.KERBEROS)) as session:
        assert session.backend_name == "ews"
    assert "Negotiate" in AUTH_TYPE_MAP
