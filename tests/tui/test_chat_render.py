"""How chat messages read in the terminal, and what the pane's prompts accept."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

import pytest

from messenger.client.content import AttachmentRef, File, Location, Text, Voice
from messenger.crypto import AttachmentKey
from tui.chat_render import map_link, message_block, status_text
from tui.messaging import ChatLine
from tui.screens.chat_pane import parse_file, parse_position
from tui.screens.chat_trust import group_digits

T = 1_795_424_400_000  # 2026-11-23 09:00 UTC


def _ref(name: str, mime: str, size: int) -> AttachmentRef:
    return AttachmentRef("a1", name, mime, AttachmentKey(b"k" * 32, b"h" * 32, size))


def block(line: ChatLine, **kw: object) -> str:
    return message_block(line, sender="Anna", tz=UTC, **kw).plain  # type: ignore[arg-type]


def test_unverified_sender_is_marked_on_every_message() -> None:
    verified = ChatLine(1, "u", False, Text("Hallo"), sent_at_ms=T)
    unverified = ChatLine(2, "u", False, Text("Hallo"), verified=False, sent_at_ms=T)
    assert block(verified).startswith("09:00 Anna ✓")
    assert "⚠ unverified" in block(unverified)
    assert "⚠" not in block(verified)


def test_attachments_say_what_they_are_and_which_key_opens_them() -> None:
    image = ChatLine(1, "u", False, File(_ref("plan.png", "image/png", 2048), "", 800, 600))
    pdf = ChatLine(2, "u", False, File(_ref("brief.pdf", "application/pdf", 512), "Bitte lesen"))
    voice = ChatLine(3, "u", False, Voice(_ref("v.ogg", "audio/ogg", 100), 65_000))
    assert "🖼 plan.png 800×600 2 KB  — o: view, s: save" in block(image)
    assert "📎 brief.pdf application/pdf 512 B" in block(pdf) and "Bitte lesen" in block(pdf)
    assert "🎤 voice message 1:05  — p: play, s: save" in block(voice)


def test_position_has_coordinates_and_a_map_link() -> None:
    line = ChatLine(1, "u", False, Location(52.52, 13.405, 8.0))
    text = block(line)
    assert "📍 52.52000, 13.40500 ±8 m" in text
    assert map_link(52.52, 13.405) in text


def test_own_message_receipts() -> None:
    line = ChatLine(5, "me", True, Text("x"))
    assert status_text(line, 2) == "✓ sent"
    line.receipts["a"] = "delivered"
    assert status_text(line, 2) == "✓✓ delivered"
    line.receipts["a"] = "read"
    assert status_text(line, 2) == "✓✓ read"
    assert status_text(line, 4) == "✓✓ read by 1"
    assert status_text(ChatLine(0, "me", True, Text("x"), queued=True), 2) == "⏳ queued"


def test_unreadable_and_deleted_messages_say_so() -> None:
    broken = ChatLine(1, "u", False, None, problem="could not be verified")
    assert "(message could not be verified)" in block(broken)
    assert "✓" not in block(broken)
    assert "(deleted)" in block(ChatLine(2, "u", False, Text("x"), deleted=True))


def test_reply_and_reactions_show() -> None:
    line = ChatLine(2, "u", False, Text("Ja"), reactions={"👍": {"a", "b"}})
    text = block(line, reply_snippet="Kommst du?")
    assert "↪ Kommst du?" in text and "👍 2" in text


def test_position_prompt() -> None:
    assert parse_position("52.52, 13.405") == (52.52, 13.405, 10.0)
    assert parse_position("52.52 13.405 25") == (52.52, 13.405, 25.0)
    for bad in ("", "Berlin", "91, 0", "1 2 3 4"):
        with pytest.raises(ValueError):
            parse_position(bad)


def test_file_prompt(tmp_path: Path) -> None:
    existing = tmp_path / "a.txt"
    existing.write_text("x")
    assert parse_file(str(existing)) == existing
    with pytest.raises(ValueError, match="is not a file"):
        parse_file(str(tmp_path / "missing.txt"))


def test_safety_number_in_blocks_of_five() -> None:
    assert group_digits("1234567890" * 3) == "12345 67890 12345 67890\n12345 67890"


def test_an_image_shows_inline_as_half_blocks_in_its_colours() -> None:
    import io

    from PIL import Image
    from rich.color import Color
    from rich.style import Style
    from rich.text import Text as RichText

    from tui.chat_render import THUMBNAIL_COLS, THUMBNAIL_ROWS, content_lines

    picture = Image.new("RGB", (256, 128), (220, 0, 0))
    picture.paste((0, 0, 200), (0, 64, 256, 128))  # the lower half blue
    jpeg = io.BytesIO()
    picture.save(jpeg, format="JPEG")
    line = ChatLine(1, "u", False, File(_ref("lage.jpg", "image/jpeg", 9000), "", 256, 128))
    line.thumbnail = jpeg.getvalue()
    rows = content_lines(line)
    assert rows[0].plain.startswith("🖼 lage.jpg 256×128")  # the text row stays
    picture_rows = rows[1:]
    assert 0 < len(picture_rows) <= THUMBNAIL_ROWS
    assert all(set(r.plain) == {"▀"} and len(r.plain) <= THUMBNAIL_COLS for r in picture_rows)
    pixel_rows = 2 * len(picture_rows)  # a half block is two pixels high
    assert len(picture_rows[0].plain) == 2 * pixel_rows  # 2:1, as the picture

    def colours(row: RichText, at: int) -> tuple[Color | None, Color | None]:
        [style] = [span.style for span in row.spans if span.start == at]
        assert isinstance(style, Style)
        return style.color, style.bgcolor

    top_fg, _ = colours(picture_rows[0], 3)
    _, bottom_bg = colours(picture_rows[-1], 3)
    assert top_fg is not None and top_fg.get_truecolor().red > 180
    assert bottom_bg is not None and bottom_bg.get_truecolor().blue > 150


def test_a_thumbnail_that_is_no_picture_leaves_the_text_row() -> None:
    from tui.chat_render import content_lines

    line = ChatLine(1, "u", False, File(_ref("x.png", "image/png", 10), "", 10, 10))
    line.thumbnail = b"\xff\xd8 not really a jpeg"
    assert [r.plain for r in content_lines(line)] == ["🖼 x.png 10×10 10 B  — o: view, s: save"]
