"""Kerberos on the API itself: one-leg SPNEGO with the service's keytab (pyspnego acceptor).

pyspnego's acceptor finds its keys through `KRB5_KTNAME`; that variable is process-wide, so
it is set under one lock around each acceptance. Only Kerberos is accepted (no NTLM: the API
has no password list and a Kerberos login is one round trip, so no per-connection state).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import threading

import spnego

from bridge.api.auth.caller import Caller
from bridge.api.settings import NegotiateSettings

__all__ = ["NegotiateAcceptor"]

log = logging.getLogger("bridge.api.auth")
_ENV_LOCK = threading.Lock()


class NegotiateAcceptor:
    def __init__(self, settings: NegotiateSettings) -> None:
        self._keytab = f"FILE:{settings.keytab}"
        self._realm = settings.realm.upper() if settings.realm else None

    def accept(self, header_value: str) -> Caller | None:
        """The caller of a `Negotiate <token>` value, or None when the token is refused.

        Blocking (keytab and crypto); call it from a worker thread.
        """
        try:
            token = base64.b64decode(header_value, validate=True)
        except (binascii.Error, ValueError):
            return None
        if not token or token.startswith(b"NTLMSSP"):
            return None
        with _ENV_LOCK:
            os.environ["KRB5_KTNAME"] = self._keytab
            try:
                context = spnego.server(protocol="negotiate")
                reply = context.step(token)
                principal: str | None = context.client_principal if context.complete else None
            except Exception as exc:  # the auth edge: any token pyspnego chokes on is a 401
                log.info("Negotiate token refused: %s", type(exc).__name__)
                return None
        if not principal:
            return None
        _, _, realm = principal.rpartition("@")
        if self._realm is not None and realm.upper() != self._realm:
            log.info("Negotiate principal of another realm refused")
            return None
        return Caller(
            principal,
            "negotiate",
            negotiate_reply=base64.b64encode(reply).decode() if reply else None,
        )
