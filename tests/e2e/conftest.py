"""Fixtures for end-to-end tests: the lab over HTTP and med sessions on it."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from exlab.demo import DEMO_PASSWORD, DOMAIN
from med import AuthMethod, DelegateSession, Profile
from med.backends.ews import EwsBackend
from tests.e2e.bridge_harness import BridgeRig
from tests.lab import conftest as lab_fixtures
from tests.lab.conftest import LabServer

# The lab fixtures, shared with tests/lab (a conftest may not import another as a plugin).
demo_template = lab_fixtures.demo_template
lab = lab_fixtures.lab

CHEF = f"chef@{DOMAIN}"
ASSISTENZ = f"assistenz@{DOMAIN}"
SACHBEARBEITUNG = f"sachbearbeitung@{DOMAIN}"
POSTSTELLE = f"poststelle@{DOMAIN}"
LEITSTELLE = f"leitstelle@{DOMAIN}"
TEAMKALENDER = f"teamkalender@{DOMAIN}"


def backend_for(server: LabServer, user: str, **kwargs: object) -> EwsBackend:
    options: dict[str, object] = {
        "endpoint": server.url,
        "user": user,
        "auth": AuthMethod.BASIC,
        "password": DEMO_PASSWORD,
        "version": "Exchange2016",
        "max_wait_s": 5.0,
    }
    options.update(kwargs)
    return EwsBackend(**options)  # type: ignore[arg-type]


@pytest.fixture
def ews_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """EWS requests by operation, counted at exchangelib's one send path."""
    from exchangelib.services.common import EWSService

    counts: Counter[str] = Counter()
    original = EWSService._get_response

    def counting(service: Any, payload: Any, api_version: Any) -> Any:
        counts[service.SERVICE_NAME] += 1
        return original(service, payload=payload, api_version=api_version)

    monkeypatch.setattr(EWSService, "_get_response", counting)
    yield counts


@pytest.fixture
async def session_for(lab: LabServer) -> AsyncIterator[Callable[..., DelegateSession]]:
    """Make sessions as demo users; closed at the end of the test."""
    made: list[DelegateSession] = []

    def make(user: str, mailboxes: tuple[str, ...] = (), **kwargs: object) -> DelegateSession:
        session = DelegateSession(backend_for(lab, user, **kwargs), mailboxes=mailboxes)
        made.append(session)
        return session

    yield make
    for s in made:
        await s.close()


@pytest.fixture
async def assistenz(session_for: Callable[..., DelegateSession]) -> AsyncIterator[DelegateSession]:
    yield session_for(ASSISTENZ, (CHEF, f"functional:{POSTSTELLE}", f"shared:{TEAMKALENDER}"))


@pytest.fixture
async def sachbearbeitung(
    session_for: Callable[..., DelegateSession],
) -> AsyncIterator[DelegateSession]:
    yield session_for(SACHBEARBEITUNG, (CHEF,))


@pytest.fixture
def lab_profile(lab: LabServer, tmp_path: Path) -> Callable[[str], Profile]:
    def make(user: str) -> Profile:
        return Profile("lab", lab.url, user, AuthMethod.BASIC, version="Exchange2016")

    return make


@pytest.fixture
async def rig(lab: LabServer, tmp_path: Path) -> AsyncIterator[BridgeRig]:
    """The lab, a messenger and a bridge worker, for the bridge's end-to-end tests."""
    rig = BridgeRig(lab, tmp_path)
    await rig.start()
    try:
        yield rig
    finally:
        await rig.close()
