"""kill -9 of the bridge at random points, then restart: every mail posted exactly once.

Each run delivers one mail to the boss's inbox, starts `medbridge bridge run` as a subprocess
and kills it with SIGKILL after a random delay (startup, sync, recording, sending, marking sent
all get hit). A last worker then finishes the work. Exactly once is checked twice: by the
mapping table (one link per mail) and by the messenger history as the assistant's device
decrypts it (one message per mail). `MEDBRIDGE_CHAOS_RUNS` sets the number of runs (20 by
default, `make chaos` runs 200); `MEDBRIDGE_CHAOS_SEED` repeats a failed sequence.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable

import pytest

from med import Address, DelegateSession, Message
from tests.e2e.bridge_harness import (
    ASSISTENZ,
    CHEF,
    CHEF_INBOX_TO_ASSISTENZ,
    SACHBEARBEITUNG,
    BridgeRig,
    until_async,
    wait_until_watching,
)

# Read at import: the test suite's autouse fixtures clear MEDBRIDGE_* before each test.
RUNS = int(os.environ.get("MEDBRIDGE_CHAOS_RUNS", "20"))
SEED = int(os.environ.get("MEDBRIDGE_CHAOS_SEED", str(random.randrange(1 << 30))))


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
    for subject in subjects:
        await assistenz.wait_for(subject, timeout=120)
    store = await rig.store()
    try:

        async def drained() -> bool:
            return (await store.outbox_counts()).get("pending", 0) == 0

        await until_async(drained, 60)
        links = await store.links()
        counts = await store.outbox_counts()
    finally:
        await store.close()
    assert counts == {"sent": runs}, f"seed {seed}"
    assert len(links) == runs
    assert len({(link.conversation_id, link.seq) for link in links}) == runs
    duplicates = {s: n for s in subjects if (n := len(assistenz.containing(s))) != 1}
    assert not duplicates, f"seed {seed}: posted more than once: {duplicates}"
    # The server's history of the conversation: one message per mail, nothing else.
    conversation = links[0].conversation_id
    history = await assistenz.client.history(conversation, limit=1000)
    messages = [e for e in history if e.get("type") == "message"]
    assert len(messages) == runs, f"seed {seed}"
    assert sorted(int(m["seq"]) for m in messages) == sorted(link.seq for link in links)
