"""Two notification-bridge workers in the scale test: `medbridge bridge run` subprocesses
sharing chef's and the Poststelle's inboxes by lease (bridge tables in the test's PostgreSQL),
posting through HAProxy to the assistant, whose E2E device counts what it decrypts. One worker
is killed with SIGKILL mid-run; its mailbox moves to the other after the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.bench_bridge import Receiver
from bench.cluster import ROOT
from bridge.demo import DEMO_DOMAIN, DEMO_PASSWORD_ENV, LabThread, demo_profile
from exlab.demo import DEMO_PASSWORD
from med import Address, DelegateSession, Message

CHEF = f"chef@{DEMO_DOMAIN}"
POSTSTELLE = f"poststelle@{DEMO_DOMAIN}"
ASSISTENZ = f"assistenz@{DEMO_DOMAIN}"
LEASE_SECONDS = 4.0


def bridge_toml(ews_url: str, messenger_url: str, db_url: str, schema: str, data: Path) -> str:
    identity = (
        f'server = "{ews_url}"\nauth = "basic"\nversion = "Exchange2016"\nmax_wait_s = 5.0\n'
        f'password_env = "{DEMO_PASSWORD_ENV}"\n'
    )
    return f"""
[bridge]
database = "{db_url}"
database_schema = "{schema}"
data_dir = "{data}"
mode = "pull"
poll_seconds = 0.5
lease_seconds = {LEASE_SECONDS}

[messenger]
server = "{messenger_url}"
user = "bridge@{DEMO_DOMAIN}"
password_env = "{DEMO_PASSWORD_ENV}"
key_strength = "interactive"

[identities.assistenz]
user = "{ASSISTENZ}"
{identity}
[identities.chef]
user = "{CHEF}"
{identity}
[[watch]]
mailbox = "{CHEF}"
folders = ["inbox"]
identity = "assistenz"
rights_identity = "chef"

[[watch]]
mailbox = "{POSTSTELLE}"
folders = ["inbox"]
identity = "assistenz"
kind = "functional"

[[rule]]
name = "all"
to = ["user:{ASSISTENZ}"]
"""


class BridgeFleet:
    """Two workers, the lab they watch and the assistant they post to."""

    def __init__(self, workdir: Path, messenger_url: str, db_url: str) -> None:
        self.workdir = workdir
        self.lab = LabThread(workdir / "lab.sqlite")
        self.messenger_url = messenger_url
        self.db_url = db_url
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.assistant = Receiver(messenger_url)

    async def start(self) -> None:
        import asyncpg

        self.lab.start()
        conn = await asyncpg.connect(self.db_url)
        try:
            await conn.execute("CREATE SCHEMA IF NOT EXISTS bridge")
        finally:
            await conn.close()
        self.config = self.workdir / "bridge.toml"
        self.config.write_text(
            bridge_toml(
                self.lab.ews_url, self.messenger_url, self.db_url, "bridge", self.workdir / "bd"
            ),
            encoding="utf-8",
        )
        await self.assistant.start()
        for worker_id in ("w1", "w2"):
            self.spawn(worker_id)
        self.sender = DelegateSession.open(
            demo_profile(self.lab.ews_url, f"sachbearbeitung@{DEMO_DOMAIN}"),
            password=DEMO_PASSWORD,
        )
        # Ready when a probe mail to each watched inbox has reached the assistant.
        probes = [f"Bereit {box}" for box in (CHEF, POSTSTELLE)]
        for box, subject in zip((CHEF, POSTSTELLE), probes, strict=True):
            await asyncio.sleep(3)  # past the workers' baseline of the folders
            await self.sender.send(Message(subject=subject, body="probe", to=(Address(box),)))
        await self.wait(probes, 120)

    def spawn(self, worker_id: str) -> None:
        env = {**os.environ, DEMO_PASSWORD_ENV: DEMO_PASSWORD, "PYTHONPATH": str(ROOT)}
        log = (self.workdir / f"bridge-{worker_id}.log").open("ab")
        self.workers[worker_id] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge.cli",
                "bridge",
                "run",
                "--config",
                str(self.config),
                "--worker-id",
                worker_id,
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def kill(self, worker_id: str) -> None:
        process = self.workers[worker_id]
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)

    async def wait(self, subjects: list[str], timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while any(self.assistant.seen[s] == 0 for s in subjects):
            if time.perf_counter() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    async def mail_run(self, seconds: float, kill_after: float | None) -> dict[str, Any]:
        """Mail both inboxes (5 a second) for `seconds`, kill -9 worker w2 after `kill_after`;
        count what the assistant decrypted, and how long mails sent after the kill took."""
        sent_at: dict[str, float] = {}
        started = time.perf_counter()
        killed_at: float | None = None
        n = 0
        while time.perf_counter() - started < seconds:
            now = time.perf_counter()
            if kill_after is not None and killed_at is None and now - started >= kill_after:
                self.kill("w2")
                killed_at = now
            box = (CHEF, POSTSTELLE)[n % 2]
            subject = f"Skalierung {n:04d} an {box}"
            await self.sender.send(Message(subject=subject, body="Last", to=(Address(box),)))
            sent_at[subject] = time.perf_counter()
            n += 1
            await asyncio.sleep(0.2)
        complete = await self.wait(list(sent_at), 120)
        await asyncio.sleep(1.0)  # a late repeat would show now
        seen, first = self.assistant.seen, self.assistant.arrived
        after_kill = [
            first[s] - t for s, t in sent_at.items() if killed_at and t >= killed_at and s in first
        ]
        return {
            "workers": len(self.workers),
            "mails": len(sent_at),
            "posted": sum(seen[s] for s in sent_at),
            "losses": sum(1 for s in sent_at if seen[s] == 0),
            "duplicates": sum(max(0, seen[s] - 1) for s in sent_at),
            "complete": complete,
            "lease_seconds": LEASE_SECONDS,
            "worker_killed": killed_at is not None,
            "delay_after_kill_max_s": round(max(after_kill), 2) if after_kill else None,
        }

    async def close(self) -> None:
        for worker_id in list(self.workers):
            self.kill(worker_id)
        await self.assistant.close()
        with contextlib.suppress(Exception):
            await self.sender.close()
        self.lab.stop()
