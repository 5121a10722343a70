"""How messenger conversations and messages read in the terminal (pure functions, no widgets).

Unverified senders carry a visible mark on every message; files, images, voice messages and
positions say what they are and which key opens them, since a terminal may show no picture.
"""

from __future__ import annotations

import io
from datetime import datetime, tzinfo

from rich.color import Color
from rich.style import Style
from rich.text import Text as RichText

from messenger.client.content import File, Location, Text, Voice
from tui.cards import card_in, card_rows
from tui.messaging import ChatLine, Conversation

KIND_MARK = {"direct": "@", "group": "#", "managed": "◆"}
# An inline thumbnail fits beside the mail at 80×24: at most this many cells.
THUMBNAIL_COLS, THUMBNAIL_ROWS = 20, 6
# Senders make thumbnails of at most 256 px; a bigger one is not decoded (a decompression bomb).
_THUMBNAIL_MAX_SIDE = 1024
UNVERIFIED = "⚠ unverified"


def size_text(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    return f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} B"


def map_link(lat: float, lon: float) -> str:
    """A link any browser opens on the position (OpenStreetMap)."""
    return (
        f"https://www.openstreetmap.org/?mlat={lat:.5f}&mlon={lon:.5f}#map=17/{lat:.5f}/{lon:.5f}"
    )


def conversation_row(conv: Conversation, *, current: bool = False) -> RichText:
    row = RichText()
    row.append(f"{KIND_MARK.get(conv.kind, '#')} ", style="dim")
    row.append(conv.title or conv.conversation_id[:8], style="bold" if conv.unread else "")
    if conv.unread:
        row.append(f"  {conv.unread}", style="bold reverse")
    if current:
        row.stylize("underline", 0, 1)
    return row


def content_lines(line: ChatLine) -> list[RichText]:
    """What the message says, one or more rows (without sender and time)."""
    content = line.content
    if line.deleted:
        return [RichText("(deleted)", style="dim italic")]
    if content is None:
        return [RichText(f"(message {line.problem or 'not readable'})", style="italic yellow")]
    if (card := card_in(content)) is not None:
        rows = card_rows(card)
        verbs = card.verbs()
        if verbs:
            rows.append(RichText("▌Enter: open the item · A: " + ", ".join(verbs), style="cyan"))
        return rows
    if isinstance(content, Text):
        rows = [RichText(part) for part in content.body.splitlines() or [""]]
        if content.actions:
            rows.append(RichText("  ".join(f"[{label}]" for label, _ in content.actions), "cyan"))
        if line.edited:
            rows[-1].append(" (edited)", style="dim")
        return rows
    if isinstance(content, Voice):
        seconds = content.duration_ms // 1000
        duration = f" {seconds // 60}:{seconds % 60:02d}" if content.duration_ms else ""
        rows = [RichText(f"🎤 voice message{duration}  — p: play, s: save", style="magenta")]
    elif isinstance(content, File):
        ref = content.attachment
        size = size_text(ref.key.size) if ref.key.size else ""
        if content.width and content.height:
            what = f"🖼 {ref.name or 'image'} {content.width}×{content.height} {size}"
            hint = "o: view, s: save"
        else:
            what = f"📎 {ref.name or 'file'} {ref.mime} {size}"
            hint = "o: open, s: save"
        rows = [RichText(f"{what.rstrip()}  — {hint}", style="cyan")]
        if line.thumbnail is not None:
            rows += thumbnail_rows(line.thumbnail)
    elif isinstance(content, Location):
        accuracy = f" ±{content.accuracy_m:.0f} m" if content.accuracy_m else ""
        live = " (live)" if content.live else ""
        rows = [
            RichText(f"📍 {content.lat:.5f}, {content.lon:.5f}{accuracy}{live}", style="green"),
            RichText(map_link(content.lat, content.lon), style="underline blue"),
        ]
    else:
        rows = [RichText("(cannot be displayed)", style="dim")]
    body = getattr(content, "body", "")
    if body:
        rows.append(RichText(body))
    return rows


def thumbnail_rows(
    jpeg: bytes, cols: int = THUMBNAIL_COLS, rows: int = THUMBNAIL_ROWS
) -> list[RichText]:
    """An image in half blocks (▀: the upper pixel in the foreground, the lower one in the
    background), which every colour terminal draws, also inside a list row where a sixel or
    kitty picture cannot go. [] when the bytes are not a picture this client reads."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(jpeg)) as image:
            if max(image.size) > _THUMBNAIL_MAX_SIDE:
                return []
            scale = min(cols / image.width, 2 * rows / image.height)
            width = max(1, round(image.width * scale))
            height = max(2, round(image.height * scale) // 2 * 2)
            pixels = image.convert("RGB").resize((width, height))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        return []
    px = pixels.load()
    if px is None:
        return []
    out = []
    for y in range(0, height, 2):
        row = RichText()
        for x in range(width):
            top, bottom = _rgb(px[x, y]), _rgb(px[x, y + 1])
            row.append("▀", Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom)))
        out.append(row)
    return out


def _rgb(pixel: object) -> tuple[int, int, int]:
    assert isinstance(pixel, tuple)  # an RGB image's pixels are (r, g, b)
    return int(pixel[0]), int(pixel[1]), int(pixel[2])


def status_text(line: ChatLine, members: int) -> str:
    """Receipts of an own message: queued, sent, delivered, read (by how many)."""
    if line.problem and line.mine:
        return f"✗ {line.problem}"
    if line.queued:
        return "⏳ queued"
    read = sum(1 for kind in line.receipts.values() if kind == "read")
    if read:
        others = max(members - 1, 1)
        return "✓✓ read" if read >= others else f"✓✓ read by {read}"
    if line.receipts:
        return "✓✓ delivered"
    return "✓ sent"


def message_block(
    line: ChatLine,
    *,
    sender: str,
    tz: tzinfo | None,
    reply_snippet: str | None = None,
    members: int = 2,
) -> RichText:
    """One message as the list shows it: header (time, sender, trust), reply, content, marks."""
    out = RichText()
    when = ""
    if line.sent_at_ms:
        when = datetime.fromtimestamp(line.sent_at_ms / 1000, tz).strftime("%H:%M") + " "
    out.append(when, style="dim")
    out.append("me" if line.mine else sender, style="bold" if not line.mine else "bold green")
    if not line.mine and line.content is not None and not line.verified:
        out.append(f" {UNVERIFIED}", style="bold black on yellow")
    elif not line.mine and line.content is not None:
        out.append(" ✓", style="green")
    if line.mine:
        out.append(f"  {status_text(line, members)}", style="dim")
    if reply_snippet is not None:
        out.append("\n  ↪ ", style="dim")
        out.append(reply_snippet, style="dim italic")
    for row in content_lines(line):
        out.append("\n  ")
        out.append_text(row)
    if line.reactions:
        out.append("\n  ")
        out.append(
            "  ".join(f"{emoji} {len(users)}" for emoji, users in sorted(line.reactions.items())),
            style="yellow",
        )
    return out


def snippet(line: ChatLine, width: int = 40) -> str:
    """A short one-line summary (for replies)."""
    rows = content_lines(line)
    text = rows[0].plain if rows else ""
    return text if len(text) <= width else text[: width - 1] + "…"
