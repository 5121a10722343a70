"""Local autosave of unsent mail, so a crash, a lost connection or a closed window loses no draft.

One JSON file per draft under the configured drafts directory, written atomically (temp file +
rename), removed once the server has accepted the message.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Draft:
    """What the compose screen holds; plain strings so it survives any version of the UI."""

    draft_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    mode: str = "new"
    """new, reply, reply-all or forward."""
    sender: str = ""
    """Address the mail goes out as (the mailbox owner for on-behalf sending)."""
    to: str = ""
    cc: str = ""
    subject: str = ""
    body: str = ""
    in_reply_to: str | None = None
    """Item id of the message answered or forwarded."""


class DraftStore:
    """Drafts on disk; every method is cheap enough for the UI thread (small files)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, draft_id: str) -> Path:
        if not draft_id.isalnum():
            raise ValueError("draft ids are hexadecimal")
        return self.directory / f"{draft_id}.json"

    def save(self, draft: Draft) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = json.dumps(asdict(draft), ensure_ascii=False).encode()
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".draft-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._path(draft.draft_id))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def load(self, draft_id: str) -> Draft:
        raw = json.loads(self._path(draft_id).read_text(encoding="utf-8"))
        return Draft(**{k: raw[k] for k in Draft.__dataclass_fields__ if k in raw})

    def discard(self, draft_id: str) -> None:
        self._path(draft_id).unlink(missing_ok=True)

    def all(self) -> list[Draft]:
        """Every draft still on disk, newest first; unreadable files are skipped, not deleted."""
        if not self.directory.is_dir():
            return []
        files = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        drafts: list[Draft] = []
        for path in files:
            try:
                drafts.append(self.load(path.stem))
            except (OSError, ValueError, TypeError, KeyError):
                continue
        return drafts
