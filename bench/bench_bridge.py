"""Notification bridge benchmark: mail→messenger latency (streaming and pull) and sustained
notifications per second of one worker.

The lab (demo organisation) and the messenger (SQLite) run in this process on loopback; the
bridge worker runs in this process's event loop beside the assistant's E2E client, which
decrypts what arrives. Latency is measured from the moment the mail is in chef's inbox (the
send returned) to the moment the assistant's device has decrypted the notification.
Throughput: mails delivered while the worker is stopped, then the time the restarted worker
needs to post them all (catch-up from the saved sync state).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from bridge.demo import (
    DEMO_DOMAIN,
    LabThread,
    MessengerThread,
    demo_bridge_config,
    demo_profile,
)
from bridge.notify import BridgeWorker, MailboxState
from exlab.demo import DEMO_PASSWORD
from med import Address, DelegateSession, Message
from messenger.client import MessengerClient
from messenger.client.e2e import DecryptedMessage, E2ESession
from messenger.crypto import DeviceKeys

RESULTS = Path(__file__).parent / "results" / "bridge.json"
LATENCY_MAILS = 30
THROUGHPUT_MAILS = 100
CHEF = f"chef@{DEMO_DOMAIN}"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Receiver:
    """The assistant's device: records when each notification was first decrypted, and how
    often each arrived (a repeat is a duplicate)."""

    def __init__(self, url: str) -> None:
        self.client = MessengerClient(url)
        self.arrived: dict[str, float] = {}
        self.seen: Counter[str] = Counter()
        self.changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.client.login(f"assistenz@{DEMO_DOMAIN}", DEMO_PASSWORD)
        assert self.client.user_id is not None
        keys = DeviceKeys.generate(self.client.user_id, uuid.uuid4().hex)
        self.e2e = E2ESession.for_client(self.client, keys)
        await self.e2e.register_device("bench")
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async with self.client.events() as stream:
            async for event in stream:
                for result in await self.e2e.handle_event(event):
                    if isinstance(result, DecryptedMessage):
                        subject = next(
                            (
                                ln[9:]
                                for ln in result.body.splitlines()
                                if ln.startswith("Subject: ")
                            ),
                            "",
                        )
                        self.arrived.setdefault(subject, time.perf_counter())
                        self.seen[subject] += 1
                        self.changed.set()

    async def wait(self, subjects: set[str], timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not subjects <= self.arrived.keys():
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(subjects - self.arrived.keys())} notifications missing")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await self.client.aclose()


async def _running(worker: BridgeWorker, task: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + 60
    while worker.board.mailboxes.get(CHEF) is None or (
        worker.board.mailboxes[CHEF].state is not MailboxState.RUNNING
    ):
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise TimeoutError("the bridge did not start watching")
        await asyncio.sleep(0.05)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def latency(
    lab: LabThread,
    chat: MessengerThread,
    receiver: Receiver,
    lena: DelegateSession,
    tmp: Path,
    mode: str,
) -> dict[str, Any]:
    config = demo_bridge_config(lab.ews_url, chat.url, tmp / f"bridge-{mode}", mode=mode)
    worker = BridgeWorker(config)
    task = asyncio.create_task(worker.run())
    await _running(worker, task)
    samples = []
    for i in range(LATENCY_MAILS):
        subject = f"Latenz {mode} {i:03d}"
        await lena.send(Message(subject=subject, body="Messung", to=(Address(CHEF),)))
        sent = time.perf_counter()
        await receiver.wait({subject})
        samples.append(receiver.arrived[subject] - sent)
    await _stop(task)
    return {
        "mails": LATENCY_MAILS,
        "poll_seconds": config.poll_seconds,
        "p50_s": round(statistics.median(samples), 4),
        "p99_s": round(pct(samples, 99), 4),
        "max_s": round(max(samples), 4),
    }


async def throughput(
    lab: LabThread, chat: MessengerThread, receiver: Receiver, lena: DelegateSession, tmp: Path
) -> dict[str, Any]:
    config = demo_bridge_config(lab.ews_url, chat.url, tmp / "bridge-throughput", mode="pull")
    worker = BridgeWorker(config)
    task = asyncio.create_task(worker.run())
    await _running(worker, task)  # baseline taken
    await _stop(task)
    subjects = {f"Stapel {i:04d}" for i in range(THROUGHPUT_MAILS)}
    for subject in sorted(subjects):
        await lena.send(Message(subject=subject, body="Durchsatz", to=(Address(CHEF),)))
    started = time.perf_counter()
    worker = BridgeWorker(config)
    task = asyncio.create_task(worker.run())
    await receiver.wait(subjects, timeout=300)
    elapsed = time.perf_counter() - started
    await _stop(task)
    return {
        "mails": THROUGHPUT_MAILS,
        "seconds_incl_start": round(elapsed, 2),
        "events_per_s_per_worker": round(THROUGHPUT_MAILS / elapsed, 1),
    }


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        with (
            LabThread(tmp / "lab.sqlite") as lab,
            MessengerThread(tmp / "messenger", fast_hashes=True) as chat,
        ):
            receiver = Receiver(chat.url)
            await receiver.start()
            lena = DelegateSession.open(
                demo_profile(lab.ews_url, f"sachbearbeitung@{DEMO_DOMAIN}"), password=DEMO_PASSWORD
            )
            try:
                return {
                    "streaming": await latency(lab, chat, receiver, lena, tmp, "streaming"),
                    "pull": await latency(lab, chat, receiver, lena, tmp, "pull"),
                    "throughput": await throughput(lab, chat, receiver, lena, tmp),
                }
            finally:
                await lena.close()
                await receiver.close()


def main() -> None:
    results = asyncio.run(run())
    for mode in ("streaming", "pull"):
        r = results[mode]
        print(
            f"mail→messenger latency, {mode:9} ({r['mails']} mails): "
            f"p50 {r['p50_s'] * 1000:.0f} ms, p99 {r['p99_s'] * 1000:.0f} ms"
        )
    t = results["throughput"]
    print(
        f"sustained: {t['events_per_s_per_worker']} notifications/s per worker "
        f"({t['mails']} mails in {t['seconds_incl_start']} s, start included)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
