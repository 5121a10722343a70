"""Which failures the bridge retries, and after how long (one policy for every call path).

Retry only what can heal by itself: throttling (after the server's back-off), unreachable or
failing servers (5xx, connection errors) with doubling delays. Never retry what needs a person:
wrong credentials, missing rights, items that are gone, invalid input, conflicts.
"""

from __future__ import annotations

from med import AccessDenied, AuthError, InvalidInput, MedError, NotFound, ServerError, Throttled
from med import Conflict as MedConflict
from messenger.client import ApiError, TransportError
from messenger.client import Throttled as ChatThrottled

__all__ = ["MAX_DELAY", "backoff", "retry_delay"]

MAX_DELAY = 300.0


def backoff(attempt: int, base: float = 0.5) -> float:
    """Doubling delay for the n-th consecutive failure (1-based), capped."""
    return float(min(MAX_DELAY, base * 2 ** max(0, attempt - 1)))


def retry_delay(exc: BaseException, attempt: int) -> float | None:
    """Seconds to wait before trying again, or None when retrying cannot help."""
    if isinstance(exc, Throttled):
        return max(exc.retry_after or 0.0, backoff(attempt))
    if isinstance(exc, ChatThrottled):
        return max(exc.retry_after, backoff(attempt))
    if isinstance(exc, AuthError | AccessDenied | NotFound | InvalidInput | MedConflict):
        return None
    if isinstance(exc, ServerError | TransportError):
        return backoff(attempt)
    if isinstance(exc, ApiError):
        return backoff(attempt) if exc.status >= 500 else None
    if isinstance(exc, MedError):
        return None
    return None
