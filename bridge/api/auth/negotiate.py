"""Kerberos on the API itself: one-leg SPNEGO with the service's keytab (a GSSAPI acceptor).

The keytab is named in the acceptor's credential store, so nothing process-wide is touched.
Only Kerberos is accepted (no NTLM: the API has no password list and a Kerberos login is one
round trip, so no per-connection state). A caller that forwards its ticket-granting ticket
(delegation) has it kept in a private in-memory ticket cache, one per caller and replaced by
each newer ticket, so that the API can act toward Exchange as that caller.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging

import gssapi
from gssapi.raw.misc import GSSError

from bridge.api.auth.caller import Caller
from bridge.api.settings import NegotiateSettings

__all__ = ["NegotiateAcceptor"]

log = logging.getLogger("bridge.api.auth")


def _ccache_of(principal: str) -> str:
    """The private in-memory ticket cache holding a caller's forwarded ticket."""
    digest = hashlib.sha256(principal.lower().encode()).hexdigest()[:24]
    return f"MEMORY:medbridge-api-{digest}"


class NegotiateAcceptor:
    def __init__(self, settings: NegotiateSettings) -> None:
        self._store: dict[bytes | str, bytes | str] = {"keytab": f"FILE:{settings.keytab}"}
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
        try:
            credentials = gssapi.Credentials(usage="accept", store=self._store)
            context = gssapi.SecurityContext(creds=credentials, usage="accept")
            reply = context.step(token)
            if not context.complete:
                return None
            principal = str(context.initiator_name)
            delegated = context.delegated_creds
        except Exception as exc:  # the auth edge: any token GSSAPI chokes on is a 401
            log.info("Negotiate token refused: %s", type(exc).__name__)
            return None
        _, _, realm = principal.rpartition("@")
        if not principal or (self._realm is not None and realm.upper() != self._realm):
            log.info("Negotiate principal of another realm refused")
            return None
        ccache = None
        if delegated is not None:
            ccache = _ccache_of(principal)
            try:
                delegated.store(store={"ccache": ccache}, overwrite=True)
            except GSSError as exc:
                log.warning("forwarded ticket of a caller not kept: %s", type(exc).__name__)
                ccache = None
        return Caller(
            principal,
            "negotiate",
            negotiate_reply=base64.b64encode(reply).decode() if reply else None,
            ccache=ccache,
        )
