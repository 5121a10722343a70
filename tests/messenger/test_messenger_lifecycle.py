"""Accounts over their life: disabled users leave at once, users re-enabled and deleted,
tenants disabled, sessions listed, revoked and expiring, passwords changed and reset by mail."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from messenger_harness import PASSWORD, Harness, Inbox, next_of

from messenger.client import EventStream, MessengerClient, NotFound, Unauthenticated
from messenger.client.e2e import DecryptedMessage, E2ESession
from messenger.crypto import DeviceKeys
from messenger.store import repo
from messenger.store.models import User

NEW_PASSWORD = "a much better passphrase"


def admin_http(msg: Harness, client: MessengerClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=msg.url, headers={"Authorization": f"Bearer {client.token}"})


async def closed_soon(stream: EventStream, within: float = 3.0) -> None:
    """The stream ends (as unauthenticated) before `within` seconds pass."""
    with pytest.raises(Unauthenticated):
        await next_of(stream, "never", timeout=within)


async def e2e_member(msg: Harness, email: str) -> tuple[MessengerClient, E2ESession]:
    await msg.user(email)
    client = await msg.login(email, device=False)
    assert client.user_id
    session = E2ESession.for_client(client, DeviceKeys.generate(client.user_id, uuid.uuid4().hex))
    await session.register_device(email.partition("@")[0])
    return client, session


async def read_until(session: E2ESession, stream: EventStream, text: str) -> None:
    while True:
        for result in await session.handle_event(await stream.next(10)):
            if isinstance(result, DecryptedMessage) and result.body == text:
                return


async def test_a_disabled_user_leaves_its_groups_at_once_and_senders_keep_sending(
    msg: Harness,
) -> None:
    await msg.tenant("Klinik", "klinik.example")
    admin = await msg.member("admin@klinik.example", role="tenant_admin")
    alice, alice_e2e = await e2e_member(msg, "alice@klinik.example")
    bob, bob_e2e = await e2e_member(msg, "bob@klinik.example")
    carol, _ = await e2e_member(msg, "carol@klinik.example")
    assert bob.user_id and carol.user_id
    cid = (await alice.create_conversation("group", [bob.user_id, carol.user_id]))[
        "conversation_id"
    ]
    async with bob.events() as bob_stream, carol.events() as carol_stream:
        await next_of(carol_stream, "synced")
        await alice_e2e.send_text(cid, "vorher")
        await read_until(bob_e2e, bob_stream, "vorher")
        async with admin_http(msg, admin) as http:
            answer = await http.post(f"/v1/admin/users/{carol.user_id}/disable")
            assert answer.status_code == 204
        await closed_soon(carol_stream)
        members = {m["user_id"] for m in (await alice.conversation(cid))["members"]}
        assert carol.user_id not in members
        await alice_e2e.send_text(cid, "nachher")  # no "no such user" for carol's devices
        await read_until(bob_e2e, bob_stream, "nachher")
    with pytest.raises(Unauthenticated):
        await carol.me()


async def test_a_user_disabled_in_the_database_loses_its_stream_within_the_check_interval(
    msg: Harness,
) -> None:
    """As the admin CLI does on a single node without Redis: nobody tells the server."""
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    assert msg.settings.stream_recheck_interval >= 30  # the per-stream watch would be late
    async with anna.events() as stream:
        await next_of(stream, "synced")
        async with msg.sessions() as db:
            user = await db.get(User, anna.user_id)
            assert user
            await repo.disable_user(db, user, msg.clock())
            await db.commit()
        await closed_soon(stream)


async def test_users_are_re_enabled_and_deleted(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    admin = await msg.member("admin@kreis.example", role="tenant_admin")
    bert = await msg.member("bert@kreis.example")
    assert bert.user_id
    async with admin_http(msg, admin) as http:
        assert (await http.post(f"/v1/admin/users/{bert.user_id}/disable")).status_code == 204
        with pytest.raises(Unauthenticated):
            await msg.client().login("bert@kreis.example", PASSWORD)
        assert (await http.post(f"/v1/admin/users/{bert.user_id}/enable")).status_code == 204
        again = await msg.login("bert@kreis.example")
        assert again.user_id == bert.user_id
        assert (await http.delete(f"/v1/admin/users/{bert.user_id}")).status_code == 204
        with pytest.raises(Unauthenticated):
            await again.me()
        with pytest.raises(Unauthenticated):
            await msg.client().login("bert@kreis.example", PASSWORD)
        gone = await http.post(f"/v1/admin/users/{bert.user_id}/enable")
        assert gone.status_code == 404
    stored = await msg.get_user(bert.user_id)
    assert "bert" not in stored.email and stored.password_hash is None
    assert await admin.directory("bert") == []
    await msg.user("bert@kreis.example")  # the address can be given to someone new


async def test_tenant_admins_administer_only_their_own_tenants_users(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.tenant("Nord", "nord.example")
    admin = await msg.member("admin@kreis.example", role="tenant_admin")
    nils = await msg.member("nils@nord.example")
    async with admin_http(msg, admin) as http:
        foreign = await http.post(f"/v1/admin/users/{nils.user_id}/disable")
        unknown = await http.post(f"/v1/admin/users/{'0' * 32}/disable")
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json() == unknown.json()
    await nils.me()


async def test_a_disabled_tenant_cannot_log_in_until_enabled_again(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    nord = await msg.tenant("Nord", "nord.example")
    await msg.user("root@kreis.example", role="instance_admin")
    root = await msg.login("root@kreis.example")
    nora = await msg.member("nora@nord.example", role="tenant_admin")
    async with admin_http(msg, nora) as http:
        own = await http.put(f"/v1/admin/tenants/{nord}/state", json={"disabled": True})
        assert own.status_code == 403  # only the instance admin disables tenants
    async with admin_http(msg, root) as http, nora.events() as stream:
        await next_of(stream, "synced")
        off = await http.put(f"/v1/admin/tenants/{nord}/state", json={"disabled": True})
        assert off.status_code == 204
        await closed_soon(stream)
        with pytest.raises(Unauthenticated):
            await nora.me()
        with pytest.raises(Unauthenticated):
            await msg.client().login("nora@nord.example", PASSWORD)
        on = await http.put(f"/v1/admin/tenants/{nord}/state", json={"disabled": False})
        assert on.status_code == 204
    await nora.me()  # nothing was deleted
    await msg.login("nora@nord.example")


async def test_sessions_are_listed_revoked_and_expire(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    phone = await msg.member("anna@kreis.example")
    laptop = await msg.login("anna@kreis.example")
    listed = await phone.sessions()
    assert len(listed) == 2 and all("expires_at" in s for s in listed)
    [other] = [s for s in listed if not s["current"]]
    await phone.revoke_session(other["session_id"])
    with pytest.raises(Unauthenticated):
        await laptop.me()
    assert [s["current"] for s in await phone.sessions()] == [True]
    msg.clock.shift(days=31)
    with pytest.raises(Unauthenticated) as expired:
        await phone.me()
    assert "expired" in str(expired.value)
    await msg.login("anna@kreis.example")


async def test_changing_the_password_ends_the_other_sessions(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    phone = await msg.member("anna@kreis.example")
    laptop = await msg.login("anna@kreis.example")
    async with admin_http(msg, phone) as http:
        wrong = await http.post(
            "/v1/password", json={"current_password": "nope", "new_password": NEW_PASSWORD}
        )
        assert wrong.status_code == 403
        await laptop.me()
        right = await http.post(
            "/v1/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        )
        assert right.status_code == 204
    await phone.me()
    with pytest.raises(Unauthenticated):
        await laptop.me()
    with pytest.raises(Unauthenticated):
        await msg.client().login("anna@kreis.example", PASSWORD)
    await msg.client().login("anna@kreis.example", NEW_PASSWORD)


async def test_a_forgotten_password_is_reset_by_e_mail_link(
    msg: Harness, inbox: tuple[Inbox, int]
) -> None:
    mails, port = inbox
    msg.settings.smtp_url = f"smtp://127.0.0.1:{port}"
    msg.settings.smtp_from = "chat@kreis.example"
    msg.settings.reset_link = "https://chat.kreis.example/reset#{token}"
    await msg.tenant("Kreis", "kreis.example")
    old = await msg.member("anna@kreis.example")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        known = await http.post("/v1/password/reset", json={"email": "anna@kreis.example"})
        unknown = await http.post("/v1/password/reset", json={"email": "nobody@kreis.example"})
        assert known.status_code == unknown.status_code == 202
        assert known.json() == unknown.json()
        deadline = asyncio.get_running_loop().time() + 10
        while not mails.messages:
            assert asyncio.get_running_loop().time() < deadline, "no reset mail"
            await asyncio.sleep(0.02)
        (mail,) = mails.messages
        assert (mail["To"], mail["From"]) == ("anna@kreis.example", "chat@kreis.example")
        found = re.search(r"https://chat\.kreis\.example/reset#(\S+)", mail.get_content())
        assert found
        token = found.group(1)
        body: dict[str, Any] = {"token": token, "new_password": NEW_PASSWORD}
        assert (await http.post("/v1/password/reset/confirm", json=body)).status_code == 204
        again = await http.post("/v1/password/reset/confirm", json=body)
        assert again.status_code == 404  # single use
    with pytest.raises(Unauthenticated):
        await old.me()
    with pytest.raises(Unauthenticated):
        await msg.client().login("anna@kreis.example", PASSWORD)
    await msg.client().login("anna@kreis.example", NEW_PASSWORD)


async def test_an_invitation_token_cannot_reset_a_password(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    async with msg.sessions() as db:
        user, token = await repo.invite_user(db, "neu@kreis.example", msg.clock())
        await db.commit()
    async with httpx.AsyncClient(base_url=msg.url) as http:
        body = {"token": token, "new_password": NEW_PASSWORD}
        assert (await http.post("/v1/password/reset/confirm", json=body)).status_code == 404
        no_mail = await http.post("/v1/password/reset", json={"email": "neu@kreis.example"})
    assert no_mail.status_code == 404  # no SMTP configured: said plainly, for every address
    assert "not enabled" in no_mail.json()["detail"]
    assert user.id


async def test_device_ids_and_foreign_domains_do_not_reveal_other_tenants(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.tenant("Nord", "nord.example")
    anna = await msg.member("anna@kreis.example")
    admin = await msg.member("admin@kreis.example", role="tenant_admin")
    await msg.user("nils@nord.example")
    nils = await msg.login("nils@nord.example", device=False)
    assert anna.device_id
    key = bytes(32)
    mine = await nils.register_device("x", key, key, b"s", device_id=anna.device_id)
    assert mine != anna.device_id  # a fresh id, not "taken"
    async with admin_http(msg, admin) as http:
        foreign = await http.post("/v1/admin/invitations", json={"email": "x@nord.example"})
        unknown = await http.post("/v1/admin/invitations", json={"email": "x@nowhere.example"})
    assert foreign.status_code == unknown.status_code == 403
    assert foreign.json() == unknown.json()


async def test_a_late_joiner_sees_receipts_and_attachments_of_its_window_only(
    msg: Harness,
) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    carl = await msg.member("carl@kreis.example")
    assert bert.user_id and carl.user_id
    cid = (await anna.create_conversation("group", [bert.user_id]))["conversation_id"]
    early_file = await anna.upload(cid, b"early")
    early = await anna.send_raw(cid, b"x", attachment_ids=[early_file])
    await bert.receipt(cid, early.seq)
    await anna.add_members(cid, [carl.user_id])
    late_file = await anna.upload(cid, b"late")
    late = await anna.send_raw(cid, b"y", attachment_ids=[late_file])
    for attempt in (
        carl.receipts(cid, early.seq),
        carl.receipt(cid, early.seq),
        carl.download(early_file),
    ):
        with pytest.raises(NotFound):
            await attempt
    assert await carl.download(late_file) == b"late"
    await carl.receipt(cid, late.seq)
    assert [r["user_id"] for r in await anna.receipts(cid, late.seq)] == [carl.user_id]
    assert [r["user_id"] for r in await anna.receipts(cid, early.seq)] == [bert.user_id]
    assert await bert.download(early_file) == b"early"
