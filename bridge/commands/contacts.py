"""`medbridge contacts`: ls, show, create, update, delete."""

from __future__ import annotations

from bridge.commands._items import make_app

app = make_app("contact", "Contacts in your own and delegated mailboxes.")
