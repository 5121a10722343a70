"""JSON bodies → med values, checked by pydantic against med's own dataclasses.

Only fields a caller may write are accepted; what the server sets (ids, times it stamps,
sender, sizes) is refused with a sentence rather than silently dropped.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import typing
from datetime import datetime, timezone
from typing import Any

from pydantic import TypeAdapter, ValidationError

from med import (
    Contact,
    Event,
    InvalidInput,
    Item,
    Message,
    Note,
    OutgoingAttachment,
    Task,
)

__all__ = ["KINDS", "item_from_json", "patch_values"]

KINDS: dict[str, type[Item]] = {
    "message": Message,
    "event": Event,
    "contact": Contact,
    "task": Task,
    "note": Note,
}
#: Fields the server owns; a body naming one is refused.
READ_ONLY = frozenset(
    {
        "id",
        "change_key",
        "folder_id",
        "mailbox",
        "kind",
        "item_class",
        "created",
        "last_modified",
        "has_attachments",
        "attachments",
        "new_attachments",
        "size",
        "from_",
        "sender",
        "received",
        "sent",
        "is_draft",
        "internet_message_id",
        "conversation_id",
        "is_meeting_request",
        "event_kind",
        "series_id",
        "my_response",
        "is_meeting",
        "is_cancelled",
        "organizer",
        "uid",
    }
)
_ADAPTERS: dict[type[Item], TypeAdapter[Any]] = {cls: TypeAdapter(cls) for cls in KINDS.values()}


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])


def _fixed_zones(value: Any) -> Any:
    """Datetimes with plain `datetime.timezone` offsets (what the backends convert)."""
    if isinstance(value, datetime):
        offset = value.utcoffset()
        return value if offset is None else value.astimezone(timezone(offset))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _fixed_zones(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.init
        }
        return dataclasses.replace(value, **changes)
    if isinstance(value, tuple):
        return tuple(_fixed_zones(v) for v in value)
    return value


def _uploads(raw: Any) -> tuple[OutgoingAttachment, ...]:
    if not isinstance(raw, list):
        raise InvalidInput("upload must be a list of {name, content_base64, content_type}.")
    out = []
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidInput("Each upload needs a name and content_base64.")
        try:
            content = base64.b64decode(str(entry.get("content_base64", "")), validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{entry['name']!r}: content_base64 is not base64.") from None
        out.append(
            OutgoingAttachment(
                entry["name"],
                content,
                str(entry.get("content_type") or "application/octet-stream"),
            )
        )
    return tuple(out)


def item_from_json(body: Any, default_kind: str = "message") -> Item:
    """A new item from a create body (`type` names the kind; `upload` adds attachments).

    Raises:
        InvalidInput: unknown kind, a server-owned field, or a value of the wrong shape.
    """
    if not isinstance(body, dict):
        raise InvalidInput("The body must be a JSON object.")
    data = dict(body)
    kind = data.pop("type", default_kind)
    cls = KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidInput(f"type must be one of {', '.join(KINDS)}.")
    uploads = _uploads(data.pop("upload")) if "upload" in data else ()
    refused = sorted(k for k in data if k in READ_ONLY or k == "from")
    if refused:
        raise InvalidInput(f"{', '.join(refused)} cannot be set by a caller.")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(k for k in data if k not in known)
    if unknown:
        raise InvalidInput(f"A {kind} has no field {', '.join(unknown)}.")
    try:
        item = _ADAPTERS[cls].validate_python(data)
    except ValidationError as exc:
        raise InvalidInput(_first_error(exc)) from None
    except (TypeError, ValueError) as exc:
        raise InvalidInput(str(exc)) from None
    item = _fixed_zones(item)
    if uploads:
        item = dataclasses.replace(item, new_attachments=uploads)
    assert isinstance(item, Item)
    return item


def patch_values(item: Item, body: Any) -> dict[str, Any]:
    """Field → med value for a merge-patch body on `item`.

    Raises:
        InvalidInput: empty patch, a server-owned or unknown field, a value of the wrong shape.
    """
    if not isinstance(body, dict) or not body:
        raise InvalidInput("Send a JSON object naming the fields to change.")
    hints = typing.get_type_hints(type(item))
    values: dict[str, Any] = {}
    for name, raw in body.items():
        if name in READ_ONLY or name not in hints or name == "from":
            raise InvalidInput(f"{name!r} cannot be changed on a {item.kind.value}.")
        try:
            values[name] = _fixed_zones(TypeAdapter(hints[name]).validate_python(raw))
        except ValidationError as exc:
            raise InvalidInput(f"{name}: {_first_error(exc)}") from None
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"{name}: {exc}") from None
    return values
