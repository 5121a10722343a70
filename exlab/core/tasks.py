"""Task rules the server applies whichever face changes a task."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from exlab.core.store import utc_text


def stamp_completion(props: dict[str, Any], now: datetime) -> None:
    """A task set to Completed is complete at 100 % with the server's completion time;
    set back, it loses that time (CompleteDate and IsComplete are the server's, not the
    client's)."""
    if props.get("task:Status") == "Completed":
        props["task:IsComplete"] = True
        props["task:PercentComplete"] = 100.0
        if not props.get("task:CompleteDate"):
            props["task:CompleteDate"] = utc_text(now)
    else:
        props["task:IsComplete"] = False
        props.pop("task:CompleteDate", None)
