"""Errors raised by med; every one carries a sentence a user can act on.

Catch the level you care about::

    MedError                     anything med raises on purpose
    ├── AuthError                the server did not accept who we are
    │   ├── BadCredentials       wrong user name or password
    │   └── KerberosError        no ticket, expired ticket, or the server's key is unknown
    ├── AccessDenied(right)      the rights on the mailbox or folder do not allow this
    ├── NotFound                 mailbox, folder or item does not exist (or is invisible to us)
    ├── Throttled(retry_after)   the server asks us to slow down; retry after `retry_after` s
    ├── Unsupported(feature, backend)   this backend cannot do that at all
    ├── Conflict                 the item changed on the server since we read it
    ├── InvalidInput             the request itself is wrong (bad address, bad range, ...)
    └── ServerError(code)        the server failed or answered something we do not understand
        ├── Unreachable          no connection to the server (down, wrong address, TLS failure)
        └── EwsDisabled          the server or tenant has switched EWS off for us

Errors name the mailbox, folder or item concerned where known (`mailbox`, `folder`, `item`).
"""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "AuthError",
    "BadCredentials",
    "Conflict",
    "EwsDisabled",
    "InvalidInput",
    "KerberosError",
    "MedError",
    "NotFound",
    "ServerError",
    "Throttled",
    "Unreachable",
    "Unsupported",
]


class MedError(Exception):
    """Base of every error med raises on purpose; `str(err)` is a sentence for the user."""

    #: Short heading a UI can show above the sentence.
    title = "Mailbox error"

    def __init__(
        self,
        message: str,
        *,
        mailbox: str | None = None,
        folder: str | None = None,
        item: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.mailbox = mailbox
        self.folder = folder
        self.item = item
        #: The server's own code (EWS ResponseCode, HTTP status, ...) when there was one.
        self.code = code

    def __str__(self) -> str:
        return self.message


class AuthError(MedError):
    """The server refused our identity. Check user, password or Kerberos ticket; never retried."""

    title = "Sign-in failed"


class BadCredentials(AuthError):
    """Wrong user name or password (Basic or NTLM)."""


class KerberosError(AuthError):
    """Kerberos/Negotiate failed: no or expired ticket (`kinit`), unknown service principal."""


class AccessDenied(MedError):
    """The effective rights on the mailbox or folder do not allow the operation.

    Raised before calling the server when the known rights already forbid it, and when the
    server refuses. Ask the mailbox owner for the right permission or delegate level.
    """

    title = "Access denied"

    def __init__(self, message: str, *, right: str | None = None, **context: str | None):
        super().__init__(message, **context)
        #: The Exchange folder right that is missing (ReadItems, CreateItems, EditItems,
        #: DeleteItems, FolderOwner, FreeBusyTimeOnly), or None when the server refused.
        self.right = right


class NotFound(MedError):
    """The mailbox, folder or item does not exist, or is not visible to the current user."""

    title = "Not found"


class Throttled(MedError):
    """The server is busy or our request budget is used up; try again after `retry_after` s."""

    title = "Server busy"

    def __init__(self, message: str, *, retry_after: float | None = None, **context: str | None):
        super().__init__(message, **context)
        #: Seconds the server asked us to wait, or None when it named no time.
        self.retry_after = retry_after


class Unsupported(MedError):
    """The chosen backend cannot do this at all (e.g. public folders over Graph)."""

    title = "Not supported"

    def __init__(self, feature: str, backend: str, message: str | None = None) -> None:
        super().__init__(
            message or f"The {backend} backend does not support {feature.replace('_', ' ')}."
        )
        self.feature = feature
        self.backend = backend


class Conflict(MedError):
    """The item changed on the server since it was read; reload it and apply the change again."""

    title = "Changed elsewhere"


class InvalidInput(MedError):
    """The request is wrong as given (malformed address, end before start, bad id ...)."""

    title = "Invalid input"


class ServerError(MedError):
    """The server failed or answered with a code we do not know; `code` keeps its own code."""

    title = "Server error"


class Unreachable(ServerError):
    """No connection to the server: it is down, the address is wrong, or TLS verification failed.

    `url` is the address tried, when known; the sentence names it.
    """

    title = "Server unreachable"
    url: str | None = None

    def __str__(self) -> str:
        return f"{self.message} ({self.url})" if self.url else self.message


class EwsDisabled(ServerError):
    """EWS is switched off for this user, app or tenant (Exchange Online blocks EWS from 2026)."""

    title = "EWS disabled"
