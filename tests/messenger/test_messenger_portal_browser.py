"""The admin portal driven in headless Chromium (Playwright with Debian's chromium).

invite → the mail arrives at an SMTP server on loopback → accept → login → managed group →
policy → CSV import with one bad row, plus an axe-core accessibility check of every page.
Screenshots go to tests/artifacts/portal/ (ignored by git).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from messenger_harness import PASSWORD, Harness, Inbox
from sqlalchemy import select

from messenger.audit import log as audit_log
from messenger.store.models import Conversation, Tenant, User

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "portal"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.parametrize("database", ["sqlite"], indirect=True),
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} missing (make install adds it)"
    ),
]


@pytest.fixture
async def browser_page(tmp_path: Path) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            locale="en-GB",
        )
        context.set_default_timeout(15_000)
        try:
            yield context.pages[0] if context.pages else await context.new_page()
        finally:
            await context.close()


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def wait_for_mail(inbox: Inbox, count: int) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while len(inbox.messages) < count:
        assert loop.time() < deadline, "the invitation mail did not arrive"
        await asyncio.sleep(0.05)
    return inbox.messages[count - 1]


async def axe_violations(page: Any) -> list[str]:
    """axe-core (shipped in axe-playwright-python) run in the page: WCAG A/AA violations."""
    import axe_playwright_python

    script = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
    await page.evaluate(script)
    result = await page.evaluate(
        "async () => await axe.run(document, {runOnly: "
        "{type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})"
    )
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])})" for v in result["violations"]]


async def test_invite_accept_login_group_policy_and_csv_import(
    msg: Harness, inbox: tuple[Inbox, int], browser_page: Any
) -> None:
    mails, port = inbox
    msg.settings.smtp_url = f"smtp://127.0.0.1:{port}"
    msg.settings.smtp_from = "chat@kreis.example"
    msg.settings.invite_link = msg.url + "/admin/accept?token={token}"
    kreis = await msg.tenant("Kreis", "kreis.example")
    await msg.tenant("Klinik", "klinik.example")
    await msg.user("chef@kreis.example", role="tenant_admin")
    await msg.user("anna@kreis.example")
    await msg.user("bernd@kreis.example")
    page = browser_page
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)

    # The first admin logs in and invites a second tenant admin by e-mail.
    await page.goto(msg.url + "/admin/login")
    await page.get_by_label("E-mail address").fill("chef@kreis.example")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/admin/users")
    await page.get_by_label("E-mail address").fill("neu@kreis.example")
    await page.get_by_label("Display name").fill("Nora Neu")
    await page.get_by_label("Role").select_option("tenant_admin")
    await page.get_by_role("button", name="Invite", exact=True).click()
    await page.wait_for_url("**/admin/users")
    await shot(page, "01-invited")
    await page.get_by_role("button", name="Log out").click()

    mail = await wait_for_mail(mails, 1)
    assert mail["To"] == "neu@kreis.example"
    assert mail["Subject"] == "Your invitation to the Kreis messenger"
    link = re.search(r"(http://\S+/admin/accept\?token=\S+)", mail.get_content())
    assert link, mail.get_content()

    # Accept: the invitee sets a password on the page the link opens, then logs in.
    await page.goto(link.group(1))
    await page.get_by_label("Password", exact=True).fill("nora's new password")
    await page.get_by_label("Password again").fill("nora's new password")
    await shot(page, "02-accept")
    await page.get_by_role("button", name="Set password").click()
    await page.wait_for_selector("#accepted")
    await page.goto(msg.url + "/admin/login")
    await page.get_by_label("E-mail address").fill("neu@kreis.example")
    await page.get_by_label("Password").fill("nora's new password")
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/admin/users")
    await shot(page, "03-users")

    # A managed group with a group admin.
    await page.get_by_role("link", name="Managed groups").click()
    await page.get_by_label("Name").fill("Rettungswache Nord")
    await page.get_by_label("Members").fill("anna@kreis.example\nbernd@kreis.example")
    await page.get_by_label("Group administrators").fill("anna@kreis.example")
    await page.get_by_role("button", name="Create group").click()
    await page.wait_for_url("**/admin/groups")
    await page.get_by_role("link", name="Rettungswache Nord").click()
    await shot(page, "04-group")
    assert await page.get_by_role("button", name="Make member: anna@kreis.example").count() == 1

    # A policy: retention down to 14 days, and consent to the Klinik tenant.
    await page.get_by_role("link", name="Policies").click()
    await page.get_by_label("Retention (days)").fill("14")
    await page.get_by_role("button", name="Save").first.click()
    await page.wait_for_url("**/admin/policies")
    await page.get_by_role("button", name="Allow: Klinik").click()
    await page.wait_for_url("**/admin/policies")
    assert await page.get_by_role("status").first.inner_text() == "Saved."
    await shot(page, "05-policies")

    # CSV import: the preview names the bad row; the good rows are invited.
    csv_file = Path(msg.settings.blob_dir).parent / "users.csv"
    csv_file.write_text(
        "email,display name,role\n"
        "carla@kreis.example,Carla,user\n"
        "dora@klinik.example,Dora,user\n"
        "emil@kreis.example,Emil,tenant_admin\n"
    )
    await page.get_by_role("link", name="Users").click()
    await page.get_by_label("CSV file").set_input_files(str(csv_file))
    await page.get_by_role("button", name="Preview").click()
    bad_row = page.locator("tr.error")
    assert await bad_row.count() == 1
    assert "not a domain of this tenant" in await bad_row.inner_text()
    assert "3" in await bad_row.locator("td").first.inner_text()
    await shot(page, "06-csv-preview")
    await page.get_by_role("button", name=re.compile("Invite the valid rows")).click()
    await page.wait_for_url("**/admin/users")
    assert "2 users invited, 1 rows skipped" in await page.get_by_role("status").inner_text()
    await shot(page, "07-csv-imported")
    await wait_for_mail(mails, 3)
    assert sorted(m["To"] for m in mails.messages[1:]) == [
        "carla@kreis.example",
        "emil@kreis.example",
    ]

    # German, by the switch in the header.
    await page.get_by_role("button", name="Deutsch").click()
    await page.wait_for_url("**/admin/users")
    assert await page.get_by_role("link", name="Verwaltete Gruppen").count() == 1
    await shot(page, "08-deutsch")

    async with msg.sessions() as db:
        tenant = await db.get(Tenant, kreis)
        assert tenant is not None and tenant.retention_days == 14
        group = await db.scalar(select(Conversation).where(Conversation.kind == "managed"))
        assert group is not None and group.name == "Rettungswache Nord"
        emails = set(await db.scalars(select(User.email).where(User.tenant_id == kreis)))
        assert {"carla@kreis.example", "emil@kreis.example"} <= emails
        assert "dora@klinik.example" not in set(await db.scalars(select(User.email)))
        actions = [e.action for e in reversed(await audit_log.entries(db, kreis))]
        assert actions == [
            "user.invited",
            "group.created",
            "policy.changed",
            "partner.allowed",
            "user.invited",
            "user.invited",
        ]


async def test_every_page_passes_axe_core(msg: Harness, browser_page: Any) -> None:
    await msg.tenant("Betrieb", "betrieb.example")
    await msg.user("root@betrieb.example", role="instance_admin")
    await msg.user("anna@betrieb.example")
    page = browser_page
    await page.goto(msg.url + "/admin/login")
    found = {"login": await axe_violations(page)}
    await page.get_by_label("E-mail address").fill("root@betrieb.example")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/admin/tenants")
    for name in (
        "tenants",
        "health",
        "users",
        "groups",
        "alarms",
        "bots",
        "policies",
        "branding",
        "templates",
        "config",
        "usage",
        "audit",
    ):
        await page.goto(f"{msg.url}/admin/{name}")
        found[name] = await axe_violations(page)
    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.className") == "skip"
    assert {k: v for k, v in found.items() if v} == {}
