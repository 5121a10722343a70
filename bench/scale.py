"""Scale-out test (`make scale-test`): two stateless messenger nodes behind HAProxy on one
PostgreSQL and one Redis (private instances on free ports), every client through the load
balancer, and a kill -9 of one node in the middle of a run.

Phase "steady": senders flat out for a while, both nodes up. Phase "kill -9": the same load,
one node killed a third of the way in (it stays down); its clients' requests and streams move
to the other node through HAProxy (no stickiness: streams resume from their cursors on any
node). Then node2 is started again and two notification-bridge workers share two watched
inboxes by lease, posting through HAProxy; one worker is killed with SIGKILL a third of the way in
(`bench/scale_bridge.py`; SCALE_BRIDGE=0 leaves them out). During the steady phase a
streaming replica's lag behind the primary is timed (SCALE_REPLICA=0: not), and at the end a
synthetic events table, flat and partitioned by tenant, is timed (`bench/partitioning.py`;
SCALE_PARTITIONING=0: not). Prints a table (throughput,
losses, duplicates, recovery), writes bench/results/scale.json and exits 1 on any loss or
duplicate.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.chaos import Columns, format_table
from bench.cluster import HAProxy, MessengerNode, Postgres, Redis, Replica
from bench.ledger import Ledger
from bench.load import Receivers, login, seed, send_for
from bench.partitioning import simulate as partitioning_model
from bench.scale_bridge import BridgeFleet
from bridge.demo import seed_demo_messenger
from messenger.client import MessengerClient
from messenger.server.config import Argon2Params

RESULTS = Path(__file__).parent / "results" / "scale.json"
SENDERS = 4
RECEIVERS = 20
STEADY_SECONDS = 10.0
KILL_SECONDS = 15.0
#: Two bridge workers beside the load (SCALE_BRIDGE=0 leaves them out).
BRIDGE = os.environ.get("SCALE_BRIDGE", "1") != "0"
#: A streaming replica of the database whose lag is measured during the steady phase.
REPLICA = os.environ.get("SCALE_REPLICA", "1") != "0"
#: The flat and the tenant-partitioned events model at the end (bench/partitioning.py).
PARTITIONING = os.environ.get("SCALE_PARTITIONING", "1") != "0"


async def replica_lag(primary: str, replica: str, stop: asyncio.Event) -> dict[str, Any]:
    """Every 100 ms: the primary's WAL position, then how long until the replica has replayed
    it. That is the wait a history read on the replica would need to see a just-sent message."""
    import asyncpg

    lags: list[float] = []
    p, r = await asyncpg.connect(primary), await asyncpg.connect(replica)
    try:
        while not stop.is_set():
            lsn = await p.fetchval("SELECT pg_current_wal_lsn()")
            t0 = time.monotonic()
            while not await r.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", lsn):
                await asyncio.sleep(0.001)
            lags.append(time.monotonic() - t0)
            await asyncio.sleep(0.1)
    finally:
        await p.close()
        await r.close()
    lags.sort()
    return {
        "samples": len(lags),
        "lag_p50_ms": round(statistics.median(lags) * 1000, 1) if lags else None,
        "lag_p99_ms": round(lags[min(len(lags) - 1, round(0.99 * (len(lags) - 1)))] * 1000, 1)
        if lags
        else None,
        "lag_max_ms": round(lags[-1] * 1000, 1) if lags else None,
    }


async def phase(
    name: str,
    senders: list[MessengerClient],
    receivers: dict[str, MessengerClient],
    seconds: float,
    kill: MessengerNode | None,
) -> dict[str, Any]:
    member_ids = [c.user_id for c in receivers.values() if c.user_id]
    cid = (await senders[0].create_conversation("group", member_ids, name=name))["conversation_id"]
    for sender in senders[1:]:
        assert sender.user_id
        await senders[0].add_members(cid, [sender.user_id])
    ledger = Ledger(list(receivers))
    streams = Receivers(ledger, cid, receivers)
    await streams.start()
    killed_at: list[float] = []

    async def killer() -> None:
        if kill is not None:
            await asyncio.sleep(seconds / 3)
            killed_at.append(time.monotonic())
            kill.kill()

    started = time.monotonic()
    task = asyncio.create_task(killer())
    elapsed = await send_for(senders, cid, ledger, seconds=seconds, rate_per_sender=None)
    await task
    await streams.drain(120)
    drained = max(
        (t[0] for arrivals in ledger.arrivals.values() for t in arrivals.values()),
        default=started,
    )
    await streams.close()
    latencies = ledger.latencies()
    recovery = ledger.recovery(killed_at[0]) if killed_at else None
    return {
        "phase": name,
        "senders": len(senders),
        "receivers": len(receivers),
        "seconds": round(elapsed, 2),
        "accepted": len(ledger.sent),
        "messages_per_s": round(len(ledger.sent) / elapsed, 1),
        "deliveries_per_s": round(
            sum(len(a) for a in ledger.arrivals.values()) / max(drained - started, 1e-9), 1
        ),
        "losses": ledger.losses(),
        "duplicates": ledger.duplicates(),
        "never_accepted": len(ledger.unsent),
        "strays": ledger.strays(),
        "send_retries": ledger.send_errors,
        "reconnects": streams.reconnects(),
        "recovery_s": None if recovery is None else round(recovery, 3),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "latency_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
    }


async def run(workdir: Path) -> dict[str, Any]:
    pg, redis = Postgres(workdir), Redis(workdir)
    channel = f"scale-{secrets.token_hex(4)}"
    nodes: list[MessengerNode] = []
    proxy: HAProxy | None = None
    fleet: BridgeFleet | None = None
    replica: Replica | None = None
    clients: list[MessengerClient] = []
    try:
        pg.init()
        redis.start()
        nodes = [MessengerNode(f"node{i}", pg.url, redis.url, workdir, channel) for i in (1, 2)]
        await seed(pg.url, nodes[0].metadata_keys, SENDERS + RECEIVERS)
        await seed_demo_messenger(pg.url, Argon2Params(time_cost=1, memory_cost=8, parallelism=1))
        for node in nodes:
            node.start()
        await asyncio.gather(*(n.ready() for n in nodes))
        proxy = HAProxy(workdir, [(n.name, f"127.0.0.1:{n.port}") for n in nodes])
        proxy.start()
        senders = [await login(proxy.url, i) for i in range(SENDERS)]
        receivers = {f"r{i}": await login(proxy.url, SENDERS + i) for i in range(RECEIVERS)}
        clients = [*senders, *receivers.values()]
        lag: dict[str, Any] | None = None
        if REPLICA:
            replica = Replica(workdir, pg)
            await asyncio.to_thread(replica.init)
            stop = asyncio.Event()
            measuring = asyncio.create_task(replica_lag(pg.url, replica.url, stop))
        steady = await phase("steady, 2 nodes", senders, receivers, STEADY_SECONDS, None)
        if REPLICA:
            stop.set()
            lag = await measuring
            print(f"  replica lag under the steady load: {lag}", flush=True)
        print(f"  {steady}", flush=True)
        chaos = await phase("kill -9 of node2", senders, receivers, KILL_SECONDS, nodes[1])
        print(f"  {chaos}", flush=True)
        bridge: dict[str, Any] | None = None
        if BRIDGE:
            # node2 comes back (HAProxy takes it in after two good health checks), then the
            # bridge on its own, so its lab and E2E work do not slow the messenger phases.
            nodes[1].start()
            await nodes[1].ready()
            fleet = BridgeFleet(workdir, proxy.url, pg.url)
            await fleet.start()
            bridge = await fleet.mail_run(KILL_SECONDS, kill_after=KILL_SECONDS / 3)
            print(f"  bridge: {bridge}", flush=True)
        return {
            "database": "postgresql + redis",
            "nodes": len(nodes),
            "load_balancer": "haproxy (deploy/haproxy.cfg)",
            "phases": [steady, chaos],
            "bridge": bridge,
            "replica_lag_during_steady": lag,
            "partitioning_model": await partitioning_model(pg.url) if PARTITIONING else None,
        }
    finally:
        if fleet is not None:
            await fleet.close()
        for client in clients:
            await client.aclose()
        if proxy is not None:
            proxy.close()
        for node in nodes:
            node.close()
        redis.close()
        if replica is not None:
            replica.close()
        pg.close()


COLUMNS: Columns = [
    ("phase", "phase", 18),
    ("messages_per_s", "msgs/s", 7),
    ("deliveries_per_s", "deliv/s", 8),
    ("accepted", "sent", 6),
    ("losses", "lost", 5),
    ("duplicates", "dup", 4),
    ("send_retries", "retries", 7),
    ("reconnects", "reconn", 6),
    ("recovery_s", "recovery s", 10),
    ("latency_p50_ms", "p50 ms", 7),
    ("latency_max_ms", "max ms", 8),
]


def lost_or_repeated(row: dict[str, Any]) -> bool:
    return bool(row["losses"] or row["duplicates"] or row["never_accepted"] or row["strays"])


def table(rows: list[dict[str, Any]]) -> str:
    return format_table(COLUMNS, rows, lost_or_repeated)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="medbridge-scale-") as tmp:
        result = asyncio.run(run(Path(tmp)))
    rows = result["phases"]
    print()
    print(
        f"{SENDERS} senders flat out, {RECEIVERS} receivers, all through HAProxy, "
        "2 messenger nodes on PostgreSQL + Redis"
    )
    print(table(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    bridge = result["bridge"]
    if bridge is not None:
        print(
            f"\nbridge: {bridge['workers']} workers (one killed with SIGKILL a third in), "
            f"{bridge['mails']} mails to 2 inboxes, {bridge['posted']} posted, "
            f"{bridge['losses']} lost, {bridge['duplicates']} duplicated; slowest mail after "
            f"the kill {bridge['delay_after_kill_max_s']} s (lease {bridge['lease_seconds']} s)"
        )
    lag = result["replica_lag_during_steady"]
    if lag is not None:
        print(
            f"read replica (streaming, same machine) behind the primary during the steady phase: "
            f"p50 {lag['lag_p50_ms']} ms, p99 {lag['lag_p99_ms']} ms, max {lag['lag_max_ms']} ms "
            f"({lag['samples']} samples)"
        )
    model = result["partitioning_model"]
    if model is not None:
        print(
            f"events by tenant, synthetic model of {model['rows']} rows in {model['tenants']} "
            "tenants (flat vs partitioned): history page p50 "
            f"{model['history_page_p50_ms']['flat']} vs "
            f"{model['history_page_p50_ms']['partitioned']} ms; one tenant's retention purge "
            f"{model['tenant_retention_purge_ms']['flat']} vs "
            f"{model['tenant_retention_purge_ms']['partitioned']} ms; removing a tenant "
            f"{model['tenant_removal_ms']['flat']} ms (DELETE) vs "
            f"{model['tenant_removal_ms']['partitioned_drop']} ms (DROP partition)"
        )
    print(f"\nwrote {RESULTS}")
    if bridge is not None and (bridge["losses"] or bridge["duplicates"] or not bridge["complete"]):
        print("FAILED: the bridge lost or repeated notifications")
        return 1
    bad = [r["phase"] for r in rows if lost_or_repeated(r)]
    if bad or rows[-1]["recovery_s"] is None:
        print(f"FAILED: {', '.join(bad) or 'no recovery after the kill'}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
