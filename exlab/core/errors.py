"""Exchange's answers to a refused request, protocol-neutral.

An `ExchangeError` carries Exchange's response code (ErrorAccessDenied, ErrorItemNotFound, ...);
the EWS face answers it as a response message, the Graph face maps the code to an HTTP status.
"""

from __future__ import annotations

ACCESS_DENIED = "Access is denied. Check credentials and try again."
NOT_FOUND = "The specified object was not found in the store."


class ExchangeError(Exception):
    """A refusal with Exchange's response code (and, when throttled, the back-off)."""

    def __init__(self, code: str, message: str = "", *, back_off_ms: int | None = None) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message or code
        self.back_off_ms = back_off_ms


def denied() -> ExchangeError:
    """ErrorAccessDenied with Exchange's sentence: the one access-denied answer of the lab."""
    return ExchangeError("ErrorAccessDenied", ACCESS_DENIED)


def not_found() -> ExchangeError:
    return ExchangeError("ErrorItemNotFound", NOT_FOUND)
