"""Bridge health: one state per mailbox, reported on change to the admin room and in metrics.

Like mautrix's bridge states: an enum, the latest value per mailbox, and a change log that the
runner turns into messenger status messages (repeats of the same state are not reported).
`/healthz` answers 200 while no mailbox is failing and the bridge runs, `/metrics` speaks the
Prometheus text format.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["HealthBoard", "MailboxHealth", "MailboxState", "health_app"]


class MailboxState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    CATCHING_UP = "catching_up"
    DEGRADED = "degraded"  # server unreachable or failing; retrying
    AUTH_FAILED = "auth_failed"
    THROTTLED = "throttled"
    RELEASED = "released"  # another worker holds the mailbox


#: States that make /healthz answer 503.
FAILING = {MailboxState.AUTH_FAILED, MailboxState.DEGRADED}


@dataclass
class MailboxHealth:
    state: MailboxState
    detail: str = ""
    since: float = field(default_factory=time.time)


class HealthBoard:
    """The latest state of every mailbox this worker knows, plus counters for /metrics."""

    def __init__(self, worker: str, on_change: Callable[[str, MailboxHealth], None] | None = None):
        self.worker = worker
        self.mailboxes: dict[str, MailboxHealth] = {}
        self.counters: dict[str, float] = dict.fromkeys(
            ("notifications_sent", "actions_done", "actions_refused", "sync_batches"), 0.0
        )
        self._on_change = on_change

    def set(self, mailbox: str, state: MailboxState, detail: str = "") -> None:
        current = self.mailboxes.get(mailbox)
        if current is not None and current.state is state:
            return
        health = MailboxHealth(state, detail)
        self.mailboxes[mailbox] = health
        if self._on_change is not None:
            self._on_change(mailbox, health)

    def count(self, name: str, by: float = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    def healthy(self) -> bool:
        return not any(h.state in FAILING for h in self.mailboxes.values())

    def snapshot(self) -> dict[str, object]:
        return {
            "worker": self.worker,
            "healthy": self.healthy(),
            "mailboxes": {
                m: {"state": h.state.value, "detail": h.detail, "since": h.since}
                for m, h in sorted(self.mailboxes.items())
            },
        }

    def metrics(self) -> str:
        lines = [
            "# HELP medbridge_bridge_mailbox_state 1 for the mailbox's current state.",
            "# TYPE medbridge_bridge_mailbox_state gauge",
        ]
        for mailbox, health in sorted(self.mailboxes.items()):
            for state in MailboxState:
                flag = 1 if health.state is state else 0
                lines.append(
                    f'medbridge_bridge_mailbox_state{{mailbox="{_label(mailbox)}",'
                    f'state="{state.value}",worker="{_label(self.worker)}"}} {flag}'
                )
        for name, count in sorted(self.counters.items()):
            lines.append(f"# TYPE medbridge_bridge_{name} counter")
            lines.append(f'medbridge_bridge_{name}{{worker="{_label(self.worker)}"}} {count}')
        return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def health_app(board: HealthBoard) -> object:
    """A tiny ASGI app with /healthz and /metrics (served by uvicorn beside the bridge)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    async def healthz(_request: Request) -> Response:
        return JSONResponse(board.snapshot(), status_code=200 if board.healthy() else 503)

    async def metrics(_request: Request) -> Response:
        return PlainTextResponse(board.metrics(), media_type="text/plain; version=0.0.4")

    return Starlette(routes=[Route("/healthz", healthz), Route("/metrics", metrics)])
