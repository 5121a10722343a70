"""Async client SDK of the messenger: REST over httpx, events over a resuming WebSocket.

It moves opaque ciphertext only; `messenger.client.e2e` wraps it with end-to-end encryption.
"""

from messenger.client._client import (
    Cursors,
    Envelope,
    EventStream,
    MessengerClient,
    SendResult,
    decode_ciphertext,
    new_txn_id,
)
from messenger.client._errors import (
    ApiError,
    BadRequest,
    Conflict,
    CrossTenant,
    Forbidden,
    GroupFull,
    MembershipChanged,
    MessengerError,
    NotFound,
    QuotaExceeded,
    Throttled,
    TooLarge,
    TransportError,
    Unauthenticated,
)

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "CrossTenant",
    "Cursors",
    "Envelope",
    "EventStream",
    "Forbidden",
    "GroupFull",
    "MembershipChanged",
    "MessengerClient",
    "MessengerError",
    "NotFound",
    "QuotaExceeded",
    "SendResult",
    "Throttled",
    "TooLarge",
    "TransportError",
    "Unauthenticated",
    "decode_ciphertext",
    "new_txn_id",
]
