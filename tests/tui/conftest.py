"""TUI fixtures: the demo organisation behind a real DelegateSession, and the app factory.

The sessions here use `FakeOrg`, an in-memory Backend shaped like the lab's demo org, so the
flows run without the EWS lab; `tests/tui/test_lab_flows.py` repeats the core flow against the
lab when it is available.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from textual.worker import WorkerCancelled

from med import DelegateSession
from med.model import Mailbox, MailboxKind
from tests.tui.fakeorg import CHEF, NOW, POST, TEAM, FakeOrg
from tui.app import MedApp, make_app
from tui.config import TuiConfig

MAILBOXES = (
    Mailbox(CHEF, "Dr. Anna Berg", MailboxKind.DELEGATED),
    Mailbox(POST, "Poststelle", MailboxKind.FUNCTIONAL),
    Mailbox(TEAM, "Teamkalender", MailboxKind.SHARED),
)


@pytest.fixture
def org() -> FakeOrg:
    return FakeOrg()


@pytest.fixture
async def session(org: FakeOrg) -> AsyncIterator[DelegateSession]:
    s = DelegateSession(org, mailboxes=MAILBOXES)
    yield s
    await s.close()


@pytest.fixture
def config(tmp_path: Path) -> TuiConfig:
    return TuiConfig(
        drafts_dir=tmp_path / "drafts", animations=False, downloads_dir=tmp_path / "downloads"
    )


@pytest.fixture
def build_app(session: DelegateSession, config: TuiConfig) -> Callable[..., MedApp]:
    def build(**kwargs: object) -> MedApp:
        return make_app(session, config, clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]

    return build


#: Worker groups that run as long as their screen or the app (never waited for).
LONG_RUNNING = ("live", "messenger")


async def settle(pilot: object) -> None:
    """Let workers finish and their messages be handled (no sleeps: waits on the app itself)."""
    app = pilot.app  # type: ignore[attr-defined]
    for _ in range(4):
        await pilot.pause()  # type: ignore[attr-defined]
        # Live-update subscriptions and messenger streams run until the app ends; the rest finish.
        finite = [w for w in app.workers if w.group not in LONG_RUNNING]
        if finite:  # (an empty list would mean "all workers" to Textual)
            # An exclusive worker replaced by a newer one ends cancelled: that is settled too.
            with contextlib.suppress(WorkerCancelled):
                await app.workers.wait_for_complete(finite)
    await pilot.pause()  # type: ignore[attr-defined]


async def wait_until(pilot: object, condition: Callable[[], bool], rounds: int = 100) -> None:
    """Settle until `condition` holds, for changes that arrive from the server on their own."""
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.1)  # type: ignore[attr-defined]
        await settle(pilot)
    raise AssertionError("the change did not arrive")


@pytest.fixture
def session_factory(config: TuiConfig) -> Callable[[FakeOrg], MedApp]:
    """An app over a FakeOrg built by the test (e.g. with 10,000 messages)."""

    def build(org: FakeOrg) -> MedApp:
        return make_app(DelegateSession(org, mailboxes=MAILBOXES), config, clock=lambda: NOW)

    return build
