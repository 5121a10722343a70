"""The demo: the Exchange lab with the demo organisation in this process, and a profile for it.

`medbridge demo` serves the lab on a free loopback port in a background thread, so quitting the
TUI stops everything the demo started; nothing is left listening. Beside it run the messenger
(SQLite) and the notification bridge, so a new mail in chef's inbox reaches assistenz's
messenger.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from bridge.serving import ServerThread

if TYPE_CHECKING:
    import asyncio

    from bridge.notify import BridgeConfig, BridgeWorker
    from exlab import Lab
    from med.model import Profile

DEMO_DOMAIN = "musterstadt.example"
DEMO_USER = f"assistenz@{DEMO_DOMAIN}"
#: The mailboxes an assistant of the demo organisation works in besides her own, with their kind.
DEMO_MAILBOXES = (
    f"chef@{DEMO_DOMAIN}",
    f"functional:poststelle@{DEMO_DOMAIN}",
    f"functional:leitstelle@{DEMO_DOMAIN}",
    f"shared:teamkalender@{DEMO_DOMAIN}",
)

#: Where the demo opens: the boss's inbox, whichever mailbox the server answers for first.
DEMO_START_FOLDER = f"chef@{DEMO_DOMAIN}/inbox"


class LabThread:
    """The lab behind uvicorn on 127.0.0.1 in a daemon thread; a context manager that stops it."""

    def __init__(
        self, store: Path | None, *, host: str = "127.0.0.1", demo: bool = True, port: int = 0
    ) -> None:
        from exlab import Lab
        from exlab.demo import open_demo
        from exlab.server import STREAMS_CLOSE_S, create_app

        if store is not None:
            store.parent.mkdir(parents=True, exist_ok=True)
        self.lab: Lab = open_demo(store) if demo else Lab.open(store)
        self._server = ServerThread(
            create_app(self.lab),
            host=host,
            port=port,
            name="lab",
            timeout_graceful_shutdown=STREAMS_CLOSE_S,
        )

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def ews_url(self) -> str:
        return self._server.url("/EWS/Exchange.asmx")

    def start(self, timeout_s: float = 15.0, *, port_wait_s: float | None = None) -> LabThread:
        try:
            self._server.start(timeout_s, port_wait_s=port_wait_s)
        except RuntimeError:
            self.lab.close()
            raise RuntimeError("the Exchange lab did not start") from None
        return self

    def stop(self) -> None:
        self._server.stop()
        self.lab.close()

    def __enter__(self) -> LabThread:
        return self if self._server.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def demo_profile(ews_url: str, user: str = DEMO_USER) -> Profile:
    """The profile of a demo user against a running lab (Basic over loopback: it is a lab)."""
    from med.model import AuthMethod, Profile

    others = tuple(m for m in DEMO_MAILBOXES if m.rpartition(":")[2] != user)
    return Profile(
        name="demo",
        server=ews_url,
        user=user,
        auth=AuthMethod.BASIC,
        mailboxes=others,
    )


# --------------------------------------------------------------------------- messenger and bridge

DEMO_BRIDGE_USER = f"bridge@{DEMO_DOMAIN}"
#: Messenger accounts of the demo organisation (password: the demo password).
DEMO_CHAT_USERS = (
    DEMO_BRIDGE_USER,
    f"assistenz@{DEMO_DOMAIN}",
    f"chef@{DEMO_DOMAIN}",
    f"sachbearbeitung@{DEMO_DOMAIN}",
)
#: Where the demo bridge's configuration takes the demo password from.
DEMO_PASSWORD_ENV = "MEDBRIDGE_DEMO_PASSWORD"  # noqa: S105 (a variable name, not a secret)


class MessengerThread:
    """The messenger server on SQLite in this process, with the demo organisation's accounts."""

    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1", fast_hashes: bool = False):
        self.host = host
        self.data_dir = data_dir
        self.fast_hashes = fast_hashes
        self._server: ServerThread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return self._server.base_url

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'messenger.db'}"

    def start(self) -> MessengerThread:
        import asyncio

        from messenger.server.app import create_app
        from messenger.server.config import Argon2Params, ServerSettings, metadata_key_path

        self.data_dir.mkdir(parents=True, exist_ok=True)
        fast = Argon2Params(time_cost=1, memory_cost=8, parallelism=1)
        settings = ServerSettings(
            database_url=self.database_url,
            blob_dir=self.data_dir / "blobs",
            argon2=fast if self.fast_hashes else Argon2Params(),
        )
        # Its own thread and loop: the caller may be running an event loop already. A
        # failure is raised here, in the caller's thread (`result()`).
        seeding = seed_demo_messenger(
            self.database_url, settings.argon2, metadata_key_path(settings)
        )
        with ThreadPoolExecutor(1, thread_name_prefix="demo messenger seed") as pool:
            pool.submit(asyncio.run, seeding).result()
        self._server = ServerThread(
            create_app(settings),
            host=self.host,
            name="messenger",
            lifespan="on",
            ws_ping_interval=None,
            proxy_headers=False,  # the messenger decides whom to believe (trusted_proxies)
        )
        self._server.start(30.0)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> MessengerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


async def seed_demo_messenger(
    database_url: str, argon2: object, metadata_key_file: Path | None = None
) -> None:
    """The demo tenant and its accounts, unless they exist (the file is kept across runs).

    A server that ran on the file before sealed the names in it: `metadata_key_file`, the
    server's key file, lets the seeding read them (it is made here if the server has not).
    """
    import datetime as dt

    from exlab.demo import DEMO_PASSWORD
    from messenger.server.auth import make_hasher
    from messenger.store import repo, schema, sealing
    from messenger.store.engine import make_engine, sessionmaker

    engine = make_engine(database_url)
    try:
        if metadata_key_file is not None:
            sealing.attach(engine, sealing.load_keyring(metadata_key_file, create=True))
        await schema.upgrade(engine)
        async with sessionmaker(engine)() as db:
            if await repo.user_by_email(db, DEMO_BRIDGE_USER) is not None:
                return
            now = dt.datetime.now(dt.UTC)
            tenant = await repo.create_tenant(db, "Musterstadt", now)
            await repo.add_domain(db, tenant, DEMO_DOMAIN)
            hashed = make_hasher(argon2).hash(DEMO_PASSWORD)  # type: ignore[arg-type]
            for email in DEMO_CHAT_USERS:
                await repo.create_user(db, email, now, password_hash=hashed)
            await db.commit()
    finally:
        await engine.dispose()


def demo_bridge_config(
    ews_url: str, messenger_url: str, data_dir: Path, *, mode: str = "streaming"
) -> BridgeConfig:
    """The demo bridge: chef's inbox, watched as the assistant (a delegate), posted to her."""
    import os

    from bridge.notify.config import parse_config
    from exlab.demo import DEMO_PASSWORD

    os.environ.setdefault(DEMO_PASSWORD_ENV, DEMO_PASSWORD)
    identity = {
        "server": ews_url,
        "auth": "basic",
        "version": "Exchange2016",
        "max_wait_s": 5.0,
        "password_env": DEMO_PASSWORD_ENV,
    }
    doc = {
        "bridge": {"mode": mode, "poll_seconds": 30.0 if mode == "streaming" else 1.0},
        "messenger": {
            "server": messenger_url,
            "user": DEMO_BRIDGE_USER,
            "password_env": DEMO_PASSWORD_ENV,
            "key_strength": "interactive",
        },
        "identities": {
            "assistenz": {**identity, "user": DEMO_USER},
            "chef": {**identity, "user": f"chef@{DEMO_DOMAIN}"},
        },
        "watch": [
            {
                "mailbox": f"chef@{DEMO_DOMAIN}",
                "folders": ["inbox"],
                "identity": "assistenz",
                "rights_identity": "chef",
            }
        ],
        "rule": [{"name": "chef-inbox", "to": [f"user:{DEMO_USER}"]}],
    }
    return parse_config(doc, data_dir=data_dir, worker_id="demo")


class BridgeThread:
    """A bridge worker on its own event loop in a daemon thread; a context manager."""

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.worker: BridgeWorker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self.error: BaseException | None = None

    def start(self, timeout_s: float = 60.0) -> BridgeThread:
        import asyncio

        from bridge.notify import BridgeWorker

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            self.worker = BridgeWorker(self.config)

            async def main() -> None:
                self._task = asyncio.create_task(self.worker.run())  # type: ignore[union-attr]
                ready = asyncio.create_task(self.worker.ready.wait())  # type: ignore[union-attr]
                try:
                    await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
                    self._started.set()
                    await self._task
                finally:
                    ready.cancel()

            try:
                loop.run_until_complete(main())
            except asyncio.CancelledError:
                pass
            except BaseException as exc:  # reported to the starting thread, which raises it
                self.error = exc
            finally:
                self._started.set()
                loop.close()

        self._thread = threading.Thread(target=run, name="bridge", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout_s) or self.error is not None:
            self.stop()
            raise RuntimeError(f"the bridge did not start: {self.error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._task is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._task.cancel)
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> BridgeThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
