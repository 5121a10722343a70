"""Both faces of one lab: what a delegate does over EWS, a Graph client sees, and back.

The EWS backend talks to the lab's EWS face, the Graph backend to its Graph face, over the
same store: the same items, the same rights.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from exlab.graph.oauth import PUBLIC_CLIENT_ID
from exlab.graph.serve import GraphLab
from med import DelegateSession
from med.backends.graph import GraphBackend
from med.model import Address, Event, ItemQuery, Message, SendOptions
from tests.e2e.conftest import ASSISTENZ, CHEF, SACHBEARBEITUNG
from tests.lab.conftest import LabServer

SCOPES = frozenset({"Mail.ReadWrite.Shared", "Mail.Send.Shared", "Calendars.ReadWrite.Shared"})


@pytest.fixture
def graph_face(lab: LabServer, tmp_path: Path) -> Iterator[GraphLab]:
    with GraphLab(lab.lab, tmp_path / "graph-tls") as served:
        yield served


@pytest.fixture
async def graph_session(graph_face: GraphLab) -> AsyncIterator[Callable[[str], DelegateSession]]:
    made: list[DelegateSession] = []

    def make(user: str) -> DelegateSession:
        token = graph_face.face.issuer.access_token(
            base_url=graph_face.url,
            now=graph_face.lab.now(),
            client_id=PUBLIC_CLIENT_ID,
            user=user,
            scopes=SCOPES,
        )
        session = DelegateSession(
            GraphBackend(
                base_url=graph_face.url, user=user, token=lambda: token, ca_file=graph_face.ca_file
            )
        )
        made.append(session)
        return session

    yield make
    for s in made:
        await s.close()


@pytest.fixture
async def ews_assistenz(
    session_for: Callable[..., DelegateSession],
) -> AsyncIterator[DelegateSession]:
    yield session_for(ASSISTENZ, (CHEF,))


async def test_an_appointment_made_over_ews_is_in_the_graph_calendar_view(
    ews_assistenz: DelegateSession, graph_session: Callable[[str], DelegateSession]
) -> None:
    calendar = await ews_assistenz.default_folder(CHEF, "calendar")
    start = datetime(2027, 4, 12, 8, tzinfo=UTC)
    await ews_assistenz.create(
        calendar, Event(subject="Über EWS angelegt", start=start, end=start + timedelta(hours=1))
    )
    graph = graph_session(ASSISTENZ)
    boss = await graph.default_folder(CHEF, "calendar")
    view = await graph.calendar_view([boss], start, start + timedelta(hours=1))
    assert [(e.subject, e.start) for e in view] == [("Über EWS angelegt", start)]


async def test_mail_sent_on_behalf_over_graph_arrives_for_an_ews_reader(
    graph_session: Callable[[str], DelegateSession], session_for: Callable[..., DelegateSession]
) -> None:
    graph = graph_session(ASSISTENZ)
    await graph.send(
        Message(subject="Über Graph gesendet", body="Hallo", to=(Address(SACHBEARBEITUNG),)),
        SendOptions(from_mailbox=CHEF),
    )
    lena = session_for(SACHBEARBEITUNG)
    inbox = await lena.default_folder(SACHBEARBEITUNG, "inbox")
    got = next(
        m
        for m in (await lena.items(inbox, ItemQuery(limit=10))).items
        if m.subject == "Über Graph gesendet"
    )
    assert isinstance(got, Message)
    assert got.from_ is not None and got.from_.email == CHEF
    assert got.sender is not None and got.sender.email == ASSISTENZ
