"""App registrations of the lab's authority, kept in the lab store like Entra keeps them.

Two are always there (the authority registers them itself, see `exlab.graph.oauth`):
medbridge's public client (device code, authorization code with PKCE) and a confidential
daemon for app-only access, whose secret is the demo organisation's documented password.
`medbridge lab apps add` registers more; a confidential client's secret is shown once at
registration and kept only as an argon2 hash and a hint, as Entra does. An unknown client id
is answered with AADSTS700016.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import uuid
from dataclasses import dataclass
from typing import Literal

from argon2 import PasswordHasher

from exlab.core.store import Store
from exlab.graph.oauth import (
    APPLICATION_ROLES,
    DAEMON_CLIENT_ID,
    DAEMON_SECRET,
    PUBLIC_CLIENT_ID,
    LabClient,
)

AppKind = Literal["public", "confidential"]
LOOPBACK = "http://localhost"
"""A public client's default redirect: any loopback port, as Entra allows for native apps."""

_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@dataclass(frozen=True)
class AppRegistration:
    client_id: str
    name: str
    kind: AppKind
    redirect_uris: tuple[str, ...]
    roles: frozenset[str]
    secret_hint: str | None = None
    secret_hash: str | None = None
    builtin: bool = False

    def client(self) -> LabClient:
        return LabClient(
            self.client_id,
            self.name,
            self.secret_hash,
            self.roles,
            redirect_uris=self.redirect_uris,
        )


def _hint(secret: str) -> str:
    return secret[:3] + "…"


BUILTIN = (
    AppRegistration(
        PUBLIC_CLIENT_ID, "medbridge", "public", (LOOPBACK,), frozenset(), builtin=True
    ),
    AppRegistration(
        DAEMON_CLIENT_ID,
        "medbridge daemon",
        "confidential",
        (),
        APPLICATION_ROLES,
        secret_hint=DAEMON_SECRET,  # documented with the demo organisation, so shown whole
        builtin=True,
    ),
)


def _from_row(row: sqlite3.Row) -> AppRegistration:
    return AppRegistration(
        client_id=row["client_id"],
        name=row["name"],
        kind=row["kind"],
        redirect_uris=tuple(json.loads(row["redirect_uris"])),
        roles=frozenset(json.loads(row["roles"])),
        secret_hint=row["secret_hint"],
        secret_hash=row["secret_hash"],
    )


def registrations(store: Store) -> list[AppRegistration]:
    """Every client the authority knows: the built-in two, then the registered ones."""
    rows = store.query("SELECT * FROM app_registrations ORDER BY name, client_id")
    return [*BUILTIN, *(_from_row(row) for row in rows)]


def find_registered(store: Store, client_id: str) -> AppRegistration | None:
    """A client registered in the store (the built-in two live in the authority itself)."""
    row = store.query_one("SELECT * FROM app_registrations WHERE client_id = ?", (client_id,))
    return _from_row(row) if row is not None else None


def register(
    store: Store,
    name: str,
    *,
    kind: AppKind,
    redirect_uris: tuple[str, ...] = (),
    roles: frozenset[str] = frozenset(),
) -> tuple[AppRegistration, str | None]:
    """Register a client; returns it and, for a confidential one, its secret (shown once)."""
    if not name.strip():
        raise ValueError("An app registration needs a name.")
    unknown = roles - APPLICATION_ROLES
    if unknown:
        raise ValueError(f"Unknown application roles: {', '.join(sorted(unknown))}.")
    if kind == "public" and roles:
        raise ValueError("Application roles are for confidential clients only.")
    uris = redirect_uris or ((LOOPBACK,) if kind == "public" else ())
    for uri in uris:
        if not (uri.startswith("https://") or uri.startswith("http://localhost")):
            raise ValueError(f"Redirect URIs must be https or http://localhost: {uri!r}.")
    secret = secrets.token_urlsafe(24) if kind == "confidential" else None
    registration = AppRegistration(
        client_id=str(uuid.uuid4()),
        name=name.strip(),
        kind=kind,
        redirect_uris=uris,
        roles=roles,
        secret_hint=_hint(secret) if secret else None,
        secret_hash=_HASHER.hash(secret) if secret else None,
    )
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO app_registrations (client_id, name, kind, redirect_uris, roles,"
            " secret_hint, secret_hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                registration.client_id,
                registration.name,
                kind,
                json.dumps(list(uris)),
                json.dumps(sorted(roles)),
                registration.secret_hint,
                registration.secret_hash,
            ),
        )
    return registration, secret
