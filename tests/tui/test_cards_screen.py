"""Bridge cards over the in-memory organisation: an appointment's card opens the calendar on
its day with the event selected; the pane shows the card and Enter there opens the item; a
card offers only the answers the bridge offered; over a real messenger server, two commands
answered out of order each land on their own card.

The cards are made from the bridge's own rendering, as its worker posts them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from bridge.notify.render import actions_for, payload_for, render
from med.model import Event, Message, Task
from messenger.client.content import Text
from messenger.client.e2e import DecryptedMessage
from tests.messenger.messenger_harness import Harness
from tests.tui.conftest import settle, wait_until
from tests.tui.fakeorg import CHEF, NOW, FakeOrg
from tests.tui.messenger_rig import DOMAIN, account_for, chat_server, make_peer
from tui.app import MedApp
from tui.messaging import ChatLine, ConnectionState, Conversation, MessengerAccount, MessengerHub
from tui.screens.calendar import CalendarScreen
from tui.screens.cards import CardsScreen, cards_of
from tui.screens.mail import MailScreen
from tui.widgets.bridge_card import BridgeCardView
from tui.widgets.item_list import ItemList

__all__ = ["chat_server"]

BRIDGE = "u-bridge"


def hub_with_cards(app: MedApp, tmp_path: Path, notes: list[tuple[int, str, object]]) -> None:
    """The app's messenger holding one conversation with the bridge and these notifications."""
    hub = MessengerHub(app.post_message)
    conn = hub.add(
        MessengerAccount(
            profile="work",
            server="https://chat.example",
            user="assistenz@example",
            password="unused",
            state_dir=tmp_path / "chat",
        )
    )
    conn.state, conn.user_id = ConnectionState.ONLINE, "u-me"
    conv = Conversation("c-bridge", "direct", "", ("u-me", BRIDGE), title="medbridge")
    for ref, kind, item in notes:
        assert isinstance(item, Message | Event | Task)
        payload = payload_for(item, CHEF, "Kalender" if kind == "appointment" else "Posteingang")
        payload["kind"] = kind
        actions = tuple((a["label"], a["reply"]) for a in actions_for(kind, ref))
        text = Text(render(payload, ref), actions)
        stamp = int(NOW.timestamp() * 1000) + ref
        conv.lines.append(ChatLine(ref, BRIDGE, False, text, sent_at_ms=stamp))
    conn.conversations[conv.conversation_id] = conv
    app.messenger = hub


async def test_an_appointment_card_opens_the_calendar_on_its_day(
    org: FakeOrg, build_app: Callable[..., MedApp], tmp_path: Path
) -> None:
    event = next(
        i
        for i in org.items.values()
        if isinstance(i, Event) and i.subject == "Einladung: Klinikum Aufsichtsrat"
    )
    app = build_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        hub_with_cards(app, tmp_path, [(7, "appointment", event)])
        await pilot.press("8")
        await wait_until(pilot, lambda: isinstance(app.screen.focused, BridgeCardView))
        assert isinstance(app.screen, CardsScreen)
        card = app.screen.focused
        assert isinstance(card, BridgeCardView)
        # An appointment offers mark read and flag, no meeting answers.
        assert card.card.verbs() == ["read", "flag"]
        assert card.check_action("card_command", ("accept",)) is False
        await pilot.press("a")  # not offered: nothing goes to the bridge
        await settle(pilot)
        assert app.card_results.waiting == {}
        await pilot.press("enter")

        def shown() -> bool:
            screen = app.screen
            return (
                isinstance(screen, CalendarScreen)
                and screen.current_event() is not None
                and screen.current_event().subject == event.subject  # type: ignore[union-attr]
            )

        await wait_until(pilot, shown)
        calendar = app.screen
        assert isinstance(calendar, CalendarScreen)
        assert calendar.day == event.start.astimezone(NOW.tzinfo).date()


async def test_a_task_card_is_completed_with_d_and_offers_nothing_else(
    build_app: Callable[..., MedApp], tmp_path: Path
) -> None:
    task = Task(id="TK1", subject="Grußwort schreiben", due=NOW)
    app = build_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        hub_with_cards(app, tmp_path, [(5, "task", task)])
        await pilot.press("8")
        await wait_until(pilot, lambda: isinstance(app.screen.focused, BridgeCardView))
        card = app.screen.focused
        assert isinstance(card, BridgeCardView) and card.card.verbs() == ["done"]
        await pilot.press("u")  # mark read: not offered for a task
        await settle(pilot)
        assert app.card_results.waiting == {}
        await pilot.press("d")
        await wait_until(pilot, lambda: bool(app.card_results.waiting))
    [sent] = app.card_results.waiting["c-bridge"]
    assert (sent.ref, sent.command) == (5, "done #5")


async def test_the_pane_shows_the_card_and_enter_opens_the_mail(
    org: FakeOrg, build_app: Callable[..., MedApp], tmp_path: Path
) -> None:
    mail = next(
        i for i in org.items.values() if isinstance(i, Message) and i.mailbox == CHEF and i.subject
    )
    app = build_app()
    async with app.run_test(size=(130, 34)) as pilot:
        await settle(pilot)
        hub_with_cards(app, tmp_path, [(3, "mail", mail)])
        await pilot.press("6")
        await settle(pilot)
        pane = app.screen
        rows = pane.query_one("#chat-messages")
        pane.query_one("#chat-conversations").focus()
        await pilot.press("enter")  # open the bridge's conversation
        await settle(pilot)
        prompt = str(rows.get_option_at_index(0).prompt)  # type: ignore[attr-defined]
        assert f"Mail #3  {CHEF} › Posteingang" in prompt and mail.subject in prompt
        assert "Enter: open the item · A: read, flag" in prompt
        rows.focus()
        await pilot.press("enter")

        def opened() -> bool:
            screen = app.screen
            current = screen.query_one(ItemList).current if isinstance(screen, MailScreen) else None
            return current is not None and current.id == mail.id

        await wait_until(pilot, opened)


async def test_two_commands_answered_out_of_order_each_land_on_their_card(
    org: FakeOrg, build_app: Callable[..., MedApp], chat_server: Harness, tmp_path: Path
) -> None:
    """The bridge's account here is a scripted E2E client posting the bridge's own cards, so it
    can answer the second command first, each answer a reply to its command (as the bridge
    sends them)."""
    mails = [
        i for i in org.items.values() if isinstance(i, Message) and i.mailbox == CHEF and i.subject
    ][:2]
    await chat_server.user(f"bridge@{DOMAIN}")
    bridge = await make_peer(chat_server, f"bridge@{DOMAIN}")
    app = build_app(messenger_accounts={"work": account_for(chat_server, tmp_path / "chat")})
    try:
        async with app.run_test(size=(110, 34)) as pilot:
            await settle(pilot)
            assert app.messenger is not None
            conn = app.messenger.current
            assert conn is not None
            await wait_until(pilot, lambda: conn.state is ConnectionState.ONLINE, rounds=300)
            conv = await bridge.client.create_conversation("direct", [conn.user_id])
            cid = str(conv["conversation_id"])
            for ref, mail in zip((3, 4), mails, strict=True):
                payload = payload_for(mail, CHEF, "Posteingang")
                await bridge.session.send_text(
                    cid, render(payload, ref), actions=actions_for("mail", ref)
                )
            await wait_until(pilot, lambda: len(cards_of(app.messenger)) == 2, rounds=300)
            await pilot.press("8")
            await wait_until(pilot, lambda: len(app.screen.query(BridgeCardView)) == 2)

            def view(ref: int) -> BridgeCardView:
                return next(v for v in app.screen.query(BridgeCardView) if v.card.ref == ref)

            view(3).focus()
            await pilot.press("F")  # flag #3
            view(4).focus()
            await pilot.press("u")  # read #4

            def commands() -> dict[str, int]:
                return {
                    r.body: r.seq
                    for r in bridge.results
                    if isinstance(r, DecryptedMessage) and r.sender_user_id == conn.user_id
                }

            await bridge.pump_until(lambda _: len(commands()) == 2)
            seqs = commands()
            assert set(seqs) == {"flag #3", "read #4"}
            # The second command is answered first; nothing else tells them apart.
            await bridge.session.send_text(
                cid, f"Done: “{mails[1].subject}” marked read.", reply_to=seqs["read #4"]
            )
            await bridge.session.send_text(
                cid, f"Done: “{mails[0].subject}” flagged.", reply_to=seqs["flag #3"]
            )
            await wait_until(
                pilot,
                lambda: view(3).result.startswith("Done") and view(4).result.startswith("Done"),
                rounds=300,
            )
            assert view(3).result == f"Done: “{mails[0].subject}” flagged."
            assert view(4).result == f"Done: “{mails[1].subject}” marked read."
    finally:
        await bridge.close()
