"""`medbridge tasks`: ls, show, create, update, delete."""

from __future__ import annotations

from bridge.commands._items import make_app

app = make_app("task", "Tasks in your own and delegated mailboxes.")
