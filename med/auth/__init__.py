"""Sign-in methods: one module each, registered once in `SIGN_INS`.

A sign-in turns who the user is (and a password or a token cache) into a `Login`, what a
backend's library logs in with: an auth name in exchangelib's auth map (`Basic`, `NTLM`, our
`Negotiate`) or a bearer-token source. The backends and the `medbridge` command ask this table,
never a list of methods of their own, so a new method is its module plus one entry here (and its
`AuthMethod` value).

- `password` (Basic, NTLM): exchangelib's own auth classes.
- `negotiate` (Kerberos, NTLM inside SPNEGO): pyspnego, registered in exchangelib's auth map.
- `oauth` (Microsoft Graph): MSAL, tokens from a cache file a sign-in filled.

The modules are imported only when their method is used (they need the ews or graph extra).
"""

from __future__ import annotations

import enum
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from med.errors import InvalidInput
from med.model import AuthMethod, Profile

__all__ = ["SIGN_INS", "Login", "PasswordUse", "SignIn", "login", "sign_in"]


@dataclass(frozen=True)
class Login:
    """What a backend signs in with; each backend says which kinds it takes.

    `requests_auth` names an entry of exchangelib's auth map (with `username`/`password` as its
    credentials, none for a ticket cache); `token` returns a valid bearer token per request.
    """

    method: AuthMethod
    username: str | None = None
    password: str | None = None
    requests_auth: str | None = None
    token: Callable[[], str] | None = None


class PasswordUse(enum.Enum):
    """Whether a sign-in method takes a password."""

    REQUIRED = "required"  # Basic, NTLM
    OPTIONAL = "optional"  # Kerberos: instead of the ticket cache
    NEVER = "never"  # OAuth: tokens from an interactive sign-in


@dataclass(frozen=True)
class SignIn:
    """One sign-in method: who may use it and where it is implemented."""

    method: AuthMethod
    backends: frozenset[str]
    password_use: PasswordUse
    uses_token_cache: bool
    """Tokens come from a cache file an earlier, interactive sign-in filled."""
    factory: str
    """"module:function" building the `Login` (see `login`)."""


SIGN_INS: dict[AuthMethod, SignIn] = {
    entry.method: entry
    for entry in (
        SignIn(
            AuthMethod.BASIC,
            frozenset({"ews"}),
            PasswordUse.REQUIRED,
            False,
            "med.auth.password:basic",
        ),
        SignIn(
            AuthMethod.NTLM,
            frozenset({"ews"}),
            PasswordUse.REQUIRED,
            False,
            "med.auth.password:ntlm",
        ),
        SignIn(
            AuthMethod.KERBEROS,
            frozenset({"ews"}),
            PasswordUse.OPTIONAL,
            False,
            "med.auth.negotiate:login",
        ),
        SignIn(
            AuthMethod.OAUTH, frozenset({"graph"}), PasswordUse.NEVER, True, "med.auth.oauth:login"
        ),
    )
}


def sign_in(method: AuthMethod, backend: str | None = None) -> SignIn:
    """The registered sign-in for `method`, checked against `backend` when given.

    Raises:
        InvalidInput: the backend does not take this method.
    """
    entry = SIGN_INS[method]
    if backend is not None and backend not in entry.backends:
        takes = ", ".join(m.value for m, s in SIGN_INS.items() if backend in s.backends)
        raise InvalidInput(
            f"The {backend} backend does not sign in with {method.value}; it takes {takes}."
        )
    return entry


def login(
    profile: Profile, *, password: str | None = None, token_cache: Path | None = None
) -> Login:
    """The `Login` for a profile's sign-in method and backend.

    Each method's factory is `function(profile, *, password, token_cache) -> Login`.

    Raises:
        InvalidInput: the backend does not take the method, or a password is missing or
            not wanted.
    """
    entry = sign_in(profile.auth, profile.backend)
    if entry.password_use is PasswordUse.REQUIRED and not password:
        raise InvalidInput(f"{profile.auth.value} sign-in needs a password.")
    if entry.password_use is PasswordUse.NEVER and password is not None:
        raise InvalidInput(
            f"{profile.auth.value} sign-in takes no password; sign in interactively "
            "(device code or browser)."
        )
    module_name, _, function_name = entry.factory.partition(":")
    factory: Callable[..., Login] = getattr(importlib.import_module(module_name), function_name)
    return factory(profile, password=password, token_cache=token_cache)
