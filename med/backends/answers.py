"""Answers that come from something in front of the server (a proxy, a sign-in portal), not from
Exchange or Graph, as MedErrors with a sentence that says what is in the way. Both backends use
these, so a user reads the same sentence whichever protocol met the proxy."""

from __future__ import annotations

import requests

from med.errors import ServerError, Unreachable

PROXY_REFUSED = (
    "A proxy between this computer and the server asks for its own sign-in (HTTP 407); put "
    "the proxy's user and password in HTTPS_PROXY, or exempt the server in NO_PROXY."
)


def proxy_refused(
    *, mailbox: str | None = None, folder: str | None = None, item: str | None = None
) -> Unreachable:
    """HTTP 407 from a proxy (often one that inspects TLS)."""
    return Unreachable(
        PROXY_REFUSED, code="ProxyAuthenticationRequired", mailbox=mailbox, folder=folder, item=item
    )


def web_page(
    status: int,
    endpoint: str,
    *,
    mailbox: str | None = None,
    folder: str | None = None,
    item: str | None = None,
) -> ServerError:
    """An HTML page where the protocol's answer belongs: a reverse proxy's error page (the
    server behind it is down) or a sign-in portal / wrong address (`endpoint` names the right
    kind of address)."""
    if status in (502, 503, 504):
        return Unreachable(
            f"A proxy in front of the server answered HTTP {status} with a web page: the server "
            "behind it is down or unreachable; try again later.",
            code=f"HTTP{status}",
            mailbox=mailbox,
            folder=folder,
            item=item,
        )
    return ServerError(
        f"The server answered with a web page (HTTP {status}): a proxy or sign-in portal is in "
        f"the way, or the address is not {endpoint}.",
        code="WebPage",
        mailbox=mailbox,
        folder=folder,
        item=item,
    )


def is_web_page(content_type: str | None) -> bool:
    return (content_type or "").lower().startswith("text/html")


def proxy_error_is_407(exc: BaseException) -> bool:
    """Whether `exc` (or what it wraps) is a CONNECT through an https proxy refused with 407.

    urllib3 says so only in the text of requests' ProxyError (exchangelib wraps it further in
    ErrorTimeoutExpired), hence this one match on text.
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, requests.exceptions.ProxyError):
            return " 407 " in f" {cause} "
        cause = cause.__cause__ or cause.__context__
    return False
