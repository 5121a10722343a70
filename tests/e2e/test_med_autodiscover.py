"""med finds the EWS URL through Autodiscover when given only the address and the host."""

from __future__ import annotations

import pytest

from med import AuthMethod, DelegateSession
from med.backends.ews import EwsBackend
from med.errors import BadCredentials
from tests.e2e.conftest import ASSISTENZ, CHEF, backend_for
from tests.lab.conftest import LabServer


async def test_a_session_given_the_host_finds_ews_by_autodiscover(lab: LabServer) -> None:
    backend = backend_for(lab, ASSISTENZ, endpoint=lab.base_url, autodiscover=True)
    session = DelegateSession(backend, mailboxes=(CHEF,))
    try:
        inbox = await session.default_folder(CHEF, "inbox")
        assert inbox.name == "Posteingang"
        boxes = {m.address for m in await session.mailboxes()}
        assert {ASSISTENZ, CHEF} <= boxes
    finally:
        await session.close()


async def test_autodiscover_with_a_wrong_password_is_a_clear_sign_in_error(
    lab: LabServer,
) -> None:
    backend = EwsBackend(
        endpoint=lab.base_url,
        user=ASSISTENZ,
        auth=AuthMethod.BASIC,
        password="falsch",
        autodiscover=True,
    )
    session = DelegateSession(backend)
    try:
        with pytest.raises(BadCredentials):
            await session.mailboxes()
    finally:
        await session.close()
