"""App-wide behaviour: rebinding keys, first start, tasks/contacts/notes, leftover drafts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Button, Input

from med.model import FlagStatus, Task, TaskStatus
from tests.tui.conftest import settle
from tests.tui.fakeorg import FakeOrg
from tests.tui.screentext import screen_text
from tui.app import MedApp, make_app
from tui.config import TuiConfig
from tui.drafts import Draft, DraftStore
from tui.first_start import FirstStart
from tui.screens.first_start import FirstStartScreen
from tui.screens.item_form import ItemFormScreen
from tui.screens.mail import MailScreen
from tui.screens.messenger import MessengerScreen

SIZE = (140, 36)


async def test_keymap_from_config_rebinds_by_stable_id(
    build_app: Callable[..., MedApp], config: TuiConfig, org: FakeOrg
) -> None:
    app = build_app()
    app.config = dataclasses.replace(config, keymap={"toggle-flag": "ctrl+f"})
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "j", "F")
        await settle(pilot)
        assert org.items["m00000"].flag.status is FlagStatus.NOT_FLAGGED
        await pilot.press("ctrl+f")
        await settle(pilot)
        assert org.items["m00000"].flag.status is FlagStatus.FLAGGED
        assert "^f Flag" in screen_text(app).splitlines()[-1]


async def test_first_start_without_profile_offers_the_demo(config: TuiConfig) -> None:
    app = make_app(None, config)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, FirstStartScreen)
        await pilot.press("d")
        await pilot.pause()
    assert app.return_value == FirstStart("demo")


async def test_first_start_wizard_returns_a_profile_and_checks_input(config: TuiConfig) -> None:
    app = make_app(None, config)
    async with app.run_test(size=(100, 50)) as pilot:
        await pilot.pause()
        await pilot.press("p")
        screen = app.screen
        screen.query_one("#server", Input).value = "mail.example.org"
        screen.query_one("#user", Input).value = "tom@example.org"
        screen.query_one("#mailboxes", Input).value = "chef@example.org, post@example.org"
        screen.query_one("#save", Button).press()
        await pilot.pause()
        assert "https://" in str(screen.query_one("#wizard-error").render())
        screen.query_one("#server", Input).value = "https://mail.example.org/EWS/Exchange.asmx"
        screen.query_one("#save", Button).press()
        await pilot.pause()
    result = app.return_value
    assert result is not None and result.choice == "profile" and result.profile is not None
    assert result.profile.server == "https://mail.example.org/EWS/Exchange.asmx"
    assert result.profile.mailboxes == ("chef@example.org", "post@example.org")


async def test_tasks_key_opens_chefs_tasks_where_a_task_is_created_and_completed(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MailScreen) and screen.folder is not None
        assert screen.folder.id == "chef:tasks"
        await pilot.press("c")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, ItemFormScreen)
        form.query_one("#f-subject", Input).value = "Blumen bestellen"
        form.query_one("#f-due", Input).value = "2026-11-30"
        await pilot.press("ctrl+s")
        await settle(pilot)
        (task,) = [i for i in org.items.values() if i.subject == "Blumen bestellen"]
        assert isinstance(task, Task) and task.folder_id == "chef:tasks"
        assert task.due is not None and task.due.date().isoformat() == "2026-11-30"
        # Find it in the list and complete it with x.
        rows = screen.query_one("#items").rows  # type: ignore[attr-defined]
        index = next(i for i, r in rows.items() if r.id == task.id)
        screen.query_one("#items").go(index)  # type: ignore[attr-defined]
        await pilot.press("l", "x")
        await settle(pilot)
        done = org.items[task.id]
        assert isinstance(done, Task) and done.status is TaskStatus.COMPLETED


async def test_note_is_created_in_own_notes(build_app: Callable[..., MedApp], org: FakeOrg) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MailScreen) and screen.folder is not None
        assert screen.folder.id == "assistenz:notes"
        await pilot.press("c")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, ItemFormScreen)
        form.query_one("#f-subject", Input).value = "Kaffee für Sitzung"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert any(
            i.subject == "Kaffee für Sitzung" and i.folder_id == "assistenz:notes"
            for i in org.items.values()
        )


async def test_a_new_note_takes_typing_in_its_title_then_text(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("5")
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, ItemFormScreen)
        await pilot.press(*"Titel", "tab", *"Inhalt", "ctrl+s")
        await settle(pilot)
        notes = [i for i in org.items.values() if i.folder_id == "assistenz:notes"]
        assert any(n.subject == "Titel" and (n.body or "").strip() == "Inhalt" for n in notes)


async def test_drafts_left_from_last_time_are_announced(
    build_app: Callable[..., MedApp], config: TuiConfig
) -> None:
    DraftStore(config.drafts_dir).save(Draft(subject="halb fertig"))
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert any("1 unsent draft" in n.message for n in app._notifications)


async def test_messenger_key_shows_its_place(build_app: Callable[..., MedApp]) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        assert isinstance(app.screen, MessengerScreen)
        await pilot.press("1")
        await settle(pilot)
        assert isinstance(app.screen, MailScreen)


def test_config_drafts_dir_is_where_drafts_go(tmp_path: Path) -> None:
    config = TuiConfig.from_mapping(None, None, drafts_dir=tmp_path / "d")
    assert config.drafts_dir == tmp_path / "d"


async def test_compose_offers_a_kept_draft_and_continues_it(
    build_app: Callable[..., MedApp], config: TuiConfig
) -> None:
    DraftStore(config.drafts_dir).save(
        Draft(to="wolf@kreis.example", subject="Termin", body="Hallo")
    )
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press("down", "enter")  # the second entry: the kept draft
        await settle(pilot)
        from tui.screens.compose import ComposeScreen

        compose = app.screen
        assert isinstance(compose, ComposeScreen)
        assert compose.query_one("#subject", Input).value == "Termin"
        assert compose.query_one("#to", Input).value == "wolf@kreis.example"


async def test_address_completion_asks_the_directory(build_app: Callable[..., MedApp]) -> None:
    from tui.screens.compose import AddressSuggester

    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        suggester = AddressSuggester(app)
        assert await suggester.get_suggestion("post") == "poststelle@musterstadt.example"
        assert await suggester.get_suggestion("wolf@kreis.example, ch") == (
            "wolf@kreis.example, chef@musterstadt.example"
        )
        assert await suggester.get_suggestion("zz") is None


async def test_attachment_is_saved_into_the_downloads_dir(
    build_app: Callable[..., MedApp], config: TuiConfig
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "v", "s")  # the voicemail's recording
        await settle(pilot)
        saved = config.downloads_dir / "nachricht.wav"
        assert saved.read_bytes().startswith(b"RIFF")


async def test_slow_server_shows_progress_and_the_ui_keeps_answering(
    session_factory: Callable[[FakeOrg], MedApp],
) -> None:
    import threading

    from med.model import Folder, ItemQuery

    gate = threading.Event()

    class SlowOrg(FakeOrg):
        def find_items(self, folder: Folder, query: ItemQuery):  # type: ignore[no-untyped-def]
            if folder.id == "chef:inbox":
                gate.wait(timeout=30)  # the server takes its time
            return super().find_items(folder, query)

    org = SlowOrg()
    app = session_factory(org)
    async with app.run_test(size=SIZE) as pilot:
        try:
            for _ in range(200):  # wait (no sleep) until the page request is in flight
                await pilot.pause()
                if "loading items" in str(app.screen.query_one("#busy").render()):
                    break
            # (The other mailboxes' trees wait for this first list, so they may show too.)
            busy = str(app.screen.query_one("#busy").render())
            assert busy.startswith("⟳ loading items") and busy.endswith("…")
            await pilot.press("question_mark")  # the UI answers while the server is busy
            await pilot.pause()
            from tui.screens.help import HelpScreen

            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
        finally:
            gate.set()
        await settle(pilot)
        assert str(app.screen.query_one("#busy").render()) == ""
        assert app.screen.query_one("#items").total == 41  # type: ignore[attr-defined]


async def test_draft_is_on_disk_even_when_the_app_ends_mid_sentence(
    build_app: Callable[..., MedApp], config: TuiConfig
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        await pilot.press(*"wolf@kreis.example", "tab", "tab", *"Eilt", "tab", *"Bitte")
        await pilot.press("2", "q")  # neither switches away nor quits while writing
        await pilot.pause()
        from tui.screens.compose import ComposeScreen

        assert isinstance(app.screen, ComposeScreen)
        app.exit()  # e.g. the terminal closes before the autosave timer fired
    (draft,) = DraftStore(config.drafts_dir).all()
    assert (draft.to, draft.subject) == ("wolf@kreis.example", "Eilt")
    assert draft.body.startswith("Bitte")


async def test_task_is_edited_in_place(build_app: Callable[..., MedApp], org: FakeOrg) -> None:
    app = build_app(start_folder="chef@musterstadt.example/tasks")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "e")
        await settle(pilot)
        form = app.screen
        assert isinstance(form, ItemFormScreen)
        assert form.query_one("#f-subject", Input).value == "Rede Neujahrsempfang vorbereiten"
        form.query_one("#f-percent_complete", Input).value = "50"
        await pilot.press("ctrl+s")
        await settle(pilot)
        (task,) = [
            i
            for i in org.items.values()
            if isinstance(i, Task) and i.subject == "Rede Neujahrsempfang vorbereiten"
        ]
        assert task.percent_complete == 50
        # Only what changed is written; the due date keeps its time of day.
        assert [c.split(":")[-1] for c in org.calls if c.startswith("update_item")] == [
            "percent_complete"
        ]


async def test_colon_opens_the_command_palette_with_screen_actions(
    build_app: Callable[..., MedApp],
) -> None:
    from textual.command import CommandPalette

    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "colon")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Reply all")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        from tui.screens.compose import ComposeScreen

        assert isinstance(app.screen, ComposeScreen)
        assert app.screen.draft.mode == "reply-all"


async def test_refused_sign_in_is_said_in_the_header_and_dollar_retries(
    session_factory: Callable[[FakeOrg], MedApp],
) -> None:
    from med.errors import BadCredentials
    from med.model import Mailbox

    class LockedOrg(FakeOrg):
        locked = True

        def own_mailbox(self) -> Mailbox:
            if self.locked:
                raise BadCredentials("The server did not accept the password for assistenz.")
            return super().own_mailbox()

    org = LockedOrg()
    app = session_factory(org)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        header = str(app.screen.query_one("#context").render())
        assert header.startswith("The server did not accept the password for assistenz.")
        assert any(n.title == "Sign-in failed" for n in app._notifications)
        org.locked = False
        await pilot.press("dollar_sign")
        await settle(pilot)
        assert "Dr. Anna Berg <chef@musterstadt.example>" in str(
            app.screen.query_one("#context").render()
        )
