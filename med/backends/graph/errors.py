"""Graph error answers translated into med's error tree, in one table (`GRAPH_CODES`,
unknown codes by HTTP status)."""

from __future__ import annotations

import requests

from med.backends.answers import is_web_page, proxy_refused, web_page
from med.errors import (
    AccessDenied,
    AuthError,
    Conflict,
    InvalidInput,
    MedError,
    NotFound,
    ServerError,
    Throttled,
)

# Graph error codes → med errors (the rest by HTTP status).
GRAPH_CODES: dict[str, type[MedError]] = {
    "ErrorAccessDenied": AccessDenied,
    "ErrorSendAsDenied": AccessDenied,
    "Authorization_RequestDenied": AccessDenied,
    "ErrorItemNotFound": NotFound,
    "ErrorInvalidUser": NotFound,
    "ResourceNotFound": NotFound,
    "ErrorInvalidIdMalformed": InvalidInput,
    "ErrorInvalidRecipients": InvalidInput,
    "ErrorInvalidRequest": InvalidInput,
    "ErrorInvalidParameter": InvalidInput,
    "BadRequest": InvalidInput,
    "RequestBodyRead": InvalidInput,
    "ErrorPropertyValidationFailure": InvalidInput,
    "TimeZoneNotSupportedException": InvalidInput,
    "SyncStateNotFound": InvalidInput,
    # A delta token Graph no longer knows (410 Gone for Outlook resources): start over.
    "syncStateNotFound": InvalidInput,
    "syncStateInvalid": InvalidInput,
    "resyncRequired": InvalidInput,
    "RequestEntityTooLarge": InvalidInput,
    "ErrorInvalidUrlQuery": InvalidInput,
    "Request_BadRequest": InvalidInput,
    "ErrorIrresolvableConflict": Conflict,
    "ErrorFolderExists": Conflict,
    "InvalidAuthenticationToken": AuthError,
    "ApplicationThrottled": Throttled,
    "TooManyRequests": Throttled,
    "ServiceUnavailable": Throttled,
}
STATUS_CLASSES: dict[int, type[MedError]] = {
    400: InvalidInput,
    401: AuthError,
    403: AccessDenied,
    404: NotFound,
    409: Conflict,
    410: InvalidInput,
    412: Conflict,
    413: InvalidInput,
    429: Throttled,
    503: Throttled,
}


GRAPH_ENDPOINT = "a Graph endpoint (https://graph.microsoft.com, or the lab's base URL)"


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def translate(response: requests.Response, *, mailbox: str | None = None) -> MedError:
    """The MedError for a Graph error answer (one table, unknown codes by HTTP status); a
    proxy's 407 or web page says what is in the way instead."""
    if response.status_code == 407:
        return proxy_refused(mailbox=mailbox)
    if is_web_page(response.headers.get("Content-Type")):
        return web_page(response.status_code, GRAPH_ENDPOINT, mailbox=mailbox)
    try:
        error = response.json().get("error", {})
    except ValueError:
        error = {}
    code = str(error.get("code") or response.status_code)
    message = str(error.get("message") or response.reason or "The server refused the request.")
    cls = GRAPH_CODES.get(code) or STATUS_CLASSES.get(response.status_code) or ServerError
    if cls is Throttled:
        return Throttled(
            f"The server is busy: {message}",
            retry_after=_retry_after(response),
            mailbox=mailbox,
            code=code,
        )
    return cls(message, mailbox=mailbox, code=code)
