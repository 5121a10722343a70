"""Graph backend on the lab: HTTP round trips and wall time per med operation.

The lab's Graph face runs over TLS in this process; a middleware counts the requests each
backend call makes, so the numbers show what an operation costs on the wire (e.g. `get_items`
of ten messages is one `$batch` round trip).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import med.lab.items  # noqa: F401  (item tables before the demo is seeded)
from med.backends.graph import GraphBackend
from med.lab import Lab
from med.lab.graph.app import GraphFace
from med.lab.graph.oauth import PUBLIC_CLIENT_ID
from med.lab.graph.serve import ThreadedServer
from med.lab.graph.tls import ensure_tls
from med.model import Address, ItemQuery, Message, SendOptions

CHEF = "chef@musterstadt.example"
ASSISTENZ = "assistenz@musterstadt.example"
REPEAT = 5


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = _run(Path(tmp))
    width = max(len(name) for name in results)
    for name, row in results.items():
        print(f"{name:<{width}}  {row['round_trips']:>3} round trips  {row['ms']:8.1f} ms")
    out = Path(__file__).parent / "results" / "graph.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def _run(tmp: Path) -> dict[str, dict[str, Any]]:
    lab = Lab.open(demo=True)
    face = GraphFace(lab, key_dir=tmp)
    app = face.app()
    counter = {"n": 0}

    @app.middleware("http")
    async def count(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        counter["n"] += 1
        return await call_next(request)

    server = ThreadedServer(app, tls=ensure_tls(tmp)).start()
    token = face.issuer.access_token(
        base_url=server.url,
        now=lab.now(),
        client_id=PUBLIC_CLIENT_ID,
        user=ASSISTENZ,
        scopes=frozenset(
            {
                "Mail.ReadWrite.Shared",
                "Mail.Send.Shared",
                "Calendars.ReadWrite.Shared",
                "User.ReadBasic.All",
            }
        ),
    )
    backend = GraphBackend(
        base_url=server.url, user=ASSISTENZ, token=lambda: token, ca_file=tmp / "lab-ca.pem"
    )
    try:
        inbox = backend.default_folder(CHEF, "inbox")
        calendar = backend.default_folder(CHEF, "calendar")
        ids = [i.id for i in backend.find_items(inbox, ItemQuery(limit=10)).items]
        now = datetime.now(UTC)
        operations: dict[str, Callable[[], object]] = {
            "own_mailbox": backend.own_mailbox,
            "default_folder": lambda: backend.default_folder(CHEF, "inbox"),
            "find_items_50": lambda: backend.find_items(inbox, ItemQuery(limit=50)),
            "find_items_unread_50": lambda: backend.find_items(
                inbox, ItemQuery(limit=50, unread_only=True)
            ),
            "get_items_1": lambda: backend.get_items(ids[:1]),
            "get_items_10_batch": lambda: backend.get_items(ids),
            "calendar_view_31_days": lambda: backend.calendar_view(
                calendar, now, now + timedelta(days=31)
            ),
            "folder_tree": lambda: backend.folder_tree(backend.resolve_names(CHEF)[0]),
            "send_on_behalf": lambda: backend.send(
                Message(subject="bench", body="x", to=(Address(ASSISTENZ),)),
                SendOptions(from_mailbox=CHEF),
            ),
        }
        results: dict[str, dict[str, Any]] = {}
        for name, op in operations.items():
            op()  # warm up (connection, TLS session)
            trips: list[int] = []
            times: list[float] = []
            for _ in range(REPEAT):
                before = counter["n"]
                start = time.perf_counter()
                op()
                times.append((time.perf_counter() - start) * 1000)
                trips.append(counter["n"] - before)
            results[name] = {"round_trips": max(trips), "ms": statistics.median(times)}
        return results
    finally:
        backend.close()
        server.stop()
        lab.close()


if __name__ == "__main__":
    main()
