"""Attachments (files, voice messages) encrypted on the client under a fresh random key.

The blob the server stores is `MBF1 || nonce(24) || XChaCha20-Poly1305(data)`; the key, the
SHA-256 of the blob and the plaintext size travel inside the (end-to-end encrypted) message.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.utils

from messenger.crypto._errors import MalformedError, TamperedError

MAGIC = b"MBF1"
KEY_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_KEYBYTES
NONCE_BYTES = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
_AAD = b"medbridge/attachment/v1"


@dataclass(frozen=True)
class AttachmentKey:
    """Everything a recipient needs to fetch-and-check and decrypt one blob."""

    key: bytes
    sha256: bytes
    size: int

    def __repr__(self) -> str:
        return f"AttachmentKey(sha256={self.sha256.hex()[:16]}..., size={self.size})"


def encrypt_attachment(
    data: bytes, *, key: bytes | None = None, nonce: bytes | None = None
) -> tuple[bytes, AttachmentKey]:
    """Return (blob for the server, key for the message). key/nonce fixed only in test vectors."""
    key = key if key is not None else nacl.utils.random(KEY_BYTES)
    nonce = nonce if nonce is not None else nacl.utils.random(NONCE_BYTES)
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(data, _AAD, nonce, key)
    blob = MAGIC + nonce + ciphertext
    return blob, AttachmentKey(key=key, sha256=hashlib.sha256(blob).digest(), size=len(data))


def decrypt_attachment(blob: bytes, attachment: AttachmentKey) -> bytes:
    """Check the blob's digest (the server cannot swap it) and decrypt it."""
    if not hmac.compare_digest(hashlib.sha256(blob).digest(), attachment.sha256):
        raise TamperedError("attachment blob does not match the digest in its message")
    if blob[:4] != MAGIC or len(blob) < 4 + NONCE_BYTES:
        raise MalformedError("attachment blob: not an MBF1 blob")
    nonce, ciphertext = blob[4 : 4 + NONCE_BYTES], blob[4 + NONCE_BYTES :]
    try:
        data = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, _AAD, nonce, attachment.key
        )
    except nacl.exceptions.CryptoError as exc:
        raise TamperedError("attachment blob: authentication failed") from exc
    if len(data) != attachment.size:
        raise TamperedError("attachment size differs from the size in its message")
    return bytes(data)
