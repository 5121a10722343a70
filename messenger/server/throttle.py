"""Failed-login throttling per (e-mail, client address), in the memory of one node.

Keyed by both so that nobody can lock a user out from elsewhere by failing on purpose; each
node counts on its own, which multiplies an attacker's budget by the node count at most.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque


class LoginThrottle:
    def __init__(
        self, max_failures: int = 5, window: float = 900.0, capacity: int = 100_000
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.capacity = capacity
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, key: tuple[str, str]) -> int | None:
        """Seconds until the next attempt is allowed, or None when it is allowed now."""
        now = time.monotonic()
        times = self._recent(key, now)
        if len(times) < self.max_failures:
            return None
        return max(1, int(times[0] + self.window - now) + 1)

    def failed(self, key: tuple[str, str]) -> None:
        now = time.monotonic()
        times = self._recent(key, now)
        times.append(now)
        self._failures[key] = times
        self._failures.move_to_end(key)
        while len(self._failures) > self.capacity:
            self._failures.popitem(last=False)

    def succeeded(self, key: tuple[str, str]) -> None:
        self._failures.pop(key, None)
