"""The notification bridge under faults: every mail posted exactly once.

kill -9 at random points: each run delivers one mail to the boss's inbox, starts `medbridge
bridge run` as a subprocess and kills it with SIGKILL after a random delay (startup, sync,
recording, sending, marking sent all get hit). A last worker then finishes the work.

Lab throttling and outages during sync: a pull worker syncs while the lab throttles the
bridge's account and then stops answering (503) for a random time, round after round; mails
arrive before and after each outage.

Exactly once is checked twice: by the mapping table (one link per mail) and by the messenger
history as the assistant's device decrypts it (one message per mail).
`MEDBRIDGE_CHAOS_RUNS` sets the number of kill -9 runs (20 by default, `make chaos` runs 200)
and, divided by 40, the outage rounds (at least 2); `MEDBRIDGE_CHAOS_SEED` repeats a failed
sequence; with `MEDBRIDGE_CHAOS_REPORT` each test appends its counts (a JSON line) to that
file, which `make chaos` prints in its table.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from med import Address, DelegateSession, Message
from tests.e2e.bridge_harness import (
    ASSISTENZ,
    CHEF,
    CHEF_INBOX_TO_ASSISTENZ,
    SACHBEARBEITUNG,
    BridgeRig,
    ChatUser,
    assert_posted_once,
    until,
    wait_until_watching,
)
from tests.lab.conftest import LabServer

# Read at import: the test suite's autouse fixtures clear MEDBRIDGE_* before each test.
RUNS = int(os.environ.get("MEDBRIDGE_CHAOS_RUNS", "20"))
SEED = int(os.environ.get("MEDBRIDGE_CHAOS_SEED", str(random.randrange(1 << 30))))
REPORT = os.environ.get("MEDBRIDGE_CHAOS_REPORT")
OUTAGE_ROUNDS = max(2, RUNS // 40)


def counts(user: ChatUser, subjects: list[str]) -> tuple[int, int]:
    """(losses, duplicates) of these subjects among what the user's device decrypted."""
    seen = [len(user.containing(s)) for s in subjects]
    return sum(1 for n in seen if n == 0), sum(n - 1 for n in seen if n > 1)


async def wait_all(user: ChatUser, subjects: list[str], timeout: float) -> float | None:
    """Seconds until every subject arrived at least once; None if some never did."""
    started = time.monotonic()
    while any(not user.containing(s) for s in subjects):
        if time.monotonic() - started > timeout:
            return None
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def report(row: dict[str, Any]) -> None:
    if REPORT:
        with Path(REPORT).open("a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")


@pytest.mark.slow
async def test_kill_9_at_random_points_posts_every_mail_exactly_once(
    rig: BridgeRig, session_for: Callable[..., DelegateSession]
) -> None:
    runs, seed = RUNS, SEED
    rng = random.Random(seed)
    assistenz = await rig.chat_user(ASSISTENZ)
    configs = [
        rig.write_config(
            rules=CHEF_INBOX_TO_ASSISTENZ, mode="pull", poll_seconds=0.2, name="pull.toml"
        ),
        rig.write_config(
            rules=CHEF_INBOX_TO_ASSISTENZ, mode="streaming", poll_seconds=2, name="streaming.toml"
        ),
    ]
    lena = session_for(SACHBEARBEITUNG)

    first = rig.spawn(configs[0], "w1")
    await wait_until_watching(rig)
    rig.kill(first)

    subjects = [f"Chaosprobe {i:03d} (seed {seed})" for i in range(runs)]
    for subject in subjects:
        await lena.send(Message(subject=subject, body="kill -9", to=(Address(CHEF),)))
        process = rig.spawn(rng.choice(configs), "w1")
        await asyncio.sleep(rng.uniform(0.3, 4.0))
        rig.kill(process)

    rig.spawn(configs[0], "w1")
    # Every mail arrives; then nothing more (the outbox is empty and the links are final).
    catch_up = await wait_all(assistenz, subjects, 120 + runs)
    await asyncio.sleep(1.0)  # a late repeat would show now
    losses, duplicates = counts(assistenz, subjects)
    report(
        {
            "scenario": "bridge kill -9 at random points",
            "rounds": runs,
            "sent": runs,
            "deliveries": sum(len(assistenz.containing(s)) for s in subjects),
            "losses": losses,
            "duplicates": duplicates,
            "never_accepted": 0,
            "strays": 0,
            "recovery_s": [None if catch_up is None else round(catch_up, 3)],
            "recovery_p50_s": None if catch_up is None else round(catch_up, 3),
            "recovery_max_s": None if catch_up is None else round(catch_up, 3),
            "recovery_means": "last worker's start → every mail posted",
        }
    )
    assert losses == 0, f"seed {seed}: {losses} mails never posted"
    assert duplicates == 0, f"seed {seed}: {duplicates} mails posted more than once"
    await assert_posted_once(rig, assistenz, runs)


@pytest.mark.slow
async def test_lab_throttling_and_outage_during_sync_posts_every_mail_exactly_once(
    rig: BridgeRig, lab: LabServer, session_for: Callable[..., DelegateSession]
) -> None:
    rng = random.Random(SEED)
    assistenz = await rig.chat_user(ASSISTENZ)
    config = rig.write_config(rules=CHEF_INBOX_TO_ASSISTENZ, mode="pull", poll_seconds=0.2)
    lena = session_for(SACHBEARBEITUNG)
    knobs = lab.lab.knobs
    subjects: list[str] = []
    recoveries: list[float | None] = []
    async with rig.worker(config):
        await wait_until_watching(rig)
        for round_no in range(OUTAGE_ROUNDS):
            # The bridge's account gets a small budget: every sync of the round is throttled.
            knobs.throttle_window_s = 1.0
            knobs.throttle_back_off_ms = 300
            knobs.throttle_budget = {ASSISTENZ: 2}
            refused_before = knobs.throttled
            batch = [f"Ausfall {round_no}.{i} (seed {SEED})" for i in range(6)]
            subjects += batch
            for subject in batch[:3]:
                await lena.send(Message(subject=subject, body="Stapel", to=(Address(CHEF),)))
            # Polls every 0.2 s meet the budget within a second; waited for, so that the round
            # is throttled on a machine fast enough to finish the sends before the third poll.
            await until(lambda before=refused_before: knobs.throttled > before, 30, lambda: knobs)
            await asyncio.sleep(rng.uniform(0.0, 1.5))  # mid-sync
            knobs.outage = True
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            knobs.outage = False
            restored = time.monotonic()
            for subject in batch[3:]:
                await lena.send(Message(subject=subject, body="Stapel", to=(Address(CHEF),)))
            took = await wait_all(assistenz, batch, 90)
            recoveries.append(None if took is None else time.monotonic() - restored)
            knobs.throttle_budget = {}
        await asyncio.sleep(1.0)  # a late repeat would show now
        losses, duplicates = counts(assistenz, subjects)
        known = [r for r in recoveries if r is not None]
        report(
            {
                "scenario": "lab throttling + outage during sync",
                "rounds": OUTAGE_ROUNDS,
                "sent": len(subjects),
                "deliveries": sum(len(assistenz.containing(s)) for s in subjects),
                "losses": losses,
                "duplicates": duplicates,
                "never_accepted": 0,
                "strays": 0,
                "throttled": knobs.throttled,
                "recovery_s": [None if r is None else round(r, 3) for r in recoveries],
                "recovery_p50_s": round(statistics.median(known), 3) if known else None,
                "recovery_max_s": round(max(known), 3) if known else None,
                "unrecovered": len(recoveries) - len(known),
                "recovery_means": "lab back → every mail of the round posted",
            }
        )
        assert losses == 0, f"seed {SEED}: {losses} mails never posted"
        assert duplicates == 0, f"seed {SEED}: {duplicates} mails posted more than once"
        await assert_posted_once(rig, assistenz, len(subjects))
