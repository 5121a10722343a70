"""OAuth bearer tokens: JWTs checked against the configured issuer, audience and JWKS.

The signing keys come from the issuer's JWKS URL, fetched once and again when a token names
a key id we have not seen (key rollover), at most once a minute.
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
import time
from typing import Any

import httpx
import jwt

from bridge.api.auth.caller import Caller
from bridge.api.settings import OAuthSettings

__all__ = ["BearerValidator"]

log = logging.getLogger("bridge.api.auth")
_REFETCH_AFTER_S = 60.0
_LEEWAY_S = 60


class BearerValidator:
    def __init__(self, settings: OAuthSettings) -> None:
        self._settings = settings
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = threading.Lock()

    def _verify(self) -> ssl.SSLContext | bool:
        if self._settings.ca_file is not None:
            return ssl.create_default_context(cafile=str(self._settings.ca_file))
        return True

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._fetched_at < _REFETCH_AFTER_S and self._keys:
                return
            self._fetched_at = time.monotonic()
            try:
                response = httpx.get(self._settings.jwks_url, verify=self._verify(), timeout=10)
                response.raise_for_status()
                keys = response.json().get("keys", [])
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("JWKS not available from %s: %s", self._settings.jwks_url, exc)
                return
            found: dict[str, Any] = {}
            for jwk in keys:
                kid = jwk.get("kid")
                if kid and jwk.get("kty") == "RSA":
                    found[kid] = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(jwk))
            self._keys = found

    def validate(self, token: str) -> Caller | None:
        """The caller a token speaks for, or None for any token we cannot trust.

        Blocking on the first call and on key rollover (JWKS fetch); call it from a worker.
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            return None
        if kid not in self._keys:
            self._refresh()
        key = self._keys.get(kid)
        if key is None:
            return None
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self._settings.audience,
                issuer=self._settings.issuer,
                leeway=_LEEWAY_S,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            log.info("bearer token refused: %s", type(exc).__name__)
            return None
        user = next(
            (claims[c] for c in self._settings.user_claims if isinstance(claims.get(c), str)),
            None,
        )
        if not user:
            return None  # an app-only token names nobody to act as
        return Caller(user.lower(), "bearer", token=token)
