"""Device keys at rest: sealed with a key derived from the user's password (argon2id).

The file is JSON (version, KDF parameters, salt, nonce, SecretBox ciphertext, base64), written
atomically with mode 0600. `seal_with_password`/`open_with_password` are pure; the file
functions here are the only I/O in `messenger.crypto`. The session state (chain keys, pinned
identities) is sealed with a key derived from the device secrets, so saving it needs no password.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils

from messenger.crypto._errors import CryptoError, KeyStoreError, WrongPasswordError
from messenger.crypto._identity import DeviceKeys

FORMAT = "medbridge-keystore/1"
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_MODERATE
SALT_BYTES = nacl.pwhash.argon2id.SALTBYTES


def _derive(password: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        password.encode("utf-8"),
        salt,
        opslimit=opslimit,
        memlimit=memlimit,
    )


def seal_with_password(
    data: bytes,
    password: str,
    *,
    opslimit: int = OPSLIMIT,
    memlimit: int = MEMLIMIT,
    salt: bytes | None = None,
    nonce: bytes | None = None,
) -> bytes:
    salt = salt if salt is not None else nacl.utils.random(SALT_BYTES)
    nonce = nonce if nonce is not None else nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_derive(password, salt, opslimit, memlimit))
    ciphertext = box.encrypt(data, nonce).ciphertext
    doc = {
        "format": FORMAT,
        "kdf": "argon2id",
        "opslimit": opslimit,
        "memlimit": memlimit,
        "salt": base64.b64encode(salt).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return json.dumps(doc, sort_keys=True).encode()


def open_with_password(blob: bytes, password: str) -> bytes:
    try:
        doc: Any = json.loads(blob)
        if doc.get("format") != FORMAT or doc.get("kdf") != "argon2id":
            raise KeyStoreError("key file: unknown format")
        opslimit, memlimit = int(doc["opslimit"]), int(doc["memlimit"])
        salt = base64.b64decode(doc["salt"], validate=True)
        nonce = base64.b64decode(doc["nonce"], validate=True)
        ciphertext = base64.b64decode(doc["ciphertext"], validate=True)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyStoreError("key file is corrupt") from exc
    if len(salt) != SALT_BYTES:
        raise KeyStoreError("key file is corrupt: bad salt")
    try:
        key = _derive(password, salt, opslimit, memlimit)
    except (nacl.exceptions.ValueError, nacl.exceptions.RuntimeError) as exc:
        raise KeyStoreError("key file has unusable KDF parameters") from exc
    try:
        return bytes(nacl.secret.SecretBox(key).decrypt(ciphertext, nonce))
    except nacl.exceptions.CryptoError as exc:
        raise WrongPasswordError("the password does not open this key file") from exc


def save_device_keys(
    path: Path,
    keys: DeviceKeys,
    password: str,
    *,
    opslimit: int = OPSLIMIT,
    memlimit: int = MEMLIMIT,
) -> None:
    """Write atomically with mode 0600: a crash leaves the old file or the new one, never half."""
    blob = seal_with_password(keys.to_bytes(), password, opslimit=opslimit, memlimit=memlimit)
    write_private_file(path, blob)


def write_private_file(path: Path, blob: bytes) -> None:
    """Atomic write (temporary file, fsync, rename), mode 0600, directory created 0700."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


_STATE_MAGIC = b"MBS1"


def _state_key(keys: DeviceKeys) -> bytes:
    """A key for the device's protocol state, derived from its secrets (no password prompt)."""
    return hashlib.blake2b(
        keys.signing_seed + keys.exchange_secret, digest_size=32, person=b"medbridge-state"
    ).digest()


def seal_state(keys: DeviceKeys, state: bytes) -> bytes:
    """Encrypt session state (chain keys, pinned identities) under a key only this device has."""
    return _STATE_MAGIC + bytes(nacl.secret.SecretBox(_state_key(keys)).encrypt(state))


def open_state(keys: DeviceKeys, blob: bytes) -> bytes:
    if blob[:4] != _STATE_MAGIC:
        raise KeyStoreError("not a medbridge state file")
    try:
        return bytes(nacl.secret.SecretBox(_state_key(keys)).decrypt(blob[4:]))
    except nacl.exceptions.CryptoError as exc:
        raise KeyStoreError("state file does not belong to this device or is corrupt") from exc


def load_device_keys(path: Path, password: str) -> DeviceKeys:
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise KeyStoreError(f"cannot read key file {path}: {exc.strerror}") from exc
    data = open_with_password(blob, password)
    try:
        return DeviceKeys.from_bytes(data)
    except CryptoError as exc:
        raise KeyStoreError("key file content is corrupt") from exc
