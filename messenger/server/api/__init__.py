"""REST and WebSocket API of the messenger server; the contract is docs/messenger-api.md.

The server stores and routes opaque ciphertext only. Routers: `accounts` (login, sessions,
devices, directory), `keys` (prekeys, cross-signing), `conversations` (groups, members,
messages, receipts), `to_device`, `attachments`, `stream` (WebSocket), `admin` (tenant
administration) and `ops` (health, readiness, metrics).
"""

from __future__ import annotations

from fastapi import APIRouter

from messenger.server.api import (
    accounts,
    admin,
    attachments,
    conversations,
    keys,
    ops,
    stream,
    to_device,
)


def router() -> APIRouter:
    root = APIRouter()
    for module in (accounts, keys, conversations, to_device, attachments, stream, admin):
        root.include_router(module.router, prefix="/v1")
    root.include_router(ops.router)
    return root
