"""Every failure of the E2E layer is a `CryptoError`; callers catch the level they care about.

- CryptoError: base class, never raised itself
  - TamperedError: authentication failed; the bytes were changed or made with another key
    - SignatureError: an Ed25519 signature does not verify for the claimed sender
    - MalformedError: the bytes cannot be parsed (truncated, unknown magic, bad lengths)
  - ReplayError: a message was already accepted, or is too old to tell
  - UnknownSenderKey: no sender key is held for (conversation, sender device, key id)
  - IdentityError: a device record's self-signature is invalid or does not match a pinned key
  - PolicyError: the protocol's rules forbid the operation (chain exhausted, audit seal missing)
  - KeyStoreError: a stored key file cannot be read
    - WrongPasswordError: the password does not open the key file
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base of all E2E errors; the message is a sentence fit for a log (never holds plaintext)."""


class TamperedError(CryptoError):
    """Authenticated decryption failed: the ciphertext, header or key does not match."""


class SignatureError(TamperedError):
    """An Ed25519 signature is invalid for the sender it claims."""


class MalformedError(TamperedError):
    """The bytes are not a well-formed envelope of the expected kind."""


class ReplayError(CryptoError):
    """The message was already accepted once (or is older than the replay window)."""


class UnknownSenderKey(CryptoError):
    """No sender key is known for the message's conversation, sender device and key id."""


class IdentityError(CryptoError):
    """A device identity is not self-consistent or differs from the one pinned before."""


class PolicyError(CryptoError):
    """The operation breaks a protocol rule (rotation due, audit seal required but missing)."""


class KeyStoreError(CryptoError):
    """A device key file is unreadable, corrupt or of an unknown format."""


class WrongPasswordError(KeyStoreError):
    """The password does not open the device key file."""
