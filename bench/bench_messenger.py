"""Messenger benchmark in the shapes of the Synapse comparison (issue: "performance, chaos and
scale-out"), so the numbers compare directly:

- 100 receivers with a 101-member group, one sender at 1 msg/s and at 20 msg/s:
  send→deliver p50/p99;
- 10 senders flat out into a 110-member group (the 100 receivers listening): accepted msgs/s,
  deliveries/s, and the server's time per send under those concurrent senders;
- the senders send through their own open stream (`EventStream.send_raw`, as a client that
  has its stream open can); `latency_1_per_s_http` and `senders_10_flat_out_http` repeat the
  1 msg/s and the flat-out phases with each send an HTTP request, as before;
- sends into a 2- and a 1,250-member group (interleaved);
- E2E sends (`E2ESession.send_text`: encrypt, then send) into the 1,250-member group, with
  the HTTP requests each makes, beside reading that group's member list once (what every
  E2E send cost before the SDK kept the list between sends);
- adding the 1,250th member to a group;
- the server's RSS after the run.

The server runs as its own process (`medbridge messenger serve`); clients share this process and
talk to it over loopback. It runs on SQLite, and on PostgreSQL (a fresh schema) + Redis when
MEDBRIDGE_BENCH_PG (and MEDBRIDGE_BENCH_REDIS) are set. Results: bench/results/bench_messenger
.json (both databases, beside the goals), a Markdown summary and PNG plots of the latency
distributions. The machine's load average is recorded with each run: the numbers come from a
shared machine.

What send→deliver measures: from just before the sender's frame (or HTTP request) is built
(the time is stamped into the first 8 bytes of the "ciphertext") to when the frame's bytes
reach the receiving client's socket (`StampedConnection.data_received`, before websockets parses the
frame and before this process decodes the JSON and base64). The 100 receivers share this
one process and its event loop, so a receiver's frame also waits while the frames already
read for the others are handled; `handled_by_bench` keeps the time after that handling
(what the previous version of this bench reported), and `in_socket` the kernel's receive
timestamp of the frame's bytes at each receiving socket (Linux's SO_TIMESTAMPNS), which waits
for nothing in this process. The database commits durably (SQLite
WAL with synchronous=FULL, PostgreSQL with synchronous_commit=on): each send waits for one
fsync of the disk the bench runs on, which is part of the latency. Set
MEDBRIDGE_BENCH_PHASES=name,name to run some phases only (nothing is saved then), and
MEDBRIDGE_BENCH_CPROFILE=file.prof to profile the server during the throughput phases.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import secrets
import signal
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
from websockets.asyncio.client import ClientConnection

from messenger.client import EventStream, MessengerClient, decode_ciphertext
from messenger.store import repo, schema
from messenger.store.engine import make_engine, sessionmaker

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = Path(__file__).parent / "results"
RESULTS = RESULTS_DIR / "bench_messenger.json"
SUMMARY = RESULTS_DIR / "bench_messenger.md"
PASSWORD = "bench password"
RECEIVERS = 100
SENDERS = 10
BIG_GROUP = 1250
SLOW_RATE, SLOW_SECONDS = 1.0, 30.0
FAST_RATE, FAST_SECONDS = 20.0, 10.0
FLAT_OUT_SECONDS = 10.0
CONCURRENT_SECONDS = 5.0
COST_SENDS = 100
E2E_SENDS = 50
ADD_REPEATS = 10
IDLE_SECONDS = 40.0  # longer than one stream re-check (30 s ± 20 %), so each stream has one
PAYLOAD = 128  # bytes of "ciphertext" per message; the first 8 carry the send time

# Goals of the issue, per workload (both databases).
GOALS: dict[str, dict[str, float]] = {
    "latency_1_per_s": {"p50_ms": 5.0, "p99_ms": 15.0},
    "senders_10_flat_out": {"accepted_per_s": 250.0, "deliveries_per_s": 27500.0},
    "add_1250th_member": {"p50_ms": 20.0},
    "server_rss_mb": {"rss_mb": 120.0},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary_ms(seconds: list[float]) -> dict[str, Any]:
    return {
        # The first delivery of a fan-out shows the send's own path; p50 adds the spread.
        "min_ms": round(min(seconds) * 1000, 2),
        "p50_ms": round(statistics.median(seconds) * 1000, 2),
        "p99_ms": round(pct(seconds, 99) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
        "count": len(seconds),
    }


def wanted(phase: str) -> bool:
    """Whether to run a phase: MEDBRIDGE_BENCH_PHASES (comma-separated names) picks some."""
    chosen = os.environ.get("MEDBRIDGE_BENCH_PHASES")
    return not chosen or phase in chosen.split(",")


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def touch_pages(memory: bytearray) -> float:
    """Seconds to write one byte in each 4 KiB page of `memory`."""
    started = time.perf_counter()
    for offset in range(0, len(memory), 4096):
        memory[offset] ^= 1
    return time.perf_counter() - started


def machine_probe() -> dict[str, float]:
    """How fast this machine runs Python, how long waking an idle process takes (a loopback
    round trip between two processes after 1 s idle and back to back) and what touching
    memory left alone for 1 s costs (a write to each of 1,024 pages, per page). Machines
    differ most in the last two, and the 1 msg/s phase pays them on every send: each hop
    (bench → server → receivers) starts from idle, and a send's code and data, untouched for
    a second, are such memory. Numbers from two machines compare only beside them."""
    started = time.perf_counter()
    i = 0
    while i < 10_000_000:
        i += 1
    loop_s = time.perf_counter() - started
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # the echoing process
        ours.close()
        while data := theirs.recv(64):
            theirs.send(data)
        os._exit(0)
    theirs.close()
    rtt: dict[float, list[float]] = {1.0: [], 0.0: []}
    memory = bytearray(1024 * 4096)
    touch: dict[float, list[float]] = {1.0: [], 0.0: []}
    try:
        for gap, count in ((1.0, 8), (0.0, 200)):
            for _ in range(count):
                time.sleep(gap)
                t0 = time.perf_counter()
                ours.send(b"x")
                ours.recv(64)
                rtt[gap].append(time.perf_counter() - t0)
                touch[gap].append(touch_pages(memory) / 1024)
    finally:
        ours.close()
        os.waitpid(pid, 0)
    return {
        "python_loop_10m_s": round(loop_s, 2),
        "wakeup_rtt_after_idle_ms": round(statistics.median(rtt[1.0]) * 1000, 3),
        "wakeup_rtt_busy_ms": round(statistics.median(rtt[0.0]) * 1000, 3),
        "page_touch_after_rest_us": round(statistics.median(touch[1.0]) * 1e6, 2),
        "page_touch_busy_us": round(statistics.median(touch[0.0]) * 1e6, 2),
    }


async def seed(url: str, schema_name: str | None) -> dict[str, Any]:
    """A tenant with 1,250 users; u0 (tenant admin) sends, u1…u100 receive, u101…u110 flood;
    the groups are made here, before the server starts (it seals the names at rest)."""
    engine = make_engine(url, schema_name)
    await schema.upgrade(engine)
    hashed = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    now = dt.datetime.now(dt.UTC)
    async with sessionmaker(engine)() as db:
        tenant = await repo.create_tenant(db, "Bench", now)
        await repo.add_domain(db, tenant, "bench.example")
        users = []
        for i in range(BIG_GROUP):
            user = await repo.create_user(
                db,
                f"u{i}@bench.example",
                now,
                role="tenant_admin" if i == 0 else "user",
                password_hash=hashed if i <= RECEIVERS + SENDERS else None,
            )
            users.append(user.id)
        groups = {
            "big": users,
            "small": users[:2],
            "group": users[: RECEIVERS + 1],
            "flood": users[1 : RECEIVERS + SENDERS + 1],
            "almost_full": users[: BIG_GROUP - 1],
        }
        ids = {}
        for name, members in groups.items():
            conv, _ = await repo.create_conversation(
                db, None, tenant, "managed", name, members, now
            )
            ids[name] = conv.id
        await db.commit()
    await engine.dispose()
    return {"users": users, "groups": ids}


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


async def database(workdir: Path, pg: str | None) -> tuple[str, str | None]:
    """The bench database: (url, schema); a fresh PostgreSQL schema, or a SQLite file."""
    if not pg:
        return f"sqlite:///{workdir / 'bench.db'}", None
    import asyncpg

    schema_name = f"bench_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(pg)
    await conn.execute(f"CREATE SCHEMA {schema_name}")
    await conn.close()
    return pg, schema_name


async def drop_schema(pg: str | None, schema_name: str | None) -> None:
    if pg and schema_name:
        import asyncpg

        conn = await asyncpg.connect(pg)
        await conn.execute(f"DROP SCHEMA {schema_name} CASCADE")
        await conn.close()


def serve(
    url: str, schema_name: str | None, redis: str | None, workdir: Path
) -> tuple[subprocess.Popen[bytes], str]:
    """Start `medbridge messenger serve` on a free loopback port: (process, base URL)."""
    port = free_port()
    cmd = [sys.executable, "-m", "bridge.cli", "messenger", "--db", url]
    cprofile = os.environ.get("MEDBRIDGE_BENCH_CPROFILE")  # a file for the server's cProfile
    if cprofile:
        cmd[1:3] = ["-m", "bench.profiled", cprofile, "bridge.cli"]
    if schema_name:
        cmd += ["--schema", schema_name]
    if redis:
        cmd += ["--redis", redis, "--redis-channel", f"bench:{secrets.token_hex(4)}"]
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


def profile(pid: int, name: str) -> subprocess.Popen[bytes] | None:
    """With MEDBRIDGE_BENCH_PROFILE=<dir>, sample the server with py-spy (collapsed stacks)."""
    directory = os.environ.get("MEDBRIDGE_BENCH_PROFILE")
    if not directory:
        return None
    out = Path(directory) / f"messenger-{name}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = str(Path(sys.executable).parent / "py-spy")
    cmd = [spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def profiling(pid: int, on: bool) -> None:
    """Switch the server's cProfile (MEDBRIDGE_BENCH_CPROFILE) on or off around a phase."""
    if os.environ.get("MEDBRIDGE_BENCH_CPROFILE"):
        os.kill(pid, signal.SIGUSR1 if on else signal.SIGUSR2)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: less sensitive to a busy machine than wall
    time, so before/after comparisons hold up when others share the CPUs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory of a process (VmRSS; RssAnon is the part that is not mapped files)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def send_seconds_total(base: str) -> tuple[float, float]:
    """The server's own (sum, count) of time spent per send, from /metrics."""
    async with httpx.AsyncClient(base_url=base) as http:
        text = (await http.get("/metrics")).text
    found = dict(re.findall(r"^messenger_send_seconds_(sum|count) (\S+)$", text, re.M))
    return float(found.get("sum", 0)), float(found.get("count", 0))


def server_ms_per_send(before: tuple[float, float], after: tuple[float, float]) -> float:
    """The mean of the server's own time per send between two `send_seconds_total` reads."""
    sends = after[1] - before[1]
    return round((after[0] - before[0]) / sends * 1000, 2) if sends else 0.0


async def pg_activity(pg: str | None, schema_name: str | None) -> dict[str, float]:
    """Index + sequential scans and rows written in the bench's schema (PostgreSQL only)."""
    if not pg or not schema_name:
        return {}
    import asyncpg

    conn = await asyncpg.connect(pg)
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        row = await conn.fetchrow(
            "SELECT sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)) AS scans,"
            " sum(n_tup_ins + n_tup_upd + n_tup_del) AS writes"
            " FROM pg_stat_user_tables WHERE schemaname = $1",
            schema_name,
        )
    finally:
        await conn.close()
    return {"scans": float(row["scans"] or 0), "writes": float(row["writes"] or 0)}


def pg_rates(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    return {f"{k}_per_s": round((after[k] - before[k]) / seconds, 1) for k in before}


# Linux's number; Python's socket module does not name it.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class KernelStampedSocket:
    """A receiving socket read with recvmsg, for the kernel's receive timestamp of the bytes
    (SO_TIMESTAMPNS): when they reached the socket, however long this process took to come
    round to reading it. Everything but `recv` is the socket's own."""

    def __init__(self, sock: socket.socket, owner: StampedConnection) -> None:
        self._sock = sock
        self._owner = owner

    def recv(self, size: int) -> bytes:
        data, ancillary, _, _ = self._sock.recvmsg(size, socket.CMSG_SPACE(16))
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(raw) >= 16:
                seconds, nanoseconds = struct.unpack("qq", raw[:16])
                # The kernel stamps wall-clock time; the sends are stamped by perf_counter.
                offset = time.time() - time.perf_counter()
                self._owner.kernel_arrived = seconds + nanoseconds / 1e9 - offset
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class StampedConnection(ClientConnection):
    """A stream connection that notes when bytes reach its socket, before websockets parses
    them and before the bench decodes them: the 100 receivers share this process, and each
    frame waits while the frames of the other 99 are handled one after another.

    `kernel_arrived` is the kernel's receive time of the latest bytes (`KernelStampedSocket`,
    Linux), which does not wait for this process at all; 0 where it is not available."""

    arrived = 0.0
    kernel_arrived = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # asyncio's selector transport reads `_sock.recv`; wrap it (bench-only instrument).
        sock = getattr(transport, "_sock", None)
        if sys.platform == "linux" and isinstance(sock, socket.socket):
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            transport._sock = KernelStampedSocket(sock, self)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.arrived = time.perf_counter()
        super().data_received(data)


class StampedStream(EventStream):
    connection_class = StampedConnection


class Receivers:
    """The 100 receivers' streams: send→deliver latencies of one conversation's messages.

    Delivered means: the frame's bytes reached the receiving socket (`StampedConnection`);
    if later bytes arrived before the frame was read, their time counts (never earlier than
    the truth). `handled` has the time after this process parsed and decoded the frame.
    """

    def __init__(self, clients: list[MessengerClient], group: str) -> None:
        self.group = group
        self.streams = [StampedStream(c, reconnect=True) for c in clients]
        self.latencies: list[float] = []
        self.handled: list[float] = []
        self.in_socket: list[float] = []  # by the kernel's receive timestamp
        self.expected = 0
        self.done = asyncio.Event()
        self.synced = 0
        self.all_synced = asyncio.Event()
        self.tasks = [asyncio.create_task(self._consume(s)) for s in self.streams]

    async def _consume(self, stream: Any) -> None:
        async for event in stream:
            if event["type"] == "synced":
                self.synced += 1
                if self.synced == len(self.streams):
                    self.all_synced.set()
            elif event["type"] == "message" and event["conversation_id"] == self.group:
                sent_at = struct.unpack("d", decode_ciphertext(event)[:8])[0]
                self.handled.append(time.perf_counter() - sent_at)
                ws = stream.connection
                arrived = ws.arrived if isinstance(ws, StampedConnection) else 0.0
                self.latencies.append((arrived or time.perf_counter()) - sent_at)
                kernel = ws.kernel_arrived if isinstance(ws, StampedConnection) else 0.0
                if kernel:
                    self.in_socket.append(kernel - sent_at)
                if len(self.latencies) >= self.expected:
                    self.done.set()

    def expect(self, messages: int) -> None:
        self.latencies = []
        self.handled = []
        self.in_socket = []
        self.expected = messages * len(self.streams)
        self.done.clear()

    async def close(self) -> None:
        for s in self.streams:
            await s.aclose()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def stamped() -> bytes:
    return struct.pack("d", time.perf_counter()) + b"\x00" * (PAYLOAD - 8)


Send = Callable[[str, bytes], Awaitable[Any]]


class SendingStream:
    """A sender's own stream, read (and its events dropped) so that it can send through it
    (`EventStream.send_raw`), as a client with its stream open does."""

    def __init__(self, client: MessengerClient) -> None:
        self.stream = client.events()
        self.synced = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in self.stream:
            if event["type"] == "synced":
                self.synced.set()

    async def send(self, conversation_id: str, ciphertext: bytes) -> Any:
        return await self.stream.send_raw(conversation_id, ciphertext)

    async def close(self) -> None:
        await self.stream.aclose()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def paced(send: Send, group: str, rate: float, seconds: float) -> int:
    """Send at `rate` msgs/s on a fixed schedule (a late send does not shift the next)."""
    count = int(rate * seconds)
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(group, stamped())
    return count


async def latency_phase(
    receivers: Receivers, send: Send, group: str, rate: float, seconds: float
) -> tuple[dict[str, Any], list[float]]:
    receivers.expect(int(rate * seconds))
    load = load_average()
    await paced(send, group, rate, seconds)
    await asyncio.wait_for(receivers.done.wait(), 120)
    samples = list(receivers.latencies)
    return {
        **summary_ms(samples),
        "handled_by_bench": summary_ms(receivers.handled),
        **({"in_socket": summary_ms(receivers.in_socket)} if receivers.in_socket else {}),
        "rate_per_s": rate,
        "load_1min": load,
    }, samples


async def idle_phase(pid: int, streams: int, seconds: float) -> dict[str, Any]:
    """Server CPU while the receivers' streams are open and nothing is sent: what a node pays
    per connected device for staying in touch (session checks, periodic catch-up)."""
    load = load_average()
    cpu = cpu_seconds(pid)
    await asyncio.sleep(seconds)
    used = cpu_seconds(pid) - cpu
    per_stream_per_s = used / seconds / streams
    return {
        "streams": streams,
        "seconds": seconds,
        "server_cpu_s": round(used, 3),
        "cpu_ms_per_stream_per_minute": round(per_stream_per_s * 60_000, 3),
        # A whole CPU spent on this alone, at the per-stream rate measured.
        "streams_per_cpu": round(1 / per_stream_per_s) if per_stream_per_s else None,
        "load_1min": load,
    }


async def flat_out_phase(
    base: str, pid: int, receivers: Receivers, senders: list[Send], group: str
) -> tuple[dict[str, Any], list[float]]:
    """Each sender sends, one request at a time, as fast as the server accepts."""
    send_times: list[float] = []
    load = load_average()
    server_before = await send_seconds_total(base)
    cpu_before = cpu_seconds(pid)
    bench_cpu_before = time.process_time()
    profiling(pid, True)
    deadline = time.perf_counter() + FLAT_OUT_SECONDS

    async def flood(send: Send) -> int:
        sent = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await send(group, stamped())
            send_times.append(time.perf_counter() - t0)
            sent += 1
        return sent

    receivers.expect(0)
    receivers.expected = sys.maxsize  # known once the senders stop
    started = time.perf_counter()
    counts = await asyncio.gather(*(flood(c) for c in senders))
    accepted_in = time.perf_counter() - started
    total = sum(counts)
    receivers.expected = total * len(receivers.streams)
    if len(receivers.latencies) < receivers.expected:
        receivers.done.clear()
        await asyncio.wait_for(receivers.done.wait(), 300)
    drained_in = time.perf_counter() - started
    profiling(pid, False)
    cpu = cpu_seconds(pid) - cpu_before
    bench_cpu = time.process_time() - bench_cpu_before
    server_after = await send_seconds_total(base)
    return {
        "senders": len(senders),
        "receivers": len(receivers.streams),
        "accepted_per_s": round(total / accepted_in, 1),
        "deliveries_per_s": round(total * len(receivers.streams) / drained_in, 1),
        "messages": total,
        "send_request": summary_ms(send_times),
        "server_ms_per_send_mean": server_ms_per_send(server_before, server_after),
        "server_cpu_ms_per_message": round(cpu / total * 1000, 3) if total else 0,
        # The senders and 100 receivers in this process: the CPU they take is not the server's.
        "bench_cpu_ms_per_message": round(bench_cpu / total * 1000, 3) if total else 0,
        "send_to_deliver": summary_ms(receivers.latencies),
        "load_1min": load,
    }, list(receivers.latencies)


async def concurrent_sends_phase(
    base: str, pid: int, senders: list[MessengerClient], group: str
) -> dict[str, Any]:
    """The 10 senders flat out with nobody listening: the server's time per send is then the
    database's (and its per-conversation lock's) share, without the fan-out's CPU."""
    send_times: list[float] = []
    load = load_average()
    before = await send_seconds_total(base)
    cpu_before = cpu_seconds(pid)
    profiling(pid, True)
    deadline = time.perf_counter() + CONCURRENT_SECONDS

    async def flood(client: MessengerClient) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            await client.send_raw(group, stamped())
            send_times.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(flood(c) for c in senders))
    elapsed = time.perf_counter() - started
    profiling(pid, False)
    cpu = cpu_seconds(pid) - cpu_before
    after = await send_seconds_total(base)
    sends = after[1] - before[1]
    return {
        "senders": len(senders),
        "accepted_per_s": round(len(send_times) / elapsed, 1),
        "server_ms_per_send_mean": server_ms_per_send(before, after),
        "server_cpu_ms_per_send": round(cpu / sends * 1000, 3) if sends else 0,
        "send_request": summary_ms(send_times),
        "load_1min": load,
    }


async def send_cost_phase(sender: MessengerClient, small: str, big: str) -> dict[str, Any]:
    """Sends into a 2- and a 1,250-member group, interleaved so load hits both alike."""
    times: dict[str, list[float]] = {"members_2": [], "members_1250": []}
    for _ in range(COST_SENDS):
        for name, cid in (("members_2", small), ("members_1250", big)):
            t0 = time.perf_counter()
            await sender.send_raw(cid, b"\x00" * PAYLOAD)
            times[name].append(time.perf_counter() - t0)
    cost: dict[str, Any] = {name: summary_ms(t) for name, t in times.items()}
    cost["ratio_p50"] = round(cost["members_1250"]["p50_ms"] / cost["members_2"]["p50_ms"], 2)
    return cost


async def e2e_send_phase(base: str, big: str) -> dict[str, Any]:
    """E2E sends into the 1,250-member group after a first one (which reads every member's
    devices once; the bench's devices carry no valid signature, so none gets a key)."""
    import logging
    import uuid

    from messenger.client.e2e import E2ESession
    from messenger.crypto import DeviceKeys

    requests: list[str] = []

    class Counting(httpx.AsyncHTTPTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            requests.append(f"{request.method} {request.url.path}")
            return await super().handle_async_request(request)

    client = MessengerClient(base, retries=1, transport=Counting())
    logging.getLogger("messenger.client.e2e").setLevel(logging.ERROR)  # those devices
    try:
        await client.login("u0@bench.example", PASSWORD)
        assert client.user_id is not None
        keys = DeviceKeys.generate(client.user_id, uuid.uuid4().hex)
        session = E2ESession.for_client(client, keys)
        await session.register_device("bench e2e")
        await session.send_text(big, "first")
        requests.clear()
        times: list[float] = []
        for i in range(E2E_SENDS):
            t0 = time.perf_counter()
            await session.send_text(big, f"message {i}")
            times.append(time.perf_counter() - t0)
        result: dict[str, Any] = summary_ms(times)
        result["http_requests_per_send"] = round(len(requests) / E2E_SENDS, 2)
        reads: list[float] = []
        for _ in range(10):
            t0 = time.perf_counter()
            await client.conversation(big)
            reads.append(time.perf_counter() - t0)
        result["member_list_read_p50_ms"] = round(statistics.median(reads) * 1000, 2)
        return result
    finally:
        await client.aclose()


async def add_member_phase(admin: MessengerClient, group: str, newcomer: str) -> dict[str, Any]:
    """Add the 1,250th member to a 1,249-member group (then remove it again), repeatedly."""
    times: list[float] = []
    for _ in range(ADD_REPEATS):
        t0 = time.perf_counter()
        await admin.add_members(group, [newcomer])
        times.append(time.perf_counter() - t0)
        await admin.remove_member(group, newcomer)
    return summary_ms(times)


async def run(workdir: Path, pg: str | None, redis: str | None) -> dict[str, Any]:
    url, schema_name = await database(workdir, pg)
    seeded = await seed(url, schema_name)
    probe = machine_probe()  # before the server starts: the machine alone
    users: list[str] = seeded["users"]
    proc, base = serve(url, schema_name, redis, workdir)
    profiler = None
    clients: list[MessengerClient] = []
    samples: dict[str, list[float]] = {}
    try:
        await wait_ready(base, proc)
        rss_start = rss_mb(proc.pid)
        groups: dict[str, str] = seeded["groups"]
        big, small, group = groups["big"], groups["small"], groups["group"]
        flood_group, almost_full = groups["flood"], groups["almost_full"]
        sender = await client_for(base, 0)
        receiver_clients = list(
            await asyncio.gather(*(client_for(base, i) for i in range(1, RECEIVERS + 1)))
        )
        senders = list(
            await asyncio.gather(
                *(client_for(base, i) for i in range(RECEIVERS + 1, RECEIVERS + SENDERS + 1))
            )
        )
        clients = [sender, *receiver_clients, *senders]
        result: dict[str, Any] = {
            "database": "postgresql+redis" if pg else "sqlite",
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(),
            "machine": probe,
        }

        receivers = Receivers(receiver_clients, group)
        await asyncio.wait_for(receivers.all_synced.wait(), 120)
        rss_synced = rss_mb(proc.pid)
        # The phases only, not the set-up; and only now that `serve` has replaced its
        # interpreter before serving (py-spy would not follow that).
        profiler = profile(proc.pid, "postgresql" if pg else "sqlite")
        if wanted("idle_streams"):
            activity = await pg_activity(pg, schema_name)
            result["idle_streams"] = await idle_phase(proc.pid, RECEIVERS, IDLE_SECONDS)
            if activity:  # the database's work for 100 connected devices doing nothing
                result["idle_streams"]["postgresql"] = pg_rates(
                    activity, await pg_activity(pg, schema_name), IDLE_SECONDS
                )
        activity = await pg_activity(pg, schema_name)
        started = time.perf_counter()
        own = SendingStream(sender)
        await asyncio.wait_for(own.synced.wait(), 60)
        if wanted("latency_1_per_s"):
            server_before = await send_seconds_total(base)
            result["latency_1_per_s"], samples["latency_1_per_s"] = await latency_phase(
                receivers, own.send, group, SLOW_RATE, SLOW_SECONDS
            )
            # The send's own path in the server (queue, checks, statements, commit), without
            # the fan-out and the receivers: the share of the latency the store decides.
            result["latency_1_per_s"]["server_ms_per_send_mean"] = server_ms_per_send(
                server_before, await send_seconds_total(base)
            )
            if activity:  # the database's work for 100 connected users and one sender at 1/s
                result["latency_1_per_s"]["postgresql"] = pg_rates(
                    activity, await pg_activity(pg, schema_name), time.perf_counter() - started
                )
        if wanted("latency_20_per_s"):
            result["latency_20_per_s"], samples["latency_20_per_s"] = await latency_phase(
                receivers, own.send, group, FAST_RATE, FAST_SECONDS
            )
        await own.close()
        if wanted("latency_1_per_s_http"):  # the same, each send an HTTP request
            result["latency_1_per_s_http"], samples["latency_1_per_s_http"] = await latency_phase(
                receivers, sender.send_raw, group, SLOW_RATE, SLOW_SECONDS
            )
        receivers.group = flood_group
        if wanted("senders_10_flat_out"):  # each sender sends through its own stream
            streams = [SendingStream(c) for c in senders]
            await asyncio.wait_for(asyncio.gather(*(s.synced.wait() for s in streams)), 60)
            result["senders_10_flat_out"], samples["senders_10_flat_out"] = await flat_out_phase(
                base, proc.pid, receivers, [s.send for s in streams], flood_group
            )
            for s in streams:
                await s.close()
        if wanted("senders_10_flat_out_http"):
            result["senders_10_flat_out_http"], _ = await flat_out_phase(
                base, proc.pid, receivers, [c.send_raw for c in senders], flood_group
            )
        await receivers.close()
        if wanted("concurrent_sends"):
            result["concurrent_sends"] = await concurrent_sends_phase(
                base, proc.pid, senders, flood_group
            )
        if wanted("send_cost_2_vs_1250"):
            result["send_cost_2_vs_1250"] = await send_cost_phase(sender, small, big)
        if wanted("e2e_send_1250"):
            result["e2e_send_1250"] = await e2e_send_phase(base, big)
        if wanted("add_1250th_member"):
            result["add_1250th_member"] = await add_member_phase(
                sender, almost_full, users[BIG_GROUP - 1]
            )
        result["server_rss_mb"] = {
            "rss_mb": rss_mb(proc.pid),
            "anonymous_mb": rss_mb(proc.pid, "RssAnon"),
            "after_sync_mb": rss_synced,
            "at_start_mb": rss_start,
        }
        result["load_1min_end"] = load_average()
        result["samples_ms"] = {k: [round(v * 1000, 3) for v in s] for k, s in samples.items()}
        return result
    finally:
        for c in clients:
            await c.aclose()
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=60)
        proc.terminate()
        proc.wait(timeout=20)
        await drop_schema(pg, schema_name)


# -- report ----------------------------------------------------------------------------------

ROWS: list[tuple[str, Callable[[dict[str, Any]], str], str]] = [
    (
        "1 msg/s, 100 receivers: send→deliver p50 / p99",
        lambda r: f"{r['latency_1_per_s']['p50_ms']} / {r['latency_1_per_s']['p99_ms']} ms",
        "≤ 5 / 15 ms",
    ),
    (
        "same, the server's own time of each send (mean; the fan-out not included)",
        lambda r: f"{r['latency_1_per_s']['server_ms_per_send_mean']} ms",
        "",
    ),
    (
        "same, each send an HTTP request instead (p50 / p99)",
        lambda r: (
            f"{r['latency_1_per_s_http']['p50_ms']} / {r['latency_1_per_s_http']['p99_ms']} ms"
        ),
        "",
    ),
    (
        "same, when the bytes reached each receiving socket (the kernel's receive timestamp, "
        "not waiting for the bench's one process to read them; p50 / p99)",
        lambda r: (
            f"{r['latency_1_per_s']['in_socket']['p50_ms']} / "
            f"{r['latency_1_per_s']['in_socket']['p99_ms']} ms"
        ),
        "",
    ),
    (
        "same (over the stream), after the bench's own handling of the frame (p50 / p99)",
        lambda r: (
            f"{r['latency_1_per_s']['handled_by_bench']['p50_ms']} / "
            f"{r['latency_1_per_s']['handled_by_bench']['p99_ms']} ms"
        ),
        "",
    ),
    (
        "20 msg/s, 100 receivers: send→deliver p50 / p99",
        lambda r: f"{r['latency_20_per_s']['p50_ms']} / {r['latency_20_per_s']['p99_ms']} ms",
        "",
    ),
    (
        "10 senders flat out: accepted msgs/s (deliveries/s)",
        lambda r: (
            f"{r['senders_10_flat_out']['accepted_per_s']:.0f} "
            f"({r['senders_10_flat_out']['deliveries_per_s']:,.0f})"
        ),
        "≥ 250 (27,500)",
    ),
    (
        "same, each send an HTTP request instead",
        lambda r: (
            f"{r['senders_10_flat_out_http']['accepted_per_s']:.0f} "
            f"({r['senders_10_flat_out_http']['deliveries_per_s']:,.0f})"
        ),
        "",
    ),
    (
        "server time of one send under 10 concurrent senders (mean)",
        lambda r: f"{r['senders_10_flat_out']['server_ms_per_send_mean']} ms",
        "PG ≤ 2× SQLite",
    ),
    (
        "server time of one send, 10 concurrent senders, no receivers (mean)",
        lambda r: f"{r['concurrent_sends']['server_ms_per_send_mean']} ms",
        "PG ≤ 2× SQLite",
    ),
    (
        "same, the send request as the client sees it (p50; queueing included)",
        lambda r: f"{r['concurrent_sends']['send_request']['p50_ms']} ms",
        "",
    ),
    (
        "server CPU per message: with 100 receivers / without",
        lambda r: (
            f"{r['senders_10_flat_out']['server_cpu_ms_per_message']} / "
            f"{r['concurrent_sends']['server_cpu_ms_per_send']} ms"
        ),
        "",
    ),
    (
        "bench process CPU per message, flat out (its 100 receivers and 10 senders)",
        lambda r: f"{r['senders_10_flat_out']['bench_cpu_ms_per_message']} ms",
        "",
    ),
    (
        "send into 2 / 1,250 members: p50",
        lambda r: (
            f"{r['send_cost_2_vs_1250']['members_2']['p50_ms']} / "
            f"{r['send_cost_2_vs_1250']['members_1250']['p50_ms']} ms"
        ),
        "",
    ),
    (
        "E2E send into 1,250 members (SDK): p50; HTTP requests per send",
        lambda r: (
            f"{r['e2e_send_1250']['p50_ms']} ms; {r['e2e_send_1250']['http_requests_per_send']}"
        ),
        "",
    ),
    (
        "reading the 1,250 members' list (each E2E send did, before): p50",
        lambda r: f"{r['e2e_send_1250']['member_list_read_p50_ms']} ms",
        "",
    ),
    (
        "adding the 1,250th member: p50",
        lambda r: f"{r['add_1250th_member']['p50_ms']} ms",
        "≤ 20 ms",
    ),
    (
        "100 open streams, nothing sent: server CPU per stream and minute (streams per CPU)",
        lambda r: (
            f"{r['idle_streams']['cpu_ms_per_stream_per_minute']} ms "
            f"({r['idle_streams']['streams_per_cpu']:,})"
        ),
        "",
    ),
    ("server RSS after the run", lambda r: f"{r['server_rss_mb']['rss_mb']} MB", "≤ 120 MB"),
]


def _cell(cell: Callable[[dict[str, Any]], str], run: dict[str, Any]) -> str:
    """A table cell; '–' for a run from an older bench that lacks the workload."""
    try:
        return cell(run)
    except KeyError:
        return "–"


def table(runs: dict[str, dict[str, Any]]) -> str:
    names = list(runs)
    lines = [
        "| workload | " + " | ".join(names) + " | goal (both) |",
        "|---|" + "---|" * len(names) + "---|",
    ]
    for label, cell, goal in ROWS:
        lines.append(
            f"| {label} | " + " | ".join(_cell(cell, runs[n]) for n in names) + f" | {goal} |"
        )
    loads = ", ".join(
        f"{n}: {r['latency_1_per_s']['load_1min']}→{r['load_1min_end']}" for n, r in runs.items()
    )
    lines.append("")
    lines.append(f"Load average (1 min) at start→end of each run, {os.cpu_count()} CPUs: {loads}.")
    machines = [(n, r["machine"]) for n, r in runs.items() if "machine" in r]
    if machines:
        lines.append("")
        lines.append(
            "The machine of each run (`machine_probe`): "
            + "; ".join(
                f"{n}: a 10M-step Python loop {m['python_loop_10m_s']} s, a loopback round "
                f"trip between two processes {m['wakeup_rtt_after_idle_ms']} ms after 1 s "
                f"idle, {m['wakeup_rtt_busy_ms']} ms back to back"
                + (
                    f", a write to a page of memory untouched for 1 s "
                    f"{m['page_touch_after_rest_us']} µs, {m['page_touch_busy_us']} µs back to "
                    "back"
                    if "page_touch_after_rest_us" in m
                    else ""
                )
                for n, m in machines
            )
            + ". At 1 msg/s every hop (bench → server → receivers) starts from idle, and a "
            "send's code and data have rested for a second."
        )
    return "\n".join(lines)


def plot(runs: dict[str, dict[str, Any]], directory: Path) -> list[Path]:
    """CDFs of send→deliver latency per phase, one line per database."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    titles = {
        "latency_1_per_s": "1 msg/s, 100 receivers",
        "latency_20_per_s": "20 msg/s, 100 receivers",
        "senders_10_flat_out": "10 senders flat out, 100 receivers",
    }
    for phase, title in titles.items():
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, result in runs.items():
            values = sorted(result.get("samples_ms", {}).get(phase, []))
            if not values:
                continue
            fractions = [(i + 1) / len(values) for i in range(len(values))]
            ax.plot(values, fractions, label=name)
        ax.set_xscale("log")
        ax.set_xlabel("send → deliver (ms, log scale)")
        ax.set_ylabel("fraction of deliveries")
        ax.set_title(f"Messenger: {title}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        path = directory / f"bench_messenger_{phase}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        made.append(path)
    return made


def save(runs: dict[str, dict[str, Any]]) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"goals": GOALS, "runs": runs}, indent=2) + "\n")
    plots = plot(runs, RESULTS_DIR)
    SUMMARY.write_text(
        "# Messenger benchmark\n\n"
        "Shapes of the Synapse comparison; `make bench` (PostgreSQL + Redis when "
        "MEDBRIDGE_BENCH_PG and MEDBRIDGE_BENCH_REDIS are set). Server and clients share "
        "the machine.\n\n"
        + table(runs)
        + "\n\n"
        + "".join(f"![{p.stem}]({p.name})\n" for p in plots)
    )


def main() -> None:
    """SQLite always; PostgreSQL + Redis as well when MEDBRIDGE_BENCH_PG is set."""
    pg = os.environ.get("MEDBRIDGE_BENCH_PG")
    redis = os.environ.get("MEDBRIDGE_BENCH_REDIS")
    only = os.environ.get("MEDBRIDGE_BENCH_ONLY")  # "sqlite" or "postgresql+redis"
    runs: dict[str, dict[str, Any]] = {}
    if RESULTS.exists():  # keep the other database's last run when only one runs now
        runs = json.loads(RESULTS.read_text()).get("runs", {})
    targets: list[tuple[str | None, str | None]] = [(None, None)]
    if pg:
        targets.append((pg, redis))
    done: set[str] = set()
    for target_pg, target_redis in targets:
        name = "postgresql+redis" if target_pg else "sqlite"
        if only and only != name:
            continue
        with tempfile.TemporaryDirectory(prefix="medbridge-bench-") as tmp:
            runs[name] = asyncio.run(run(Path(tmp), target_pg, target_redis))
            done.add(name)
    if os.environ.get("MEDBRIDGE_BENCH_PHASES"):  # a partial run is for looking, not keeping
        shown = {n: {k: v for k, v in r.items() if k != "samples_ms"} for n, r in runs.items()}
        print(json.dumps({n: shown[n] for n in done}, indent=1))
        return
    save(runs)
    print(table(runs))


if __name__ == "__main__":
    main()
