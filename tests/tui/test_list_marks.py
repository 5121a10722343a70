"""The list's status column tells unread, replied and forwarded mail apart (mutt's N, r, f)."""

from __future__ import annotations

import pytest

from med import LastVerb, Message
from tui.presenter import STATUS_LEGEND, flags_of


@pytest.mark.parametrize(
    ("is_read", "verb", "mark"),
    [
        (False, None, "N"),
        (False, LastVerb.REPLIED, "N"),  # unread wins: it still needs reading
        (True, LastVerb.REPLIED, "r"),
        (True, LastVerb.REPLIED_ALL, "a"),
        (True, LastVerb.FORWARDED, "f"),
        (True, None, " "),
    ],
)
def test_first_column_marks_unread_replied_and_forwarded(
    is_read: bool, verb: LastVerb | None, mark: str
) -> None:
    message = Message(subject="x", is_read=is_read, last_verb=verb)
    assert flags_of(message)[0] == mark


def test_every_mark_is_in_the_legend() -> None:
    legend = {glyph for glyph, _ in STATUS_LEGEND}
    assert {"N", "r", "f"} <= legend
