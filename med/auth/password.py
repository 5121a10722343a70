"""Basic and NTLM logins with a password: exchangelib's own auth classes do the work."""

from __future__ import annotations

from pathlib import Path

from exchangelib.transport import BASIC, NTLM

from med.auth import Login
from med.model import AuthMethod, Profile


def basic(profile: Profile, *, password: str | None, token_cache: Path | None = None) -> Login:
    return Login(AuthMethod.BASIC, profile.username or profile.user, password, requests_auth=BASIC)


def ntlm(profile: Profile, *, password: str | None, token_cache: Path | None = None) -> Login:
    return Login(AuthMethod.NTLM, profile.username or profile.user, password, requests_auth=NTLM)
