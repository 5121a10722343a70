"""Item and folder ids: opaque base64 blobs outside, (kind, key) inside.

Exchange ids are base64 strings a client must not parse; ours carry a marker, the kind of object
(`folder`, `item`, `occurrence`, `attachment`, `subscription`, ...) and the row key, so that a
tampered or foreign id is refused with ErrorInvalidIdMalformed rather than looked up. Both faces
use the same ids (Graph writes them in the URL-safe alphabet).
"""

from __future__ import annotations

import base64
import binascii
import re

from exlab.core.errors import ExchangeError

_MARK = b"MBLAB\x01"
_KIND = re.compile(r"[a-z]{1,16}")
_KEY = re.compile(r"[A-Za-z0-9._:@+-]{1,200}")


def encode_id(kind: str, key: str) -> str:
    """The id a client sees for the row `key` of kind `kind`."""
    if not _KIND.fullmatch(kind) or not _KEY.fullmatch(key):
        raise ValueError(f"cannot encode id kind={kind!r} key={key!r}")
    return base64.b64encode(_MARK + kind.encode() + b"\x00" + key.encode()).decode("ascii")


def decode_id(value: str | None) -> tuple[str, str]:
    """(kind, key) of a client's id; ErrorInvalidIdMalformed (or ...Empty) if it is not ours."""
    if value is None or not value.strip():
        raise ExchangeError("ErrorInvalidIdEmpty", "Id must be non-empty.")
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ExchangeError("ErrorInvalidIdMalformed", "Id is malformed.") from None
    if not raw.startswith(_MARK) or b"\x00" not in raw:
        raise ExchangeError("ErrorInvalidIdMalformed", "Id is malformed.")
    kind_raw, _, key_raw = raw[len(_MARK) :].partition(b"\x00")
    try:
        kind, key = kind_raw.decode("ascii"), key_raw.decode("ascii")
    except UnicodeDecodeError:
        raise ExchangeError("ErrorInvalidIdMalformed", "Id is malformed.") from None
    if not _KIND.fullmatch(kind) or not _KEY.fullmatch(key):
        raise ExchangeError("ErrorInvalidIdMalformed", "Id is malformed.")
    return kind, key
