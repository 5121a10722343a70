"""Login, sessions, device keys; health, readiness, metrics; the client in process."""

from __future__ import annotations

import secrets

import httpx
import pytest
from messenger_harness import PASSWORD, Harness, next_of

from messenger.client import Conflict, MessengerClient, NotFound, Throttled, Unauthenticated
from messenger.server.app import create_app


async def test_login_needs_the_right_password_and_an_enabled_account(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("anna@kreis.example")
    client = msg.client()
    with pytest.raises(Unauthenticated):
        await client.login("anna@kreis.example", "wrong")
    with pytest.raises(Unauthenticated):
        await client.login("nobody@kreis.example", PASSWORD)
    session = await client.login("ANNA@kreis.example", PASSWORD)
    assert session["user_id"] == (await client.me())["user_id"]


async def test_revoked_session_stops_working_others_stay(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    laptop = await msg.member("anna@kreis.example")
    phone = await msg.login("anna@kreis.example")
    sessions = await laptop.sessions()
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
    other = next(s for s in sessions if not s["current"])
    await laptop.revoke_session(other["session_id"])
    with pytest.raises(Unauthenticated):
        await phone.me()
    await laptop.me()
    await laptop.logout()
    with pytest.raises(Unauthenticated):
        await laptop.me()


async def test_devices_are_listed_with_their_public_keys(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = msg.client()
    await msg.user("anna@kreis.example")
    await anna.login("anna@kreis.example", PASSWORD)
    signing, exchange = secrets.token_bytes(32), secrets.token_bytes(32)
    device_id = await anna.register_device("laptop", signing, exchange, b"self-signature")
    bert = await msg.member("bert@kreis.example")
    assert anna.user_id
    listed = await bert.devices(anna.user_id)
    assert [(d["device_id"], d["name"]) for d in listed] == [(device_id, "laptop")]
    import base64

    assert base64.b64decode(listed[0]["signing_key"]) == signing
    assert base64.b64decode(listed[0]["exchange_key"]) == exchange
    # Someone else's device id is not "taken" (that would tell it exists): bert gets his own.
    assert await bert.register_device("x", signing, exchange, b"s", device_id=device_id) != (
        device_id
    )
    with pytest.raises(Conflict):  # re-registering one's own device id is a conflict
        await anna.register_device("again", signing, exchange, b"s", device_id=device_id)


async def test_removing_a_lost_device_ends_its_stream_and_tells_partners(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    lost = await msg.login("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert bert.user_id and anna.user_id and lost.device_id
    await anna.create_conversation("direct", [bert.user_id])
    async with lost.events() as lost_stream, bert.events() as bert_stream:
        await next_of(lost_stream, "synced")
        await next_of(bert_stream, "synced")
        await anna.remove_device(lost.device_id)
        with pytest.raises(Unauthenticated):
            await next_of(lost_stream, "never")
        change = await next_of(bert_stream, "device_list")
    assert change["user_id"] == anna.user_id
    assert lost.device_id not in [d["device_id"] for d in await bert.devices(anna.user_id)]
    with pytest.raises(Unauthenticated):
        await lost.me()
    with pytest.raises(NotFound):
        await anna.remove_device(lost.device_id)


async def test_health_readiness_and_metrics(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    cid = (await anna.create_conversation("group", []))["conversation_id"]
    await anna.send_raw(cid, b"secret-plaintext-never-in-metrics")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).status_code == 200
        metrics = (await http.get("/metrics")).text
    assert "messenger_messages_sent_total 1.0" in metrics
    assert 'route="/v1/conversations/{cid}/messages"' in metrics
    assert "secret-plaintext" not in metrics


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_client_runs_against_the_app_in_process(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("anna@kreis.example")
    app = create_app(msg.settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with MessengerClient("http://messenger.test", transport=transport) as client:
            await client.login("anna@kreis.example", PASSWORD)
            await client.register_device("d", b"s" * 32, b"x" * 32, b"sig")
            cid = (await client.create_conversation("group", []))["conversation_id"]
            sent = await client.send_raw(cid, b"in process")
            assert (await client.history(cid))[-1]["seq"] == sent.seq


async def test_server_logs_carry_no_tokens_passwords_or_ciphertext(
    msg: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    import base64
    import logging

    caplog.set_level(logging.DEBUG, logger="messenger")
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    secret = b"plaintext-would-be-here"
    cid = (await anna.create_conversation("group", []))["conversation_id"]
    await anna.send_raw(cid, secret)
    await anna.upload(cid, secret)
    async with anna.events() as stream:
        await next_of(stream, "synced")
    assert "message stored" in caplog.text  # the server does log, just not the content
    assert anna.token and anna.token not in caplog.text
    assert PASSWORD not in caplog.text
    assert base64.b64encode(secret).decode() not in caplog.text
    assert secret.decode() not in caplog.text


async def test_revoked_session_closes_its_open_stream_at_once(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    laptop = await msg.member("anna@kreis.example")
    phone = await msg.login("anna@kreis.example")
    async with phone.events() as stream:
        await next_of(stream, "synced")
        phone_session = next(s for s in await laptop.sessions() if not s["current"])
        await laptop.revoke_session(phone_session["session_id"])
        with pytest.raises(Unauthenticated):
            await next_of(stream, "never", timeout=5)


async def test_repeated_failed_logins_are_throttled_per_account(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("anna@kreis.example")
    client = msg.client()
    for _ in range(msg.settings.login.account_failures):
        with pytest.raises(Unauthenticated):
            await client.login("anna@kreis.example", "guess")
    with pytest.raises(Throttled) as throttled:
        await client.login("anna@kreis.example", PASSWORD)  # even the right password waits
    assert 0 < throttled.value.retry_after <= 900
    # Another account from the same address is not affected.
    await msg.user("bert@kreis.example")
    await msg.client().login("bert@kreis.example", PASSWORD)
