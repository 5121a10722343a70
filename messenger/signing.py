"""Webhook signatures of the bot API: HMAC-SHA256 over `<timestamp>.<body>` with the bot's
webhook secret. The server signs (`messenger.server.webhooks`), a bot checks (`verify`).

Headers of each delivery::

    Webhook-Id: <delivery id, the same on every retry>
    Webhook-Timestamp: <unix seconds of this attempt>
    Webhook-Signature: v1=<hex digest>

A receiver recomputes the digest with its secret, compares in constant time and refuses a
timestamp further than `TOLERANCE_S` from its clock (replays); the delivery id lets it drop a
delivery it already handled.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

TOLERANCE_S = 300


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def signature_headers(secret: str, delivery_id: str, body: bytes, now: float) -> dict[str, str]:
    timestamp = int(now)
    return {
        "Webhook-Id": delivery_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": sign(secret, timestamp, body),
    }


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> bool:
    """True when the delivery is signed with `secret` and recent (header names as sent or
    lower-cased, as web frameworks give them)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lowered["webhook-timestamp"])
        given = lowered["webhook-signature"]
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > TOLERANCE_S:
        return False
    return hmac.compare_digest(given, sign(secret, timestamp, body))
