"""What a session learns about folders that stays true from one session to the next.

A session that opens the boss's inbox asks the server for the inbox's id and our rights on
it; tomorrow's session would ask again and get the same answer. `FolderCache` keeps those
answers in one file per account and server: well-known folders (inbox, calendar ...) and
folders named by path, with our effective rights, folder class and kind, and the server's
version. Never a secret, never an item, never a count (counts change all the time: a folder
from the cache has none).

A cached answer is a claim the server may refute: `DelegateSession` forgets an entry when
the server says the folder is gone or refuses us, learns it afresh and tries once more (see
`DelegateSession.default_folder`). Entries expire after `MAX_AGE` so that what the server
cannot refute (a folder renamed) does not stay forever.

The file is JSON with a format number, written atomically and 0600; a file that cannot be
read, is of another format or belongs to another account is ignored and written anew: the
cache is never a reason to fail.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from med.files import write_private
from med.model import EditScope, Folder, FolderKind, Profile, ReadAccess, Rights

__all__ = ["FORMAT", "MAX_AGE", "FolderCache", "path_key", "well_known_key"]

log = logging.getLogger(__name__)

#: The file's format; a file of another format is ignored (and replaced when written).
FORMAT = 1
#: How long an entry is trusted without the server refuting it.
MAX_AGE = timedelta(days=7)

_FOLDER_FIELDS = (
    "id",
    "mailbox",
    "name",
    "kind",
    "parent_id",
    "distinguished",
    "container_class",
    "change_key",
    "archive",
)


def well_known_key(name: str) -> str:
    return f"well-known:{name.strip().lower()}"


def path_key(parts: list[str]) -> str:
    return "path:" + "/".join(p.strip().lower() for p in parts)


class FolderCache:
    """Folders learnt by one account on one server, persisted in `directory`.

    `directory` is the caller's (the `medbridge` command passes its XDG cache directory);
    the file in it is named by a hash of backend, endpoint and user, which the file repeats
    and which are checked on reading. Thread-safe; every change is written at once (changes
    are rare: a session writes when it learns a folder, and a warm cache is only read).
    """

    def __init__(
        self,
        directory: Path,
        *,
        backend: str,
        endpoint: str,
        user: str,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._identity = {
            "backend": backend,
            "endpoint": endpoint.rstrip("/").lower(),
            "user": user.strip().lower(),
        }
        digest = hashlib.sha256("\n".join(self._identity.values()).encode("utf-8")).hexdigest()[:24]
        self.path = directory / f"folders-{digest}.json"
        self._now = now or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}
        self._server_version: str | None = None
        self._load()

    # ------------------------------------------------------------------ reading

    def _load(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.debug("folder cache %s unreadable: %s", self.path, exc)
            return
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format') if isinstance(doc, dict) else '?'}")
            if any(doc.get(k) != v for k, v in self._identity.items()):
                raise ValueError("another account's or server's file")
            entries = doc.get("folders", {})
            version = doc.get("server_version")
            if not isinstance(entries, dict) or not isinstance(version, str | None):
                raise ValueError("malformed")
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            log.debug("folder cache %s ignored: %s", self.path, exc)
            return
        oldest = self._now() - MAX_AGE
        for key, entry in entries.items():
            try:
                if datetime.fromisoformat(entry["learnt"]) < oldest:
                    continue
                _folder_from(entry["folder"])  # an entry we cannot read is dropped, not kept
            except (KeyError, TypeError, ValueError):
                continue
            self._entries[key] = entry
        self._server_version = version

    @classmethod
    def for_profile(cls, directory: Path, profile: Profile) -> FolderCache:
        """The cache of a profile's account on its server."""
        return cls(directory, backend=profile.backend, endpoint=profile.server, user=profile.user)

    def folder(self, mailbox: str, key: str) -> Folder | None:
        """The folder cached under `key` (`well_known_key`, `path_key`) for a mailbox."""
        with self._lock:
            entry = self._entries.get(_entry_key(mailbox, key))
        return None if entry is None else _folder_from(entry["folder"])

    def key_of(self, folder_id: str) -> tuple[str, str] | None:
        """(mailbox, key) a folder id is cached under, when it is."""
        with self._lock:
            for name, entry in self._entries.items():
                if entry["folder"].get("id") == folder_id:
                    mailbox, _, key = name.partition("|")
                    return mailbox, key
        return None

    @property
    def server_version(self) -> str | None:
        return self._server_version

    # ------------------------------------------------------------------ learning and forgetting

    def learn(self, key: str, folder: Folder) -> None:
        """Remember `folder` under `key` in its mailbox (counts are not kept)."""
        self.learn_all([(key, folder)])

    def learn_all(self, learnt: Iterable[tuple[str, Folder]]) -> None:
        """Remember several (key, folder), written once."""
        learnt_at = self._now().isoformat()
        changed = False
        with self._lock:
            for key, folder in learnt:
                entry = {"learnt": learnt_at, "folder": _folder_to(folder)}
                name = _entry_key(folder.mailbox, key)
                if self._entries.get(name, {}).get("folder") != entry["folder"]:
                    self._entries[name] = entry
                    changed = True
        if changed:  # nothing new: no write
            self._save()

    def forget(self, folder_id: str) -> bool:
        """Drop every entry of a folder id (the server refuted it); whether there was one."""
        with self._lock:
            names = [n for n, e in self._entries.items() if e["folder"].get("id") == folder_id]
            for name in names:
                del self._entries[name]
        if names:
            self._save()
        return bool(names)

    def learn_server_version(self, version: str | None) -> None:
        if version is None or version == self._server_version:
            return
        with self._lock:
            self._server_version = version
        self._save()

    def _save(self) -> None:
        with self._lock:
            doc = {
                "format": FORMAT,
                **self._identity,
                "server_version": self._server_version,
                "folders": dict(self._entries),
            }
            data = json.dumps(doc, ensure_ascii=False, indent=1, sort_keys=True).encode("utf-8")
            try:
                write_private(self.path, data)
            except OSError as exc:  # a read-only or full disk costs round trips, nothing else
                log.debug("folder cache %s not written: %s", self.path, exc)


def _entry_key(mailbox: str, key: str) -> str:
    return f"{mailbox.strip().lower()}|{key}"


def _folder_to(folder: Folder) -> dict[str, Any]:
    data: dict[str, Any] = {name: getattr(folder, name) for name in _FOLDER_FIELDS}
    data["kind"] = folder.kind.value
    # Rights hold booleans and string enums: JSON as they are.
    data["rights"] = None if folder.rights is None else dataclasses.asdict(folder.rights)
    return data


def _folder_from(data: dict[str, Any]) -> Folder:
    """A folder from its cached form. Raises KeyError, TypeError or ValueError when the
    entry is not one we wrote."""
    rights = data["rights"]
    if rights is not None:
        rights = Rights(
            read=ReadAccess(rights["read"]),
            edit=EditScope(rights["edit"]),
            delete=EditScope(rights["delete"]),
            **{
                k: _bool(rights[k])
                for k in (
                    "create_items",
                    "create_subfolders",
                    "folder_owner",
                    "folder_contact",
                    "folder_visible",
                    "view_private",
                )
            },
        )
    strings = {k: data[k] for k in ("id", "mailbox", "name")}
    if not all(isinstance(v, str) and v for v in strings.values()):
        raise ValueError("a folder needs an id, a mailbox and a name")
    optional = {k: data[k] for k in ("parent_id", "distinguished", "container_class", "change_key")}
    if not all(v is None or isinstance(v, str) for v in optional.values()):
        raise ValueError("not a string")
    return Folder(
        **strings,
        **optional,
        kind=FolderKind(data["kind"]),
        rights=rights,
        archive=_bool(data["archive"]),
    )


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("not a boolean")
    return value
