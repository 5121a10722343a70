"""The admin portal over HTTP: CSRF, session fixation, expiry, headers, languages, audit log."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from messenger_harness import PASSWORD, Harness, Inbox
from sqlalchemy import select

from messenger.audit import log as audit_log
from messenger.store import alarms
from messenger.store.models import Tenant

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def portal_login(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> None:
    form = await http.get("/admin/login")
    answer = await http.post(
        "/admin/login", data={"email": email, "password": password, "csrf": csrf_of(form.text)}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/"


async def test_login_needs_an_admin_and_sets_a_new_session_id(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    await msg.user("anna@kreis.example")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        assert (await http.get("/admin/users")).headers["location"] == "/admin/login"
        form = await http.get("/admin/login")
        user = await http.post(
            "/admin/login",
            data={"email": "anna@kreis.example", "password": PASSWORD, "csrf": csrf_of(form.text)},
        )
        assert user.headers["location"] == "/admin/login" and "mb_portal" not in user.cookies
        # Session fixation: a session id planted before login is never adopted.
        http.cookies.set("mb_portal", "planted-by-an-attacker", domain="127.0.0.1", path="/admin")
        await portal_login(http, "admin@kreis.example")
        fresh = http.cookies.get("mb_portal", path="/admin")
        assert fresh and fresh != "planted-by-an-attacker"
        assert (await http.get("/admin/users")).status_code == 200
        # Logging in again in the same browser ends the first session.
        await portal_login(http, "admin@kreis.example")
        second = http.cookies.get("mb_portal", path="/admin")
        assert second != fresh
    async with httpx.AsyncClient(base_url=msg.url, cookies={"mb_portal": fresh}) as stolen:
        assert (await stolen.get("/admin/users")).status_code == 303


async def test_posts_without_the_session_csrf_token_change_nothing(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        await portal_login(http, "admin@kreis.example")
        token = csrf_of((await http.get("/admin/policies")).text)
        for sent in ({}, {"csrf": "guessed"}):
            bad = await http.post("/admin/policies/retention", data={"retention_days": 7, **sent})
            assert bad.status_code in (400, 403, 422)  # refused before any change
        cross = await http.post(
            "/admin/policies/retention",
            data={"retention_days": 7, "csrf": token},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        async with msg.sessions() as db:
            kreis = await db.scalar(select(Tenant).where(Tenant.name == "Kreis"))
            assert kreis is not None and kreis.retention_days == 30
        good = await http.post(
            "/admin/policies/retention",
            data={"retention_days": 7, "csrf": token},
            headers={"Origin": msg.url},
        )
        assert good.status_code == 303
        # The login form has its own CSRF token (double submit): a forged login fails.
        forged = await http.post(
            "/admin/login",
            data={"email": "admin@kreis.example", "password": PASSWORD, "csrf": "x" * 32},
        )
        assert forged.status_code == 403
    async with msg.sessions() as db:
        kreis = await db.scalar(select(Tenant).where(Tenant.name == "Kreis"))
        assert kreis is not None and kreis.retention_days == 7
        entries = await audit_log.entries(db, kreis.id)
        assert [e.action for e in entries] == ["policy.changed"]
        assert entries[0].details == {"retention_days": 7}
        assert (await audit_log.verify(db)).ok


async def test_sessions_expire_when_idle_and_after_their_lifetime(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        await portal_login(http, "admin@kreis.example")
        msg.clock.shift(minutes=29)
        assert (await http.get("/admin/users")).status_code == 200
        msg.clock.shift(minutes=31)
        idle = await http.get("/admin/users")
        assert idle.status_code == 303 and idle.headers["location"] == "/admin/login"
        await portal_login(http, "admin@kreis.example")
        for _ in range(17):  # in use every 29 minutes, yet over after 8 hours
            msg.clock.shift(minutes=29)
            last = await http.get("/admin/users")
        assert last.status_code == 303


async def test_security_headers_and_languages(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        page = await http.get("/admin/login", headers={"Accept-Language": "de-DE,de;q=0.9"})
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "same-origin"
        assert '<html lang="de">' in page.text and "Anmelden" in page.text
        cookie = page.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        switched = await http.post("/admin/lang", data={"lang": "en", "back": "/admin/login"})
        assert switched.status_code == 303
        english = await http.get("/admin/login", headers={"Accept-Language": "de"})
        assert '<html lang="en">' in english.text and "Log in" in english.text


async def test_branding_and_app_config_reach_the_client_sdk(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    anna = await msg.member("anna@kreis.example")
    logo = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    async with httpx.AsyncClient(base_url=msg.url) as http:
        await portal_login(http, "admin@kreis.example")
        token = csrf_of((await http.get("/admin/branding")).text)
        saved = await http.post(
            "/admin/branding",
            data={"csrf": token, "primary_colour": "#AA0000", "accent_colour": "#ffffff"},
            files={"logo": ("logo.png", logo, "image/png")},
        )
        assert saved.status_code == 303
        for key, value in (("tui.page_size", "50"), ("med.default_profile", "dienst")):
            await http.post("/admin/config", data={"csrf": token, "key": key, "value": value})
        bad = await http.post("/admin/config", data={"csrf": token, "key": "Bad Key", "value": "1"})
        assert bad.status_code == 303
        shown = await http.get("/admin/config")
        assert "is not a dotted key" in shown.text
    config = await anna.tenant_config()
    assert config["app_config"] == {"tui.page_size": 50, "med.default_profile": "dienst"}
    assert config["branding"]["primary_colour"] == "#aa0000"
    assert config["branding"]["logo_type"] == "image/png"


async def test_instance_admin_creates_and_disables_a_tenant(msg: Harness) -> None:
    await msg.tenant("Betrieb", "betrieb.example")
    await msg.user("root@betrieb.example", role="instance_admin")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        await portal_login(http, "root@betrieb.example")
        token = csrf_of((await http.get("/admin/tenants")).text)
        await http.post(
            "/admin/tenants", data={"csrf": token, "name": "Klinik", "domains": "klinik.example"}
        )
        async with msg.sessions() as db:
            klinik = await db.scalar(select(Tenant).where(Tenant.name == "Klinik"))
            assert klinik is not None
        for action, data in (
            ("storage", {"steps": "3"}),
            ("bounds", {"min_days": "7", "max_days": "90"}),
            ("disable", {}),
        ):
            done = await http.post(
                f"/admin/tenants/{klinik.id}/{action}", data={"csrf": token, **data}
            )
            assert done.status_code == 303
        page = await http.get(f"/admin/tenants/{klinik.id}")
        assert "1.5 TB" in page.text  # three 500 GB extensions
        health = await http.get("/admin/health")
        assert health.status_code == 200 and "sqlite" in health.text
    async with msg.sessions() as db:
        klinik = await db.get(Tenant, klinik.id)
        assert klinik is not None and klinik.disabled and klinik.storage_extension_steps == 3
        assert (klinik.retention_min_days, klinik.retention_max_days) == (7, 90)
        actions = [e.action for e in await audit_log.entries(db, klinik.id)]
        assert actions == [
            "tenant.disabled",
            "retention.bounds",
            "storage.extensions",
            "tenant.created",
            "domain.added",
        ]


async def test_a_tenant_admin_cannot_reach_instance_pages(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        await portal_login(http, "admin@kreis.example")
        assert (await http.get("/admin/tenants")).status_code == 403
        assert (await http.get("/admin/health")).status_code == 403
        token = csrf_of((await http.get("/admin/users")).text)
        made = await http.post("/admin/tenants", data={"csrf": token, "name": "Evil"})
        assert made.status_code == 303
    async with msg.sessions() as db:
        assert await db.scalar(select(Tenant).where(Tenant.name == "Evil")) is None


async def test_alarm_lists_through_the_alarm_rules(msg: Harness) -> None:
    kreis = await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    await msg.user("anna@kreis.example")
    await msg.user("bernd@kreis.example")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        await portal_login(http, "admin@kreis.example")
        token = csrf_of((await http.get("/admin/alarms")).text)
        form = {
            "csrf": token,
            "name": "Rufbereitschaft",
            "tier1": "anna@kreis.example",
            "tier2": "bernd@kreis.example",
            "repeat_seconds": "60",
            "escalation_seconds": "300",
            "emergency": "1",
        }
        assert (await http.post("/admin/alarms", data=form)).status_code == 303
        again = await http.post("/admin/alarms", data=form)  # the name is taken
        assert again.status_code == 303
        page = await http.get("/admin/alarms")
        assert "exists already" in page.text
        assert "Tier 1: anna@kreis.example" in page.text
        assert "Tier 2: bernd@kreis.example" in page.text
        unknown = await http.post(
            "/admin/alarms", data={**form, "name": "X", "tier1": "x@y.example"}
        )
        assert unknown.status_code == 303
        assert "no user of this tenant" in (await http.get("/admin/alarms")).text
    async with msg.sessions() as db:
        (row,) = await alarms.lists_of_tenant(db, kreis)
        assert row.emergency and row.name == "Rufbereitschaft"
        assert [(m.tier) for m in await alarms.list_members(db, row.id)] == [1, 2]
        actions = [e.action for e in await audit_log.entries(db, kreis)]
        assert actions == ["alarm_list.created"]


async def test_a_bot_made_in_the_portal_sends_with_its_token(msg: Harness) -> None:
    kreis = await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        await portal_login(http, "admin@kreis.example")
        token = csrf_of((await http.get("/admin/bots")).text)
        made = await http.post(
            "/admin/bots",
            data={"csrf": token, "name": "Rufdienst", "scopes": ["read", "send"]},
        )
        assert made.status_code == 200
        found = re.search(r'<code id="bot-token">([^<]+)</code>', made.text)
        assert found
        users = await http.get("/admin/users")
        assert "Rufdienst" not in users.text  # bots are listed apart from people
        bad = await http.post("/admin/bots", data={"csrf": token, "name": "X", "scopes": ["root"]})
        assert bad.status_code == 303
        assert "unknown scope" in (await http.get("/admin/bots")).text
    async with httpx.AsyncClient(
        base_url=msg.url, headers={"Authorization": f"Bearer {found.group(1)}"}
    ) as bot:
        me = await bot.get("/v1/me")
        assert me.status_code == 200 and me.json()["display_name"] == "Rufdienst"
    async with msg.sessions() as db:
        actions = [e.action for e in await audit_log.entries(db, kreis)]
        assert actions == ["bot.created"]


async def test_invitations_use_the_tenants_template(msg: Harness, inbox: tuple[Inbox, int]) -> None:
    mails, port = inbox
    msg.settings.smtp_url = f"smtp://127.0.0.1:{port}"
    msg.settings.invite_link = "https://chat.kreis.example/admin/accept?token={token}"
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        await portal_login(http, "admin@kreis.example")
        token = csrf_of((await http.get("/admin/templates")).text)
        no_link = await http.post(
            "/admin/templates/invitation",
            data={"csrf": token, "subject": "Hallo", "body": "kein Link"},
        )
        assert no_link.status_code == 303
        assert "must contain {link}" in (await http.get("/admin/templates")).text
        await http.post(
            "/admin/templates/invitation",
            data={
                "csrf": token,
                "subject": "Willkommen bei {tenant}",
                "body": "Hallo {name},\n\nbitte hier klicken: {link}\n{unknown} bleibt.\n",
            },
        )
        await http.post(
            "/admin/users/invite",
            data={"csrf": token, "email": "nora@kreis.example", "display_name": "Nora"},
        )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not mails.messages:
        assert loop.time() < deadline, "no invitation mail"
        await asyncio.sleep(0.05)
    (mail,) = mails.messages
    assert mail["Subject"] == "Willkommen bei Kreis"
    body = mail.get_content()
    assert body.startswith("Hallo Nora,")
    assert "https://chat.kreis.example/admin/accept?token=" in body
    assert "{unknown} bleibt." in body
