"""NTLM sign-in of the EWS backend against the lab (Basic and Kerberos are tested elsewhere)."""

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
