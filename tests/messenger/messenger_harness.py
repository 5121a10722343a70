"""Test harness of the messenger: a real server (uvicorn on loopback) and database seeding."""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bridge.serving import ServerThread as Serving
from messenger.client import EventStream, MessengerClient
from messenger.server.app import create_app
from messenger.server.auth import make_hasher
from messenger.server.config import (
    UVICORN_OPTIONS,
    Argon2Params,
    ServerSettings,
    metadata_key_path,
)
from messenger.store import repo, sealing
from messenger.store.engine import make_engine, sessionmaker
from messenger.store.models import Tenant, User, new_id

PASSWORD = "correct horse battery"
FAST_ARGON2 = Argon2Params(time_cost=1, memory_cost=8, parallelism=1)


class Clock:
    """A settable clock the server reads instead of the wall clock."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset

    def shift(self, **kw: float) -> None:
        self.offset += dt.timedelta(**kw)


@dataclass
class Database:
    url: str
    schema: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class pg_schema:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.name = f"mt_{secrets.token_hex(6)}"

    async def _exec(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def __aenter__(self) -> str:
        await self._exec(f"CREATE SCHEMA {self.name}")
        return self.name

    async def __aexit__(self, *exc: object) -> None:
        await self._exec(f"DROP SCHEMA {self.name} CASCADE")


class ServerThread:
    """The messenger app served on 127.0.0.1 by the one uvicorn-in-a-thread runner."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self._serving = Serving(
            self.app,
            name="messenger",
            lifespan="auto",
            ws_ping_interval=None,
            proxy_headers=False,
            **UVICORN_OPTIONS,
        )

    @property
    def port(self) -> int:
        return self._serving.port

    @property
    def url(self) -> str:
        return self._serving.base_url

    @property
    def running(self) -> bool:
        return self._serving.running

    async def start(self) -> None:
        await asyncio.to_thread(self._serving.start)

    async def stop(self) -> None:
        await asyncio.to_thread(self._serving.stop)


@dataclass
class Harness:
    """A running server plus a seeding connection to its database."""

    database: Database
    settings: ServerSettings
    clock: Clock
    server: ServerThread
    clients: list[MessengerClient] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.database.url, self.database.schema)
        # Seeding writes names sealed with the server's key, as the server and the CLI do. A
        # harness made before its server starts makes the key file the server then uses.
        key_file = metadata_key_path(self.settings)
        sealing.attach(self.engine, sealing.load_keyring(key_file, create=True))
        self.sessions = sessionmaker(self.engine)
        self.hasher = make_hasher(FAST_ARGON2)

    @property
    def url(self) -> str:
        return self.server.url

    async def tenant(self, name: str, *domains: str) -> str:
        async with self.sessions() as db:
            tenant = await repo.create_tenant(db, name, self.clock())
            for domain in domains:
                await repo.add_domain(db, tenant, domain)
            await db.commit()
            return tenant.id

    async def allow(self, a: str, b: str, *, both: bool = True) -> None:
        async with self.sessions() as db:
            ta, tb = await db.get(Tenant, a), await db.get(Tenant, b)
            assert ta is not None and tb is not None
            await repo.set_partner(db, ta, tb, True, self.clock())
            if both:
                await repo.set_partner(db, tb, ta, True, self.clock())
            await db.commit()

    async def user(self, email: str, *, role: str = "user", password: str | None = PASSWORD) -> str:
        async with self.sessions() as db:
            hashed = self.hasher.hash(password) if password else None
            user = await repo.create_user(db, email, self.clock(), role=role, password_hash=hashed)
            await db.commit()
            return user.id

    async def users(self, emails: list[str]) -> list[str]:
        """Many password-less users of one tenant in one insert (for large groups)."""
        async with self.sessions() as db:
            tenant = await repo.tenant_for_email(db, emails[0])
            rows = [
                User(
                    id=new_id(),
                    tenant_id=tenant.id,
                    email=e,
                    display_name=e,
                    created_at=self.clock(),
                )
                for e in emails
            ]
            db.add_all(rows)
            await db.commit()
            return [r.id for r in rows]

    async def get_user(self, user_id: str) -> User:
        async with self.sessions() as db:
            user = await db.get(User, user_id)
            assert user is not None
            return user

    def client(self) -> MessengerClient:
        client = MessengerClient(self.url, retries=1)
        self.clients.append(client)
        return client

    async def login(self, email: str, *, device: bool = True) -> MessengerClient:
        client = self.client()
        await client.login(email, PASSWORD)
        if device:
            await client.register_device(
                "test", secrets.token_bytes(32), secrets.token_bytes(32), secrets.token_bytes(64)
            )
        return client

    async def member(self, email: str, **kw: Any) -> MessengerClient:
        """Create the user and log in with a registered device."""
        await self.user(email, **kw)
        return await self.login(email)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.engine.dispose()


async def wait_ready(base: str, proc: subprocess.Popen[Any]) -> None:
    """Wait until a server started as `proc` answers /readyz at `base` (30 s at most)."""
    async with httpx.AsyncClient(base_url=base) as http:
        for _ in range(300):
            if proc.poll() is not None:
                said = proc.stderr.read() if proc.stderr is not None else ""
                raise AssertionError(f"the server exited: {said!s}")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the server did not become ready")


def make_settings(database: Database, tmp_path: Path, clock: Clock, **kw: Any) -> ServerSettings:
    return ServerSettings(
        database_url=database.url,
        db_schema=database.schema,
        blob_dir=tmp_path / "blobs",
        clock=clock,
        **{"argon2": FAST_ARGON2, **kw},
    )


async def next_of(stream: EventStream, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next event of this type (others are skipped)."""
    while True:
        event = await stream.next(timeout)
        if event["type"] == kind:
            return event


class Inbox:
    """aiosmtpd handler keeping what it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"
