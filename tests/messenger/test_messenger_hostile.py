"""Hostile input gets a clear 4xx and stores nothing."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
import websockets
from messenger_harness import Harness

from messenger.client import MessengerClient


@pytest.fixture
def server_options() -> dict[str, Any]:
    return {"max_upload_bytes": 4096, "max_ciphertext_bytes": 1024}


async def setup(msg: Harness) -> tuple[MessengerClient, str, httpx.AsyncClient]:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    cid = (await anna.create_conversation("group", []))["conversation_id"]
    raw = httpx.AsyncClient(base_url=msg.url, headers={"Authorization": f"Bearer {anna.token}"})
    return anna, cid, raw


async def stored_messages(client: MessengerClient, cid: str) -> int:
    return [e["type"] for e in await client.history(cid)].count("message")


async def test_bad_bodies_are_refused_with_clear_errors(msg: Harness) -> None:
    anna, cid, raw = await setup(msg)
    path = f"/v1/conversations/{cid}/messages"
    good: dict[str, Any] = {"txn_id": "t", "sender_device_id": anna.device_id, "ciphertext": "AA=="}
    cases: list[tuple[Any, int, str]] = [
        (b"{not json", 400, "bad_request"),
        (json.dumps({**good, "ciphertext": "not base64!"}), 422, "invalid"),
        (json.dumps({**good, "ciphertext": 5}), 422, "invalid"),
        (json.dumps({**good, "surprise": 1}), 422, "invalid"),
        (json.dumps({**good, "txn_id": "x" * 500}), 422, "invalid"),
        (json.dumps({**good, "sender_device_id": "someone-elses"}), 404, "not_found"),
        (
            json.dumps({**good, "ciphertext": base64.b64encode(b"x" * 2000).decode()}),
            422,
            "invalid",
        ),
        (b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}', 413, "too_large"),
        (json.dumps([1, 2, 3]), 422, "invalid"),
    ]
    async with raw:
        for body, status, code in cases:
            response = await raw.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )
            assert (response.status_code, response.json()["error"]) == (status, code), body[:80]
            assert response.json()["detail"]
    assert await stored_messages(anna, cid) == 0


async def test_oversized_upload_is_refused_and_leaves_no_blob(msg: Harness) -> None:
    anna, cid, raw = await setup(msg)
    async with raw:
        response = await raw.post(f"/v1/conversations/{cid}/attachments", content=b"x" * 5000)

        async def chunks() -> Any:
            for _ in range(10):
                yield b"y" * 1000

        streamed = await raw.post(f"/v1/conversations/{cid}/attachments", content=chunks())
    assert response.status_code == 413 and streamed.status_code == 413
    assert (await anna.quota())["used"] == 0
    blobs = msg.settings.blob_dir
    assert [p for p in blobs.rglob("*") if p.is_file()] == []


async def test_requests_without_valid_token_are_401(msg: Harness) -> None:
    await setup(msg)
    async with httpx.AsyncClient(base_url=msg.url) as raw:
        assert (await raw.get("/v1/conversations")).status_code == 401
        bad = await raw.get("/v1/conversations", headers={"Authorization": "Bearer nope"})
        assert (bad.status_code, bad.json()["error"]) == (401, "unauthenticated")


async def test_stream_refuses_missing_hello_and_bad_tokens(msg: Harness) -> None:
    await setup(msg)
    url = msg.url.replace("http", "ws") + "/v1/stream"
    for frame, code in (("garbage", 4400), (json.dumps({"type": "hello", "token": "x"}), 4401)):
        async with websockets.connect(url) as ws:
            await ws.send(frame)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == code


async def test_stream_needs_a_session_with_a_device(msg: Harness) -> None:
    await setup(msg)
    await msg.user("nodev@kreis.example")
    client = await msg.login("nodev@kreis.example", device=False)
    url = msg.url.replace("http", "ws") + "/v1/stream"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": client.token}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_junk_frames_on_an_open_stream_are_ignored(msg: Harness) -> None:
    anna, cid, raw = await setup(msg)
    await raw.aclose()
    url = msg.url.replace("http", "ws") + "/v1/stream"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": anna.token}))
        while json.loads(await ws.recv())["type"] != "synced":
            pass
        await ws.send(b"\x00\xff binary")
        await ws.send("{not json")
        await ws.send(json.dumps({"type": "ack", "to_device_seq": "x"}))
        await anna.send_raw(cid, b"still delivered")
        event = json.loads(await ws.recv())
    assert event["type"] == "message" and event["seq"] == 2
