"""med sessions against the lab: behaviour found wanting in use and fixed since."""

from __future__ import annotations

from med import DelegateSession, MailboxKind
from tests.e2e.conftest import CHEF, POSTSTELLE, TEAMKALENDER


async def test_configured_mailboxes_show_their_display_names(assistenz: DelegateSession) -> None:
    boxes = {b.address: b for b in await assistenz.mailboxes()}
    for address, kind in ((POSTSTELLE, MailboxKind.FUNCTIONAL), (TEAMKALENDER, MailboxKind.SHARED)):
        assert boxes[address].kind is kind
        assert boxes[address].display_name and boxes[address].display_name != address
    assert boxes[CHEF].display_name == "Dr. Anna Berg"
    again = {b.address: b for b in await assistenz.mailboxes(refresh=True)}
    assert again[POSTSTELLE].display_name == boxes[POSTSTELLE].display_name
