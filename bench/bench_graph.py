"""Round trips and wall time per med operation, EWS beside Graph, on one lab.

One demo lab serves both faces in this process: the EWS face over HTTP (Basic), the Graph face
over TLS (a token from the lab's issuer). A middleware on each app counts the HTTP requests a
backend call makes, so the table shows what an operation costs on the wire on either backend
(e.g. `get_items` of ten messages is one EWS GetItem or one Graph `$batch`).
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

from exlab.demo import DEMO_PASSWORD, open_demo
from exlab.graph.app import GraphFace
from exlab.graph.oauth import DELEGATED_SCOPES, PUBLIC_CLIENT_ID
from exlab.graph.serve import ThreadedServer
from exlab.graph.tls import ensure_tls
from exlab.server import create_app
from med.backends.base import Backend
from med.backends.ews import EwsBackend
from med.backends.graph import GraphBackend
from med.model import Address, AuthMethod, ItemQuery, Mailbox, MailboxKind, Message, SendOptions

CHEF = "chef@musterstadt.example"
ASSISTENZ = "assistenz@musterstadt.example"
REPEAT = 5
BACKENDS = ("ews", "graph")
SYNC_BATCH = 512  # EWS takes at most 512 changes per SyncFolderItems


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = _run(Path(tmp))
    width = max(len(name) for name in results)
    head = f"{'operation':<{width}}  {'EWS trips':>9} {'EWS ms':>8}"
    print(f"{head}  {'Graph trips':>11} {'Graph ms':>8}")
    for name, row in results.items():
        ews, graph = row["ews"], row["graph"]
        print(
            f"{name:<{width}}  {ews['round_trips']:>9} {ews['ms']:8.1f}"
            f"  {graph['round_trips']:>11} {graph['ms']:8.1f}"
        )
    out = Path(__file__).parent / "results" / "graph.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def _counted(app: Any) -> dict[str, int]:
    counter = {"n": 0}

    async def count(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
        counter["n"] += 1
        return await call_next(request)

    app.middleware("http")(count)
    return counter


def _operations(backend: Backend) -> dict[str, Callable[[], object]]:
    inbox = backend.default_folder(CHEF, "inbox")
    calendar = backend.default_folder(CHEF, "calendar")
    ids = [i.id for i in backend.find_items(inbox, ItemQuery(limit=10)).items]
    boss = Mailbox(CHEF, "Dr. Anna Berg", MailboxKind.DELEGATED)
    now = datetime.now(UTC)
    state: str | None = None
    done = False
    while not done:
        _, state, done = backend.sync_items(inbox, state, SYNC_BATCH)
    synced = state
    return {
        "own_mailbox": backend.own_mailbox,
        "default_folder": lambda: backend.default_folder(CHEF, "inbox"),
        "find_items_50": lambda: backend.find_items(inbox, ItemQuery(limit=50)),
        "find_items_unread_50": lambda: backend.find_items(
            inbox, ItemQuery(limit=50, unread_only=True)
        ),
        "get_items_1": lambda: backend.get_items(ids[:1]),
        "get_items_10": lambda: backend.get_items(ids),
        "calendar_view_31_days": lambda: backend.calendar_view(
            calendar, now, now + timedelta(days=31)
        ),
        "folder_tree": lambda: backend.folder_tree(boss),
        "sync_no_changes": lambda: backend.sync_items(inbox, synced, SYNC_BATCH),
        "send_on_behalf": lambda: backend.send(
            Message(subject="bench", body="x", to=(Address(ASSISTENZ),)),
            SendOptions(from_mailbox=CHEF),
        ),
    }


def _measure(op: Callable[[], object], counter: dict[str, int]) -> dict[str, Any]:
    op()  # warm up (connection, TLS session, exchangelib's version probe)
    trips: list[int] = []
    times: list[float] = []
    for _ in range(REPEAT):
        before = counter["n"]
        start = time.perf_counter()
        op()
        times.append((time.perf_counter() - start) * 1000)
        trips.append(counter["n"] - before)
    return {"round_trips": max(trips), "ms": statistics.median(times)}


def _run(tmp: Path) -> dict[str, dict[str, Any]]:
    lab = open_demo()
    ews_app = create_app(lab)
    face = GraphFace(lab, key_dir=tmp)
    graph_app = face.app()
    counters = {"ews": _counted(ews_app), "graph": _counted(graph_app)}
    ews_server = ThreadedServer(ews_app).start()
    graph_server = ThreadedServer(graph_app, tls=ensure_tls(tmp)).start()
    token = face.issuer.access_token(
        base_url=graph_server.url,
        now=lab.now(),
        client_id=PUBLIC_CLIENT_ID,
        user=ASSISTENZ,
        scopes=DELEGATED_SCOPES,
    )
    backends: dict[str, Backend] = {
        "ews": EwsBackend(
            endpoint=f"{ews_server.url}/EWS/Exchange.asmx",
            user=ASSISTENZ,
            auth=AuthMethod.BASIC,
            password=DEMO_PASSWORD,
            version="Exchange2016",
        ),
        "graph": GraphBackend(
            base_url=graph_server.url,
            user=ASSISTENZ,
            token=lambda: token,
            ca_file=tmp / "lab-ca.pem",
        ),
    }
    try:
        results: dict[str, dict[str, Any]] = {}
        for name in BACKENDS:
            for op_name, op in _operations(backends[name]).items():
                results.setdefault(op_name, {})[name] = _measure(op, counters[name])
        return results
    finally:
        for backend in backends.values():
            backend.close()
        graph_server.stop()
        ews_server.stop()
        lab.close()


if __name__ == "__main__":
    main()
