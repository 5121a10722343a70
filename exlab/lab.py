"""The Lab: one simulated Exchange organisation (its store, its fault switches and its clock)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from exlab.core.access import copy_permissions
from exlab.core.folders import add_default_folders
from exlab.core.store import PUBLIC, Folder, Mailbox, MailboxKind, Store

# Cheaper than argon2-cffi's default but within OWASP's recommendation: the lab hashes every
# demo password at seeding time and tests seed many labs.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


class LabUser(NamedTuple):
    address: str
    display_name: str
    kind: MailboxKind
    has_login: bool


@dataclass
class Knobs:
    """Faults on purpose, switched at run time by tests and the CLI.

    `throttle_budget` maps a user address (or `*` for everyone) to the requests allowed per
    `throttle_window_s`; over budget the server answers ErrorServerBusy with `throttle_back_off_ms`.
    """

    throttle_budget: dict[str, int] = field(default_factory=dict)
    throttle_window_s: float = 10.0
    throttle_back_off_ms: int = 1000
    latency_s: float = 0.0
    outage: bool = False
    push_minute_s: float = 60.0
    """How long a minute of a push subscription's StatusFrequency lasts (tests shorten it)."""
    throttled: int = 0
    """How many requests were refused for being over budget (for tests and `lab serve`)."""
    _spent: dict[str, tuple[float, int]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def charge(self, user: str) -> int | None:
        """Count one request by `user`; the back-off in milliseconds when over budget, else None."""
        budget = self.throttle_budget.get(user.lower(), self.throttle_budget.get("*"))
        if budget is None:
            return None
        now = time.monotonic()
        with self._lock:
            start, used = self._spent.get(user.lower(), (now, 0))
            if now - start >= self.throttle_window_s:
                start, used = now, 0
            if used >= budget:
                self.throttled += 1
                remaining_ms = int((self.throttle_window_s - (now - start)) * 1000)
                return max(self.throttle_back_off_ms, min(remaining_ms, 60_000))
            self._spent[user.lower()] = (start, used + 1)
            return None

    def reset_throttle(self) -> None:
        with self._lock:
            self._spent.clear()


class Lab:
    """A simulated Exchange organisation over one store (file or memory)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.knobs = Knobs()
        self.clock: Callable[[], datetime] | None = None
        self._verify_key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}

    @classmethod
    def open(cls, path: str | Path | None = None) -> Lab:
        """Open (or create) a lab on a SQLite file, or in memory when `path` is None.

        The store's tables exist once it is open; an organisation is its callers' to add
        (`exlab.demo.open_demo` for the demo one).
        """
        return cls(Store(path))

    def close(self) -> None:
        self.store.close()

    def now(self) -> datetime:
        """The lab's time (UTC); tests set `clock` to freeze it."""
        return self.clock() if self.clock is not None else datetime.now(UTC)

    # -- users ----------------------------------------------------------------------------------

    def add_mailbox(
        self,
        address: str,
        display_name: str,
        kind: MailboxKind = "user",
        *,
        password: str | None = None,
        archive: bool = False,
    ) -> Mailbox:
        """A mailbox with the default folders a new Exchange mailbox has (and its archive)."""
        hashed = _HASHER.hash(password) if password is not None else None
        with self.store.transaction():
            mailbox = self.store.add_mailbox(
                address, display_name, kind, password_hash=hashed, has_archive=archive
            )
            add_default_folders(self.store, mailbox.address, archive=archive, now=self.now())
        return mailbox

    def add_folder(
        self,
        parent: Folder,
        display_name: str,
        folder_class: str | None = None,
        *,
        inherit_class: bool = True,
    ) -> Folder:
        """A subfolder with permission entries copied from its parent. Without a class it takes
        its parent's, unless `inherit_class` is False: a folder a client creates without a
        class has none, as in Exchange."""
        with self.store.transaction():
            folder = self.store.add_folder(
                parent.mailbox,
                display_name,
                parent_id=parent.id,
                folder_class=folder_class
                or (parent.folder_class or "IPF.Note" if inherit_class else None),
                now=self.now(),
            )
            copy_permissions(self.store, parent.id, folder.id)
        return folder

    def public_root(self) -> Folder:
        """The root of the public folder tree, created on first use."""
        root = self.store.distinguished_folder(PUBLIC, "publicfoldersroot")
        if root is not None:
            return root
        with self.store.transaction():
            if self.store.mailbox(PUBLIC) is None:
                self.store.add_mailbox(PUBLIC, "Öffentliche Ordner", "public")
            return self.store.add_folder(
                PUBLIC,
                "Öffentliche Ordner",
                parent_id=None,
                folder_class="IPF.Note",
                distinguished="publicfoldersroot",
                now=self.now(),
            )

    def set_password(self, address: str, password: str) -> None:
        self.store.update_mailbox(address, password_hash=_HASHER.hash(password))
        self._verified.pop(address.lower(), None)

    def check_password(self, address: str, password: str) -> bool:
        """Verify a login against the argon2 hash in the store.

        A successful check is remembered as a keyed digest (never the password), so a client's
        every request does not pay argon2 again, like the credential cache of a web server.
        """
        address = address.lower()
        mailbox = self.store.mailbox(address)
        if mailbox is None or mailbox.password_hash is None:
            return False
        digest = hmac.new(
            self._verify_key,
            mailbox.password_hash.encode() + b"\x00" + password.encode(),
            hashlib.sha256,
        ).digest()
        cached = self._verified.get(address)
        if cached is not None and hmac.compare_digest(cached, digest):
            return True
        try:
            _HASHER.verify(mailbox.password_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        self._verified[address] = digest
        return True

    def users(self) -> list[LabUser]:
        """Everyone in the organisation's address list (the public folder store is not a user)."""
        return [
            LabUser(m.address, m.display_name, m.kind, m.password_hash is not None)
            for m in self.store.mailboxes()
            if m.kind != "public"
        ]
