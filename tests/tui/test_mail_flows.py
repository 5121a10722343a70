"""Mail flows driven through Pilot over a real DelegateSession (demo-org fake backend)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from med.errors import AccessDenied
from med.model import FlagStatus, Message, SendOptions
from tests.tui.conftest import settle
from tests.tui.fakeorg import CHEF, FakeOrg
from tests.tui.screentext import screen_text
from tui.app import MedApp
from tui.screens.compose import ComposeScreen, ReviewScreen
from tui.screens.dialogs import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.mail import MailScreen
from tui.widgets.context_bar import ContextBar
from tui.widgets.item_list import ItemList
from tui.widgets.reader import Reader

SIZE = (140, 36)


def mail(app: MedApp) -> MailScreen:
    screen = app.get_screen("mail")
    assert isinstance(screen, MailScreen)
    return screen


async def test_start_opens_chefs_inbox_with_owner_and_rights_in_header(
    build_app: Callable[..., MedApp],
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = mail(app)
        assert screen.folder is not None and screen.folder.mailbox == CHEF
        header = str(screen.query_one(ContextBar).render())
        assert "Dr. Anna Berg <chef@musterstadt.example>" in header
        assert "Posteingang" in header
        assert "your rights: read, create, edit all, delete all" in header
        items = screen.query_one(ItemList)
        assert items.total == 41  # 40 messages and a voicemail
        text = screen_text(app)
        assert "Sprachnachricht" in text and "Public folders" in text


async def test_reading_a_message_shows_html_as_text_and_enter_marks_it_read(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "j")  # first mail after the voicemail: m00000, HTML, unread
        await settle(pilot)
        reader_text = screen_text(app)
        assert "Sehr geehrte Frau Dr. Berg," in reader_text
        assert "<p>" not in reader_text and "• Entwurf" in reader_text
        assert org.items["m00000"].is_read is False  # type: ignore[attr-defined]
        unread_before = mail(app).folder.unread_count  # type: ignore[union-attr]
        await pilot.press("enter")
        await settle(pilot)
        assert org.items["m00000"].is_read is True  # type: ignore[attr-defined]
        assert mail(app).folder.unread_count == unread_before - 1  # type: ignore[union-attr]
        assert f"Posteingang ({unread_before - 1})" in screen_text(app)


async def test_flag_key_flags_the_message_on_the_server(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "j", "F")
        await settle(pilot)
        assert org.items["m00000"].flag.status is FlagStatus.FLAGGED
        row = mail(app).query_one(ItemList).current
        assert row is not None and row.flag.status is FlagStatus.FLAGGED
        await pilot.press("F")
        await settle(pilot)
        assert org.items["m00000"].flag.status is FlagStatus.NOT_FLAGGED


async def test_reply_is_reviewed_then_sent_on_behalf_of_the_boss_and_draft_removed(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "j", "r")
        await settle(pilot)
        compose = app.screen
        assert isinstance(compose, ComposeScreen)
        await pilot.press(*"Danke", "enter")
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        head = str(app.screen.query_one("#review-head").render())
        assert head.startswith(
            "From: Dr. Anna Berg <chef@musterstadt.example>, sent by "
            "assistenz@musterstadt.example on behalf"
        )
        body = str(app.screen.query_one("#review-body").render())
        assert body.startswith("Danke\n") and "> Sehr geehrte Frau Dr. Berg," in body
        assert list(app.drafts.all())  # autosaved before sending
        await pilot.press("y")
        await settle(pilot)
        ((sent, options, _),) = org.sent
        assert options == SendOptions(from_mailbox=CHEF)
        assert isinstance(sent, Message) and sent.body == body
        assert sent.subject == "RE: Haushaltsplan 2027 (1)"
        assert isinstance(app.screen, MailScreen)
        assert app.drafts.all() == []


async def test_closing_compose_keeps_the_draft_on_disk(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press(*"wolf@kreis.example", "tab", "tab", *"Termin")
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, MailScreen)
        (draft,) = app.drafts.all()
        assert draft.to == "wolf@kreis.example" and draft.subject == "Termin"
        assert draft.sender == CHEF  # written from chef's inbox: goes out on her behalf
        assert org.sent == []


async def test_delete_asks_first_and_only_deletes_after_yes(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "j", "d")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert "m00000" in org.items
        await pilot.press("d", "y")
        await settle(pilot)
        assert "m00000" not in org.items
        assert mail(app).query_one(ItemList).total == 40


async def test_reviewer_folder_offers_no_write_actions(build_app: Callable[..., MedApp]) -> None:
    app = build_app(start_folder=f"{CHEF}/contacts")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = mail(app)
        assert screen.folder is not None and screen.folder.name == "Kontakte"
        assert "your rights: read only" in str(screen.query_one(ContextBar).render())
        for action in ("delete", "compose", "edit_item", "toggle_flag", "move", "categories"):
            assert screen.check_action(action, ()) is False, action
        footer = screen_text(app).splitlines()[-1]
        assert "Delete" not in footer and "Compose" not in footer
        await pilot.press("l", "d", "c", "e")
        await settle(pilot)
        assert app.screen is screen  # nothing opened
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        help_text = screen_text(app)
        assert "next-item" in help_text and "toggle-flag" not in help_text


async def test_public_folder_opens_and_header_names_public_folders(
    build_app: Callable[..., MedApp],
) -> None:
    app = build_app(start_folder="public/Verwaltung")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = mail(app)
        header = str(screen.query_one(ContextBar).render())
        assert header.startswith("Public folders  ·  Verwaltung")
        row = screen.query_one(ItemList).current
        assert row is not None and row.subject == "Rundschreiben 12/2026"


async def test_server_refusal_shows_the_errors_sentence(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AccessDenied("Dr. Anna Berg has withdrawn your rights on this folder.")

    org.update_item = refuse  # type: ignore[method-assign]
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "j", "F")
        await settle(pilot)
        notes = [(n.title, n.message) for n in app._notifications]
        assert ("Access denied", "Dr. Anna Berg has withdrawn your rights on this folder.") in notes
        assert org.items["m00000"].flag.status is FlagStatus.NOT_FLAGGED


async def test_search_lists_only_matching_items(build_app: Callable[..., MedApp]) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"Winterdienst", "enter")
        await settle(pilot)
        items = mail(app).query_one(ItemList)
        assert items.total == 5
        assert all("Winterdienst" in r.subject for r in items.rows.values())
        assert "search: Winterdienst" in str(mail(app).query_one(ContextBar).render())


async def test_ten_thousand_items_load_page_by_page(
    session_factory: Callable[[FakeOrg], MedApp],
) -> None:
    org = FakeOrg(inbox_size=10_000)
    app = session_factory(org)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        inbox_calls = [c for c in org.calls if c.startswith("find_items:chef:inbox")]
        # A screenful first, then the rest of the first page; nothing further down.
        assert inbox_calls == ["find_items:chef:inbox:0", "find_items:chef:inbox:60"]
        await pilot.press("l", "G")
        await settle(pilot)
        items = mail(app).query_one(ItemList)
        assert items.cursor == 10_000
        assert items.current is not None and items.current.id == "m09999"
        offsets = {c.rsplit(":", 1)[1] for c in org.calls if c.startswith("find_items:chef:inbox")}
        assert offsets == {"0", "60", "9800", "10000"}


async def test_voicemail_is_listed_with_its_recording(build_app: Callable[..., MedApp]) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        text = str(mail(app).query_one(Reader).query_one("#reader-head").render())
        del text
        await pilot.press("v")
        await settle(pilot)
        shown = screen_text(app)
        assert "nachricht.wav" in shown and "audio/wav" in shown


def test_message_type_is_the_models() -> None:
    # The list shows med.model values unchanged: a replace() keeps the class.
    m = Message(subject="x")
    assert type(dataclasses.replace(m, is_read=True)) is Message


async def test_move_categories_and_importance_change_the_item_on_the_server(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    from tui.screens.dialogs import ChoiceScreen, PromptScreen

    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "j", "exclamation_mark")
        await settle(pilot)
        assert org.items["m00000"].importance.value == "high"
        await pilot.press("number_sign")
        await settle(pilot)
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"Presse, Rot", "enter")
        await settle(pilot)
        assert org.items["m00000"].categories == ("Presse", "Rot")
        await pilot.press("m")
        await settle(pilot)
        assert isinstance(app.screen, ChoiceScreen)
        await pilot.press("enter")  # the only other mail folder of chef's: Erledigt
        await settle(pilot)
        assert "m00000" not in org.items
        moved = [i for i in org.items.values() if i.folder_id == "chef:Erledigt"]
        assert [m.subject for m in moved] == ["Haushaltsplan 2027 (1)"]
        assert mail(app).query_one(ItemList).total == 40


async def test_new_appointment_in_a_calendar_folder_opened_from_the_tree(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    from textual.widgets import Input

    from tui.screens.event_form import EventFormScreen

    app = build_app(start_folder="teamkalender@musterstadt.example/calendar")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert mail(app).folder is not None and mail(app).folder.id == "teamkalender:calendar"
        await pilot.press("c")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, EventFormScreen)
        form.query_one("#e-subject", Input).value = "Urlaubsplanung"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert any(
            i.subject == "Urlaubsplanung" and i.folder_id == "teamkalender:calendar"
            for i in org.items.values()
        )


async def test_due_date_and_unread_toggle(build_app: Callable[..., MedApp], org: FakeOrg) -> None:
    from datetime import date

    from tui.screens.dialogs import PromptScreen

    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "j", "D")
        await settle(pilot)
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"01.12.2026", "enter")
        await settle(pilot)
        flag = org.items["m00000"].flag
        assert flag.status is FlagStatus.FLAGGED
        assert flag.due is not None and flag.due.date() == date(2026, 12, 1)
        await pilot.press("D", *"31.02.2026", "enter")  # no such day: asked again, nothing sent
        await settle(pilot)
        assert isinstance(app.screen, PromptScreen)
        assert "Write dates as" in str(app.screen.query_one("#prompt-error").render())
        await pilot.press("escape")
        await settle(pilot)
        was_read = org.items["m00000"].is_read  # type: ignore[attr-defined]
        await pilot.press("u")
        await settle(pilot)
        assert org.items["m00000"].is_read is (not was_read)  # type: ignore[attr-defined]


async def test_new_mail_from_the_functional_mailbox_goes_out_as_it(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    from tests.tui.fakeorg import POST

    app = build_app(start_folder=f"{POST}/inbox")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press(*"buerger@example.org", "tab", "tab", *"Ihr Antrag", "tab", *"Eingang")
        await pilot.press("ctrl+s")
        await settle(pilot)
        head = str(app.screen.query_one("#review-head").render())
        assert head.startswith(f"From: Poststelle <{POST}> (as the functional mailbox)")
        await pilot.press("y")
        await settle(pilot)
        ((message, options, mode),) = org.sent
        assert (options.from_mailbox, mode) == (POST, "new")
        assert isinstance(message, Message) and message.subject == "Ihr Antrag"
        assert [a.email for a in message.to] == ["buerger@example.org"]
