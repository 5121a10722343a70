"""One user's quota set and cleared on the portal's usage page in headless Chromium: the page
shows it, the server enforces it on the user's uploads, the audit log records it, and the page
passes axe-core. Screenshots go to tests/artifacts/portal-quota/ (ignored by git)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from messenger_harness import PASSWORD, Harness
from test_messenger_portal_browser import (
    CHROMIUM,
    axe_violations,
    browser_page,  # noqa: F401 (the fixture, shared with the portal's other browser test)
)

from messenger.client import QuotaExceeded
from messenger.sizes import human_size as human
from messenger.store.models import DEFAULT_USER_QUOTA

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "portal-quota"

pytestmark = [
    pytest.mark.parametrize("database", ["sqlite"], indirect=True),
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} missing (make install adds it)"
    ),
]


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def submit(page: Any, button: str) -> None:
    """Click a form's button and wait for the page the redirect leads to."""
    async with page.expect_navigation():
        await page.get_by_role("button", name=button).click()


async def test_an_admin_sets_and_clears_a_users_quota_on_the_usage_page(
    msg: Harness,
    browser_page: Any,  # noqa: F811
) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("chef@kreis.example", role="tenant_admin")
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert bert.user_id
    cid = (await anna.create_conversation("direct", [bert.user_id]))["conversation_id"]
    page = browser_page

    await page.goto(msg.url + "/admin/login")
    await page.get_by_label("E-mail address").fill("chef@kreis.example")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url("**/admin/users")
    await page.get_by_role("link", name="Usage and quota").click()
    await page.wait_for_url("**/admin/usage")
    row = page.get_by_role("row").filter(has_text="anna@kreis.example")
    assert f"{human(DEFAULT_USER_QUOTA)} (tenant default)" in await row.inner_text()
    assert await axe_violations(page) == []

    # 10 KB for anna: the page says so, and her upload of 20 KB is refused.
    await page.get_by_label("Quota in GB: anna@kreis.example").fill("0.00001")
    await submit(page, "Set quota: anna@kreis.example")
    assert await page.get_by_role("status").first.inner_text() == "Saved."
    assert "10.0 KB (set for this user)" in await row.inner_text()
    await shot(page, "01-quota-set")
    with pytest.raises(QuotaExceeded, match="exceeds your storage quota of 10000 bytes"):
        await anna.upload(cid, b"x" * 20_000)
    assert (await anna.quota())["limit"] == 10_000

    # More than the tenant's storage holds is refused with the reason, nothing changes.
    await page.get_by_label("Quota in GB: anna@kreis.example").fill("50")
    await submit(page, "Set quota: anna@kreis.example")
    assert "does not fit" in await page.get_by_role("alert").inner_text()
    assert "10.0 KB (set for this user)" in await row.inner_text()
    await shot(page, "02-quota-refused")

    # Cleared: the tenant's default again, and the upload goes through.
    await submit(page, "Use default: anna@kreis.example")
    assert f"{human(DEFAULT_USER_QUOTA)} (tenant default)" in await row.inner_text()
    await shot(page, "03-quota-cleared")
    await anna.upload(cid, b"x" * 20_000)

    await page.get_by_role("link", name="Audit").click()
    log = page.get_by_role("row").filter(has_text="user.quota")
    assert await log.count() == 2  # set and cleared; the refused one left no entry
