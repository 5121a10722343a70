"""A messenger connection filled with fixed conversations (no server), for the snapshot test."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from messenger.client.content import AttachmentRef, File, Location, Text, Voice
from messenger.crypto import AttachmentKey
from tui.messaging import (
    Branding,
    ChatLine,
    ConnectionState,
    Conversation,
    MessengerAccount,
    MessengerHub,
)

ME, CHEF, KOCH, BRIDGE = "u-me", "u-chef", "u-koch", "u-bridge"


def _ref(name: str, mime: str, size: int) -> AttachmentRef:
    return AttachmentRef(f"a-{name}", name, mime, AttachmentKey(b"k" * 32, b"h" * 32, size))


def filled_hub(post: Callable[[Any], object], tmp_path: Path, now: datetime) -> MessengerHub:
    hub = MessengerHub(post)
    account = MessengerAccount(
        profile="demo",
        server="https://chat.musterstadt.example",
        user="assistenz@musterstadt.example",
        password="not used",
        state_dir=tmp_path / "chat",
    )
    conn = hub.add(account)
    conn.state = ConnectionState.ONLINE
    conn.user_id = ME
    conn.branding = Branding(primary="#004b87", accent="#f0a30a")
    for user, name in ((CHEF, "Dr. Anna Berg"), (KOCH, "Lena Koch"), (BRIDGE, "medbridge")):
        conn._names[user] = name
    t = int(now.timestamp() * 1000)
    minute = 60_000
    direct = Conversation("c-direct", "direct", "", (ME, CHEF), title="Dr. Anna Berg")
    direct.lines = [
        ChatLine(1, CHEF, False, Text("Können Sie die Akte Müller vorbereiten?"), sent_at_ms=t),
        ChatLine(
            2,
            ME,
            True,
            Text("Ja, bis 11 Uhr."),
            sent_at_ms=t + minute,
            reply_to=1,
            receipts={CHEF: "read"},
        ),
        ChatLine(
            3,
            CHEF,
            False,
            File(_ref("grundriss.png", "image/png", 48_000), "Grundriss", 1200, 800),
            sent_at_ms=t + 2 * minute,
            reactions={"👍": {ME}},
        ),
        ChatLine(
            4,
            CHEF,
            False,
            Voice(_ref("voice.ogg", "audio/ogg", 9_000), 7_000),
            sent_at_ms=t + 3 * minute,
        ),
        ChatLine(5, CHEF, False, Location(52.52, 13.405, 8.0), sent_at_ms=t + 4 * minute),
        ChatLine(
            6,
            CHEF,
            False,
            Text("Von meinem neuen Tablet"),
            verified=False,
            sent_at_ms=t + 5 * minute,
        ),
        ChatLine(0, ME, True, Text("Unterwegs geschrieben"), txn_id="q1", queued=True),
    ]
    group = Conversation("c-group", "group", "Station 3", (ME, CHEF, KOCH), unread=2)
    group.title = "Station 3"
    group.lines = [
        ChatLine(1, KOCH, False, Text("Visite 14 Uhr"), sent_at_ms=t - 10 * minute),
        ChatLine(2, KOCH, False, Text("Raum 12"), sent_at_ms=t - 9 * minute),
    ]
    managed = Conversation("c-managed", "managed", "Leitstelle", (ME, BRIDGE), title="Leitstelle")
    managed.lines = [
        ChatLine(1, BRIDGE, False, Text("Dienstplan KW 48"), sent_at_ms=t - 60 * minute)
    ]
    for conv in (direct, group, managed):
        conn.conversations[conv.conversation_id] = conv
    return hub
