"""Loss and duplicate accounting of a messenger load run, and recovery times after faults.

Every message carries its own id (the payload); the sender records when it first tried and
when the server accepted it, each receiver records every arrival. A loss is an accepted
message some receiver never saw; a duplicate is any arrival beyond the first of a message at
one receiver (a repeated store or a replayed event alike).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class Ledger:
    receivers: list[str]
    #: message id -> (first attempt, accepted) times, in the sender's monotonic clock.
    sent: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: message ids the sender gave up on (never accepted).
    unsent: list[str] = field(default_factory=list)
    #: receiver -> message id -> arrival times.
    arrivals: dict[str, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    send_errors: int = 0

    def accepted(self, message_id: str, first_try: float, at: float) -> None:
        self.sent[message_id] = (first_try, at)

    def arrived(self, receiver: str, message_id: str, at: float) -> None:
        self.arrivals[receiver][message_id].append(at)

    def missing(self) -> dict[str, set[str]]:
        """Per receiver, the accepted messages it has not seen."""
        return {
            r: missing
            for r in self.receivers
            if (missing := set(self.sent) - set(self.arrivals[r]))
        }

    def losses(self) -> int:
        return sum(len(m) for m in self.missing().values())

    def duplicates(self) -> int:
        return sum(len(times) - 1 for r in self.receivers for times in self.arrivals[r].values())

    def strays(self) -> int:
        """Arrivals of messages never accepted (a send the client saw fail, stored anyway)."""
        return sum(1 for r in self.receivers for mid in self.arrivals[r] if mid not in self.sent)

    def complete(self) -> bool:
        return not self.missing()

    def delivered_at(self, message_id: str) -> float | None:
        """When the last receiver got the message (None while someone lacks it)."""
        times = [self.arrivals[r].get(message_id) for r in self.receivers]
        if any(not t for t in times):
            return None
        return max(t[0] for t in times if t)

    def recovery(self, fault_at: float) -> float | None:
        """Seconds from the fault until the service worked end to end again: the first message
        whose first attempt came after the fault is accepted and at every receiver. None if no
        message was tried after the fault or it never arrived everywhere."""
        after = sorted((first, mid) for mid, (first, _) in self.sent.items() if first >= fault_at)
        if not after:
            return None
        done = self.delivered_at(after[0][1])
        return None if done is None else done - fault_at

    def latencies(self) -> list[float]:
        """Accepted → arrival, every delivery (first arrivals only)."""
        return [
            times[0] - self.sent[mid][1]
            for r in self.receivers
            for mid, times in self.arrivals[r].items()
            if mid in self.sent and times
        ]
