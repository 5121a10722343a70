"""The main flows against the Exchange lab over HTTP, through the real EWS backend.

Same keys as the fast tests over the in-memory org, but every read and write goes through
exchangelib to the lab on loopback, and results are checked by asking the server again.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from textual.widgets import Input, Select, TextArea

from med import DelegateSession
from med.errors import AccessDenied, NotFound
from med.model import (
    Address,
    FlagStatus,
    Folder,
    ItemQuery,
    LastVerb,
    MailboxKind,
    Message,
    Voicemail,
)
from tests.e2e.conftest import ASSISTENZ, CHEF, POSTSTELLE, TEAMKALENDER, backend_for
from tests.lab import conftest as lab_fixtures
from tests.lab.conftest import LabServer
from tests.tui.conftest import settle, wait_until
from tui.app import MedApp, make_app
from tui.config import TuiConfig
from tui.screens import compose as compose_module
from tui.screens.calendar import CalendarScreen
from tui.screens.compose import ComposeScreen, ReviewScreen
from tui.screens.dialogs import PromptScreen
from tui.screens.event_form import EventFormScreen
from tui.screens.mail import MailScreen
from tui.widgets.context_bar import ContextBar
from tui.widgets.item_list import ItemList

demo_template = lab_fixtures.demo_template
lab = lab_fixtures.lab

SIZE = (150, 40)


@pytest.fixture
async def lab_session(lab: LabServer) -> AsyncIterator[DelegateSession]:
    session = DelegateSession(
        backend_for(lab, ASSISTENZ),
        mailboxes=(CHEF, f"functional:{POSTSTELLE}", f"shared:{TEAMKALENDER}"),
    )
    yield session
    await session.close()


@pytest.fixture
def lab_app(lab_session: DelegateSession, tmp_path: Path) -> Callable[..., MedApp]:
    config = TuiConfig(
        drafts_dir=tmp_path / "drafts", animations=False, downloads_dir=tmp_path / "dl"
    )

    def build(**kwargs: object) -> MedApp:
        return make_app(lab_session, config, **kwargs)  # type: ignore[arg-type]

    return build


def mail(app: MedApp) -> MailScreen:
    screen = app.get_screen("mail")
    assert isinstance(screen, MailScreen)
    return screen


async def first_message(app: MedApp) -> Message:
    items = mail(app).query_one(ItemList)
    item = items.current
    assert isinstance(item, Message)
    return item


async def test_chefs_inbox_read_flag_and_reply_on_behalf_over_ews(
    lab_app: Callable[..., MedApp], lab_session: DelegateSession, lab: LabServer
) -> None:
    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = mail(app)
        header = str(screen.query_one(ContextBar).render())
        assert header.startswith("Dr. Anna Berg <chef@musterstadt.example>  ·  ")
        assert "edit all" in header
        await pilot.press("l")
        await settle(pilot)
        message = await first_message(app)
        assert screen.query_one(ItemList).total > 10
        # read: enter marks it read on the server
        await pilot.press("enter")
        await settle(pilot)
        stored = await lab_session.get(message.id)
        assert isinstance(stored, Message) and stored.is_read
        # flag
        await pilot.press("F")
        await settle(pilot)
        assert (await lab_session.get(message.id)).flag.status is FlagStatus.FLAGGED
        # reply on behalf of chef, through the review screen
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        await pilot.press(*"Wird erledigt")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, MailScreen), [n.message for n in app._notifications]
    # The answered mail is marked replied, as Outlook marks it ("r" in the list).
    answered = await lab_session.get(message.id)
    assert isinstance(answered, Message) and answered.last_verb is LastVerb.REPLIED
    # The boss sees the reply in her Sent Items: From her, Sender the assistant.
    async with DelegateSession(backend_for(lab, CHEF)) as chef:
        sent = await chef.default_folder(CHEF, "sentitems")
        page = await chef.items(sent, ItemQuery(limit=50))
        replies = [
            m
            for m in page.items
            if isinstance(m, Message)
            and m.subject.endswith(message.subject)
            and m.subject != message.subject
        ]
        assert replies, "the reply is in chef's Sent Items"
        full = await chef.get(replies[0].id)
        assert isinstance(full, Message) and "Wird erledigt" in (full.body or "")
        assert full.from_ is not None and full.from_.email == CHEF
        assert full.sender is not None and full.sender.email == ASSISTENZ


async def test_recurring_meeting_in_chefs_calendar_and_one_occurrence_moved_over_ews(
    lab_app: Callable[..., MedApp], lab_session: DelegateSession
) -> None:
    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        cal = app.screen
        assert isinstance(cal, CalendarScreen)
        assert cal.name_of(cal.active or "") == "Dr. Anna Berg"
        day = (app.now() + timedelta(days=1)).date()
        await pilot.press("n")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, EventFormScreen)
        for name, value in {
            "subject": "Lab-Budgetrunde",
            "date": day.isoformat(),
            # Evenings: the lab's seeded appointments (office hours, relative to today) never
            # overlap, so no conflict prompt on any weekday.
            "start": "20:00",
            "end": "21:00",
            "count": "3",
            "attendees": "sachbearbeitung@musterstadt.example",
        }.items():
            form.query_one(f"#e-{name}", Input).value = value
        form.query_one("#e-repeat", Select).value = "weekly"
        await pilot.press("ctrl+s")
        await settle(pilot)
        chef_cal = app.workspace.folders[cal.active or ""]
        tz = app.now().tzinfo
        start = datetime.combine(day, datetime.min.time(), tz)
        events = await lab_session.calendar_view([chef_cal], start, start + timedelta(days=22))
        series = [e for e in events if e.subject == "Lab-Budgetrunde"]
        assert len(series) == 3
        # move the second occurrence by one day and two hours
        await pilot.press("A")
        await settle(pilot)
        second = series[1].start.astimezone(tz).date()
        cal.day = day
        cal.reload()
        await settle(pilot)
        assert cal.select_event("Lab-Budgetrunde", second)
        await pilot.press("M")
        await settle(pilot)
        prompt = app.screen
        assert isinstance(prompt, PromptScreen)
        target = second + timedelta(days=1)
        prompt.query_one(Input).value = f"{target.isoformat()} 21:00"
        await pilot.press("enter")
        await settle(pilot)
        assert not [n for n in app._notifications if n.severity == "error"], [
            n.message for n in app._notifications
        ]
        events = await lab_session.calendar_view([chef_cal], start, start + timedelta(days=22))
        starts = sorted(e.start.astimezone(tz) for e in events if e.subject == "Lab-Budgetrunde")
        assert datetime.combine(target, datetime.min.time(), tz).replace(hour=21) in starts
        assert len(starts) == 3
        assert not [s for s in starts if s.date() == second]


async def test_team_calendar_overlay_public_folder_and_reviewer_rights_over_ews(
    lab_app: Callable[..., MedApp],
) -> None:
    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        # Public folder
        public = [f for _, f in app.workspace.iter_folders() if f.mailbox == "public"]
        assert any(f.name == "Verwaltung" for f in public)
        assert mail(app).open_path("public/Verwaltung")
        await settle(pilot)
        assert str(mail(app).query_one(ContextBar).render()).startswith(
            "Public folders  ·  Verwaltung"
        )
        # Reviewer on chef's contacts: no write actions offered
        assert mail(app).open_path(f"{CHEF}/contacts")
        await settle(pilot)
        screen = mail(app)
        assert "read only" in str(screen.query_one(ContextBar).render())
        for action in ("delete", "compose", "edit_item", "toggle_flag"):
            assert screen.check_action(action, ()) is False, action
        # Team calendar overlay
        await pilot.press("2")
        await settle(pilot)
        cal = app.screen
        assert isinstance(cal, CalendarScreen)
        team: Folder = next(f for m, f in app.workspace.calendars() if m.address == TEAMKALENDER)
        cal.set_overlay(team.id)
        cal.set_active(team.id)
        await settle(pilot)
        assert team.id in cal.overlay and len(cal.overlay) == 2
        assert cal.check_action("new_event", ()) is True  # Author may create


async def test_meeting_request_accepted_on_behalf_over_ews(
    lab_app: Callable[..., MedApp], lab_session: DelegateSession
) -> None:
    from med.model import Event, ResponseType

    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        cal = app.screen
        assert isinstance(cal, CalendarScreen)
        await pilot.press("A")  # agenda: the next 14 days of chef's calendar
        await settle(pilot)
        pending = [
            s.event
            for s in cal.shown
            if s.event.is_meeting and s.event.my_response is ResponseType.NO_RESPONSE
        ]
        assert pending, "the demo organisation has an unanswered invitation for chef"
        meeting = pending[0]
        assert cal.select_event(meeting.subject)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("enter")  # Accept
        await settle(pilot)
        assert not [n.message for n in app._notifications if n.severity == "error"]
        stored = await lab_session.get(meeting.id)
        assert isinstance(stored, Event)
        assert stored.my_response is ResponseType.ACCEPT


async def test_draft_saved_on_the_server_updated_reopened_and_removed_after_sending_over_ews(
    lab_app: Callable[..., MedApp], lab_session: DelegateSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compose_module, "SERVER_SAVE_DELAY_S", 0.05)
    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        compose = app.screen
        assert isinstance(compose, ComposeScreen)
        await pilot.press(*"wolf@kreis.example", "tab", "tab", *"Entwurf Lab")
        await pilot.pause(0.3)
        await settle(pilot)
        draft_id = compose.draft.server_id
        assert draft_id, [n.message for n in app._notifications]
        saved = await lab_session.get(draft_id)
        assert isinstance(saved, Message) and saved.subject == "Entwurf Lab" and saved.is_draft
        # the next pause updates the same item
        compose.query_one("#body", TextArea).focus()
        await pilot.press(*"Text")
        await pilot.pause(0.3)
        await settle(pilot)
        assert compose.draft.server_id == draft_id
        updated = await lab_session.get(draft_id)
        assert "Text" in (updated.body or "")
        await pilot.press("escape")
        await settle(pilot)
        # reopened from the Drafts folder it lives in, then sent: the server draft goes
        drafts = await lab_session.default_folder(compose.draft.server_mailbox or CHEF, "drafts")
        mail(app).open_folder(drafts)
        await settle(pilot)
        items = mail(app).query_one(ItemList)
        index = next(i for i, m in items.rows.items() if m.id == draft_id)
        items.go(index)
        items.focus()
        await pilot.press("enter")
        await settle(pilot)
        reopened = app.screen
        assert isinstance(reopened, ComposeScreen) and reopened.draft.server_id == draft_id
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        await pilot.press("y")
        await settle(pilot)
        assert isinstance(app.screen, MailScreen), [n.message for n in app._notifications]
    with pytest.raises(NotFound):
        await lab_session.get(draft_id)


async def test_mail_sent_to_chef_appears_in_her_open_inbox_over_ews(
    lab_app: Callable[..., MedApp], lab: LabServer
) -> None:
    # A second connection of the assistant's sends it, as any sender's client would.
    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = mail(app)
        assert screen.folder is not None and screen.folder.mailbox == CHEF
        items = screen.query_one(ItemList)
        await wait_until(pilot, lambda: items.total > 0)
        before = items.current
        assert before is not None
        async with DelegateSession(backend_for(lab, ASSISTENZ)) as post:
            await post.send(Message(subject="Live: Eingang Bauantrag", to=(Address(CHEF),)))
        await wait_until(
            pilot, lambda: any(r.subject == "Live: Eingang Bauantrag" for r in items.rows.values())
        )
        current = items.current
        assert current is not None and current.id == before.id  # the cursor kept its item


async def test_chefs_archive_and_voicemail_follow_the_servers_rights_over_ews(
    lab_app: Callable[..., MedApp], lab_session: DelegateSession, lab: LabServer
) -> None:
    """docs/tui.md: the boss has granted nothing on her archive or her Voicemail search folder,
    so neither appears in the assistant's tree; the recordings themselves arrive in her Inbox,
    where the assistant is Editor, and show there (♪)."""
    boss = DelegateSession(backend_for(lab, CHEF))
    try:  # the boss herself has both: the assistant's tree leaves out what exists
        assert any(m.kind is MailboxKind.ARCHIVE for m in await boss.mailboxes())
        await boss.default_folder(CHEF, "voicemail")
    finally:
        await boss.close()
    with pytest.raises(AccessDenied):
        await lab_session.default_folder(CHEF, "voicemail")
    app = lab_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        keys = [m.key for m in app.workspace.mailboxes]
        assert CHEF in keys and f"archive:{CHEF}" not in keys
        chefs = [f for m, f in app.workspace.iter_folders() if m.key == CHEF]
        assert chefs and not any(f.distinguished == "voicemail" for f in chefs)
        assert mail(app).open_path(f"{CHEF}/inbox")
        items = mail(app).query_one(ItemList)
        await wait_until(pilot, lambda: items.loaded)
        voicemails = [i for i in items.rows.values() if isinstance(i, Voicemail)]
        assert voicemails and all("Sprachnachricht" in v.subject for v in voicemails)
