"""Reading as mutt users do (a pager in the reader), an 80×24 terminal, wide characters."""

from __future__ import annotations

from collections.abc import Callable

from rich.cells import cell_len

from med.model import Address, Message
from tests.tui.conftest import settle
from tests.tui.fakeorg import CHEF, NOW, FakeOrg
from tests.tui.screentext import screen_text
from tui.app import MedApp
from tui.screens.help import HelpScreen
from tui.screens.mail import MailScreen
from tui.widgets.context_bar import ContextBar
from tui.widgets.folder_tree import FolderTree
from tui.widgets.item_list import ItemList
from tui.widgets.reader import Reader

WIDE = (150, 40)
SMALL = (80, 24)

LONG_BODY = "\n".join(
    [f"Absatz {n}: Stellungnahme zum Haushaltsentwurf." for n in range(1, 120)]
    + ["Zum Schluss: die Frist endet am Freitag."]
)


def long_letter(org: FakeOrg) -> None:
    org.deliver(
        "chef:inbox",
        Message(
            subject="Lange Stellungnahme",
            from_=Address("wolf@kreis.example", "Dr. Jens Wolf"),
            to=(Address(CHEF),),
            received=NOW,
            body=LONG_BODY,
        ),
    )


def mail(app: MedApp) -> MailScreen:
    screen = app.screen
    assert isinstance(screen, MailScreen)
    return screen


async def test_the_reader_pages_with_space_and_pgdn_and_scrolls_with_j_k(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    long_letter(org)
    app = build_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        reader = mail(app).query_one(Reader)
        assert reader.scroll_offset.y == 0
        await pilot.press("space")  # from the list, as mutt's index does
        await settle(pilot)
        first_page = reader.scroll_offset.y
        assert first_page > 10
        await pilot.press("enter")  # into the reader
        await settle(pilot)
        assert app.focused is reader
        await pilot.press("pagedown")
        assert reader.scroll_offset.y > first_page
        await pilot.press("pageup")
        assert reader.scroll_offset.y == first_page
        await pilot.press("j", "j")
        assert reader.scroll_offset.y == first_page + 2
        await pilot.press("k")
        assert reader.scroll_offset.y == first_page + 1
        items = mail(app).query_one(ItemList)
        assert items.cursor == 0  # j/k moved the text, not the list
        await pilot.press("h")
        await settle(pilot)
        assert app.focused is items


async def test_search_in_the_body_jumps_to_the_match_and_n_goes_on(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    long_letter(org)
    app = build_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("l", "enter")
        await settle(pilot)
        reader = mail(app).query_one(Reader)
        await pilot.press("slash", *"Frist", "enter")
        await settle(pilot)
        assert app.focused is reader
        assert reader.scroll_offset.y > 100  # the last line, far below
        assert "Zum Schluss: die Frist endet" in screen_text(app)
        items = mail(app).query_one(ItemList)
        assert items.current is not None and items.current.subject == "Lange Stellungnahme"
        await pilot.press("slash", *"Absatz 1:", "enter")
        await settle(pilot)
        top = reader.scroll_offset.y
        await pilot.press("n")
        assert reader.scroll_offset.y != top or "Absatz 1:" in screen_text(app)


async def test_at_80_by_24_two_panes_and_the_context_keeps_mailbox_and_rights(
    build_app: Callable[..., MedApp],
) -> None:
    app = build_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        screen = mail(app)
        items = screen.query_one(ItemList)
        reader = screen.query_one(Reader)
        assert not reader.display  # two panes: folders and list
        current = items.current
        assert current is not None
        text = screen_text(app)
        assert current.subject[:20] in text  # the subject column is readable
        context = str(screen.query_one(ContextBar).render())
        assert "Dr. Anna Berg" in context and "read" in context
        assert len(context) <= SMALL[0] - 2
        await pilot.press("enter")
        await settle(pilot)
        assert reader.display and not items.display  # the reader takes the list's place
        assert app.focused is reader
        await pilot.press("h")
        await settle(pilot)
        assert items.display and not reader.display


async def test_below_80_columns_one_pane_at_a_time(build_app: Callable[..., MedApp]) -> None:
    app = build_app()
    async with app.run_test(size=(60, 24)) as pilot:
        await settle(pilot)
        screen = mail(app)
        tree, items = screen.query_one(FolderTree), screen.query_one(ItemList)
        await pilot.press("l")
        await settle(pilot)
        assert items.display and not tree.display
        await pilot.press("h")
        await settle(pilot)
        assert tree.display and not items.display


async def test_wide_characters_keep_the_rows_inside_their_pane(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    org.deliver(
        "chef:inbox",
        Message(
            subject="🎉🎉 会議の議事録 — 周年記念 🎉🎉 " * 3,
            from_=Address("li@kreis.example", "李小龍 🐉"),
            to=(Address(CHEF),),
            received=NOW,
        ),
    )
    app = build_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        items = mail(app).query_one(ItemList)
        width = items.scrollable_content_region.width
        for y in range(3):
            assert items.render_line(y).cell_length == width
        lines = screen_text(app).splitlines()
        row = next(line for line in lines if "会議" in line)
        plain = next(line for line in lines if "(1)" in line or "(2)" in line)
        # The reader's border sits in the same column on both rows.
        assert cell_len(row[: row.index("│", 40)]) == cell_len(plain[: plain.index("│", 40)])


async def test_help_explains_the_status_columns(build_app: Callable[..., MedApp]) -> None:
    app = build_app()
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for glyph, meaning in (("N", "unread"), ("F", "flagged"), ("@", "attachment")):
            assert any(glyph in line and meaning in line for line in text.splitlines())
