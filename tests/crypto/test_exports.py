"""messenger.crypto's public surface is one sorted `__all__`, and every error is reachable."""

from __future__ import annotations

import messenger.crypto as crypto
from messenger.crypto import _errors


def test_all_is_sorted_and_complete() -> None:
    assert list(crypto.__all__) == sorted(crypto.__all__, key=lambda n: (not n.isupper(), n))
    assert all(hasattr(crypto, name) for name in crypto.__all__)


def test_every_crypto_error_is_exported_and_derives_from_crypto_error() -> None:
    errors = {
        name
        for name, obj in vars(_errors).items()
        if isinstance(obj, type) and issubclass(obj, Exception)
    }
    assert errors <= set(crypto.__all__)
    assert all(issubclass(getattr(crypto, n), crypto.CryptoError) for n in errors)
