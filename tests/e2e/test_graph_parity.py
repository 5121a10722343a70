"""The EWS backend's delegate scenarios (tests/e2e/test_med_ews.py) run again over Graph.

The scenario functions are imported unchanged; the fixtures they ask for (`assistenz`,
`sachbearbeitung`, `session_for`) are defined here to give sessions on the Graph backend
against the lab's Graph face. Scenarios of EWS-only features are not imported: Graph's
`Unsupported` answers for them are asserted in test_graph_backend.py. The search scenario is
not imported either: Graph's `$search` also matches senders and recipients (EWS's search
matches subject and body), so its assertion does not hold; test_graph_backend.py covers it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

import med.lab.items  # noqa: F401  (Lab.open(demo=True) needs the item tables first)
from med import DelegateSession
from med.backends.graph import GraphBackend
from med.lab import Lab
from med.lab.graph.oauth import PUBLIC_CLIENT_ID
from med.lab.graph.serve import GraphLab
from tests.e2e.conftest import ASSISTENZ, CHEF, POSTSTELLE, SACHBEARBEITUNG, TEAMKALENDER
from tests.e2e.test_med_ews import (
    test_appointment_create_edit_delete_in_boss_calendar,
    test_calendars_overlay_boss_and_team,
    test_delegate_without_view_private_items_sees_no_private_mail,
    test_flag_due_complete_clear_categories_and_read,
    test_full_read_attachments_to_disk_and_mime,
    test_pages_are_newest_first_and_do_not_overlap,
    test_reply_on_behalf_reaches_the_original_sender,
    test_respond_to_meeting_request_on_behalf,
    test_send_on_behalf_sets_from_and_sender,
    test_sending_for_a_mailbox_without_rights_is_denied,
    test_series_expands_one_occurrence_edited_then_series_deleted,
    test_subscription_reports_new_mail,
    test_user_without_rights_gets_access_denied_from_the_server,
)

SCOPES = frozenset(
    {
        "Mail.ReadWrite.Shared",
        "Mail.Send.Shared",
        "Calendars.ReadWrite.Shared",
        "Contacts.ReadWrite.Shared",
        "User.ReadBasic.All",
    }
)

__all__ = [
    "test_appointment_create_edit_delete_in_boss_calendar",
    "test_calendars_overlay_boss_and_team",
    "test_delegate_without_view_private_items_sees_no_private_mail",
    "test_flag_due_complete_clear_categories_and_read",
    "test_full_read_attachments_to_disk_and_mime",
    "test_pages_are_newest_first_and_do_not_overlap",
    "test_reply_on_behalf_reaches_the_original_sender",
    "test_respond_to_meeting_request_on_behalf",
    "test_send_on_behalf_sets_from_and_sender",
    "test_sending_for_a_mailbox_without_rights_is_denied",
    "test_series_expands_one_occurrence_edited_then_series_deleted",
    "test_subscription_reports_new_mail",
    "test_user_without_rights_gets_access_denied_from_the_server",
]


@pytest.fixture
def graph_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphLab]:
    """A fresh demo organisation per scenario, as the EWS scenarios get."""
    lab = Lab.open(demo=True)
    with GraphLab(lab, tmp_path_factory.mktemp("tls")) as running:
        yield running
    lab.close()


@pytest.fixture
def session_for(graph_lab: GraphLab) -> Iterator[Callable[..., DelegateSession]]:
    made: list[DelegateSession] = []

    def make(user: str, mailboxes: tuple[str, ...] = (), **_: object) -> DelegateSession:
        token = graph_lab.face.issuer.access_token(
            base_url=graph_lab.url,
            now=graph_lab.lab.now(),
            client_id=PUBLIC_CLIENT_ID,
            user=user,
            scopes=SCOPES,
        )
        backend = GraphBackend(
            base_url=graph_lab.url,
            user=user,
            token=lambda: token,
            ca_file=graph_lab.ca_file,
            poll_interval_s=0.3,
        )
        session = DelegateSession(backend, mailboxes=mailboxes)
        made.append(session)
        return session

    yield make
    for s in made:
        s._pool.shutdown(wait=False)
        s._backend.close()


@pytest.fixture
async def assistenz(session_for: Callable[..., DelegateSession]) -> AsyncIterator[DelegateSession]:
    yield session_for(ASSISTENZ, (CHEF, f"functional:{POSTSTELLE}", f"shared:{TEAMKALENDER}"))


@pytest.fixture
async def sachbearbeitung(
    session_for: Callable[..., DelegateSession],
) -> AsyncIterator[DelegateSession]:
    yield session_for(SACHBEARBEITUNG, (CHEF,))
