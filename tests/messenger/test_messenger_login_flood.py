"""Logins under attack: throttled per account, per address and globally, never 5xx.

The flood test measures the server's resident memory only as a sanity bound: 400 concurrent
argon2 hashes of 16 MiB each would need gigabytes; a bounded hashing queue needs a few.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from messenger_harness import PASSWORD, Clock, Database, Harness, ServerThread, make_settings

from messenger.server.config import Argon2Params, LoginLimits

FLOOD = 400
PROXY = {"trusted_proxies": ["127.0.0.1"]}
REDIS = os.environ.get("MEDBRIDGE_TEST_REDIS")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


async def login(
    http: httpx.AsyncClient, email: str, password: str, via: str = ""
) -> httpx.Response:
    headers = {"X-Forwarded-For": via} if via else {}
    return await http.post(
        "/v1/login", json={"email": email, "password": password}, headers=headers
    )


def retry_after(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "throttled"
    return int(response.headers["Retry-After"])


@pytest.mark.parametrize(
    "server_options", [{"argon2": Argon2Params(time_cost=1, memory_cost=16384, parallelism=1)}]
)
async def test_a_login_flood_gets_no_5xx_bounded_memory_and_others_keep_working(
    msg: Harness,
) -> None:
    await msg.tenant("Kreis", "kreis.example")
    anna = await msg.member("anna@kreis.example")
    for i in range(20):
        await msg.user(f"user{i}@kreis.example")
    baseline = peak = rss_bytes()
    flooding = True

    async def sample() -> None:
        nonlocal peak
        while flooding:
            peak = max(peak, rss_bytes())
            await asyncio.sleep(0.01)

    # No keep-alive: a pooled connection that the server closed after its idle timeout fails
    # the next request on the client side (a race of the client's pool, not a server fault).
    limits = httpx.Limits(max_connections=FLOOD + 10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=msg.url, limits=limits, timeout=120) as http:

        async def authenticated() -> list[int]:
            statuses = []
            headers = {"Authorization": f"Bearer {anna.token}"}
            for _ in range(20):
                statuses.append((await http.get("/v1/me", headers=headers)).status_code)
            return statuses

        sampler = asyncio.create_task(sample())
        attempts = [
            login(http, f"user{i % 20}@kreis.example" if i % 2 else f"nobody{i}@kreis.example", "x")
            for i in range(FLOOD)
        ]
        *answers, served = await asyncio.gather(*attempts, authenticated())
        flooding = False
        await sampler
    statuses = Counter(r.status_code for r in answers)
    assert not [s for s in statuses if s >= 500], statuses
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[429] > 0
    assert all(retry_after(r) >= 1 for r in answers if r.status_code == 429)
    assert served == [200] * 20
    assert peak - baseline < 200 * 1024 * 1024, f"{(peak - baseline) >> 20} MiB"


@pytest.mark.parametrize("server_options", [{**PROXY, "login": LoginLimits(account_failures=3)}])
async def test_failures_on_one_account_from_many_addresses_throttle_that_account(
    msg: Harness,
) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("anna@kreis.example")
    await msg.user("bert@kreis.example")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        for i in range(3):
            wrong = await login(http, "anna@kreis.example", "wrong", via=f"198.51.100.{i}")
            assert wrong.status_code == 401
        refused = await login(http, "anna@kreis.example", PASSWORD, via="198.51.100.77")
        assert retry_after(refused) >= 1
        other = await login(http, "bert@kreis.example", PASSWORD, via="198.51.100.77")
        assert other.status_code == 200


@pytest.mark.parametrize("server_options", [{**PROXY, "login": LoginLimits(address_failures=3)}])
async def test_failures_from_one_address_on_many_accounts_throttle_that_address(
    msg: Harness,
) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("anna@kreis.example")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        for i in range(3):
            wrong = await login(http, f"guess{i}@kreis.example", "x", via="203.0.113.9")
            assert wrong.status_code == 401
        refused = await login(http, "anna@kreis.example", PASSWORD, via="203.0.113.9")
        assert retry_after(refused) >= 1
        elsewhere = await login(http, "anna@kreis.example", PASSWORD, via="203.0.113.10")
        assert elsewhere.status_code == 200


@pytest.mark.parametrize("server_options", [{"login": LoginLimits(address_failures=3)}])
async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        for i in range(3):
            wrong = await login(http, f"guess{i}@kreis.example", "x", via=f"192.0.2.{i}")
            assert wrong.status_code == 401
        spoofed = await login(http, "guess9@kreis.example", "x", via="192.0.2.200")
    assert retry_after(spoofed) >= 1


@pytest.mark.skipif(not REDIS, reason="MEDBRIDGE_TEST_REDIS is not set")
@pytest.mark.redis
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_global_failures_are_counted_across_nodes_through_redis(
    database: Database, tmp_path: Path, clock: Clock
) -> None:
    options: dict[str, Any] = {
        **PROXY,
        "redis_url": REDIS,
        "redis_channel": f"medbridge:test:{os.urandom(6).hex()}",
        "login": LoginLimits(global_failures=4, global_window=3600),
        # the nodes of one instance share the key that seals names at rest
        "metadata_key_file": tmp_path / "metadata-keys.json",
    }
    first = ServerThread(make_settings(database, tmp_path / "a", clock, **options))
    await first.start()
    second = ServerThread(make_settings(database, tmp_path / "b", clock, **options))
    await second.start()
    harness = Harness(database, first.settings, clock, first)
    try:
        await harness.tenant("Kreis", "kreis.example")
        await harness.user("anna@kreis.example")
        async with httpx.AsyncClient(base_url=first.url) as a:
            for i in range(4):
                wrong = await login(a, f"guess{i}@kreis.example", "x", via=f"198.51.100.{i}")
                assert wrong.status_code == 401
        async with httpx.AsyncClient(base_url=second.url) as b:
            refused = await login(b, "anna@kreis.example", PASSWORD, via="203.0.113.50")
        assert retry_after(refused) >= 1
    finally:
        await harness.close()
        await second.stop()
        await first.stop()
