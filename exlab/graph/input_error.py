"""The error for a request body Graph would refuse, shared by the converters."""

from __future__ import annotations


class GraphInputError(ValueError):
    """A request body Graph would refuse (answered as 400 with `code`)."""

    def __init__(self, message: str, code: str = "RequestBodyRead") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
