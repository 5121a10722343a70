"""New mail shows up in the open list and in the unread counts without a key press."""

from __future__ import annotations

from collections.abc import Callable

from med.model import Address, Message
from tests.tui.conftest import settle, wait_until
from tests.tui.fakeorg import CHEF, NOW, FakeOrg
from tests.tui.screentext import screen_text
from tui.app import MedApp
from tui.screens.mail import MailScreen
from tui.widgets.item_list import ItemList

SIZE = (140, 36)


async def test_new_mail_appears_on_top_and_the_cursor_stays_on_its_item(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    org.live = True
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "j", "j", "j")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, MailScreen)
        items = screen.query_one(ItemList)
        before = items.current
        assert before is not None and items.cursor == 3
        total = items.total
        inbox = app.workspace.folders["chef:inbox"]
        unread = inbox.unread_count or 0

        org.deliver(
            "chef:inbox",
            Message(
                subject="Eilt: Kreistag",
                from_=Address("wolf@kreis.example", "Dr. Jens Wolf"),
                to=(Address(CHEF),),
                received=NOW,
            ),
        )
        await wait_until(pilot, lambda: items.total == total + 1)
        first = items.rows[0]
        assert first.subject == "Eilt: Kreistag"
        current = items.current
        assert current is not None and current.id == before.id and items.cursor == 4
        await wait_until(
            pilot, lambda: app.workspace.folders["chef:inbox"].unread_count == unread + 1
        )


async def test_without_notifications_the_list_still_works_by_hand(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()  # FakeOrg.live is off: the backend has no notifications
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        org.deliver("chef:inbox", Message(subject="Per Hand", to=(Address(CHEF),)))
        await pilot.press("dollar_sign")
        await settle(pilot)
        items = app.screen.query_one(ItemList)
        assert items.rows[0].subject == "Per Hand"
        assert not app._notifications  # no error shown for the missing notifications


def deliver(org: FakeOrg, subject: str) -> None:
    org.deliver(
        "chef:inbox",
        Message(
            subject=subject,
            from_=Address("wolf@kreis.example", "Dr. Jens Wolf"),
            to=(Address(CHEF),),
            received=NOW,
        ),
    )


async def test_at_the_top_of_the_list_new_mail_comes_into_view(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    org.live = True
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "j")
        await settle(pilot)
        items = app.screen.query_one(ItemList)
        before = items.current
        assert before is not None and items.scroll_offset.y == 0
        deliver(org, "Eilt: Kreistag")
        await wait_until(pilot, lambda: items.rows[0].subject == "Eilt: Kreistag")
        assert items.scroll_offset.y == 0  # the new row is on screen
        assert "Eilt: Kreistag" in screen_text(app)
        current = items.current
        assert current is not None and current.id == before.id
        assert "new — g" not in screen_text(app)


async def test_further_down_a_notice_counts_new_mail_and_g_shows_it(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    org.live = True
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "G")
        await settle(pilot)
        items = app.screen.query_one(ItemList)
        assert items.scroll_offset.y > 0
        top_before = items.rows[round(items.scroll_offset.y)]
        for n in range(3):
            deliver(org, f"Neu {n}")
        await wait_until(pilot, lambda: items.new_above == 3, rounds=50)
        text = screen_text(app)
        assert "3 new — g" in text
        assert "Neu 0" not in text  # the view stayed on the rows the user was reading
        top = items.rows.get(round(items.scroll_offset.y))
        assert top is not None and top.id == top_before.id
        await pilot.press("g")
        await settle(pilot)
        text = screen_text(app)
        assert "new — g" not in text and "Neu 2" in text
