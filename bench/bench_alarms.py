"""Alarm benchmark: an alarm to a 1,250-member list, time until every member device has it.

One device per member, all 1,250 connected; the sender raises an alarm (sealing its key to each
device is part of the time), each device records when the alarm event arrives and when it has
opened it (decrypted, checked, reported delivered). Per alarm the time until the last device has
it; p50/p99 over several alarms, and p50/p99 of the single deliveries.

The server runs as its own process, as in bench_messenger (SQLite by default, PostgreSQL when
MEDBRIDGE_BENCH_PG is set, with Redis when MEDBRIDGE_BENCH_REDIS is too); the 1,250 clients
share one process with the sender, so the numbers include their own decryption and their
`delivered` reports (on SQLite these writes queue behind the server's one connection) on this
machine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from bench.bench_messenger import (
    PASSWORD,
    database,
    drop_schema,
    load_average,
    pct,
    serve,
    wait_ready,
)
from messenger.client import EventStream, MessengerClient, TransportError
from messenger.client.alarms import AlarmReceived, Alarms
from messenger.client.e2e import E2ESession
from messenger.crypto import DeviceKeys
from messenger.store import alarms, repo, schema
from messenger.store.engine import make_engine, sessionmaker

RESULTS = Path(__file__).parent / "results" / "alarms.json"
MEMBERS = 1250
ALARMS = 10
LOGIN_CONCURRENCY = 32
CONNECT_BATCH = 50


async def seed(url: str, schema_name: str | None) -> str:
    """A tenant, a sender and 1,250 members on one alarm list (all tier 1); the list id."""
    engine = make_engine(url, schema_name)
    await schema.upgrade(engine)
    hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    now = dt.datetime.now(dt.UTC)
    async with sessionmaker(engine)() as db:
        tenant = await repo.create_tenant(db, "Alarmbench", now)
        await repo.add_domain(db, tenant, "alarm.example")
        await repo.create_user(db, "sender@alarm.example", now, password_hash=hashed)
        members = []
        for i in range(MEMBERS):
            user = await repo.create_user(db, f"m{i}@alarm.example", now, password_hash=hashed)
            members.append(alarms.MemberSpec(user.id))
        row = await alarms.create_list(
            db,
            None,
            tenant,
            "Alle",
            now,
            repeat_seconds=3600,
            escalation_seconds=3600,
            members=members,
        )
        await db.commit()
    await engine.dispose()
    return row.id


async def device(base: str, email: str) -> Alarms:
    """Log in with a new E2E device; a connection lost on the loaded machine is tried again."""
    for attempt in range(3):
        client = MessengerClient(base, retries=3, timeout=120)
        try:
            await client.login(email, PASSWORD)
            assert client.user_id is not None
            keys = DeviceKeys.generate(client.user_id, uuid.uuid4().hex)
            session = E2ESession.for_client(client, keys)
            await session.register_device("bench")
            return Alarms(client, session)
        except TransportError:
            await client.aclose()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def run(workdir: Path, pg: str | None, redis: str | None) -> dict[str, Any]:
    url, schema_name = await database(workdir, pg)
    list_id = await seed(url, schema_name)
    proc, base = serve(url, schema_name, redis, workdir)
    devices: list[Alarms] = []
    sender: Alarms | None = None
    streams: list[EventStream] = []
    consumers: list[asyncio.Task[None]] = []
    try:
        await wait_ready(base, proc)
        sender = await device(base, "sender@alarm.example")
        gate = asyncio.Semaphore(LOGIN_CONCURRENCY)

        async def member(i: int) -> Alarms:
            async with gate:
                m = await device(base, f"m{i}@alarm.example")
                await m.session.devices_of(sender.session.user_id)  # the sender, known already
                return m

        devices = list(await asyncio.gather(*(member(i) for i in range(MEMBERS))))

        arrived: dict[str, list[float]] = {}
        opened: dict[str, list[float]] = {}
        complete: dict[str, asyncio.Event] = {}
        synced = 0
        all_synced = asyncio.Event()

        async def consume(m: Alarms, stream: EventStream) -> None:
            nonlocal synced
            async for event in stream:
                kind = event["type"]
                if kind == "synced":
                    synced += 1
                    if synced == MEMBERS:
                        all_synced.set()
                elif kind == "alarm":
                    aid = event["alarm_id"]
                    arrived.setdefault(aid, []).append(time.perf_counter())
                    results = await m.handle_event(event)
                    if any(isinstance(r, AlarmReceived) for r in results):
                        opened.setdefault(aid, []).append(time.perf_counter())
                        if len(opened[aid]) == MEMBERS:
                            complete.setdefault(aid, asyncio.Event()).set()

        # Devices come online in batches, as after a shift change, not all in one instant.
        for start in range(0, MEMBERS, CONNECT_BATCH):
            for m in devices[start : start + CONNECT_BATCH]:
                stream = m.client.events()
                streams.append(stream)
                consumers.append(asyncio.create_task(consume(m, stream)))
            while synced < len(streams):
                await asyncio.sleep(0.05)
        await asyncio.wait_for(all_synced.wait(), 600)

        per_alarm_arrived: list[float] = []
        per_alarm_opened: list[float] = []
        single: list[float] = []
        load = load_average()
        for i in range(ALARMS):
            t0 = time.perf_counter()
            raised = await sender.raise_alarm(list_id, f"Bench-Alarm {i}", level="alarm")
            done = complete.setdefault(raised.alarm_id, asyncio.Event())
            await asyncio.wait_for(done.wait(), 600)
            per_alarm_arrived.append(max(arrived[raised.alarm_id]) - t0)
            per_alarm_opened.append(max(opened[raised.alarm_id]) - t0)
            single += [t - t0 for t in arrived[raised.alarm_id]]
            await sender.end(raised.alarm_id)

        def ms(values: list[float]) -> dict[str, float]:
            return {
                "p50_ms": round(statistics.median(values) * 1000, 1),
                "p99_ms": round(pct(values, 99) * 1000, 1),
            }

        return {
            "database": ("postgresql+redis" if redis else "postgresql") if pg else "sqlite",
            "members": MEMBERS,
            "devices": len(devices),
            "alarms": ALARMS,
            "until_every_device_has_it": ms(per_alarm_arrived),
            "until_every_device_opened_it": ms(per_alarm_opened),
            "single_delivery": ms(single),
            "load_1min": load,
            "load_1min_end": load_average(),
        }
    finally:
        for s in streams:
            await s.aclose()
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        for m in [*devices, *([sender] if sender else [])]:
            await m.client.aclose()
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        await drop_schema(pg, schema_name)


def main() -> None:
    """One run: on PostgreSQL (+ Redis) when MEDBRIDGE_BENCH_PG (and _REDIS) are set, else
    SQLite; prints the numbers and writes them to bench/results/alarms.json."""
    pg = os.environ.get("MEDBRIDGE_BENCH_PG")
    redis = os.environ.get("MEDBRIDGE_BENCH_REDIS") if pg else None
    with tempfile.TemporaryDirectory(prefix="medbridge-bench-") as tmp:
        result = asyncio.run(run(Path(tmp), pg, redis))
    print(json.dumps(result, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
