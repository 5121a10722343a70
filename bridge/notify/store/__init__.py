"""The bridge database: sync state, outbox, links, routes, actions, leases (SQLite, PostgreSQL)."""

from bridge.notify.store.migrations import SchemaTooNew, latest_version
from bridge.notify.store.repo import (
    ActionRow,
    BridgeStore,
    LinkRow,
    NewNotification,
    OutboxRow,
)

__all__ = [
    "ActionRow",
    "BridgeStore",
    "LinkRow",
    "NewNotification",
    "OutboxRow",
    "SchemaTooNew",
    "latest_version",
]
