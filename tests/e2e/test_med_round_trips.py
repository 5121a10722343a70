"""med against the lab: what an assistant does often takes few round trips, with the same
outcome as item by item. Requests are counted where exchangelib sends them."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from med import (
    Address,
    Conflict,
    Flag,
    FlagStatus,
    ItemQuery,
    Message,
    NotFound,
    OutgoingAttachment,
    ResponseType,
    SendOptions,
)
from med.backends.ews.backend import BATCH_SIZE, EwsBackend
from tests.e2e.conftest import CHEF, SACHBEARBEITUNG
from tests.lab.conftest import LabServer


def deliver_mails(lab: LabServer, count: int, tag: str) -> None:
    """`count` mails from Lena Koch in the boss's inbox, in one request outside the count."""
    mails = "".join(
        f"<t:Message><t:Subject>{tag} {i:03d}</t:Subject>"
        '<t:Body BodyType="Text">Bitte prüfen.</t:Body>'
        f"<t:ToRecipients><t:Mailbox><t:EmailAddress>{CHEF}</t:EmailAddress></t:Mailbox>"
        "</t:ToRecipients></t:Message>"
        for i in range(count)
    )
    answer = lab.soap(
        SACHBEARBEITUNG,
        f'<m:CreateItem MessageDisposition="SendOnly"><m:Items>{mails}</m:Items></m:CreateItem>',
    )
    assert answer.status_code == 200 and 'ResponseClass="Error"' not in answer.text


async def invite_the_boss(organizer: Any, subject: str, *, days: int) -> datetime:
    """A meeting `days` ahead sent to the boss (the request reaches her inbox); its start."""
    from med import Attendee, Event

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    await organizer.create(
        await organizer.default_folder(organizer.user, "calendar"),
        Event(
            subject=subject,
            start=start,
            end=start + timedelta(hours=1),
            attendees=(Attendee(Address(CHEF)),),
            is_meeting=True,
        ),
    )
    return start


async def tagged(session: Any, folder: Any, tag: str, **filters: Any) -> list[Message]:
    page = await session.items(folder, ItemQuery(limit=500, search=tag, **filters))
    return [m for m in page.items if isinstance(m, Message) and m.subject.startswith(tag)]


async def test_triage_of_50_mails_is_one_update_and_one_move(
    assistenz, lab: LabServer, ews_requests: Counter[str]
) -> None:
    deliver_mails(lab, 50, "Triage")
    inbox = await assistenz.default_folder(CHEF, "inbox")
    tree = await assistenz.folder_tree(CHEF)
    target = next(f for f in tree.walk() if f.name == "Vorgänge")
    mails = await tagged(assistenz, inbox, "Triage")
    assert len(mails) == 50 and not any(m.is_read for m in mails)

    ews_requests.clear()
    done = await assistenz.update_many(
        [dataclasses.replace(m, is_read=True, flag=Flag(FlagStatus.FLAGGED)) for m in mails],
        ["is_read", "flag"],
    )
    assert ews_requests == Counter({"UpdateItem": 1})
    assert all(isinstance(m, Message) and m.change_key for m in done)
    ews_requests.clear()
    moved = await assistenz.move_many(done, target)  # type: ignore[arg-type]
    assert ews_requests == Counter({"MoveItem": 1})
    assert len(moved) == 50 and all(isinstance(i, str) and i for i in moved)

    assert await tagged(assistenz, inbox, "Triage") == []
    filed = await tagged(assistenz, target, "Triage", flagged_only=True)
    assert len(filed) == 50
    assert all(m.is_read and m.flag.status is FlagStatus.FLAGGED for m in filed)
    assert {m.id for m in filed} == set(moved)


async def test_batches_are_bounded_by_the_batch_size_and_keep_refusals_per_item(
    assistenz, lab: LabServer, ews_requests: Counter[str]
) -> None:
    count = BATCH_SIZE + 20
    deliver_mails(lab, count, "Stapel")
    inbox = await assistenz.default_folder(CHEF, "inbox")
    mails = await tagged(assistenz, inbox, "Stapel")
    assert len(mails) == count
    gone = mails[7]
    await assistenz.delete(gone, hard=True)
    tree = await assistenz.folder_tree(CHEF)
    target = next(f for f in tree.walk() if f.name == "Kreistag")

    ews_requests.clear()
    done = await assistenz.update_many(
        [dataclasses.replace(m, is_read=True) for m in mails], ["is_read"]
    )
    assert ews_requests == Counter({"UpdateItem": math.ceil(count / BATCH_SIZE)})
    assert isinstance(done[7], NotFound)
    assert sum(isinstance(m, Message) for m in done) == count - 1

    ews_requests.clear()
    moved = await assistenz.move_many([m.id for m in mails], target)
    assert ews_requests == Counter({"MoveItem": math.ceil(count / BATCH_SIZE)})
    assert isinstance(moved[7], NotFound)
    filed = await tagged(assistenz, target, "Stapel")
    assert len(filed) == count - 1 and all(m.is_read for m in filed)


async def test_sending_on_behalf_with_an_attachment_is_one_request(
    assistenz, session_for, ews_requests: Counter[str]
) -> None:
    ews_requests.clear()
    await assistenz.send(
        Message(
            subject="Unterlagen Bauausschuss",
            body="Anbei die Vorlage.",
            to=(Address(SACHBEARBEITUNG),),
            new_attachments=(OutgoingAttachment("vorlage.pdf", b"%PDF-1.7 vorlage"),),
        ),
        SendOptions(from_mailbox=CHEF),
    )
    assert ews_requests == Counter({"CreateItem": 1})
    lena = session_for(SACHBEARBEITUNG)
    inbox = await lena.default_folder(SACHBEARBEITUNG, "inbox")
    (got,) = await tagged(lena, inbox, "Unterlagen Bauausschuss")
    full = await lena.get(got.id)
    assert isinstance(full, Message) and full.from_ and full.from_.email == CHEF
    assert [a.name for a in full.attachments] == ["vorlage.pdf"]
    content = await lena.attachment(full.attachments[0])
    assert content.content == b"%PDF-1.7 vorlage"


async def test_accepting_a_listed_request_on_behalf_is_one_request(
    assistenz, session_for, ews_requests: Counter[str]
) -> None:
    lena = session_for(SACHBEARBEITUNG)
    start = await invite_the_boss(lena, "Abstimmung Stellenplan", days=3)
    inbox = await assistenz.default_folder(CHEF, "inbox")
    (request,) = await tagged(assistenz, inbox, "Abstimmung Stellenplan")
    assert request.is_meeting_request
    ews_requests.clear()
    await assistenz.respond(request, ResponseType.ACCEPT, "Frau Dr. Berg nimmt teil.")
    assert ews_requests == Counter({"CreateItem": 1})
    calendar = await assistenz.default_folder(CHEF, "calendar")
    events = await assistenz.calendar_view([calendar], start, start + timedelta(hours=1))
    (accepted,) = [e for e in events if e.subject == "Abstimmung Stellenplan"]
    assert accepted.my_response is ResponseType.ACCEPT
    lena_inbox = await lena.default_folder(SACHBEARBEITUNG, "inbox")
    answers = await tagged(lena, lena_inbox, "Zugesagt")
    answers += await tagged(lena, lena_inbox, "Accepted")
    assert answers, "the organiser got the acceptance"


async def test_reading_an_item_and_the_public_tree_ask_for_nothing_else(
    assistenz, ews_requests: Counter[str]
) -> None:
    assistant = assistenz
    inbox = await assistant.default_folder(CHEF, "inbox")
    page = await assistant.items(inbox, ItemQuery(limit=1))
    ews_requests.clear()
    await assistant.get(page.items[0].id)
    assert ews_requests == Counter({"GetItem": 1})  # not the mailbox root first
    ews_requests.clear()
    tree = await assistant.folder_tree("public")
    assert "ResolveNames" not in ews_requests  # the mailbox list is not needed for it
    assert any(f.name == "Termine Kreistag" for f in tree.walk())


async def test_accepting_a_request_changed_since_it_was_listed_still_works(
    assistenz, session_for, ews_requests: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    start = await invite_the_boss(
        session_for(SACHBEARBEITUNG), "Abstimmung Wirtschaftsplan", days=4
    )
    inbox = await assistenz.default_folder(CHEF, "inbox")
    (listed,) = await tagged(assistenz, inbox, "Abstimmung Wirtschaftsplan")
    await assistenz.mark_read(listed, not listed.is_read)  # its change key moves on
    # The lab does not check the change key of a response's reference; a server that does
    # refuses the stale one as changed (ErrorStaleObject): then med reads the item and answers.
    answered_with: list[str] = []
    answer = EwsBackend._answer

    def stale_refused(backend: EwsBackend, cls: Any, item_id: str, key: str, *rest: Any) -> None:
        answered_with.append(key)
        if key == listed.change_key:
            raise Conflict("The item was changed elsewhere; reload it and try again.")
        answer(backend, cls, item_id, key, *rest)

    monkeypatch.setattr(EwsBackend, "_answer", stale_refused)
    ews_requests.clear()
    await assistenz.respond(listed, ResponseType.ACCEPT)
    assert answered_with[0] == listed.change_key and answered_with[1] != listed.change_key
    assert ews_requests == Counter({"GetItem": 1, "CreateItem": 1})
    calendar = await assistenz.default_folder(CHEF, "calendar")
    events = await assistenz.calendar_view([calendar], start, start + timedelta(hours=1))
    (accepted,) = [e for e in events if e.subject == "Abstimmung Wirtschaftsplan"]
    assert accepted.my_response is ResponseType.ACCEPT
