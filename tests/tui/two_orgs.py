"""A second organisation beside the demo one, for the TUI's several-profiles tests and bench.

The lab holds the demo organisation (musterstadt.example, served over EWS) and, added here,
a clinic (klinikum.example) whose board member's delegate is an external consultant; the
clinic is reached over the lab's Graph face on a port of its own. So two profiles talk to two
servers with two protocols and two sets of credentials, as a consultant's would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from exlab.core.access import set_delegate
from exlab.demo import DEMO_PASSWORD
from exlab.graph.oauth import DELEGATED_SCOPES, PUBLIC_CLIENT_ID
from exlab.graph.serve import GraphLab
from exlab.lab import Lab
from med import DelegateSession
from med.backends.graph import GraphBackend
from med.model import Address, Event, Message
from tests.e2e.conftest import ASSISTENZ, CHEF, POSTSTELLE, TEAMKALENDER, backend_for
from tests.lab.conftest import LabServer
from tui.profiles import OpenProfile

CLINIC = "klinikum.example"
VORSTAND = f"vorstand@{CLINIC}"
BERATER = f"berater@{CLINIC}"
CLINIC_MAIL = "Budget Intensivstation 2027"
CLINIC_EVENT = "Aufsichtsrat Klinikum"
KREIS_EVENT = "Kreisausschuss Vorbesprechung"


def add_clinic(lab: Lab) -> None:
    """The clinic: its board member and the consultant who works in her inbox and calendar."""
    lab.add_mailbox(VORSTAND, "Prof. Eva Roth", password=DEMO_PASSWORD)
    lab.add_mailbox(BERATER, "Jonas Brandt", password=DEMO_PASSWORD)
    with lab.store.transaction():
        set_delegate(
            lab.store,
            VORSTAND,
            BERATER,
            {"calendar": "Editor", "inbox": "Editor"},
            view_private=False,
            receive_meeting_copies=False,
        )


def graph_session(graph: GraphLab, user: str, mailboxes: tuple[str, ...]) -> DelegateSession:
    """A delegated Graph session as `user` (a token the lab's sign-in would have issued)."""
    token = graph.face.issuer.access_token(
        base_url=graph.url,
        now=graph.lab.now(),
        client_id=PUBLIC_CLIENT_ID,
        user=user,
        scopes=DELEGATED_SCOPES,
    )
    backend = GraphBackend(
        base_url=graph.url, user=user, token=lambda: token, ca_file=graph.ca_file
    )
    return DelegateSession(backend, mailboxes=mailboxes)


async def seed_clinic_items(graph: GraphLab, day: datetime) -> None:
    """A mail in the board member's inbox and a meeting in her calendar on `day`, 10:00."""
    async with graph_session(graph, VORSTAND, ()) as vorstand:
        inbox = await vorstand.default_folder(VORSTAND, "inbox")
        await vorstand.create(
            inbox,
            Message(
                subject=CLINIC_MAIL,
                from_=Address("controlling@klinikum.example", "Controlling"),
                to=(Address(VORSTAND),),
                body="Die Zahlen für die Sitzung.",
                is_draft=False,
            ),
        )
        calendar = await vorstand.default_folder(VORSTAND, "calendar")
        start = day.replace(hour=10, minute=0, second=0, microsecond=0)
        await vorstand.create(
            calendar, Event(subject=CLINIC_EVENT, start=start, end=start + timedelta(hours=1))
        )


async def seed_kreis_event(lab: LabServer, day: datetime) -> None:
    """A meeting in chef's calendar on `day`, 14:00 (the demo org's side of the agenda)."""
    async with DelegateSession(backend_for(lab, CHEF)) as chef:
        calendar = await chef.default_folder(CHEF, "calendar")
        start = day.replace(hour=14, minute=0, second=0, microsecond=0)
        await chef.create(
            calendar, Event(subject=KREIS_EVENT, start=start, end=start + timedelta(hours=1))
        )


@dataclass
class TwoOrgs:
    """The sessions of the two profiles (closed by the fixture that made them)."""

    kreis: DelegateSession
    klinikum: DelegateSession

    def profiles(self, *more: OpenProfile) -> list[OpenProfile]:
        return [
            OpenProfile("kreis", self.kreis, organisation="Kreis Musterstadt"),
            OpenProfile("klinikum", self.klinikum, organisation="Klinikum"),
            *more,
        ]


def kreis_session(lab: LabServer, **options: object) -> DelegateSession:
    """The assistant of the demo organisation over EWS, as the other TUI lab tests use."""
    return DelegateSession(
        backend_for(lab, ASSISTENZ, **options),
        mailboxes=(CHEF, f"functional:{POSTSTELLE}", f"shared:{TEAMKALENDER}"),
    )
