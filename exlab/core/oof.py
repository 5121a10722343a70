"""Automatic replies (out of office) of a mailbox, as Set-MailboxAutoReplyConfiguration keeps
them: a state (Disabled, Enabled, Scheduled), a window for Scheduled, the external audience
(None, Known, All) and one reply for the organisation and one for outside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from exlab.core.store import Store

STATES = ("Disabled", "Enabled", "Scheduled")
AUDIENCES = ("None", "Known", "All")


@dataclass(frozen=True)
class AutoReply:
    state: str = "Disabled"
    audience: str = "All"
    start: datetime | None = None
    end: datetime | None = None
    internal_reply: str = ""
    external_reply: str = ""

    def active(self, now: datetime) -> bool:
        """Whether replies go out at `now` (Enabled, or Scheduled and inside the window)."""
        if self.state == "Enabled":
            return True
        if self.state == "Scheduled" and self.start is not None and self.end is not None:
            return self.start <= now < self.end
        return False


def auto_reply(store: Store, address: str, now: datetime) -> AutoReply:
    """The mailbox's settings; never set means Disabled with a window of the next day, as
    Exchange reports it."""
    row = store.query_one("SELECT * FROM oof_settings WHERE address = ?", (address.lower(),))
    if row is None:
        hour = now.replace(minute=0, second=0, microsecond=0)
        return AutoReply(start=hour, end=hour + timedelta(days=1))
    return AutoReply(
        state=row["state"],
        audience=row["audience"],
        start=datetime.fromisoformat(row["start"]) if row["start"] else None,
        end=datetime.fromisoformat(row["end"]) if row["end"] else None,
        internal_reply=row["internal_reply"],
        external_reply=row["external_reply"],
    )


def set_auto_reply(store: Store, address: str, settings: AutoReply) -> None:
    if settings.state not in STATES or settings.audience not in AUDIENCES:
        raise ValueError(f"invalid automatic reply settings: {settings.state}/{settings.audience}")
    with store.transaction() as conn:
        conn.execute(
            "INSERT OR REPLACE INTO oof_settings (address, state, audience, start, end,"
            " internal_reply, external_reply) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                address.lower(),
                settings.state,
                settings.audience,
                settings.start.isoformat() if settings.start else None,
                settings.end.isoformat() if settings.end else None,
                settings.internal_reply,
                settings.external_reply,
            ),
        )
