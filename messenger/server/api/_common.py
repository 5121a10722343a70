"""Request-model helpers shared by the routers."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from messenger.server.errors import ApiError

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
TxnId = Annotated[str, StringConstraints(min_length=1, max_length=128)]

# Every integer the database stores is a signed 64-bit number; larger ones are refused here.
INT64_MAX = 2**63 - 1
Seq = Annotated[int, Field(ge=0, le=INT64_MAX)]
Bytes = Annotated[int, Field(ge=0, le=INT64_MAX)]


def refuse_nul(value: Any) -> Any:
    """NUL cannot be stored in a PostgreSQL text column; no name or id of ours contains one."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    if isinstance(value, list | tuple):
        for item in value:
            refuse_nul(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            refuse_nul(key)
            refuse_nul(item)
    return value


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return refuse_nul(value)


def _invalid(detail: str) -> ApiError:
    return ApiError(422, detail, "invalid")


def unb64(value: str, what: str, max_bytes: int | None = None, exact: int | None = None) -> bytes:
    """Decode a base64 field; an undecodable or mis-sized one is refused at the edge (422)."""
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{what} is not valid base64") from None
    if exact is not None and len(data) != exact:
        raise _invalid(f"{what} must be {exact} bytes")
    if max_bytes is not None and len(data) > max_bytes:
        raise _invalid(f"{what} exceeds {max_bytes} bytes")
    return data
