"""A lost stream waits longer each time before it tries again, up to a cap, each wait jittered."""

from __future__ import annotations

from messenger.client._client import STREAM_RETRY_MAX_S, jittered, next_stream_retry


def test_a_lost_stream_waits_longer_each_time_up_to_the_cap() -> None:
    delays = [0.1]
    for _ in range(10):
        delays.append(next_stream_retry(delays[-1]))
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8]
    assert max(delays) == STREAM_RETRY_MAX_S == delays[-1]


def test_each_wait_is_jittered_within_half_of_it() -> None:
    waits = [jittered(1.0) for _ in range(200)]
    assert all(0.5 <= w <= 1.0 for w in waits)
    assert len(set(waits)) > 1  # spread, not one value for every client
