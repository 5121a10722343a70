"""The bridge signs in to the lab's EWS with a Kerberos keytab (a real MIT KDC), no password.

The keytab holds the service account's own key, exported from the KDC the way an administrator
would (`ktadd -norandkey`); the worker starts with an empty ticket cache and gets its tickets
from the keytab by itself.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from exlab.auth import LabAuthenticator
from exlab.auth.kdc import LabKdc
from med import Address, DelegateSession, Message
from tests.e2e.bridge_harness import (
    ASSISTENZ,
    CHEF,
    CHEF_INBOX_TO_ASSISTENZ,
    SACHBEARBEITUNG,
    BridgeRig,
    wait_until_watching,
)
from tests.lab.conftest import LabServer
from tests.lab.kdcrealm import shared_kdc, tickets_issued, use_tickets

pytestmark = pytest.mark.kerberos


@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> LabKdc:
    return shared_kdc(tmp_path_factory)


@pytest.fixture
async def kerberos_rig(
    kdc: LabKdc, demo_template: Path, tmp_path: Path
) -> AsyncIterator[BridgeRig]:
    """A rig whose lab accepts Kerberos (Negotiate) besides Basic."""
    path = tmp_path / "lab.sqlite"
    shutil.copyfile(demo_template, path)
    authenticators: list[LabAuthenticator] = []

    def authenticator(lab: object) -> LabAuthenticator:
        made = LabAuthenticator(lab, keytab=kdc.keytab, realm=kdc.realm)  # type: ignore[arg-type]
        authenticators.append(made)
        return made

    server = LabServer(path, authenticator=authenticator)
    rig = BridgeRig(server, tmp_path)
    await rig.start()
    try:
        yield rig
    finally:
        await rig.close()
        server.stop()
        for made in authenticators:
            made.close()
        from exchangelib.protocol import close_connections

        close_connections()


async def test_a_keytab_identity_watches_the_boss_inbox_without_a_password(
    kerberos_rig: BridgeRig,
    kdc: LabKdc,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    session_for: Callable[..., DelegateSession],
) -> None:
    rig = kerberos_rig
    keytab = tmp_path / "assistenz.keytab"
    principal = kdc.principal(ASSISTENZ)
    kdc.kadmin(f'ktadd -k "{keytab}" -norandkey {principal}')
    use_tickets(kdc, tmp_path, monkeypatch)  # KRB5_CONFIG of the realm, an empty ticket cache
    monkeypatch.delenv("KRB5_CLIENT_KTNAME", raising=False)
    issued = tickets_issued(kdc, principal)
    identity = f"""
[identities.service]
server = "{rig.lab.url}"
user = "{ASSISTENZ}"
auth = "kerberos"
keytab = "{keytab}"
version = "Exchange2016"
"""
    watches = (
        f'[[watch]]\nmailbox = "{CHEF}"\nfolders = ["inbox"]\n'
        'identity = "service"\nrights_identity = "chef"\n'
    )
    config = rig.write_config(
        rules=CHEF_INBOX_TO_ASSISTENZ, watches=watches, identities=identity, mode="pull"
    )
    assistenz = await rig.chat_user(ASSISTENZ)
    lena = session_for(SACHBEARBEITUNG)
    try:
        async with rig.worker(config):
            await wait_until_watching(rig)
            await lena.send(
                Message(subject="Kerberos-Abnahme", body="Mit Keytab.", to=(Address(CHEF),))
            )
            await assistenz.wait_for("Kerberos-Abnahme")
    finally:
        os.environ.pop("KRB5_CLIENT_KTNAME", None)
    # The KDC issued the service account a ticket: the keytab signed it in, not a password.
    assert tickets_issued(kdc, principal) > issued
