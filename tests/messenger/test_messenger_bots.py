"""The bot API against a real server (uvicorn on loopback): tenant admins manage bots, tokens
and scopes hold, bots are end-to-end participants over the stream and over signed webhooks
(delivered by a receiver on loopback that checks every signature), sends are idempotent and
rated (429 with Retry-After), failed webhooks are retried and end as dead letters that an
admin reads and re-drives.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import nacl.pwhash
import pytest
from messenger_harness import Harness
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bridge.serving import ServerThread
from messenger.client import Forbidden, MessengerClient, NotFound, Throttled, Unauthenticated
from messenger.client.bot import Bot, WebhookRefused, verify_webhook
from messenger.client.e2e import DecryptedMessage, E2ESession
from messenger.crypto import DeviceKeys
from messenger.signing import signature_headers

FAST_KEYS = (nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE, nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE)


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"webhook_interval": 0.05, "webhook_backoff": 0.05, "webhook_attempts": 3}


async def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.05)


class Receiver:
    """A bot's webhook endpoint on loopback: checks each signature; answers `fail` times 500."""

    def __init__(self) -> None:
        self.secret = ""
        self.fail = 0
        self.bodies: list[dict[str, Any]] = []
        self.failed: list[dict[str, Any]] = []  # the batches answered with 500, per attempt
        self.refused = 0
        self.bot: Bot | None = None
        self.bot_loop: asyncio.AbstractEventLoop | None = None
        self.messages: list[DecryptedMessage] = []
        app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])
        self.server = ServerThread(app, name="webhook-receiver")

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        try:
            doc = verify_webhook(self.secret, request.headers, body)
        except WebhookRefused:
            self.refused += 1
            return Response(status_code=401)
        if self.fail > 0:
            self.fail -= 1
            self.failed.append(doc)
            return Response(status_code=500)
        self.bodies.append(doc)
        if self.bot is not None and self.bot_loop is not None:
            # The bot's HTTP pool and store belong to the test's loop, not this server's.
            handled = self.bot.handle_webhook(request.headers, body, self.secret)
            results = await asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(handled, self.bot_loop)
            )
            self.messages += [r for r in results if isinstance(r, DecryptedMessage)]
        return Response(status_code=204)

    def attach(self, bot: Bot) -> None:
        """Hand each signed batch to `bot`, on the loop the bot was started on."""
        self.bot, self.bot_loop = bot, asyncio.get_running_loop()

    @property
    def url(self) -> str:
        return self.server.url("/hook")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await asyncio.to_thread(r.server.start)
    try:
        yield r
    finally:
        await asyncio.to_thread(r.server.stop)


@pytest.fixture
async def clinic(msg: Harness) -> dict[str, Any]:
    """A tenant with an admin and two staff members with E2E devices."""
    await msg.tenant("Kreisklinik", "klinik.example")
    await msg.user("admin@klinik.example", role="tenant_admin")
    admin = await msg.login("admin@klinik.example", device=False)
    people = {}
    for name in ("anna", "ben"):
        await msg.user(f"{name}@klinik.example")
        client = await msg.login(f"{name}@klinik.example", device=False)
        assert client.user_id is not None
        session = E2ESession.for_client(client, DeviceKeys.generate(client.user_id, name + "-1"))
        await session.register_device(name)
        people[name] = session
    return {"admin": admin, **people}


async def create_bot(admin: MessengerClient, **body: Any) -> dict[str, Any]:
    response = await admin._json("POST", "/v1/admin/bots", json_body={"name": "Rota", **body})
    return dict(response)


def bot_client(msg: Harness, token: str, tmp_path: Path, name: str = "bot") -> Bot:
    bot = Bot(msg.url, token, tmp_path / name, "bot passphrase", name=name, key_strength=FAST_KEYS)
    return bot


async def test_tenant_admin_manages_bots_and_scopes_hold(
    msg: Harness, clinic: dict[str, Any]
) -> None:
    admin, anna = clinic["admin"], clinic["anna"]
    created = await create_bot(admin, scopes=["read"])
    assert created["scopes"] == ["read"] and created["token"].startswith("mbb_")
    assert created["webhook_secret"] is None
    with pytest.raises(Forbidden):  # not an admin
        await anna.transport.client._json("POST", "/v1/admin/bots", json_body={"name": "x"})
    with pytest.raises(Exception, match="unknown scope"):
        await create_bot(admin, scopes=["everything"])

    # another tenant's admin sees nothing of it
    await msg.tenant("Rettungsdienst", "rd.example")
    await msg.user("chef@rd.example", role="tenant_admin")
    other = await msg.login("chef@rd.example", device=False)
    assert await other._json("GET", "/v1/admin/bots") == []
    with pytest.raises(NotFound):
        await other._json("GET", f"/v1/admin/bots/{created['bot_id']}")

    bot = MessengerClient(msg.url, retries=1)
    msg.clients.append(bot)
    bot.token = created["token"]
    me = await bot.me()
    assert me["user_id"] == created["bot_id"] and me["display_name"] == "Rota"
    with pytest.raises(Forbidden):  # bots do not administer or create conversations
        await bot._json("GET", "/v1/admin/tenant")
    with pytest.raises(Forbidden):
        await bot.create_conversation("direct", [anna.user_id])
    conv = await anna.transport.client.create_conversation(
        "group", [created["bot_id"]], name="Dienst"
    )
    cid = conv["conversation_id"]
    assert [c["conversation_id"] for c in await bot.conversations()] == [cid]
    await bot.register_device("bot", b"\x01" * 32, b"\x02" * 32, b"\x03" * 64)
    with pytest.raises(Forbidden, match="'send' scope"):
        await bot.send_raw(cid, b"ciphertext")

    # more scopes; a rotated token ends the old one
    await admin._json(
        "PATCH", f"/v1/admin/bots/{created['bot_id']}", json_body={"scopes": ["read", "send"]}
    )
    assert (await bot.send_raw(cid, b"ciphertext")).seq > 0
    rotated = await admin._json("POST", f"/v1/admin/bots/{created['bot_id']}/token")
    with pytest.raises(Unauthenticated):
        await bot.me()
    bot.token = rotated["token"]
    assert (await bot.send_raw(cid, b"again")).seq > 0  # same device, new token

    # a bot without the read scope gets no stream
    await admin._json("PATCH", f"/v1/admin/bots/{created['bot_id']}", json_body={"scopes": []})
    stream = bot.events(reconnect=False)
    with pytest.raises(Unauthenticated, match="read"):
        await stream.next()
    await admin._request("DELETE", f"/v1/admin/bots/{created['bot_id']}")
    with pytest.raises(Unauthenticated):
        await bot.me()
    assert await admin._json("GET", "/v1/admin/bots") == []


async def test_bot_reads_and_answers_end_to_end_over_the_stream(
    msg: Harness, clinic: dict[str, Any], tmp_path: Path
) -> None:
    admin, anna = clinic["admin"], clinic["anna"]
    created = await create_bot(admin, scopes=["read", "send"])
    bot = bot_client(msg, created["token"], tmp_path)
    await bot.start()
    cid = (
        await anna.transport.client.create_conversation("group", [created["bot_id"]], name="Dienst")
    )["conversation_id"]

    async def echo(b: Bot, m: DecryptedMessage) -> None:
        await b.e2e.send_text(m.conversation_id, f"Echo: {m.body}", reply_to=m.seq)

    runner = asyncio.create_task(bot.run(echo))
    try:
        asked = await anna.send_text(cid, "Hallo Bot")
        stream = anna.transport.client.events()
        answers: list[DecryptedMessage] = []
        while not answers:
            for r in await anna.handle_event(await stream.next(20)):
                if isinstance(r, DecryptedMessage) and r.sender_user_id == created["bot_id"]:
                    answers.append(r)
        await stream.aclose()
        assert (answers[0].body, answers[0].reply_to) == ("Echo: Hallo Bot", asked)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await bot.aclose()


async def test_bot_sends_are_idempotent_and_rated(msg: Harness, clinic: dict[str, Any]) -> None:
    admin, anna = clinic["admin"], clinic["anna"]
    created = await create_bot(admin, scopes=["read", "send"], rate_per_minute=3)
    bot = MessengerClient(msg.url, retries=1)
    msg.clients.append(bot)
    bot.token = created["token"]
    await bot.register_device("bot", b"\x01" * 32, b"\x02" * 32, b"\x03" * 64)
    cid = (await anna.transport.client.create_conversation("group", [created["bot_id"]]))[
        "conversation_id"
    ]
    first = await bot.send_raw(cid, b"eins", txn_id="rota-1")
    again = await bot.send_raw(cid, b"eins", txn_id="rota-1")
    assert (again.seq, again.duplicate, first.duplicate) == (first.seq, True, False)
    await bot.send_raw(cid, b"zwei")
    with pytest.raises(Throttled) as refused:
        await bot.send_raw(cid, b"drei")
    assert 1 <= refused.value.retry_after <= 60
    async with httpx.AsyncClient() as http:
        raw = await http.post(
            f"{msg.url}/v1/conversations/{cid}/messages",
            headers={"Authorization": f"Bearer {created['token']}"},
            json={"txn_id": "x", "sender_device_id": bot.device_id, "ciphertext": "AA=="},
        )
    assert raw.status_code == 429 and 1 <= int(raw.headers["retry-after"]) <= 60
    # the rate is per bot: people are not limited by it
    for n in range(5):
        await anna.send_text(cid, f"Nachricht {n}")


async def test_webhook_bot_gets_signed_batches_and_decrypts_them(
    msg: Harness, clinic: dict[str, Any], receiver: Receiver, tmp_path: Path
) -> None:
    admin, anna = clinic["admin"], clinic["anna"]
    created = await create_bot(admin, scopes=["read", "send"], webhook_url=receiver.url)
    receiver.secret = created["webhook_secret"]
    bot = bot_client(msg, created["token"], tmp_path)
    await bot.start()
    receiver.attach(bot)
    receiver.fail = 2  # the first two attempts fail: the batch comes again
    cid = (
        await anna.transport.client.create_conversation("group", [created["bot_id"]], name="Dienst")
    )["conversation_id"]
    await anna.send_text(cid, "Wer hat Dienst?")
    await eventually(lambda: receiver.messages)
    assert [m.body for m in receiver.messages] == ["Wer hat Dienst?"]
    kinds = [e["type"] for body in receiver.bodies for e in body["events"]]
    assert kinds.index("to_device") < kinds.index("message")  # the key comes first
    assert receiver.refused == 0

    # the receiver refuses what is not signed with the secret, or changed, or old
    body = json.dumps({"delivery_id": "x", "events": []}).encode()
    async with httpx.AsyncClient() as http:
        for secret, sent, at in [
            ("wrong secret", body, time.time()),
            (receiver.secret, body + b" ", time.time()),
            (receiver.secret, body, time.time() - 3600),
        ]:
            headers = signature_headers(receiver.secret, "x", body, at)
            if secret != receiver.secret:
                headers = signature_headers(secret, "x", body, at)
            answer = await http.post(receiver.url, content=sent, headers=headers)
            assert answer.status_code == 401
    assert receiver.refused == 3
    await bot.aclose()


async def test_failing_webhook_ends_as_dead_letter_and_is_redriven(
    msg: Harness, clinic: dict[str, Any], receiver: Receiver
) -> None:
    admin, anna = clinic["admin"], clinic["anna"]
    created = await create_bot(admin, scopes=["read"], webhook_url=receiver.url)
    bot_id = created["bot_id"]
    receiver.secret = created["webhook_secret"]
    receiver.fail = 10**6
    cid = (await anna.transport.client.create_conversation("group", [bot_id]))["conversation_id"]
    await anna.send_text(cid, "niemand hört zu")

    # The conversation's events and anna's key may come in batches of their own before the
    # message's: each is tried 3 times in order, so all are dead once the message's batch is.
    def message_tries() -> int:
        return sum(any(e["type"] == "message" for e in doc["events"]) for doc in receiver.failed)

    async def dead() -> list[dict[str, Any]]:
        return list(await admin._json("GET", f"/v1/admin/bots/{bot_id}/dead-letters"))

    await eventually(lambda: message_tries() >= 3)
    tried = list(dict.fromkeys(doc["delivery_id"] for doc in receiver.failed))

    async def all_dead() -> list[dict[str, Any]] | None:
        letters = await dead()
        return letters if len(letters) == len(tried) else None

    letters = await eventually(all_dead)
    assert [letter["delivery_id"] for letter in letters] == tried
    assert all(letter["attempts"] == 3 for letter in letters)
    assert all(letter["last_error"] == "HTTP 500" for letter in letters)
    assert len(receiver.failed) == 3 * len(tried) and receiver.bodies == []

    receiver.fail = 0
    redriven = await admin._json(
        "POST", f"/v1/admin/bots/{bot_id}/dead-letters/redrive", json_body={}
    )
    assert redriven == {"redriven": len(tried)}
    await eventually(lambda: len(receiver.bodies) == len(tried))
    assert [body["delivery_id"] for body in receiver.bodies] == tried  # in their first order
    assert await dead() == []


def test_webhook_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    import hashlib
    import hmac

    body = b'{"events":[]}'
    headers = signature_headers("geheim", "d1", body, 1_700_000_000)
    expected = hmac.new(b"geheim", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert headers["Webhook-Signature"] == "v1=" + expected
    assert headers["Webhook-Timestamp"] == "1700000000"
    with pytest.raises(WebhookRefused):
        verify_webhook("geheim", headers, body)  # too old against the clock now
