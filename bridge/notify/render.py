"""What a notification says: the payload recorded from an item, and the text posted from it.

The payload is taken when the change is seen (the item may be gone when the message is sent)
and holds only what the message shows; it is dropped from the database once sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from bridge.notify.rules import item_kind
from med import Event, Item, Message, Task

__all__ = ["PREVIEW_CHARS", "actions_for", "item_link", "payload_for", "render", "render_digest"]

PREVIEW_CHARS = 200
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")

_LABEL = {
    "mail": "Mail",
    "meeting": "Meeting",
    "appointment": "Appointment",
    "voicemail": "Voicemail",
    "task": "Task",
    "reminder": "Reminder",
}


def item_link(mailbox: str, item_id: str) -> str:
    """The `medbridge://` reference the TUI opens."""
    return f"medbridge://item/{quote(mailbox, safe='@')}/{quote(item_id, safe='')}"


def _preview(item: Item) -> str:
    body = item.body or ""
    if item.body_is_html:
        body = _TAGS.sub(" ", body)
    body = _SPACE.sub(" ", body).strip()
    return body[:PREVIEW_CHARS] + ("…" if len(body) > PREVIEW_CHARS else "")


def payload_for(item: Item, mailbox: str, folder: str, kind: str | None = None) -> dict[str, Any]:
    sender = ""
    if isinstance(item, Message) and (item.from_ or item.sender):
        sender = str(item.from_ or item.sender)
    elif isinstance(item, Event) and item.organizer is not None:
        sender = str(item.organizer)
    payload: dict[str, Any] = {
        "kind": kind or item_kind(item),
        "subject": item.subject,
        "sender": sender,
        "preview": _preview(item),
        "mailbox": mailbox,
        "folder": folder,
        "importance": item.importance.value,
        "link": item_link(mailbox, item.id),
    }
    if isinstance(item, Event):
        payload["start"] = item.start.isoformat()
        if item.location:
            payload["location"] = item.location
    if isinstance(item, Task) and item.due is not None:
        payload["task_due"] = item.due.date().isoformat()
    return payload


def actions_for(kind: str, ref: int) -> list[dict[str, str]]:
    """Buttons under a notification; each sends its reply command as a chat message."""
    buttons: list[dict[str, str]] = []
    if kind == "reminder":
        return buttons  # nothing to answer: the reminder only says the time has come
    if kind == "task":
        # A task has no read state and no follow-up flag of its own; it can be completed.
        return [{"label": "Done", "reply": f"done #{ref}"}]
    if kind == "meeting":
        buttons += [
            {"label": "Accept", "reply": f"accept #{ref}"},
            {"label": "Tentative", "reply": f"tentative #{ref}"},
            {"label": "Decline", "reply": f"decline #{ref}"},
        ]
    buttons += [
        {"label": "Mark read", "reply": f"read #{ref}"},
        {"label": "Flag", "reply": f"flag #{ref}"},
    ]
    return buttons


def render(payload: dict[str, Any], ref: int) -> str:
    """The message text of one notification (or of a bridge reply, which has `text`)."""
    if "text" in payload:
        return str(payload["text"])
    kind = str(payload.get("kind", "mail"))
    lines = [f"[{_LABEL.get(kind, 'Mail')} #{ref}] {payload['mailbox']} › {payload['folder']}"]
    if payload.get("importance") == "high":
        lines[0] += " (important)"
    if payload.get("sender"):
        lines.append(f"From: {payload['sender']}")
    lines.append(f"Subject: {payload.get('subject') or '(no subject)'}")
    if payload.get("start"):
        lines.append(f"Starts: {payload['start']}")
    if payload.get("location"):
        lines.append(f"Where: {payload['location']}")
    if payload.get("task_due"):
        lines.append(f"Task due: {payload['task_due']}")
    if payload.get("preview"):
        lines.append(f"> {payload['preview']}")
    lines.append(str(payload["link"]))
    if kind == "reminder":
        return "\n".join(lines)
    commands = " · ".join(a["reply"] for a in actions_for(kind, ref))
    forward = "" if kind == "task" else f" · forward #{ref} ADDRESS"
    lines.append(f"Reply with: {commands} · move #{ref} FOLDER{forward}")
    return "\n".join(lines)


def render_digest(entries: Sequence[tuple[int, dict[str, Any]]]) -> str:
    lines = [f"Digest: {len(entries)} new items"]
    for ref, p in entries:
        lines.append(f"#{ref} {p.get('sender') or ''} · {p.get('subject') or '(no subject)'}")
        lines.append(f"   {p['link']}")
    return "\n".join(lines)
