"""API keys for scripts: `mbk_<id>_<secret>`, stored as SHA-256 of the whole key.

The secret is 32 random bytes, so a fast hash is safe here (argon2 is for passwords people
choose); the id finds the entry without trying every hash, and the comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

from bridge.api.auth.caller import Caller
from bridge.api.settings import ApiKeyEntry

__all__ = ["ApiKeys", "new_key"]

PREFIX = "mbk_"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key(caller: str, scopes: Sequence[str]) -> tuple[str, ApiKeyEntry]:
    """A fresh key (shown once) and the entry to store in the settings."""
    key_id = secrets.token_hex(4)
    key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    entry = ApiKeyEntry.model_validate(
        {"id": key_id, "sha256": _digest(key), "caller": caller, "scopes": tuple(scopes)}
    )
    return key, entry


class ApiKeys:
    """Checks presented keys against the stored hashes."""

    def __init__(self, entries: Sequence[ApiKeyEntry]) -> None:
        self._by_id = {e.id: e for e in entries}

    def caller(self, presented: str) -> Caller | None:
        """The caller a key speaks for, or None for an unknown or wrong key."""
        if not presented.startswith(PREFIX):
            return None
        key_id, _, secret = presented[len(PREFIX) :].partition("_")
        entry = self._by_id.get(key_id)
        if entry is None or not secret:
            return None
        if not hmac.compare_digest(entry.sha256, _digest(presented)):
            return None
        return Caller(entry.caller, "api_key", frozenset(entry.scopes), key_id=entry.id)
