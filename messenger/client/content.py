"""What an end-to-end encrypted message says: the one schema of message content (version 1).

The sender's device encodes content as JSON inside the encrypted message; the server never
sees it. `parse_content` checks what a decrypted message holds and raises `ContentError` for
anything outside the schema, so a bad or hostile message becomes an `UndecodableMessage` for
the application, never an exception in its event loop.

Types (field `type`; every type may carry `reply_to`, the seq of the message it answers):

- `text`: `body`, optional `actions` (buttons `{label, reply}`).
- `attachment`: a file: `attachment_id`, `key`, `sha256`, `size`, `name`, `mime`, `body`
  (caption); images add `width`, `height` and an encrypted `thumbnail` (the same key
  fields plus `width`, `height`).
- `voice`: the attachment fields, `mime` `audio/ogg` (Opus) or `audio/wav`, `duration_ms`.
- `location`: `lat`, `lon`, `accuracy_m`; live sharing adds `live` = `{id, until_ms, final}`.
- `edit`: `target` (seq of the sender's own text), `body`.
- `reaction`: `target`, `emoji`, `remove`.

Deletion for everyone is not content: the server drops the message's ciphertext and appends
a `redaction` event (see `E2ESession.delete_for_everyone`).
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from messenger.client._errors import MessengerError
from messenger.crypto import AttachmentKey

CONTENT_VERSION = 1
MAX_BODY_CHARS = 64_000
MAX_VOICE_MS = 60 * 60 * 1000
MAX_LIVE_SECONDS = 24 * 60 * 60
THUMBNAIL_SIDE = 256
VOICE_MIMES = ("audio/ogg", "audio/wav")


class ContentError(MessengerError):
    """Message content outside the schema (or a voice file whose container is not valid)."""


# -- content types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AttachmentRef:
    """An attachment as announced in a decrypted message; `E2ESession.fetch_attachment` opens it."""

    attachment_id: str
    name: str
    mime: str
    key: AttachmentKey


@dataclass(frozen=True)
class Thumbnail:
    ref: AttachmentRef
    width: int
    height: int


@dataclass(frozen=True)
class Text:
    body: str
    actions: tuple[tuple[str, str], ...] = ()  # (label, reply) buttons offered by the sender


@dataclass(frozen=True)
class File:
    """A file; an image when `width`/`height` are set, usually with a `thumbnail`."""

    attachment: AttachmentRef
    body: str = ""
    width: int | None = None
    height: int | None = None
    thumbnail: Thumbnail | None = None


@dataclass(frozen=True)
class Voice:
    attachment: AttachmentRef
    duration_ms: int
    body: str = ""


@dataclass(frozen=True)
class LiveShare:
    """Live location sharing: updates carry the same `id`; `final` ends it before `until_ms`."""

    id: str
    until_ms: int
    final: bool = False


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    accuracy_m: float
    live: LiveShare | None = None


@dataclass(frozen=True)
class Edit:
    target: int
    body: str


@dataclass(frozen=True)
class Reaction:
    target: int
    emoji: str
    remove: bool = False


Content = Text | File | Voice | Location | Edit | Reaction


@dataclass(frozen=True)
class Parsed:
    content: Content
    reply_to: int | None = None


# -- encoding --------------------------------------------------------------------------------


def encode(content: Content, reply_to: int | None = None) -> dict[str, Any]:
    """The JSON document a sender encrypts for `content`."""
    doc: dict[str, Any]
    match content:
        case Text(body, actions):
            doc = {"type": "text", "body": body}
            if actions:
                doc["actions"] = [{"label": label, "reply": reply} for label, reply in actions]
        case File(ref, body, width, height, thumb):
            doc = {"type": "attachment", **_ref_json(ref), "body": body}
            if width is not None and height is not None:
                doc.update(width=width, height=height)
            if thumb is not None:
                doc["thumbnail"] = {
                    **_ref_json(thumb.ref),
                    "width": thumb.width,
                    "height": thumb.height,
                }
        case Voice(ref, duration_ms, body):
            doc = {"type": "voice", **_ref_json(ref), "duration_ms": duration_ms, "body": body}
        case Location(lat, lon, accuracy_m, live):
            doc = {"type": "location", "lat": lat, "lon": lon, "accuracy_m": accuracy_m}
            if live is not None:
                doc["live"] = {"id": live.id, "until_ms": live.until_ms, "final": live.final}
        case Edit(target, body):
            doc = {"type": "edit", "target": target, "body": body}
        case Reaction(target, emoji, remove):
            doc = {"type": "reaction", "target": target, "emoji": emoji, "remove": remove}
    doc["v"] = CONTENT_VERSION
    if reply_to is not None:
        doc["reply_to"] = reply_to
    parse_content(doc)  # a sender never sends what its peers would refuse
    return doc


def _ref_json(ref: AttachmentRef) -> dict[str, Any]:
    return {
        "attachment_id": ref.attachment_id,
        "key": _b64(ref.key.key),
        "sha256": _b64(ref.key.sha256),
        "size": ref.key.size,
        "name": ref.name,
        "mime": ref.mime,
    }


# -- decoding --------------------------------------------------------------------------------


def parse_content(doc: Any) -> Parsed:
    """Check a decrypted content document against the schema; raises ContentError."""
    if not isinstance(doc, Mapping):
        raise ContentError("content is not a JSON object")
    version = doc.get("v", 1)  # documents from before the version field are version 1
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ContentError("content version is not a positive integer")
    if version > CONTENT_VERSION:
        raise ContentError(f"content version {version} is newer than this client knows")
    kind = doc.get("type")
    reply_to = _opt_seq(doc, "reply_to")
    content: Content
    if kind == "text":
        content = Text(_text(doc, "body"), _actions(doc.get("actions")))
    elif kind == "attachment":
        ref = _ref(doc)
        duration = doc.get("duration_ms", doc.get("duration"))
        if ref.mime in VOICE_MIMES and duration is not None:
            content = Voice(ref, _duration(doc), _text(doc, "body", required=False))
        else:
            width, height = _opt_size(doc)
            thumb = doc.get("thumbnail")
            content = File(
                ref,
                _text(doc, "body", required=False),
                width,
                height,
                _thumbnail(thumb) if thumb is not None else None,
            )
    elif kind == "voice":
        ref = _ref(doc)
        if ref.mime not in VOICE_MIMES:
            raise ContentError(f"a voice message is {' or '.join(VOICE_MIMES)}")
        content = Voice(ref, _duration(doc), _text(doc, "body", required=False))
    elif kind == "location":
        live = doc.get("live")
        content = Location(
            _number(doc, "lat", -90, 90),
            _number(doc, "lon", -180, 180),
            _number(doc, "accuracy_m", 0, 1_000_000),
            _live(live) if live is not None else None,
        )
    elif kind == "edit":
        content = Edit(_seq(doc, "target"), _text(doc, "body"))
    elif kind == "reaction":
        emoji = _text(doc, "emoji")
        if not 1 <= len(emoji) <= 16 or not emoji.strip():
            raise ContentError("a reaction is 1 to 16 characters")
        remove = doc.get("remove", False)
        if not isinstance(remove, bool):
            raise ContentError("reaction 'remove' is not a boolean")
        content = Reaction(_seq(doc, "target"), emoji, remove)
    else:
        raise ContentError(f"unknown content type {str(kind)[:40]!r}")
    return Parsed(content, reply_to)


def _text(doc: Mapping[str, Any], name: str, *, required: bool = True) -> str:
    value = doc.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ContentError(f"content field {name!r} is not text")
    if len(value) > MAX_BODY_CHARS:
        raise ContentError(f"content field {name!r} is longer than {MAX_BODY_CHARS} characters")
    return value


def _int(doc: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = doc.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ContentError(f"content field {name!r} is not a whole number in {low}..{high}")
    return value


def _seq(doc: Mapping[str, Any], name: str) -> int:
    return _int(doc, name, 1, 2**63 - 1)


def _opt_seq(doc: Mapping[str, Any], name: str) -> int | None:
    return None if doc.get(name) is None else _seq(doc, name)


def _number(doc: Mapping[str, Any], name: str, low: float, high: float) -> float:
    value = doc.get(name)
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or not low <= value <= high
    ):
        raise ContentError(f"content field {name!r} is not a number in {low}..{high}")
    return float(value)


def _duration(doc: Mapping[str, Any]) -> int:
    if "duration_ms" in doc:
        return _int(doc, "duration_ms", 1, MAX_VOICE_MS)
    return round(_number(doc, "duration", 0.001, MAX_VOICE_MS / 1000) * 1000)


def _opt_size(doc: Mapping[str, Any]) -> tuple[int | None, int | None]:
    if doc.get("width") is None and doc.get("height") is None:
        return None, None
    return _int(doc, "width", 1, 100_000), _int(doc, "height", 1, 100_000)


def _ref(doc: Mapping[str, Any]) -> AttachmentRef:
    attachment_id = _text(doc, "attachment_id")
    if not 1 <= len(attachment_id) <= 64:
        raise ContentError("attachment id is not valid")
    key = _bytes(doc, "key", 32)
    digest = _bytes(doc, "sha256", 32)
    mime = _text(doc, "mime", required=False) or "application/octet-stream"
    return AttachmentRef(
        attachment_id=attachment_id,
        name=_text(doc, "name", required=False)[:255],
        mime=mime[:255],
        key=AttachmentKey(key=key, sha256=digest, size=_int(doc, "size", 0, 2**63 - 1)),
    )


def _thumbnail(doc: Any) -> Thumbnail:
    if not isinstance(doc, Mapping):
        raise ContentError("thumbnail is not an object")
    return Thumbnail(_ref(doc), _int(doc, "width", 1, 4096), _int(doc, "height", 1, 4096))


def _live(doc: Any) -> LiveShare:
    if not isinstance(doc, Mapping):
        raise ContentError("live sharing is not an object")
    share_id = _text(doc, "id")
    if not 1 <= len(share_id) <= 64:
        raise ContentError("live sharing id is not valid")
    final = doc.get("final", False)
    if not isinstance(final, bool):
        raise ContentError("live sharing 'final' is not a boolean")
    return LiveShare(share_id, _int(doc, "until_ms", 0, 2**63 - 1), final)


def _actions(buttons: Any) -> tuple[tuple[str, str], ...]:
    if buttons is None:
        return ()
    if not isinstance(buttons, list) or len(buttons) > 20:
        raise ContentError("actions are not a list of at most 20 buttons")
    out = []
    for b in buttons:
        if not isinstance(b, Mapping):
            raise ContentError("an action is not an object")
        out.append((_text(b, "label"), _text(b, "reply")))
    return tuple(out)


def _bytes(doc: Mapping[str, Any], name: str, size: int) -> bytes:
    try:
        data = base64.b64decode(str(doc.get(name, "")), validate=True)
    except (binascii.Error, ValueError):
        raise ContentError(f"content field {name!r} is not base64") from None
    if len(data) != size:
        raise ContentError(f"content field {name!r} is not {size} bytes")
    return data


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- voice containers ------------------------------------------------------------------------


def voice_duration_ms(data: bytes, mime: str) -> int:
    """Check that `data` is the container `mime` names (Opus in Ogg, or PCM WAV) and return
    its duration in milliseconds; raises ContentError."""
    if mime == "audio/wav":
        return _wav_duration(data)
    if mime == "audio/ogg":
        return _ogg_opus_duration(data)
    raise ContentError(f"a voice message is {' or '.join(VOICE_MIMES)}, not {mime[:60]!r}")


def _wav_duration(data: bytes) -> int:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ContentError("voice message: not a RIFF/WAVE file")
    pos, byte_rate, data_size = 12, None, None
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        if chunk == b"fmt " and size >= 16 and pos + 24 <= len(data):
            byte_rate = struct.unpack_from("<I", data, pos + 16)[0]
        elif chunk == b"data":
            data_size = min(size, len(data) - pos - 8)
            break
        pos += 8 + size + (size & 1)
    if not byte_rate or data_size is None:
        raise ContentError("voice message: WAV file without a format or data chunk")
    return _check_duration(data_size * 1000 // byte_rate)


def _ogg_opus_duration(data: bytes) -> int:
    if len(data) < 27 or data[:4] != b"OggS" or data[4] != 0:
        raise ContentError("voice message: not an Ogg stream")
    segments = data[26]
    body = 27 + segments
    if body + 19 > len(data) or data[body : body + 8] != b"OpusHead":
        raise ContentError("voice message: the Ogg stream does not carry Opus")
    pre_skip = struct.unpack_from("<H", data, body + 10)[0]
    last = data.rfind(b"OggS")
    if last < 0 or last + 14 > len(data):
        raise ContentError("voice message: truncated Ogg page")
    granule = struct.unpack_from("<q", data, last + 6)[0]
    return _check_duration(max(0, granule - pre_skip) * 1000 // 48_000)


def _check_duration(ms: int) -> int:
    if not 1 <= ms <= MAX_VOICE_MS:
        raise ContentError("voice message: duration is not between 1 ms and one hour")
    return ms


# -- images ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    thumbnail: bytes  # JPEG, longest side at most THUMBNAIL_SIDE
    thumb_width: int
    thumb_height: int


def image_info(data: bytes, max_side: int = THUMBNAIL_SIDE) -> ImageInfo:
    """Size of an image and a JPEG thumbnail, made on the sender's device before encryption."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            image.thumbnail((max_side, max_side))
            thumb = image.convert("RGB")
            out = io.BytesIO()
            thumb.save(out, format="JPEG", quality=80)
            return ImageInfo(width, height, out.getvalue(), thumb.width, thumb.height)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError) as exc:
        raise ContentError(f"not an image this client can read: {type(exc).__name__}") from None


# -- a conversation's state as the messages say ----------------------------------------------


@dataclass
class Entry:
    """One message of a `Timeline` with what later messages did to it."""

    seq: int
    sender_user_id: str
    content: Content
    reply_to: int | None = None
    edited: bool = False
    deleted: bool = False
    reactions: dict[str, set[str]] = field(default_factory=dict)  # emoji -> user ids


@dataclass
class LivePosition:
    sender_user_id: str
    location: Location
    until_ms: int
    ended: bool = False


class Timeline:
    """Applies edits, reactions, deletions and live-location updates of one conversation.

    Only a message's own sender may edit it; a reaction counts once per user and emoji;
    a live share is updated by its sender only and ends at `final` or at `until_ms`.
    """

    def __init__(self) -> None:
        self.entries: dict[int, Entry] = {}
        self.live: dict[str, LivePosition] = {}
        self.refused: list[int] = []  # seqs of edits or updates from someone not entitled

    def add(self, seq: int, sender_user_id: str, parsed: Parsed) -> None:
        content = parsed.content
        if isinstance(content, Edit):
            target = self.entries.get(content.target)
            if (
                target is None
                or target.sender_user_id != sender_user_id
                or target.deleted
                or not isinstance(target.content, Text)
            ):
                self.refused.append(seq)
                return
            target.content = Text(content.body, target.content.actions)
            target.edited = True
        elif isinstance(content, Reaction):
            target = self.entries.get(content.target)
            if target is None or target.deleted:
                self.refused.append(seq)
                return
            users = target.reactions.setdefault(content.emoji, set())
            (users.discard if content.remove else users.add)(sender_user_id)
            if not users:
                del target.reactions[content.emoji]
        elif isinstance(content, Location) and content.live is not None:
            live = content.live
            current = self.live.get(live.id)
            if current is None:
                self.live[live.id] = LivePosition(sender_user_id, content, live.until_ms)
                self.entries[seq] = Entry(seq, sender_user_id, content, parsed.reply_to)
            elif current.sender_user_id != sender_user_id or current.ended:
                self.refused.append(seq)
            else:
                current.location = content
                current.ended = live.final
        else:
            self.entries[seq] = Entry(seq, sender_user_id, content, parsed.reply_to)

    def delete(self, target: int) -> None:
        entry = self.entries.get(target)
        if entry is not None:
            entry.deleted = True
            entry.reactions.clear()
            if isinstance(entry.content, Location) and entry.content.live is not None:
                self.live.pop(entry.content.live.id, None)

    def live_positions(self, now_ms: int) -> dict[str, LivePosition]:
        """Live shares still running at `now_ms`."""
        return {k: p for k, p in self.live.items() if not p.ended and now_ms < p.until_ms}
