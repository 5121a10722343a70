"""Throwaway services for the chaos battery and the scale test: PostgreSQL, Redis, messenger
nodes and HAProxy, each on free loopback ports in a scratch directory, each restartable and
killable on purpose. Nothing here touches the machine's own PostgreSQL or Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
HAPROXY_EXAMPLE = ROOT / "deploy" / "haproxy.cfg"
PG_BIN_DIRS = (Path("/usr/local/bin"), *sorted(Path("/usr/lib/postgresql").glob("*/bin")))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tool(name: str) -> str:
    found = shutil.which(name) or next(
        (str(d / name) for d in PG_BIN_DIRS if (d / name).exists()), None
    )
    if found is None:
        raise RuntimeError(f"{name} is not installed")
    return found


class Postgres:
    """A private PostgreSQL cluster (trust auth, loopback). fsync is off, which a crash of the
    server process (not of the machine) cannot notice; commits stay synchronous, so a crash
    loses no accepted message. As root it runs as the `postgres` user, as PostgreSQL requires."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "pg"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = list(args)
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            os.chmod(self.dir.parent, 0o755)
        self._run(
            _tool("initdb"),
            "-D",
            str(self.dir / "data"),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=200"
        )
        self._run(
            _tool("pg_ctl"),
            "-D",
            str(self.dir / "data"),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """`immediate` is a crash: every backend ends without a clean shutdown."""
        self._run(_tool("pg_ctl"), "-D", str(self.dir / "data"), "-m", mode, "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class Replica(Postgres):
    """A streaming hot standby of `primary` (pg_basebackup -R), for measuring replication lag:
    how far behind a read replica would be while the primary takes the load."""

    def __init__(self, workdir: Path, primary: Postgres) -> None:
        super().__init__(workdir)
        self.dir = workdir / "pg-replica"
        self.primary = primary

    def init(self) -> None:
        self.dir.mkdir(parents=True)
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self._run(
            _tool("pg_basebackup"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            "postgres",
            "-D",
            str(self.dir / "data"),
            "-R",
            "-X",
            "stream",
        )
        self.start()


class Redis:
    """redis-server on a free port, no persistence (pub/sub and counters only)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                _tool("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def close(self) -> None:
        self.kill()


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL if the process is not gone within 10 s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


class MessengerNode:
    """`medbridge messenger serve` as a subprocess; kill -9 and restart on the same port."""

    def __init__(
        self, name: str, db_url: str, redis_url: str | None, workdir: Path, channel: str
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url = db_url
        self.redis_url = redis_url
        self.workdir = workdir
        self.channel = channel
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def metadata_keys(self) -> Path:
        return self.workdir / "metadata-keys.json"

    def start(self) -> None:
        cmd = [
            sys.executable,
            "-m",
            "bridge.cli",
            "messenger",
            "--db",
            self.db_url,
            "--metadata-keys",
            str(self.metadata_keys),
            "--redis-channel",
            self.channel,
        ]
        if self.redis_url:
            cmd += ["--redis", self.redis_url]
        cmd += [
            "serve",
            "--port",
            str(self.port),
            "--blob-dir",
            str(self.workdir / "blobs"),
            "--node-name",
            self.name,
            "--log-level",
            "warning",
            "--trusted-proxy",
            "127.0.0.1",
        ]
        log = (self.workdir / f"node-{self.name}.log").open("ab")
        env = {**os.environ, "XDG_DATA_HOME": str(self.workdir / "data")}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)

    async def ready(self, timeout: float = 60.0) -> None:
        await wait_ready(self.url, timeout, self.proc)

    def kill(self) -> None:
        """kill -9: no shutdown, open WebSockets and requests cut mid-way."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def close(self) -> None:
        stop(self.proc)


async def wait_ready(
    url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{url}: the server exited with {proc.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not become ready in {timeout} s")


# -- HAProxy ----------------------------------------------------------------------------------

_SECTION = re.compile(r"^(global|defaults|frontend|backend|listen|resolvers|peers)\b")


def render_haproxy(
    template: str, *, bind: str, servers: Sequence[tuple[str, str]], stats_bind: str | None = None
) -> str:
    """The example config with this deployment's addresses: the `bind` of the `messenger`
    frontend, the `server` lines of the `messenger_nodes` backend (one per (name, host:port),
    each with the options of the example's first server line) and, if given, the stats bind.
    Everything else (timeouts, health checks, balancing) stays as the example has it.
    """
    out: list[str] = []
    section = ""
    server_options: str | None = None
    emitted = False
    for line in template.splitlines():
        stripped = line.strip()
        if _SECTION.match(stripped):
            section = stripped
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        if section == "frontend messenger" and stripped.startswith("bind "):
            rest = stripped.split(None, 2)[2] if len(stripped.split(None, 2)) > 2 else ""
            out.append(f"{indent}bind {bind} {rest}".rstrip())
            continue
        if section == "listen stats" and stripped.startswith("bind ") and stats_bind:
            out.append(f"{indent}bind {stats_bind}")
            continue
        if section == "backend messenger_nodes" and stripped.startswith("server "):
            if server_options is None:
                parts = stripped.split(None, 3)
                server_options = parts[3] if len(parts) > 3 else ""
            if not emitted:
                for name, address in servers:
                    out.append(f"{indent}server {name} {address} {server_options}".rstrip())
                emitted = True
            continue
        out.append(line)
    if not emitted:
        raise ValueError("the template has no server line in `backend messenger_nodes`")
    return "\n".join(out) + "\n"


class HAProxy:
    """haproxy in the foreground (-db) with a config rendered from deploy/haproxy.cfg."""

    def __init__(self, workdir: Path, servers: Sequence[tuple[str, str]]) -> None:
        self.port = free_port()
        self.stats_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / "haproxy.cfg"
        self.config.write_text(
            render_haproxy(
                HAPROXY_EXAMPLE.read_text(encoding="utf-8"),
                bind=f"127.0.0.1:{self.port}",
                servers=servers,
                stats_bind=f"127.0.0.1:{self.stats_port}",
            ),
            encoding="utf-8",
        )
        self.log = workdir / "haproxy.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        if not Path(haproxy).exists():
            raise RuntimeError("haproxy is not installed (make scale-test installs it)")
        subprocess.run([haproxy, "-c", "-q", "-f", str(self.config)], check=True)
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            [haproxy, "-db", "-f", str(self.config)], stdout=log, stderr=log
        )
        wait_for_port(self.port)

    def close(self) -> None:
        stop(self.proc)
