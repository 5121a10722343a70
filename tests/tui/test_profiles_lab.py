"""Several profiles side by side against the lab: the demo organisation over EWS and a clinic
over the lab's Graph face (`tests/tui/two_orgs.py`), plus a profile whose sign-in fails.

The tree groups mailboxes by profile, the header names organisation and mailbox owner, the
agenda holds both organisations' appointments labelled, and a failed profile sits beside the
working ones until `$` signs it in again.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from textual.widgets import Input

from exlab.demo import DEMO_PASSWORD
from exlab.graph.serve import GraphLab
from med import DelegateSession
from tests.e2e.conftest import ASSISTENZ, backend_for
from tests.lab import conftest as lab_fixtures
from tests.lab.conftest import LabServer
from tests.tui.conftest import settle, wait_until
from tests.tui.screentext import screen_text
from tests.tui.two_orgs import (
    BERATER,
    CLINIC_EVENT,
    CLINIC_MAIL,
    KREIS_EVENT,
    VORSTAND,
    TwoOrgs,
    add_clinic,
    graph_session,
    kreis_session,
    seed_clinic_items,
    seed_kreis_event,
)
from tui.app import MedApp, make_app
from tui.config import TuiConfig
from tui.profiles import OpenProfile, ProfileState
from tui.screens.calendar import CalendarScreen
from tui.screens.dialogs import PromptScreen
from tui.screens.mail import MailScreen
from tui.widgets.context_bar import ContextBar
from tui.widgets.folder_tree import FolderTree, ProfileNode
from tui.widgets.item_list import ItemList

demo_template = lab_fixtures.demo_template
lab = lab_fixtures.lab

SIZE = (150, 40)


@pytest.fixture
def graph(lab: LabServer, tmp_path: Path) -> Iterator[GraphLab]:
    add_clinic(lab.lab)
    with GraphLab(lab.lab, tmp_path / "graph-tls") as served:
        yield served


@pytest.fixture
async def two_orgs(lab: LabServer, graph: GraphLab) -> AsyncIterator[TwoOrgs]:
    orgs = TwoOrgs(kreis_session(lab), graph_session(graph, BERATER, (VORSTAND,)))
    yield orgs
    await orgs.kreis.close()
    await orgs.klinikum.close()


@pytest.fixture
def config(tmp_path: Path) -> TuiConfig:
    return TuiConfig(
        drafts_dir=tmp_path / "drafts", animations=False, downloads_dir=tmp_path / "dl"
    )


def mail(app: MedApp) -> MailScreen:
    screen = app.get_screen("mail")
    assert isinstance(screen, MailScreen)
    return screen


def header(app: MedApp) -> str:
    return str(app.screen.query_one(ContextBar).render())


def top_level(app: MedApp) -> list[str]:
    tree = mail(app).query_one(FolderTree)
    return [str(node.label) for node in tree.root.children]


def mailboxes_under(app: MedApp, profile: str) -> list[str]:
    tree = mail(app).query_one(FolderTree)
    node = next(n for n in tree.root.children if n.data == ProfileNode(profile))
    return [str(child.label) for child in node.children]


async def test_two_organisations_side_by_side_in_tree_header_and_search(
    two_orgs: TwoOrgs, graph: GraphLab, config: TuiConfig
) -> None:
    await seed_clinic_items(graph, graph.lab.now())
    app = make_app(None, config, profiles=two_orgs.profiles())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await wait_until(
            pilot, lambda: all(p.state is ProfileState.READY for p in app.profiles.values())
        )
        # The tree: one node per profile (organisation and user), its mailboxes below it.
        assert top_level(app) == [
            f"Kreis Musterstadt ({ASSISTENZ})",
            f"Klinikum ({BERATER})",
        ]
        assert "Dr. Anna Berg (delegated)" in mailboxes_under(app, "kreis")
        assert mailboxes_under(app, "klinikum") == [
            "Jonas Brandt (own)",
            "Prof. Eva Roth (delegated)",
        ]
        # The first profile's boss's inbox opens; the header names organisation and owner.
        assert app.active == "kreis"
        assert header(app).startswith(
            "Kreis Musterstadt · Dr. Anna Berg <chef@musterstadt.example>  ·  "
        )
        # The clinic's board member's inbox, through the Graph profile.
        assert mail(app).open_path(f"{VORSTAND}/inbox")
        await settle(pilot)
        assert app.active == "klinikum"
        assert header(app).startswith(f"Klinikum · Prof. Eva Roth <{VORSTAND}>  ·  ")
        items = mail(app).query_one(ItemList)
        await wait_until(pilot, lambda: any(r.subject == CLINIC_MAIL for r in items.rows.values()))
        # Search over all mailboxes spans both organisations, each heading naming its own.
        await pilot.press("S")
        await settle(pilot)
        query = app.screen.query_one("#msearch-query", Input)
        query.value = "Budget"
        await pilot.press("enter")
        await wait_until(pilot, lambda: getattr(app.screen, "results", None) is not None)
        by_profile = dict(app.screen.by_profile)  # type: ignore[attr-defined]
        assert set(by_profile) == {"kreis", "klinikum"}
        clinic_hits = [
            item.subject
            for group in by_profile["klinikum"].groups
            if group.mailbox == VORSTAND
            for item in group.items
        ]
        assert CLINIC_MAIL in clinic_hits
        text = screen_text(app)
        assert "── Klinikum · Prof. Eva Roth:" in text
        assert "── Kreis Musterstadt · Dr. Anna Berg:" in text
        # Choosing the clinic's hit opens its folder in the clinic's profile.
        await pilot.press("escape")
        await settle(pilot)
        assert mail(app).open_path("chef@musterstadt.example/inbox")
        await settle(pilot)
        assert app.active == "kreis"


async def test_two_profiles_in_one_agenda_each_labelled(
    two_orgs: TwoOrgs, lab: LabServer, graph: GraphLab, config: TuiConfig
) -> None:
    day = graph.lab.now().astimezone()
    await seed_clinic_items(graph, day)
    await seed_kreis_event(lab, day)
    app = make_app(None, config, profiles=two_orgs.profiles(), clock=lambda: day)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await wait_until(
            pilot, lambda: all(p.state is ProfileState.READY for p in app.profiles.values())
        )
        await pilot.press("2")
        await settle(pilot)
        await pilot.press("A")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CalendarScreen)
        await wait_until(pilot, lambda: len(screen.shown) >= 2)
        by_subject = {s.event.subject: s.calendar for s in screen.shown}
        assert by_subject[KREIS_EVENT] == "Kreis Musterstadt · Dr. Anna Berg"
        assert by_subject[CLINIC_EVENT] == "Klinikum · Prof. Eva Roth"
        text = screen_text(app)
        assert CLINIC_EVENT in text and KREIS_EVENT in text
        assert "Klinikum · Prof. Eva Roth" in text
        # The header names the organisation of the calendar new appointments go to.
        assert header(app).startswith("Kreis Musterstadt · Dr. Anna Berg")
        # An appointment of the clinic is answered for through the clinic's session.
        assert screen.select_event(CLINIC_EVENT)
        key = screen.event_key(screen.current_event())  # type: ignore[arg-type]
        assert screen.session_of(key) is two_orgs.klinikum


async def test_a_failed_profile_stays_beside_the_working_one_and_dollar_retries(
    two_orgs: TwoOrgs, lab: LabServer, config: TuiConfig
) -> None:
    wrong = DelegateSession(backend_for(lab, ASSISTENZ, password="falsch"))
    opened: list[DelegateSession] = []

    def relogin(password: str) -> DelegateSession:
        opened.append(DelegateSession(backend_for(lab, ASSISTENZ, password=password)))
        return opened[-1]

    extra = OpenProfile("zweitkonto", wrong, organisation="Zweitkonto", relogin=relogin)
    app = make_app(None, config, profiles=[two_orgs.profiles()[0], extra])
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot)
            # The refused password is asked for again; Esc leaves it for later.
            await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen))
            assert "Zweitkonto · The server did not accept the password" in screen_text(app)
            await pilot.press("escape")
            await settle(pilot)
            await wait_until(pilot, lambda: app.profiles["kreis"].state is ProfileState.READY)
            assert app.profiles["zweitkonto"].state is ProfileState.FAILED
            labels = top_level(app)
            assert labels[0] == f"Kreis Musterstadt ({ASSISTENZ})"
            assert labels[1].startswith("✗ Zweitkonto: ") and labels[1].endswith("($ retries)")
            # The working profile works: its boss's inbox is open and listed.
            assert header(app).startswith("Kreis Musterstadt · Dr. Anna Berg")
            assert mail(app).query_one(ItemList).total > 10
            # `$` asks again; the right password brings the profile in.
            await pilot.press("dollar_sign")
            await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen))
            await pilot.press(*DEMO_PASSWORD, "enter")
            await wait_until(pilot, lambda: app.profiles["zweitkonto"].state is ProfileState.READY)
            assert top_level(app)[1] == f"Zweitkonto ({ASSISTENZ})"
            assert mailboxes_under(app, "zweitkonto")[0] == "Tom Weber (own)"
    finally:
        await wrong.close()
    assert opened and opened[0]._closed  # the app closes the session it opened itself


async def test_quitting_with_streams_open_ends_the_app_and_the_watch_threads(
    two_orgs: TwoOrgs, config: TuiConfig
) -> None:
    app = make_app(None, config, profiles=two_orgs.profiles())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = mail(app)
        await wait_until(pilot, lambda: screen._watched is not None)
        # The watch's stream is open: its reading thread runs.
        await wait_until(pilot, lambda: any(t.name == "med-watch" for t in threading.enumerate()))
        live = [w for w in app.workers if w.group == "live"]
        assert live and not live[0].is_finished
        await pilot.press("q")
    assert app.return_code == 0
    assert all(w.is_finished for w in live)
    assert not [t for t in threading.enumerate() if t.name == "med-watch" and t.is_alive()]
