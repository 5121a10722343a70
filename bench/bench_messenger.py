"""Messenger benchmark: send→deliver latency with 100 connected clients in one group,
throughput, and the server cost of a send to a 1,250-member group against a 2-member one.

The server runs as its own process (`medbridge messenger serve`, SQLite by default,
PostgreSQL when MEDBRIDGE_BENCH_PG is set); clients talk to it over loopback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import secrets
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from argon2 import PasswordHasher

from messenger.client import MessengerClient, decode_ciphertext
from messenger.store import repo, schema
from messenger.store.engine import make_engine, sessionmaker
from messenger.store.models import Tenant

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results" / "messenger.json"
PASSWORD = "bench password"
RECEIVERS = 100
LATENCY_MESSAGES = 200
THROUGHPUT_MESSAGES = 1000
THROUGHPUT_CONCURRENCY = 8
COST_SENDS = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def seed(url: str, schema_name: str | None) -> dict[str, Any]:
    engine = make_engine(url, schema_name)
    await schema.upgrade(engine)
    hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    now = dt.datetime.now(dt.UTC)
    async with sessionmaker(engine)() as db:
        tenant = await repo.create_tenant(db, "Bench", now)
        await repo.add_domain(db, tenant, "bench.example")
        users = []
        for i in range(1250):
            user = await repo.create_user(
                db, f"u{i}@bench.example", now, password_hash=hashed if i <= RECEIVERS else None
            )
            users.append(user.id)
        await db.commit()
    await engine.dispose()
    return {"tenant_id": tenant.id, "users": users}


async def managed_group(
    url: str, schema_name: str | None, tenant_id: str, members: list[str]
) -> str:
    engine = make_engine(url, schema_name)
    async with sessionmaker(engine)() as db:
        tenant = await db.get(Tenant, tenant_id)
        assert tenant is not None
        conv, _ = await repo.create_conversation(
            db, None, tenant, "managed", f"g{len(members)}", members, dt.datetime.now(dt.UTC)
        )
        await db.commit()
    await engine.dispose()
    return conv.id


async def client_for(url: str, i: int) -> MessengerClient:
    client = MessengerClient(url, retries=1)
    await client.login(f"u{i}@bench.example", PASSWORD)
    await client.register_device("bench", secrets.token_bytes(32), secrets.token_bytes(32), b"sig")
    return client


async def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient(base_url=url) as http:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError("the messenger server exited")
            try:
                if (await http.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the messenger server did not become ready")


async def database(workdir: Path) -> tuple[str, str | None, bool]:
    """The bench database: (url, schema); PostgreSQL (a fresh schema) when MEDBRIDGE_BENCH_PG
    is set, else a SQLite file. The last item says whether it is PostgreSQL."""
    pg = os.environ.get("MEDBRIDGE_BENCH_PG")
    schema_name = f"bench_{secrets.token_hex(4)}" if pg else None
    url = pg or f"sqlite:///{workdir / 'bench.db'}"
    if pg:
        import asyncpg

        conn = await asyncpg.connect(pg)
        await conn.execute(f"CREATE SCHEMA {schema_name}")
        await conn.close()
    return url, schema_name, bool(pg)


async def drop_schema(schema_name: str | None) -> None:
    pg = os.environ.get("MEDBRIDGE_BENCH_PG")
    if pg and schema_name:
        import asyncpg

        conn = await asyncpg.connect(pg)
        await conn.execute(f"DROP SCHEMA {schema_name} CASCADE")
        await conn.close()


def serve(url: str, schema_name: str | None, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `medbridge messenger serve` on a free loopback port: (process, base URL)."""
    port = free_port()
    cmd = [sys.executable, "-m", "bridge.cli", "messenger", "--db", url]
    if schema_name:
        cmd += ["--schema", schema_name]
    cmd += [
        "serve",
        "--port",
        str(port),
        "--blob-dir",
        str(workdir / "blobs"),
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "XDG_DATA_HOME": str(workdir / "data")}
    return subprocess.Popen(cmd, cwd=ROOT, env=env), f"http://127.0.0.1:{port}"


async def run(workdir: Path) -> dict[str, Any]:
    url, schema_name, pg = await database(workdir)
    seeded = await seed(url, schema_name)
    users: list[str] = seeded["users"]
    proc, base = serve(url, schema_name, workdir)
    clients: list[MessengerClient] = []
    try:
        await wait_ready(base, proc)
        big = await managed_group(url, schema_name, seeded["tenant_id"], users)
        small = await managed_group(url, schema_name, seeded["tenant_id"], users[:2])
        group = await managed_group(url, schema_name, seeded["tenant_id"], users[: RECEIVERS + 1])
        sender = await client_for(base, 0)
        receivers = list(
            await asyncio.gather(*(client_for(base, i) for i in range(1, RECEIVERS + 1)))
        )
        clients = [sender, *receivers]

        # -- latency with 100 connected clients -------------------------------------------
        latencies: list[float] = []
        delivered = 0
        expected = 0
        done = asyncio.Event()
        streams = [c.events() for c in receivers]
        synced = 0
        all_synced = asyncio.Event()

        async def consume(stream: Any) -> None:
            nonlocal delivered, synced
            async for event in stream:
                if event["type"] == "synced":
                    synced += 1
                    if synced == len(streams):
                        all_synced.set()
                elif event["type"] == "message" and event["conversation_id"] == group:
                    sent_at = struct.unpack("d", decode_ciphertext(event)[:8])[0]
                    latencies.append(time.perf_counter() - sent_at)
                    delivered += 1
                    if delivered >= expected:
                        done.set()

        consumers = [asyncio.create_task(consume(s)) for s in streams]
        await asyncio.wait_for(all_synced.wait(), 120)
        expected = LATENCY_MESSAGES * RECEIVERS
        for _ in range(LATENCY_MESSAGES):
            await sender.send_raw(group, struct.pack("d", time.perf_counter()) + b"\x00" * 120)
            await asyncio.sleep(0.01)
        await asyncio.wait_for(done.wait(), 300)
        latency = {
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(pct(latencies, 99) * 1000, 2),
            "deliveries": len(latencies),
        }

        # -- throughput: concurrent senders into the same group ---------------------------
        latencies.clear()
        done.clear()
        delivered = 0
        expected = THROUGHPUT_MESSAGES * RECEIVERS
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(THROUGHPUT_MESSAGES):
            queue.put_nowait(i)

        async def pump() -> None:
            while not queue.empty():
                queue.get_nowait()
                await sender.send_raw(group, struct.pack("d", time.perf_counter()) + b"\x00" * 120)

        started = time.perf_counter()
        await asyncio.gather(*(pump() for _ in range(THROUGHPUT_CONCURRENCY)))
        stored = time.perf_counter() - started
        await asyncio.wait_for(done.wait(), 600)
        drained = time.perf_counter() - started
        throughput = {
            "messages_per_s": round(THROUGHPUT_MESSAGES / stored, 1),
            "deliveries_per_s": round(THROUGHPUT_MESSAGES * RECEIVERS / drained, 1),
            "senders": THROUGHPUT_CONCURRENCY,
            "receivers": RECEIVERS,
        }
        for s in streams:
            await s.aclose()
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)

        # -- server cost of one send: 1,250 members vs 2 ----------------------------------
        # Interleaved, so warm-up and load from other processes hit both sizes alike.
        times: dict[str, list[float]] = {"members_2": [], "members_1250": []}
        for _ in range(COST_SENDS):
            for name, cid in (("members_2", small), ("members_1250", big)):
                t0 = time.perf_counter()
                await sender.send_raw(cid, b"\x00" * 128)
                times[name].append(time.perf_counter() - t0)
        cost: dict[str, Any] = {
            name: {
                "p50_ms": round(statistics.median(t) * 1000, 2),
                "p99_ms": round(pct(t, 99) * 1000, 2),
            }
            for name, t in times.items()
        }
        cost["ratio_p50"] = round(cost["members_1250"]["p50_ms"] / cost["members_2"]["p50_ms"], 2)
        return {
            "database": "postgresql" if pg else "sqlite",
            "send_to_deliver_latency": latency,
            "throughput": throughput,
            "send_cost": cost,
        }
    finally:
        for c in clients:
            await c.aclose()
        proc.terminate()
        proc.wait(timeout=20)
        await drop_schema(schema_name)


def run_and_save(run: Callable[[Path], Awaitable[dict[str, Any]]], results: Path) -> None:
    """Run a bench in a scratch directory, print its numbers and write them as JSON."""
    with tempfile.TemporaryDirectory(prefix="medbridge-bench-") as tmp:
        result = asyncio.run(run(Path(tmp)))
    print(json.dumps(result, indent=2))
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")


def main() -> None:
    run_and_save(run, RESULTS)


if __name__ == "__main__":
    main()
