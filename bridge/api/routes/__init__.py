"""Routes, one module per resource; `ROUTERS` lists them in the order the docs show."""

from __future__ import annotations

from bridge.api.routes import (
    calendar,
    changes,
    folders,
    items,
    mailboxes,
    scheduling,
    sending,
    settings,
    webhooks,
)

ROUTERS = (
    mailboxes.router,
    folders.router,
    items.router,
    sending.router,
    calendar.router,
    settings.router,
    scheduling.router,
    changes.router,
    webhooks.router,
)
