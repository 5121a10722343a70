"""Item, folder and attachment ids on the wire.

Exchange ids are base64 with `/` and `+`, which a URL path cannot carry; the API hands out
the base64url encoding of med's id instead, and turns it back at the edge. This module is
the one place that knows both forms.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from med import NotFound

__all__ = ["ID_FIELDS", "inward", "outward", "outward_id"]

#: Fields of `med.to_jsonable` output that hold ids.
ID_FIELDS = frozenset(
    {"id", "folder_id", "parent_id", "series_id", "item_id", "old_item_id", "old_folder_id"}
)


def outward_id(med_id: str) -> str:
    return base64.urlsafe_b64encode(med_id.encode("utf-8")).rstrip(b"=").decode("ascii")


def inward(api_id: str) -> str:
    """med's id for an id from a URL or body.

    Raises:
        NotFound: not an id this API handed out, so nothing has it.
    """
    try:
        raw = base64.urlsafe_b64decode(api_id + "=" * (-len(api_id) % 4))
        decoded = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        raise NotFound(f"Nothing has the id {api_id[:40]!r}.") from None
    if not decoded or not api_id.isascii() or outward_id(decoded) != api_id:
        raise NotFound(f"Nothing has the id {api_id[:40]!r}.")
    return decoded


def outward(value: Any) -> Any:
    """A `to_jsonable` structure with every id field in its wire form.

    Only containers are descended into (a call per leaf cost more than the rest of a page).
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k in ID_FIELDS and isinstance(v, str) and v:
                out[k] = outward_id(v)
            elif isinstance(v, dict | list):
                out[k] = outward(v)
            else:
                out[k] = v
        return out
    if isinstance(value, list):
        return [outward(v) if isinstance(v, dict | list) else v for v in value]
    return value
