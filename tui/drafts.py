"""Drafts of unsent mail: on the server in the mailbox owner's Drafts, and always locally too.

The local copy (one JSON file per draft under the configured drafts directory, written
atomically: temp file + rename) is what survives a crash, a lost connection or a server that
refuses the draft; it is removed once the server has accepted the message. The server copy is
what Outlook and the owner see; `server_id` ties the local draft to it so later saves update
the same item.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from med.model import Address, Item, Message
from med.quoting import answer_subject, reply_recipients


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
    bcc: str = ""
    subject: str = ""
    body: str = ""
    attachments: str = ""
    """Files to attach, separated by ";"."""
    in_reply_to: str | None = None
    """Item id of the message answered or forwarded."""
    quoted: bool = False
    """The original is quoted in `body` already (it is fetched once, when writing starts)."""
    original_message_id: str | None = None
    """Message-ID of the answered message, for threading."""
    server_id: str | None = None
    """Item id of the copy in a Drafts folder on the server, once saved there."""
    server_change_key: str | None = None
    server_mailbox: str | None = None
    """Mailbox whose Drafts hold the server copy (the owner's, or ours where we may not write)."""
    server_sender: str | None = None
    """The sender the server copy was saved for; another sender means a new server draft."""

    def message(self) -> Message:
        """The draft as a message (recipients that are not addresses yet are left out)."""
        return Message(
            subject=self.subject,
            body=self.body,
            to=_addresses(self.to),
            cc=_addresses(self.cc),
            bcc=_addresses(self.bcc),
        )

    @classmethod
    def answering(cls, original: Message, mode: str, sender: str, *, user: str = "") -> Draft:
        """A reply, reply-all or forward of `original`, addressed and titled as it will be
        sent; every field stays editable. The quoted original is added by the compose screen
        once it has the full message."""
        forward = mode == "forward"
        to: tuple[Address, ...] = ()
        cc: tuple[Address, ...] = ()
        if not forward:
            to, cc = reply_recipients(
                original, reply_all=mode == "reply-all", me={sender.lower(), user.lower()}
            )
        return cls(
            mode=mode,
            sender=sender,
            to=format_addresses(to),
            cc=format_addresses(cc),
            subject=answer_subject(original.subject, forward=forward),
            in_reply_to=original.id,
            original_message_id=original.internet_message_id,
        )

    def attachment_paths(self) -> list[Path]:
        return [Path(p.strip()).expanduser() for p in self.attachments.split(";") if p.strip()]

    def server_copy(self) -> Message | None:
        """The server item this draft updates, or None before the first server save."""
        if self.server_id is None:
            return None
        return dataclasses.replace(
            self.message(),
            id=self.server_id,
            change_key=self.server_change_key,
            mailbox=self.server_mailbox,
            is_draft=True,
        )

    def saved_on_server(self, item: Item) -> None:
        self.server_id = item.id
        self.server_change_key = item.change_key
        self.server_mailbox = item.mailbox or self.server_mailbox
        self.server_sender = self.sender

    def forget_server_copy(self) -> None:
        self.server_id = self.server_change_key = self.server_mailbox = self.server_sender = None

    @classmethod
    def from_server(cls, message: Message, sender: str) -> Draft:
        """A draft reopened from a Drafts folder; it updates that item from now on."""
        draft = cls(
            mode="new",
            sender=sender,
            to=", ".join(a.email for a in message.to),
            cc=", ".join(a.email for a in message.cc),
            bcc=", ".join(a.email for a in message.bcc),
            subject=message.subject,
            body=message.body or "",
        )
        draft.saved_on_server(message)
        return draft


def parse_addresses(text: str) -> tuple[Address, ...]:
    """The recipients of a comma-separated field: "a@b.example" or "Name <a@b.example>" (what
    completion by name writes); anything else is taken as typed, for the review to refuse."""
    out: list[Address] = []
    for part in text.split(","):
        entry = part.strip()
        if not entry:
            continue
        if entry.endswith(">") and "<" in entry:
            name, _, email = entry[:-1].rpartition("<")
            name = name.strip().split(" — ", 1)[-1].strip()
            out.append(Address(email.strip(), name))
        else:
            out.append(Address(entry))
    return tuple(out)


def format_addresses(addresses: tuple[Address, ...]) -> str:
    return ", ".join(f"{a.name} <{a.email}>" if a.name else a.email for a in addresses)


def _addresses(text: str) -> tuple[Address, ...]:
    """Complete-looking addresses only, so a half-typed one does not stop the server save."""
    return tuple(a for a in parse_addresses(text) if a.looks_valid)


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
        if not isinstance(raw, dict):
            raise ValueError("not a draft")
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
