"""A sliding replay window over message counters: each counter is accepted at most once.

Counters above the highest seen are accepted (the window slides); counters inside the window are
accepted once; counters below it are refused, since nobody remembers whether they were seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from messenger.crypto._errors import ReplayError

DEFAULT_WINDOW = 128


@dataclass
class ReplayWindow:
    size: int = DEFAULT_WINDOW
    highest: int = -1
    seen: set[int] = field(default_factory=set)

    def check(self, counter: int) -> None:
        """Raise ReplayError if `counter` was accepted before or fell out of the window."""
        if counter < 0:
            raise ReplayError("negative message counter")
        if counter > self.highest:
            return
        if counter <= self.highest - self.size:
            raise ReplayError(f"message {counter} is older than the replay window")
        if counter in self.seen:
            raise ReplayError(f"message {counter} was already received")

    def accept(self, counter: int) -> None:
        """Record `counter` as used; call only after the message authenticated."""
        self.check(counter)
        self.seen.add(counter)
        if counter > self.highest:
            self.highest = counter
            floor = counter - self.size
            self.seen = {c for c in self.seen if c > floor}
