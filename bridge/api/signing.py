"""Webhook signatures: HMAC-SHA256 over `<timestamp>.<body>` with the webhook's secret.

Headers of each delivery::

    Webhook-Id: <delivery id, the same on every retry>
    Webhook-Timestamp: <unix seconds>
    Webhook-Signature: v1=<hex digest>

A receiver recomputes the digest with its secret, compares in constant time and refuses a
timestamp older than a few minutes (replays). `verify` does exactly that.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

__all__ = ["sign", "signature_headers", "verify"]

TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signature_headers(secret: str, delivery_id: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Webhook-Id": delivery_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": sign(secret, timestamp, body),
    }


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> bool:
    """True when the delivery is signed with `secret` and recent."""
    try:
        timestamp = int(headers["Webhook-Timestamp"])
        given = headers["Webhook-Signature"]
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > TOLERANCE_S:
        return False
    return hmac.compare_digest(given, sign(secret, timestamp, body))
