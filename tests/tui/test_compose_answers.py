"""Writing replies and new mail: every field editable, Bcc and attachments, the original
quoted in view, subjects sent as shown, completion by name that never loses a key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from textual.widgets import Input, TextArea

from med.model import Address, Message, SendOptions
from tests.tui.conftest import settle, wait_until
from tests.tui.fakeorg import CHEF, DOMAIN, FakeOrg
from tui.app import MedApp
from tui.screens.compose import ComposeScreen, ReviewScreen

SIZE = (140, 36)
LENA = f"sachbearbeitung@{DOMAIN}"


def field(app: MedApp, name: str) -> Input:
    return app.screen.query_one(f"#{name}", Input)


async def test_a_reply_is_editable_quotes_the_original_and_goes_out_as_shown(
    build_app: Callable[..., MedApp], org: FakeOrg, tmp_path: Path
) -> None:
    attachment = tmp_path / "Vermerk.txt"
    attachment.write_text("Vermerk")
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l", "j", "r")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        for name in ("to", "cc", "bcc", "subject", "attachments"):
            assert not field(app, name).disabled, name
        assert field(app, "subject").value == "RE: Haushaltsplan 2027 (1)"
        assert LENA in field(app, "to").value
        body = app.screen.query_one("#body", TextArea)
        await wait_until(pilot, lambda: "> Sehr geehrte Frau Dr. Berg," in body.text)
        assert "Betreff: Haushaltsplan 2027 (1)" in body.text  # the original, in view
        await pilot.press(*"Anbei der Vermerk.")
        field(app, "to").value = f"{LENA}, wolf@kreis.example"
        field(app, "bcc").value = f"post@{DOMAIN}"
        field(app, "subject").value = "RE: Haushaltsplan 2027 – Vermerk"
        field(app, "attachments").value = str(attachment)
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, ReviewScreen)
        head = str(app.screen.query_one("#review-head").render())
        assert f"Bcc: post@{DOMAIN}" in head and "Attachment: Vermerk.txt" in head
        assert "Subject: RE: Haushaltsplan 2027 – Vermerk" in head
        await pilot.press("y")
        await settle(pilot)
    ((sent, options, _),) = org.sent
    assert options == SendOptions(from_mailbox=CHEF)
    assert isinstance(sent, Message)
    assert sent.subject == "RE: Haushaltsplan 2027 – Vermerk"
    assert [a.email for a in sent.to] == [LENA, "wolf@kreis.example"]
    assert sent.bcc == (Address(f"post@{DOMAIN}"),)
    assert [(a.name, a.content) for a in sent.new_attachments] == [("Vermerk.txt", b"Vermerk")]
    assert sent.body is not None and sent.body.startswith("Anbei der Vermerk.")
    assert "> Sehr geehrte Frau Dr. Berg," in sent.body


async def test_a_forward_carries_the_originals_attachments_and_shows_its_subject(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        # The first message with an attachment (every fifth of the demo inbox).
        await pilot.press("j", "j", "j", "f")
        await settle(pilot)
        assert isinstance(app.screen, ComposeScreen)
        subject = field(app, "subject").value
        assert subject.startswith("WG: ")
        field(app, "to").value = "wolf@kreis.example"
        await settle(pilot)
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
    ((sent, _, _),) = org.sent
    assert isinstance(sent, Message) and sent.subject == subject
    assert [a.name for a in sent.new_attachments] == ["Unterlagen.pdf"]


async def test_completion_by_name_and_keys_typed_before_the_directory_answers(
    build_app: Callable[..., MedApp], org: FakeOrg
) -> None:
    app = build_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        if not isinstance(app.screen, ComposeScreen):  # kept drafts: start a new one
            await pilot.press("enter")
            await settle(pilot)
        to = field(app, "to")
        assert to.has_focus
        # A slow directory: the keys go in before any answer comes back.
        org.directory_open.clear()
        await pilot.press(*"Sachb")
        org.directory_open.set()
        await wait_until(pilot, lambda: bool(to._suggestion))
        await pilot.press("right")  # take the completion
        assert to.value == "Sachbearbeitung@musterstadt.example"  # the capital S stays
        await pilot.press(*", Koch")
        await wait_until(pilot, lambda: bool(to._suggestion))
        await pilot.press("right")
        first = "Sachbearbeitung@musterstadt.example"
        assert to.value == f"{first}, Koch — Lena Koch <{LENA}>"
