"""Canonical binary encoding shared by every envelope: a 4-byte magic, then length-prefixed fields.

Each field is a 4-byte big-endian length followed by that many bytes; integers are fixed-width
big-endian inside a field. One encoding for signing and for transport, so what is signed is
exactly what is sent and a parser can never see two readings of the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

from messenger.crypto._errors import MalformedError

MAX_FIELD = 64 * 1024 * 1024


def pack(*fields: bytes) -> bytes:
    out = bytearray()
    for field in fields:
        out += len(field).to_bytes(4, "big")
        out += field
    return bytes(out)


def unpack(data: bytes, count: int, what: str) -> list[bytes]:
    """Split `data` into exactly `count` fields or raise MalformedError naming `what`."""
    fields: list[bytes] = []
    pos = 0
    for _ in range(count):
        if pos + 4 > len(data):
            raise MalformedError(f"{what}: truncated")
        size = int.from_bytes(data[pos : pos + 4], "big")
        pos += 4
        if size > MAX_FIELD or pos + size > len(data):
            raise MalformedError(f"{what}: field length out of range")
        fields.append(data[pos : pos + size])
        pos += size
    if pos != len(data):
        raise MalformedError(f"{what}: trailing bytes")
    return fields


def envelope(magic: bytes, *fields: bytes) -> bytes:
    return magic + pack(*fields)


def open_envelope(data: bytes, magic: bytes, count: int, what: str) -> list[bytes]:
    if not isinstance(data, bytes | bytearray) or data[:4] != magic:
        raise MalformedError(f"{what}: not a {magic.decode()} envelope")
    return unpack(bytes(data[4:]), count, what)


def u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def to_int(field: bytes, width: int, what: str) -> int:
    if len(field) != width:
        raise MalformedError(f"{what}: integer of wrong width")
    return int.from_bytes(field, "big")


def text(value: str) -> bytes:
    return value.encode("utf-8")


def from_text(field: bytes, what: str) -> str:
    try:
        return field.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedError(f"{what}: text field is not UTF-8") from exc


def fixed(field: bytes, size: int, what: str) -> bytes:
    if len(field) != size:
        raise MalformedError(f"{what}: expected {size} bytes, got {len(field)}")
    return field


BLOCK = 64


def pad(payload: bytes) -> bytes:
    """ISO/IEC 7816-4 padding to a multiple of BLOCK, so ciphertext sizes leak only buckets."""
    padded_len = (len(payload) // BLOCK + 1) * BLOCK
    return payload + b"\x80" + b"\x00" * (padded_len - len(payload) - 1)


def unpad(padded: bytes, what: str) -> bytes:
    end = padded.rstrip(b"\x00")
    if not end or end[-1] != 0x80 or len(padded) % BLOCK:
        raise MalformedError(f"{what}: bad padding")
    return end[:-1]


def join_signed(context: bytes, fields: Sequence[bytes]) -> bytes:
    """The bytes an Ed25519 signature covers: a domain-separation context plus packed fields."""
    return context + b"\x00" + pack(*fields)
