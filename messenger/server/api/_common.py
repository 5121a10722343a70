"""Request-model helpers shared by the routers."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from messenger.store.errors import InvalidInput

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
TxnId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def unb64(value: str, what: str, max_bytes: int | None = None, exact: int | None = None) -> bytes:
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(f"{what} is not valid base64") from None
    if exact is not None and len(data) != exact:
        raise InvalidInput(f"{what} must be {exact} bytes")
    if max_bytes is not None and len(data) > max_bytes:
        raise InvalidInput(f"{what} exceeds {max_bytes} bytes")
    return data
