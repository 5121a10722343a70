"""Notification content at rest: sealed in the database until it is sent.

What a notification says (subject, sender, preview) and what a chat user typed as a command
are stored encrypted (XSalsa20-Poly1305, `nacl.secret.SecretBox`) under one random key per
database. That key is kept in the database itself, sealed under the bridge's keys passphrase
the way the device key files are (argon2id, `messenger.crypto.seal_with_password`), so every
worker that knows the passphrase opens it and nobody who only has the database file does.
"""

from __future__ import annotations

import base64

import nacl.exceptions
import nacl.secret
import nacl.utils

from messenger.crypto import KeyStoreError, open_with_password, seal_with_password

__all__ = [
    "PREFIX",
    "ContentSeal",
    "SealError",
    "is_sealed",
    "new_sealed_key",
    "open_sealed_key",
]

#: Marks a sealed value; anything else was written by a release that stored plaintext.
PREFIX = "sealed1:"


class SealError(KeyStoreError):
    """The content key cannot be opened (wrong passphrase) or a value does not decrypt."""


class ContentSeal:
    """Encrypts and decrypts stored text under the database's content key."""

    def __init__(self, key: bytes) -> None:
        self._box = nacl.secret.SecretBox(key)

    def seal(self, plain: str) -> str:
        return PREFIX + base64.b64encode(bytes(self._box.encrypt(plain.encode()))).decode()

    def open(self, stored: str) -> str:
        if not is_sealed(stored):
            return stored  # written before content was sealed; sealed again on unlock
        try:
            return self._box.decrypt(base64.b64decode(stored[len(PREFIX) :])).decode()
        except (nacl.exceptions.CryptoError, ValueError) as exc:
            raise SealError("a stored notification does not decrypt with this key") from exc

    def __repr__(self) -> str:  # keep the key out of logs and tracebacks
        return "ContentSeal(<key>)"


def is_sealed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def new_sealed_key(passphrase: str, *, opslimit: int, memlimit: int) -> str:
    """A fresh random content key, sealed under the passphrase (text for the database)."""
    key = nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)
    return seal_with_password(key, passphrase, opslimit=opslimit, memlimit=memlimit).decode()


def open_sealed_key(sealed: str, passphrase: str) -> ContentSeal:
    """Raises SealError when the passphrase does not open the key."""
    try:
        return ContentSeal(open_with_password(sealed.encode(), passphrase))
    except KeyStoreError as exc:
        raise SealError(
            "the keys passphrase does not open this bridge database's content key "
            "(all workers of one database need the same keys passphrase)"
        ) from exc
