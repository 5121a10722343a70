"""One lab serving both faces; each scenario runs once over EWS and once over Graph.

The `backend` fixture is parametrised by backend name and makes `DelegateSession`s as the demo
users against the lab's EWS face (Basic auth) or its Graph face (a token from the lab's issuer),
over the same store: the same items, the same rights.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from exlab.graph.oauth import DELEGATED_SCOPES, PUBLIC_CLIENT_ID
from exlab.graph.serve import GraphLab
from med import DelegateSession
from med.backends.graph import GraphBackend
from tests.e2e.conftest import (
    ASSISTENZ,
    CHEF,
    POSTSTELLE,
    SACHBEARBEITUNG,
    TEAMKALENDER,
    backend_for,
)
from tests.lab.conftest import LabServer

#: The assistant's configured mailboxes, as in the demo profile.
ASSISTENZ_BOXES = (CHEF, f"functional:{POSTSTELLE}", f"shared:{TEAMKALENDER}")


@dataclass
class Backend:
    """Sessions on one backend over the shared lab."""

    name: str
    lab: LabServer
    graph: GraphLab | None
    made: list[DelegateSession] = field(default_factory=list)

    def session(self, user: str, mailboxes: tuple[str, ...] = ()) -> DelegateSession:
        if self.graph is None:
            made = DelegateSession(backend_for(self.lab, user), mailboxes=mailboxes)
        else:
            graph = self.graph
            token = graph.face.issuer.access_token(
                base_url=graph.url,
                now=graph.lab.now(),
                client_id=PUBLIC_CLIENT_ID,
                user=user,
                scopes=DELEGATED_SCOPES,
            )
            made = DelegateSession(
                GraphBackend(
                    base_url=graph.url,
                    user=user,
                    token=lambda: token,
                    ca_file=graph.ca_file,
                    poll_interval_s=0.3,
                ),
                mailboxes=mailboxes,
            )
        self.made.append(made)
        return made

    @property
    def assistenz(self) -> DelegateSession:
        return self.session(ASSISTENZ, ASSISTENZ_BOXES)

    @property
    def sachbearbeitung(self) -> DelegateSession:
        return self.session(SACHBEARBEITUNG, (CHEF,))

    @property
    def chef(self) -> DelegateSession:
        return self.session(CHEF)


@pytest.fixture(params=["ews", "graph"])
async def backend(
    request: pytest.FixtureRequest, lab: LabServer, tmp_path: Path
) -> AsyncIterator[Backend]:
    """The EWS or the Graph face of a fresh demo lab, and sessions on it."""
    with contextlib.ExitStack() as stack:
        graph = None
        if request.param == "graph":
            graph = stack.enter_context(GraphLab(lab.lab, tmp_path / "graph-tls"))
        sessions = Backend(request.param, lab, graph)
        try:
            yield sessions
        finally:
            for s in sessions.made:
                await s.close()
