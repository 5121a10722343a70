"""Metadata at rest: names the server must read are stored encrypted under a server key.

Envelope encryption: each value gets its own random data key; the value is encrypted with it
(XChaCha20-Poly1305) and the data key is wrapped by a key-encryption key (KEK) read from a key
file that lives outside the database. A stored value is

    mb1:<kek id>:<base64(wrap nonce | wrapped data key | value nonce | value ciphertext)>

so a dump of the database shows no conversation name, display name or audit reason, and a
stolen key file alone holds no data. `rotate` adds a new KEK to the file and `reseal` rewraps
every data key under it (the values themselves are not re-encrypted); `retire` then drops the
old KEK from the file. Running servers follow the file: they open values under a KEK they did
not know and seal new ones under the file's current KEK.

The `SealedText` column type does the work: it finds the keyring on the engine's dialect
(`attach`), so every tool that opens the database with `attach` reads and writes alike. An
engine without a keyring writes plain text (the server seals such rows when it starts) and
refuses to read sealed values.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils
from sqlalchemy import Text, TypeDecorator, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

PREFIX = "mb1:"
KEY_BYTES = 32
NONCE = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_ATTR = "medbridge_keyring"


class SealingError(Exception):
    """The metadata key file is missing, unreadable, or does not open a stored value."""


def _encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = nacl.utils.random(NONCE)
    return nonce + sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key)


def _decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    try:
        return bytes(
            sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(blob[NONCE:], aad, blob[:NONCE], key)
        )
    except nacl.exceptions.CryptoError as exc:
        raise SealingError("a stored value does not open with the metadata key") from exc


_WRAPPED = NONCE + KEY_BYTES + 16


@dataclass
class Keyring:
    """The key-encryption keys by id; `current` wraps new data keys."""

    current: str
    keys: dict[str, bytes] = field(default_factory=dict)
    # The key file: when another process rotates it, this ring takes over the new keys and
    # the new current key (checked by the file's modification time before each seal).
    path: Path | None = None
    mtime: int = 0

    def _follow_file(self) -> None:
        if self.path is None:
            return
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError:
            return  # keep working with the keys in memory
        if mtime != self.mtime:
            fresh = load_keyring(self.path)
            self.keys.update(fresh.keys)
            self.current, self.mtime = fresh.current, fresh.mtime

    def seal(self, text: str) -> str:
        self._follow_file()
        data_key = nacl.utils.random(KEY_BYTES)
        kek_id = self.current
        wrapped = _encrypt(self.keys[kek_id], data_key, kek_id.encode())
        body = _encrypt(data_key, text.encode("utf-8"), b"value")
        return f"{PREFIX}{kek_id}:{base64.b64encode(wrapped + body).decode('ascii')}"

    def _split(self, value: str) -> tuple[str, bytes, bytes]:
        try:
            kek_id, _, encoded = value[len(PREFIX) :].partition(":")
            raw = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise SealingError("a stored value is not a sealed value") from exc
        if kek_id not in self.keys:
            self._follow_file()
        if kek_id not in self.keys:
            raise SealingError(f"the metadata key {kek_id!r} is not in the key file")
        return kek_id, raw[:_WRAPPED], raw[_WRAPPED:]

    def open(self, value: str) -> str:
        kek_id, wrapped, body = self._split(value)
        data_key = _decrypt(self.keys[kek_id], wrapped, kek_id.encode())
        return _decrypt(data_key, body, b"value").decode("utf-8")

    def rewrap(self, value: str) -> str:
        """The same value with its data key wrapped by the current KEK (value untouched)."""
        kek_id, wrapped, body = self._split(value)
        if kek_id == self.current:
            return value
        data_key = _decrypt(self.keys[kek_id], wrapped, kek_id.encode())
        new = _encrypt(self.keys[self.current], data_key, self.current.encode())
        return f"{PREFIX}{self.current}:{base64.b64encode(new + body).decode('ascii')}"

    def to_json(self) -> str:
        keys = {k: base64.b64encode(v).decode("ascii") for k, v in self.keys.items()}
        return json.dumps({"current": self.current, "keys": keys}, indent=2) + "\n"


def new_kek_id() -> str:
    return secrets.token_hex(4)


def load_keyring(path: Path, *, create: bool = False) -> Keyring:
    """Read the key file; with `create`, make one (mode 0600) when there is none."""
    try:
        doc = json.loads(path.read_text())
        keys = {str(k): base64.b64decode(v, validate=True) for k, v in doc["keys"].items()}
        ring = Keyring(
            current=str(doc["current"]), keys=keys, path=path, mtime=path.stat().st_mtime_ns
        )
        if ring.current not in keys or any(len(k) != KEY_BYTES for k in keys.values()):
            raise SealingError(f"metadata key file {path} is inconsistent")
        return ring
    except FileNotFoundError:
        if not create:
            raise SealingError(f"metadata key file {path} does not exist") from None
    except (OSError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise SealingError(f"metadata key file {path} is unreadable: {type(exc).__name__}") from exc
    kek_id = new_kek_id()
    ring = Keyring(current=kek_id, keys={kek_id: nacl.utils.random(KEY_BYTES)})
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.new")
    write_keyring(tmp, ring)
    try:
        os.link(tmp, path)  # fails if another node made the file first: then use that one
    except FileExistsError:
        return load_keyring(path)
    finally:
        tmp.unlink(missing_ok=True)
    return load_keyring(path)


def write_keyring(path: Path, ring: Keyring) -> None:
    """Replace the key file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(ring.to_json())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def attach(engine: AsyncEngine, ring: Keyring) -> None:
    """Let `SealedText` columns of this engine seal and open with `ring`."""
    setattr(engine.dialect, _ATTR, ring)


def _ring(dialect: Dialect) -> Keyring | None:
    ring: Keyring | None = getattr(dialect, _ATTR, None)
    return ring


class SealedText(TypeDecorator[str]):
    """A text column stored sealed under the engine's keyring (see the module docstring)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or value == "":
            return value
        ring = _ring(dialect)
        return ring.seal(value) if ring is not None else value

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None or not value.startswith(PREFIX):
            return value  # empty, or written before sealing (sealed at the next start)
        ring = _ring(dialect)
        if ring is None:
            raise SealingError("this database holds sealed names; open it with the metadata key")
        return ring.open(value)


def sealed_columns() -> Sequence[tuple[Any, Any]]:
    """(primary-key columns, sealed column) of every table with sealed text."""
    from messenger.store import models  # models use SealedText: imported when needed

    out = []
    for table in models.Base.metadata.sorted_tables:
        pk = list(table.primary_key.columns)
        for column in table.columns:
            if isinstance(column.type, SealedText):
                out.append((pk, column))
    return out


async def _raw_rows(db: AsyncSession, pk: Sequence[Any], column: Any) -> list[Any]:
    # The raw stored text: a plain-Text cast keeps SealedText from opening it.
    from sqlalchemy import cast

    return list((await db.execute(select(*pk, cast(column, Text)))).all())


async def reseal(db: AsyncSession, ring: Keyring) -> int:
    """Seal values stored in plain text and rewrap every data key under the current KEK.

    Returns how many values were rewritten. The caller commits.
    """
    from sqlalchemy import literal

    changed = 0
    for pk, column in sealed_columns():
        for row in await _raw_rows(db, pk, column):
            *ids, stored = row
            if not stored:
                continue
            new = ring.rewrap(stored) if stored.startswith(PREFIX) else ring.seal(stored)
            if new == stored:
                continue
            where = [c == v for c, v in zip(pk, ids, strict=True)]
            # literal(..., Text): the new value is already sealed; bind it as plain text.
            await db.execute(
                update(column.table).where(*where).values({column.name: literal(new, Text)})
            )
            changed += 1
    return changed


async def flush_old_pages(engine: AsyncEngine) -> None:
    """On SQLite, move the rewritten pages from the WAL into the file and empty the WAL, so
    the plain names they replaced are gone from disk (secure_delete zeroed the old cells)."""
    if engine.dialect.name == "sqlite":
        from sqlalchemy import text

        async with engine.connect() as conn:
            await conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def rotate(path: Path) -> Keyring:
    """Add a new current KEK to the key file (the old ones stay until `retire`)."""
    ring = load_keyring(path)
    kek_id = new_kek_id()
    ring.keys[kek_id] = nacl.utils.random(KEY_BYTES)
    ring.current = kek_id
    write_keyring(path, ring)
    return ring


def retire(path: Path, ring: Keyring) -> list[str]:
    """Drop every KEK but the current one from the key file (after `reseal` committed)."""
    gone = [k for k in ring.keys if k != ring.current]
    write_keyring(path, Keyring(ring.current, {ring.current: ring.keys[ring.current]}))
    return gone
