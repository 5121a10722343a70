"""Automatic replies, inbox rules, mail tips and search across mailboxes, written once and run
over EWS and over Graph against one lab, as the assistant and as a clerk without rights.

Automatic replies and rules need FullAccess on the mailbox (Exchange's rule); the demo's
assistant holds it on the functional mailboxes, and on the boss's mailbox once an
administrator grants it (`full_access_on_chef`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from exlab.core.directory import add_group
from exlab.core.mailbox_rights import add_mailbox_permission
from exlab.demo import DOMAIN
from med import (
    AccessDenied,
    AutoReplies,
    AutoReplyState,
    ExternalAudience,
    Importance,
    InboxRule,
    InvalidInput,
    ItemQuery,
    Mailbox,
    MailboxKind,
    Message,
    SendOptions,
)
from med.model import Address
from tests.e2e.backends.conftest import Backend
from tests.e2e.conftest import ASSISTENZ, CHEF, POSTSTELLE, SACHBEARBEITUNG

PUBLIC = Mailbox("public", "Public Folders", MailboxKind.PUBLIC)


@pytest.fixture
def full_access_on_chef(backend: Backend) -> Backend:
    add_mailbox_permission(backend.lab.lab.store, CHEF, ASSISTENZ, "FullAccess")
    return backend


# --------------------------------------------------------------------------- automatic replies


async def test_assistant_schedules_the_bosss_automatic_replies(
    full_access_on_chef: Backend,
) -> None:
    session = full_access_on_chef.assistenz
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    wanted = AutoReplies(
        state=AutoReplyState.SCHEDULED,
        audience=ExternalAudience.KNOWN,
        start=start,
        end=start + timedelta(days=5),
        internal_reply="Bis Freitag im Urlaub; Vertretung: Tom Weber.",
        external_reply="Ich bin bis Freitag nicht im Haus.",
    )
    back = await session.set_auto_replies(CHEF, wanted)
    assert back == wanted
    assert (await session.auto_replies(CHEF)).active(datetime.now(UTC))
    # Anyone writing to the boss now sees the internal text as a mail tip.
    (tip,) = await full_access_on_chef.chef.mail_tips([CHEF])
    assert tip.out_of_office == wanted.internal_reply
    off = await session.set_auto_replies(CHEF, AutoReplies(state=AutoReplyState.DISABLED))
    assert off.state is AutoReplyState.DISABLED


async def test_assistant_with_full_access_switches_a_functional_mailbox_on(
    backend: Backend,
) -> None:
    session = backend.assistenz
    back = await session.set_auto_replies(
        POSTSTELLE,
        AutoReplies(
            state=AutoReplyState.ENABLED,
            audience=ExternalAudience.ALL,
            internal_reply="Heute geschlossen.",
            external_reply="Closed today.",
        ),
    )
    assert back.state is AutoReplyState.ENABLED and back.external_reply == "Closed today."


async def test_a_schedule_ending_before_it_starts_or_a_missing_text_is_refused(
    backend: Backend,
) -> None:
    now = datetime.now(UTC)
    with pytest.raises(InvalidInput, match="end after"):
        await backend.assistenz.set_auto_replies(
            POSTSTELLE,
            AutoReplies(
                state=AutoReplyState.SCHEDULED,
                start=now,
                end=now - timedelta(hours=1),
                internal_reply="Weg.",
                external_reply="Away.",
            ),
        )
    with pytest.raises(InvalidInput, match="text for inside and one for outside"):
        await backend.assistenz.set_auto_replies(
            POSTSTELLE, AutoReplies(state=AutoReplyState.ENABLED, internal_reply="Weg.")
        )


async def test_delegate_without_full_access_and_clerk_may_not_touch_the_bosss_replies(
    backend: Backend,
) -> None:
    with pytest.raises(AccessDenied):
        await backend.assistenz.auto_replies(CHEF)  # folder grants only: not enough
    clerk = backend.sachbearbeitung
    with pytest.raises(AccessDenied):
        await clerk.auto_replies(CHEF)
    with pytest.raises(AccessDenied):
        await clerk.set_auto_replies(
            CHEF,
            AutoReplies(state=AutoReplyState.ENABLED, internal_reply="x", external_reply="y"),
        )


# --------------------------------------------------------------------------- inbox rules


async def test_assistant_creates_lists_disables_and_deletes_the_common_rules(
    full_access_on_chef: Backend,
) -> None:
    session = full_access_on_chef.assistenz
    tree = await session.folder_tree(CHEF)
    target = next(f for f in tree.walk() if f.name == "Kreistag")
    moved = await session.create_rule(
        CHEF, InboxRule.move_by_sender("kreistag@extern.example", target)
    )
    flagged = await session.create_rule(CHEF, InboxRule.flag_by_keyword("Eilt"))
    forwarded = await session.create_rule(
        CHEF, InboxRule.forward_to_assistant(ASSISTENZ, senders=("buerger@extern.example",))
    )
    rules = {r.id: r for r in await session.inbox_rules(CHEF)}
    assert set(rules) >= {moved.id, flagged.id, forwarded.id}
    assert rules[moved.id].from_addresses == ("kreistag@extern.example",)
    assert rules[moved.id].move_to == target.id
    assert rules[flagged.id].subject_contains == ("Eilt",)
    assert rules[flagged.id].importance is Importance.HIGH
    assert rules[forwarded.id].forward_to == (ASSISTENZ,)

    off = await session.enable_rule(CHEF, flagged.id, False)
    assert not off.enabled
    assert not next(r for r in await session.inbox_rules(CHEF) if r.id == flagged.id).enabled
    await session.delete_rule(CHEF, moved.id)
    assert moved.id not in {r.id for r in await session.inbox_rules(CHEF)}


async def test_the_rules_act_on_mail_that_arrives(full_access_on_chef: Backend) -> None:
    session = full_access_on_chef.assistenz
    await session.create_rule(CHEF, InboxRule.flag_by_keyword("Eilt"))
    await session.create_rule(
        CHEF, InboxRule.forward_to_assistant(ASSISTENZ, senders=(SACHBEARBEITUNG,))
    )
    subject = f"Eilt: Haushalt {full_access_on_chef.name}"
    await full_access_on_chef.sachbearbeitung.send(
        Message(subject=subject, body="Bitte prüfen.", to=(Address(CHEF),)), SendOptions()
    )
    inbox = await session.default_folder(CHEF, "inbox")
    page = await session.items(inbox, ItemQuery(limit=20, search="Haushalt"))
    arrived = next(m for m in page.items if m.subject == subject)
    assert arrived.importance is Importance.HIGH
    assert "Follow up" in arrived.categories
    own = await session.default_folder(ASSISTENZ, "inbox")
    mine = await session.items(own, ItemQuery(limit=20, search="Haushalt"))
    assert any(m.subject == f"FW: {subject}" for m in mine.items)


async def test_clerk_may_neither_read_nor_create_the_bosss_rules(backend: Backend) -> None:
    clerk = backend.sachbearbeitung
    with pytest.raises(AccessDenied):
        await clerk.inbox_rules(CHEF)
    with pytest.raises(AccessDenied):
        await clerk.create_rule(CHEF, InboxRule.flag_by_keyword("Eilt"))


# --------------------------------------------------------------------------- mail tips


async def test_mail_tips_name_absence_outside_addresses_large_and_moderated_lists(
    backend: Backend,
) -> None:
    store = backend.lab.lab.store
    add_group(
        store, f"alle@{DOMAIN}", "Alle", "distribution", [f"p{i}@{DOMAIN}" for i in range(30)]
    )
    add_group(store, f"kreistag@{DOMAIN}", "Kreistag", "distribution", [CHEF], moderated=True)
    chef = backend.chef
    await chef.set_auto_replies(
        CHEF,
        AutoReplies(
            state=AutoReplyState.ENABLED, internal_reply="Im Urlaub.", external_reply="Away."
        ),
    )
    tips = await backend.assistenz.mail_tips(
        [CHEF, "buerger@extern.example", f"alle@{DOMAIN}", f"kreistag@{DOMAIN}"],
        sending_as=CHEF,
    )
    by = {t.address: t for t in tips}
    assert by[CHEF].out_of_office == "Im Urlaub."
    assert not by[CHEF].external
    assert by["buerger@extern.example"].external
    assert by[f"alle@{DOMAIN}"].total_members == 30
    assert by[f"kreistag@{DOMAIN}"].moderated
    words = [w for t in tips for w in t.warnings()]
    assert any("out of office" in w and "Im Urlaub." in w for w in words)
    assert any("outside the organisation" in w for w in words)
    assert any("reaches 30 people" in w for w in words)
    assert any("moderated" in w for w in words)


async def test_clerk_gets_no_mail_tips_for_mail_on_the_bosss_behalf(backend: Backend) -> None:
    with pytest.raises(AccessDenied):
        await backend.sachbearbeitung.mail_tips([ASSISTENZ], sending_as=CHEF)


# --------------------------------------------------------------------------- search


async def test_search_across_the_boss_a_functional_mailbox_and_a_refused_one(
    backend: Backend,
) -> None:
    session = backend.assistenz
    marker = f"Fundsache {backend.name}"
    for box in (CHEF, POSTSTELLE):
        await backend.sachbearbeitung.send(
            Message(subject=f"{marker} {box}", body="x", to=(Address(box),)), SendOptions()
        )
    results = await session.search_mailboxes(marker, [CHEF, POSTSTELLE, SACHBEARBEITUNG])
    by = {g.mailbox: g for g in results.groups}
    assert [g.mailbox for g in results.groups] == [CHEF, POSTSTELLE, SACHBEARBEITUNG]
    assert {m.subject for m in by[CHEF].items} == {f"{marker} {CHEF}"}
    assert {m.subject for m in by[POSTSTELLE].items} == {f"{marker} {POSTSTELLE}"}
    assert by[SACHBEARBEITUNG].error is not None and not by[SACHBEARBEITUNG].items
    assert results.failed == (by[SACHBEARBEITUNG],)


async def test_search_takes_public_folders_over_ews_and_reports_them_over_graph(
    backend: Backend,
) -> None:
    session = backend.assistenz
    targets: list[object] = [CHEF]
    if backend.name == "ews":
        tree = await session.folder_tree(PUBLIC)
        targets.append(next(f for f in tree.walk() if f.name == "Verwaltung"))
        results = await session.search_mailboxes("Rundschreiben", targets)  # type: ignore[arg-type]
        assert results.groups[1].error is None
    else:
        results = await session.search_mailboxes("Rundschreiben", [CHEF])
        assert results.groups[0].error is None


async def test_clerk_searching_only_the_bosss_mailbox_is_refused(backend: Backend) -> None:
    with pytest.raises(AccessDenied, match=CHEF):
        await backend.sachbearbeitung.search_mailboxes("Haushalt", [CHEF])
