"""What an operator configures: /docs and /metrics exposure, partial uploads after a crash,
and bodies too large however they are sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from messenger_harness import Clock, Database, Harness, ServerThread, make_settings

PROXIED = {"X-Forwarded-For": "203.0.113.5"}


@pytest.mark.parametrize("server_options", [{"trusted_proxies": ["127.0.0.1"]}])
async def test_docs_are_off_and_metrics_serve_loopback_only_by_default(msg: Harness) -> None:
    async with httpx.AsyncClient(base_url=msg.url) as http:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await http.get(path)).status_code == 404, path
        assert (await http.get("/metrics")).status_code == 200
        remote = await http.get("/metrics", headers=PROXIED)
    assert remote.status_code == 403 and remote.json()["error"] == "forbidden"


@pytest.mark.parametrize(
    "server_options",
    [{"trusted_proxies": ["127.0.0.1"], "api_docs": True, "metrics_token": "scrape-me"}],
)
async def test_docs_and_remote_metrics_when_configured(msg: Harness) -> None:
    async with httpx.AsyncClient(base_url=msg.url) as http:
        assert (await http.get("/openapi.json")).status_code == 200
        assert (await http.get("/docs")).status_code == 200
        wrong = await http.get("/metrics", headers={**PROXIED, "Authorization": "Bearer guess"})
        right = await http.get("/metrics", headers={**PROXIED, "Authorization": "Bearer scrape-me"})
    assert wrong.status_code == 403
    assert right.status_code == 200 and "messenger_" in right.text


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_partial_uploads_left_by_a_crash_are_removed_at_start(
    database: Database, tmp_path: Path, clock: Clock
) -> None:
    settings = make_settings(database, tmp_path, clock)
    leftovers = [settings.blob_dir / "tmp" / "node" / "tmpabc", settings.blob_dir / "tmp" / "old"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half an upload")
    server = ServerThread(settings)
    await server.start()
    try:
        assert [p for p in leftovers if p.exists()] == []
    finally:
        await server.stop()


async def test_an_oversized_chunked_body_is_refused_with_413(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    cid = (await anna.create_conversation("group", []))["conversation_id"]

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"txn_id": "t", "sender_device_id": "d", "ciphertext": "'
        for _ in range(40):
            yield b"A" * 65536
        yield b'"}'

    headers = {"Authorization": f"Bearer {anna.token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=msg.url, headers=headers) as http:
        answer = await http.post(f"/v1/conversations/{cid}/messages", content=chunks())
    assert answer.status_code == 413 and answer.json()["error"] == "too_large"
    assert [e for e in await anna.history(cid) if e["type"] == "message"] == []
