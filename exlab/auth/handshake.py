"""NTLM and Negotiate handshakes: pyspnego acceptors kept per TCP connection.

NTLM takes three legs (negotiate, challenge, authenticate) and clients send them on one
connection, so the acceptor for a connection lives here between requests. pyspnego reads
its configuration from the process environment (`NTLM_USER_FILE`, `KRB5_KTNAME`,
`LM_COMPAT_LEVEL`); `acceptor_env` sets it under one lock so that several labs in one
process (tests) each see their own files.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import spnego

_ENV_LOCK = threading.Lock()


class _NoTokens(logging.Filter):
    """pyspnego logs every handshake token at DEBUG; NTLM answers can be cracked offline."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else ""
        return " step input" not in msg and " step output" not in msg


_NO_TOKENS = _NoTokens()
for _name in ("spnego._ntlm", "spnego._gss", "spnego._negotiate"):
    if _NO_TOKENS not in logging.getLogger(_name).filters:
        logging.getLogger(_name).addFilter(_NO_TOKENS)

# Level 5: NTLMv2 only. Lower levels would accept LM and NTLMv1 answers, which the user
# file (hashes only, LM field zeroed) must never be asked to verify.
_LM_COMPAT_LEVEL = "5"


@contextmanager
def acceptor_env(values: Mapping[str, str]) -> Iterator[None]:
    """Hold the acceptor lock with `values` in the process environment.

    Values stay set afterwards: with one lab per process (the normal case) the environment
    is written once and never again.
    """
    with _ENV_LOCK:
        for name, value in {"LM_COMPAT_LEVEL": _LM_COMPAT_LEVEL, **values}.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
        yield


@dataclass
class _Pending:
    context: Any  # spnego.ContextProxy; pyspnego ships no usable stubs for it
    expires: float


class Handshakes:
    """Unfinished acceptor contexts keyed by connection, bounded in number and age.

    A connection is named by the client's address and port. A port reused later by
    another connection at most finds a stale context whose challenge it never saw, so
    its login fails; the next NTLM negotiate message starts afresh anyway.
    """

    def __init__(self, ttl_s: float = 120.0, size: int = 512) -> None:
        self._ttl = ttl_s
        self._size = size
        self._pending: OrderedDict[tuple[str, ...], _Pending] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: tuple[str, ...]) -> Any | None:
        with self._lock:
            entry = self._pending.pop(key, None)
        if entry is None or entry.expires < time.monotonic():
            return None
        return entry.context

    def keep(self, key: tuple[str, ...], context: Any) -> None:
        with self._lock:
            self._pending[key] = _Pending(context, time.monotonic() + self._ttl)
            self._pending.move_to_end(key)
            while len(self._pending) > self._size:
                self._pending.popitem(last=False)

    def __len__(self) -> int:
        return len(self._pending)


def is_ntlm_negotiate(token: bytes) -> bool:
    """True for the first NTLM message (a fresh handshake), raw or as the mech token."""
    return token.startswith(b"NTLMSSP\x00\x01\x00\x00\x00")


def new_acceptor(protocol: str, bindings: Any = None) -> Any:
    """A fresh pyspnego server context; call inside `acceptor_env`."""
    return spnego.server(protocol=protocol, channel_bindings=bindings)


def tls_server_end_point(certificate: bytes) -> Any:
    """RFC 5929 channel bindings for the lab's DER certificate (Exchange's Extended Protection).

    The hash is the certificate's signature hash; MD5 and SHA-1 become SHA-256.
    """
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes
    from spnego.channel_bindings import GssChannelBindings

    cert = x509.load_der_x509_certificate(certificate)
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if algorithm is None or isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate)
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest.finalize())
