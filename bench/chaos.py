"""The chaos battery (`make chaos`): faults under load, with losses, duplicates and recovery
times counted, printed as a table, plotted and written to bench/results/chaos.json.

Messenger (two nodes on a private PostgreSQL and Redis, a sender on node a, receivers on both
nodes, 20 msgs/s): PostgreSQL crash-stopped and started again, Redis killed and started
again, kill -9 of the receivers' node and of the sender's node, each at a random moment and
for a random time, `CHAOS_ROUNDS` times (default 2). Recovery is the time from the fault until
a message first tried after it is accepted and at every receiver.

Notification bridge (tests/e2e/test_bridge_chaos.py, run by pytest): kill -9 of the worker at
random points (`CHAOS_BRIDGE_RUNS` runs, default 200), and throttling and outages of the lab
during sync. Both check exactly-once delivery and report their counts here.

Exits 1 on any loss, duplicate, message never accepted, or a fault the service did not recover
from. `CHAOS_SEED` repeats a sequence; `CHAOS_SKIP=bridge` or `=messenger` runs one half,
`CHAOS_ONLY=redis` the messenger scenarios whose name contains that word.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cluster import ROOT, MessengerNode, Postgres, Redis
from bench.ledger import Ledger
from bench.load import Receivers, login, seed, send_for

RESULTS = Path(__file__).parent / "results"
RATE = 20.0  # msgs/s of the sender
LOAD_SECONDS = 10.0
RECEIVERS_PER_NODE = 3


@dataclass
class Cluster:
    pg: Postgres
    redis: Redis
    a: MessengerNode
    b: MessengerNode


def summarise(
    name: str, ledgers: list[Ledger], recoveries: list[float | None], reconnects: int
) -> dict[str, Any]:
    """One table row of a scenario's rounds."""
    latencies = [x for ledger in ledgers for x in ledger.latencies()]
    known = [r for r in recoveries if r is not None]
    return {
        "scenario": name,
        "rounds": len(ledgers),
        "sent": sum(len(x.sent) for x in ledgers),
        "deliveries": sum(
            len(times) for x in ledgers for a in x.arrivals.values() for times in a.values()
        ),
        "losses": sum(x.losses() for x in ledgers),
        "duplicates": sum(x.duplicates() for x in ledgers),
        "never_accepted": sum(len(x.unsent) for x in ledgers),
        "strays": sum(x.strays() for x in ledgers),
        "send_retries": sum(x.send_errors for x in ledgers),
        "reconnects": reconnects,
        "recovery_s": [None if r is None else round(r, 3) for r in recoveries],
        "recovery_p50_s": round(statistics.median(known), 3) if known else None,
        "recovery_max_s": round(max(known), 3) if known else None,
        "unrecovered": len(recoveries) - len(known),
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "latency_max_ms": round(max(latencies) * 1000, 1) if latencies else None,
    }


def failed(row: dict[str, Any]) -> bool:
    return bool(
        row["losses"]
        or row["duplicates"]
        or row["never_accepted"]
        or row["strays"]
        or row.get("unrecovered")
        or row.get("failed")
    )


async def messenger_battery(
    workdir: Path, rng: random.Random, rounds: int
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    pg, redis = Postgres(workdir), Redis(workdir)
    channel = f"chaos-{secrets.token_hex(4)}"
    nodes: list[MessengerNode] = []
    clients = []
    try:
        pg.init()
        redis.start()
        a = MessengerNode("a", pg.url, redis.url, workdir, channel)
        b = MessengerNode("b", pg.url, redis.url, workdir, channel)
        nodes = [a, b]
        users = 1 + 2 * RECEIVERS_PER_NODE
        await seed(pg.url, a.metadata_keys, users)
        for node in nodes:
            node.start()
        await asyncio.gather(a.ready(), b.ready())
        cluster = Cluster(pg, redis, a, b)
        sender = await login(a.url, 0)
        receivers = {
            f"{node.name}{i}": await login(node.url, 1 + k * RECEIVERS_PER_NODE + i)
            for k, node in enumerate(nodes)
            for i in range(RECEIVERS_PER_NODE)
        }
        clients = [sender, *receivers.values()]
        member_ids = [c.user_id for c in receivers.values() if c.user_id]

        def down_time() -> float:
            return rng.uniform(0.5, 2.0)

        async def pg_restart() -> None:
            await asyncio.to_thread(cluster.pg.stop, "immediate")
            await asyncio.sleep(down_time())
            await asyncio.to_thread(cluster.pg.start)

        async def redis_restart() -> None:
            cluster.redis.kill()
            await asyncio.sleep(down_time())
            await asyncio.to_thread(cluster.redis.start)

        def node_kill(node: MessengerNode) -> Callable[[], Awaitable[None]]:
            async def fault() -> None:
                node.kill()
                await asyncio.sleep(down_time())
                node.start()
                await node.ready()

            return fault

        scenarios: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("PostgreSQL crash + restart", pg_restart),
            ("Redis kill -9 + restart", redis_restart),
            ("kill -9 receivers' node (b)", node_kill(b)),
            ("kill -9 sender's node (a)", node_kill(a)),
        ]
        only = os.environ.get("CHAOS_ONLY", "").lower()
        scenarios = [(n, f) for n, f in scenarios if only in n.lower()]
        rows, timelines = [], {}
        for name, inject in scenarios:
            ledgers: list[Ledger] = []
            recoveries: list[float | None] = []
            reconnects = 0
            for round_no in range(rounds):
                cid = (
                    await sender.create_conversation("group", member_ids, name=f"{name} {round_no}")
                )["conversation_id"]
                ledger = Ledger(list(receivers))
                streams = Receivers(ledger, cid, receivers)
                await streams.start()
                fault_at: list[float] = []

                async def fault(
                    inject: Callable[[], Awaitable[None]] = inject, fault_at: list[float] = fault_at
                ) -> None:
                    await asyncio.sleep(rng.uniform(2.0, LOAD_SECONDS - 4.0))
                    fault_at.append(time.monotonic())
                    await inject()

                started = time.monotonic()
                task = asyncio.create_task(fault())
                await send_for([sender], cid, ledger, seconds=LOAD_SECONDS, rate_per_sender=RATE)
                await task
                await streams.drain(60)
                await streams.close()
                reconnects += streams.reconnects()
                ledgers.append(ledger)
                recoveries.append(ledger.recovery(fault_at[0]))
                if round_no == 0:
                    timelines[name] = {
                        "fault_s": round(fault_at[0] - started, 3),
                        "points": [
                            (round(first - started, 3), round(lat, 4))
                            for mid, (first, _) in sorted(
                                ledger.sent.items(), key=lambda kv: kv[1][0]
                            )
                            if (done := ledger.delivered_at(mid)) is not None
                            for lat in [done - first]
                        ],
                    }
            rows.append(summarise(name, ledgers, recoveries, reconnects))
            print(
                f"  {name}: {rows[-1]['losses']} lost, {rows[-1]['duplicates']} duplicated, "
                f"recovery {rows[-1]['recovery_s']} s",
                flush=True,
            )
        return rows, timelines
    finally:
        for client in clients:
            await client.aclose()
        for node in nodes:
            node.close()
        redis.close()
        pg.close()


def bridge_battery(workdir: Path, runs: int, seed_value: int) -> list[dict[str, Any]]:
    """The bridge's chaos tests under pytest; their rows come from the report they write."""
    report = workdir / "bridge-chaos.jsonl"
    env = {
        **os.environ,
        "MEDBRIDGE_CHAOS_RUNS": str(runs),
        "MEDBRIDGE_CHAOS_SEED": str(seed_value),
        "MEDBRIDGE_CHAOS_REPORT": str(report),
    }
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:xdist",
            "-q",
            "-m",
            "slow",
            "--timeout",
            "3600",
            "tests/e2e/test_bridge_chaos.py",
        ],
        cwd=ROOT,
        env=env,
        check=False,
    )
    rows = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    for row in rows:
        row["failed"] = result.returncode != 0
    if result.returncode != 0 or not rows:
        rows.append(
            {
                "scenario": "bridge chaos tests (pytest)",
                "failed": True,
                "losses": None,
                "duplicates": None,
                "never_accepted": 0,
                "strays": 0,
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    return rows


COLUMNS: Columns = [
    ("scenario", "scenario", 35),
    ("rounds", "rounds", 6),
    ("sent", "sent", 6),
    ("deliveries", "delivered", 9),
    ("losses", "lost", 5),
    ("duplicates", "dup", 4),
    ("send_retries", "retries", 7),
    ("reconnects", "reconn", 6),
    ("recovery_p50_s", "recov p50 s", 11),
    ("recovery_max_s", "recov max s", 11),
    ("latency_max_ms", "max lat ms", 10),
]


Columns = list[tuple[str, str, int]]


def format_table(
    columns: Columns, rows: list[dict[str, Any]], flag: Callable[[dict[str, Any]], bool]
) -> str:
    """Fixed-width rows of (key, title, width) columns; a flagged row is marked FAILED."""

    def cell(value: Any) -> str:
        return "–" if value is None else str(value)

    head = " | ".join(f"{title:<{w}}" for _, title, w in columns)
    lines = [head, "-+-".join("-" * w for *_, w in columns)]
    for row in rows:
        lines.append(
            " | ".join(f"{cell(row.get(key)):<{w}}" for key, _, w in columns)
            + ("   FAILED" if flag(row) else "")
        )
    return "\n".join(lines)


def table(rows: list[dict[str, Any]]) -> str:
    return format_table(COLUMNS, rows, failed)


def plot(rows: list[dict[str, Any]], timelines: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_recovery = [r for r in rows if r.get("recovery_s")]
    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5))
    for i, row in enumerate(with_recovery):
        values = [v for v in row["recovery_s"] if v is not None]
        left.bar(i, max(values, default=0), color="#9ecae1")
        left.scatter([i] * len(values), values, color="#08519c", zorder=3)
    labels = [
        r["scenario"] + (f"\n({r['recovery_means']})" if r.get("recovery_means") else "")
        for r in with_recovery
    ]
    left.set_xticks(range(len(with_recovery)), labels, rotation=20, ha="right", fontsize=7)
    left.set_ylabel("recovery (s)")
    left.set_title(
        "Recovery per fault (bar: worst round)\nmessenger: fault → next message at every receiver",
        fontsize=10,
    )
    for name, timeline in timelines.items():
        xs = [p[0] - timeline["fault_s"] for p in timeline["points"]]
        ys = [p[1] for p in timeline["points"]]
        right.plot(xs, ys, marker=".", linestyle="-", linewidth=0.6, markersize=3, label=name)
    right.axvline(0, color="red", linewidth=0.8)
    right.set_yscale("log")
    right.set_xlabel("message first tried, s relative to the fault")
    right.set_ylabel("first try → at every receiver (s)")
    right.set_title("End-to-end delay around the fault (first round)")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    seed_value = int(os.environ.get("CHAOS_SEED", str(random.randrange(1 << 30))))
    rounds = int(os.environ.get("CHAOS_ROUNDS", "2"))
    bridge_runs = int(os.environ.get("CHAOS_BRIDGE_RUNS", "200"))
    skip = os.environ.get("CHAOS_SKIP", "")
    rng = random.Random(seed_value)
    print(f"chaos battery, seed {seed_value}", flush=True)
    rows: list[dict[str, Any]] = []
    timelines: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="medbridge-chaos-") as tmp:
        workdir = Path(tmp)
        if skip != "messenger":
            messenger_rows, timelines = asyncio.run(messenger_battery(workdir, rng, rounds))
            rows += messenger_rows
        if skip != "bridge":
            rows += bridge_battery(workdir, bridge_runs, seed_value)
    print()
    print(table(rows))
    RESULTS.mkdir(parents=True, exist_ok=True)
    result = {
        "seed": seed_value,
        "rounds": rounds,
        "bridge_runs": bridge_runs,
        "scenarios": rows,
        "timelines": timelines,
    }
    (RESULTS / "chaos.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, timelines, RESULTS / "chaos.png")
    print(f"\nwrote {RESULTS / 'chaos.json'} and {RESULTS / 'chaos.png'}")
    bad = [r["scenario"] for r in rows if failed(r)]
    if bad:
        print(f"FAILED: {', '.join(bad)} (seed {seed_value})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
