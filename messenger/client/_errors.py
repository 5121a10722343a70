"""Errors the client SDK raises.

MessengerError
 ├── TransportError        the server could not be reached (after retries)
 └── ApiError              the server answered with an error (status, code, detail)
      ├── BadRequest          400 bad_request; 422 invalid (values the server's edge refuses)
      ├── Unauthenticated     401: log in again
      ├── Forbidden           403
      ├── NotFound            404 (also: another tenant's id)
      ├── Conflict            409
      │    └── MembershipChanged  409 membership_changed: re-read the members, then retry
      ├── TooLarge            413 too_large
      ├── QuotaExceeded       413 quota_exceeded
      ├── GroupFull           422 group_full
      ├── CrossTenant         422 cross_tenant
      └── Throttled           429: wait `retry_after` seconds
"""

from __future__ import annotations

from typing import Any


class MessengerError(Exception):
    """Base of every error of the messenger client."""


class TransportError(MessengerError):
    """The server could not be reached, or the connection broke (after retries)."""


class ApiError(MessengerError):
    """The server refused the request; `code` is its machine-readable reason."""

    status: int = 0
    code: str = "error"

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({status} {code})")
        self.status = status
        self.code = code
        self.detail = detail


class BadRequest(ApiError):
    """The request was malformed or its values are refused."""


class Unauthenticated(ApiError):
    """The token is missing, revoked or the account disabled: log in again."""


class Forbidden(ApiError):
    """The caller lacks the right (e.g. not an admin of the group)."""


class NotFound(ApiError):
    """Unknown id, or one the caller may not see."""


class Conflict(ApiError):
    """Something unique exists already."""


class MembershipChanged(Conflict):
    """The conversation's members changed after the change the request was based on."""


class TooLarge(ApiError):
    """The body exceeds the server's limit."""


class QuotaExceeded(ApiError):
    """The upload does not fit the storage quota."""


class GroupFull(ApiError):
    """The conversation would exceed its member limit."""


class CrossTenant(ApiError):
    """The tenants involved have not allowed each other."""


class Throttled(ApiError):
    """Too many attempts; `retry_after` says how many seconds to wait."""

    retry_after: float = 0.0


_BY_CODE: dict[str, type[ApiError]] = {
    "invalid": BadRequest,
    "membership_changed": MembershipChanged,
    "quota_exceeded": QuotaExceeded,
    "group_full": GroupFull,
    "cross_tenant": CrossTenant,
    "too_large": TooLarge,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthenticated,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    429: Throttled,
}


def error_from_response(status: int, body: Any, retry_after: str | None = None) -> ApiError:
    code = body.get("error", "error") if isinstance(body, dict) else "error"
    detail = body.get("detail", "") if isinstance(body, dict) else str(body)[:200]
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status, ApiError)
    error = cls(status, code, detail or f"HTTP {status}")
    if isinstance(error, Throttled) and retry_after is not None:
        try:
            error.retry_after = max(0.0, float(retry_after))
        except ValueError:
            error.retry_after = 0.0
    return error
