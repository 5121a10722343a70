"""Who is calling: the result of authentication, whatever the scheme."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bridge.api.settings import SCOPES

__all__ = ["ALL_SCOPES", "Caller"]

ALL_SCOPES = frozenset(SCOPES)


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller.

    `name` is the Kerberos principal, the token's user or the API key's caller; `token` is
    the caller's own bearer token when it may be passed on to Graph.
    """

    name: str
    scheme: Literal["negotiate", "bearer", "api_key"]
    scopes: frozenset[str] = ALL_SCOPES
    token: str | None = None
    key_id: str | None = None
    #: The acceptor's mutual-authentication token for the response (Negotiate).
    negotiate_reply: str | None = None
    #: The ticket cache holding the ticket the caller forwarded (Negotiate with delegation):
    #: the API then acts toward Exchange with the caller's own Kerberos identity.
    ccache: str | None = None
