"""NTLM sign-in and name resolution of the EWS backend against the lab."""

from __future__ import annotations

import pytest

from med import AuthMethod, BadCredentials, ItemQuery
from tests.e2e.conftest import ASSISTENZ, CHEF


async def test_ntlm_sign_in_reads_the_boss_inbox(session_for) -> None:
    session = session_for(ASSISTENZ, (CHEF,), auth=AuthMethod.NTLM)
    inbox = await session.default_folder(CHEF, "inbox")
    assert len((await session.items(inbox, ItemQuery(limit=3))).items) == 3


async def test_ntlm_wrong_password_is_bad_credentials(session_for) -> None:
    session = session_for(ASSISTENZ, auth=AuthMethod.NTLM, password="falsch")
    with pytest.raises(BadCredentials):
        await session.mailboxes()


async def test_mailbox_added_by_name_is_resolved_by_the_server(assistenz) -> None:
    from med import InvalidInput

    box = await assistenz.add_mailbox("Leitstelle")
    assert box.address == "leitstelle@musterstadt.example"
    assert box in await assistenz.mailboxes()
    with pytest.raises(InvalidInput, match="ambiguous") as err:
        await assistenz.add_mailbox("Le")  # Leitstelle and Lena Koch
    assert "leitstelle@" in str(err.value) and "sachbearbeitung@" in str(err.value)
