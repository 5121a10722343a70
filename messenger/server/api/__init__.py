"""REST and WebSocket API of the messenger server; the contract is docs/messenger-api.md.

The server stores and routes opaque ciphertext only. Routers: `accounts` (login, sessions,
devices, directory), `keys` (prekeys, cross-signing), `conversations` (groups, members,
messages, receipts), `to_device`, `attachments`, `stream` (WebSocket), `admin` (tenant
administration), `audit` (four-eyes audit), `alarms` (alarm lists and alarms), `bots` (bot
accounts) and `ops` (health, readiness, metrics).
"""

from __future__ import annotations

from fastapi import APIRouter

from messenger.server.api import (
    accounts,
    admin,
    alarms,
    attachments,
    audit,
    bots,
    conversations,
    keys,
    ops,
    stream,
    to_device,
)


def router() -> APIRouter:
    root = APIRouter()
    modules = (
        accounts,
        keys,
        conversations,
        to_device,
        attachments,
        stream,
        admin,
        audit,
        alarms,
        bots,
    )
    for module in modules:
        root.include_router(module.router, prefix="/v1")
    root.include_router(ops.router)
    return root
