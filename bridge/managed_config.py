"""The tenant's app configuration, delivered into this user's managed settings.

Tenant admins set AppConfig-style keys in the messenger's portal (`tui.page_size = 50`); the
messenger serves them to the tenant's users (`GET /v1/tenant/config`). `sync_managed` fetches
them with the user's messenger session and writes the keys the settings layer knows into a
per-user managed file (`tenant_managed_file`), which `bridge.settings.load` reads as managed:
the keys are locked there, the user's file and variables cannot override them. Keys the
settings do not know, or values they refuse, are reported and not written, so a typo in the
portal can never stop the TUI from starting. The file is replaced atomically and wholly: a key
the admin removed disappears with the next sync. The device's own managed files (MDM) win over
the tenant's keys.

Which keys are known is the settings' owners' business (the TUI's schema lives in `tui`, which
no bridge module but the CLI imports), so the caller passes the check (`KeyCheck`).

`medbridge config sync-managed` signs the user in to the messenger and keeps the session
(`MessengerSignIn`, a 0600 file in the data directory) so that every TUI start syncs again
without asking for the password; when that session has ended, the last delivered keys stay.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from bridge import paths
from bridge.settings import Key, SettingsError, split_name, tenant_managed_file
from messenger.client import MessengerClient

__all__ = [
    "KeyCheck",
    "MessengerSignIn",
    "SyncReport",
    "apply_app_config",
    "rejected_lines",
    "sign_in_file",
    "sync_managed",
    "sync_signed_in",
    "tenant_managed_file",
]

#: Why a key cannot be delivered (a sentence), or None when it can.
KeyCheck = Callable[[Key, Any], str | None]


class TenantConfigSource(Protocol):
    """What the sync needs of the messenger client: the signed-in user's tenant config."""

    async def tenant_config(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SyncReport:
    """What one sync wrote and what it left out (key -> why)."""

    path: Path
    written: Mapping[str, Any] = field(default_factory=dict)
    rejected: Mapping[str, str] = field(default_factory=dict)


def apply_app_config(
    app_config: Mapping[str, Any], check: KeyCheck, target: Path | None = None
) -> SyncReport:
    """Write the deliverable keys of `app_config` (dotted keys to JSON values) to `target`.

    Raises:
        OSError: the file cannot be written (the previous one is left as it was).
    """
    target = target or tenant_managed_file()
    written: dict[str, Any] = {}
    rejected: dict[str, str] = {}
    for name, value in sorted(app_config.items()):
        try:
            key = split_name(str(name))
        except SettingsError as exc:
            rejected[str(name)] = str(exc)
            continue
        problem = check(key, value)
        if problem is None:
            written[".".join(key)] = value
        else:
            rejected[str(name)] = problem
    _write_atomically(target, written)
    return SyncReport(target, written, rejected)


async def sync_managed(
    client: TenantConfigSource, check: KeyCheck, target: Path | None = None
) -> SyncReport:
    """Fetch the tenant's app configuration with a signed-in client and deliver it.

    Raises:
        messenger.client.MessengerError: the messenger refused or could not be reached.
        OSError: the file cannot be written.
    """
    config = await client.tenant_config()
    app_config = config.get("app_config") or {}
    if not isinstance(app_config, Mapping):
        app_config = {}
    return apply_app_config(app_config, check, target)


def rejected_lines(report: SyncReport) -> list[str]:
    """One line per key left out, for the user (the admin's typo is theirs to report)."""
    return [f"tenant setting {name} not applied: {why}" for name, why in report.rejected.items()]


def sign_in_file() -> Path:
    """The user's messenger session for syncing managed keys (server, user, token; 0600)."""
    return paths.data_dir() / "messenger-sign-in.json"


@dataclass(frozen=True)
class MessengerSignIn:
    """Where and as whom the user signs in to the messenger, and the session token once in."""

    server: str
    user: str
    token: str | None = None

    def __repr__(self) -> str:  # the token is a credential: never in logs or tracebacks
        return f"MessengerSignIn(server={self.server!r}, user={self.user!r})"

    @classmethod
    def load(cls, path: Path | None = None) -> MessengerSignIn | None:
        """The saved sign-in, or None when there is none or it is unreadable."""
        try:
            doc = json.loads((path or sign_in_file()).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(doc, dict) or not doc.get("server") or not doc.get("user"):
            return None
        token = doc.get("token")
        return cls(str(doc["server"]), str(doc["user"]), str(token) if token else None)

    def save(self, path: Path | None = None) -> None:
        """Keep it for the next TUI start, readable by the user only."""
        doc = {"server": self.server, "user": self.user, "token": self.token}
        _write_atomically(path or sign_in_file(), doc, mode=0o600)


async def sync_signed_in(
    sign_in: MessengerSignIn,
    check: KeyCheck,
    *,
    password: str | None = None,
    target: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[SyncReport, MessengerSignIn]:
    """Sign in (with `password`, else the saved token) and deliver the tenant's keys; returns
    the report and the sign-in to keep (with the new token after a password sign-in).

    Raises:
        messenger.client.Unauthenticated: wrong password, or the saved session has ended.
        messenger.client.MessengerError: the messenger refused or could not be reached.
        OSError: the file cannot be written.
    """
    async with MessengerClient(sign_in.server, transport=transport, retries=1) as client:
        if password is not None:
            await client.login(sign_in.user, password)
        else:
            client.token = sign_in.token  # None: the client refuses with Unauthenticated
        report = await sync_managed(client, check, target)
        return report, MessengerSignIn(sign_in.server, sign_in.user, client.token)


def _write_atomically(target: Path, doc: Mapping[str, Any], mode: int = 0o644) -> None:
    """Replace `target` at once: readers see the old file or the new one, never half of one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".tenant-", suffix=".json", dir=target.parent)
    try:
        os.chmod(temp, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(doc, out, indent=2, sort_keys=True, ensure_ascii=False)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise
