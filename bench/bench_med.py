"""med over EWS against the lab: round trips per operation, overhead, sync throughput.

Prints the numbers and writes bench/results/med.json. The lab runs in this process on a
loopback port; requests are counted per EWS operation on the client side.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "med.json"
ASSISTENZ = "assistenz@musterstadt.example"
CHEF = "chef@musterstadt.example"
SYNC_ITEMS = 10_000
REPEATS = 7


class RequestCounter:
    """Counts EWS requests by operation name, by wrapping exchangelib's one send path."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.get_item_ids: Counter[str] = Counter()

    @contextmanager
    def installed(self) -> Iterator[RequestCounter]:
        from exchangelib.services.common import EWSService
        from exchangelib.services.get_item import GetItem

        original = EWSService._get_response
        original_payload = GetItem.get_payload
        counter = self

        def counting(service: Any, payload: Any, api_version: Any) -> Any:
            counter.counts[service.SERVICE_NAME] += 1
            return original(service, payload=payload, api_version=api_version)

        def counting_payload(service: Any, items: Any, *args: Any, **kwargs: Any) -> Any:
            items = list(items)
            for item in items:
                counter.get_item_ids[str(getattr(item, "id", item))] += 1
            return original_payload(service, items, *args, **kwargs)

        EWSService._get_response = counting  # type: ignore[method-assign]
        GetItem.get_payload = counting_payload  # type: ignore[method-assign]
        try:
            yield self
        finally:
            EWSService._get_response = original  # type: ignore[method-assign]
            GetItem.get_payload = original_payload  # type: ignore[method-assign]

    def take(self) -> dict[str, int]:
        out = dict(self.counts)
        self.counts.clear()
        return out


@contextmanager
def lab_server(path: Path) -> Iterator[str]:

    from bridge.serving import ServerThread
    from exlab.demo import open_demo
    from exlab.server import create_app

    lab = open_demo(path)
    server = ServerThread(create_app(lab), name="bench-lab").start()
    try:
        yield server.url("/EWS/Exchange.asmx")
    finally:
        server.stop()
        lab.close()


def seed_big_folder(path: Path, count: int) -> None:
    """A folder in the boss's mailbox with `count` messages, written straight to the store."""
    import exlab.core.items as store_items
    from exlab import Lab

    lab = Lab.open(path)
    inbox = lab.store.distinguished_folder(CHEF, "inbox")
    assert inbox is not None
    folder = lab.add_folder(inbox, "Massenablage")
    now = lab.now()
    with lab.store.transaction():
        for i in range(count):
            when = now - timedelta(minutes=i)
            store_items.create_item(
                lab.store,
                folder,
                "IPM.Note",
                {
                    "item:Subject": f"Vorgang {i:05d}",
                    "item:Body": {"type": "Text", "text": "Inhalt"},
                    "message:From": {
                        "name": "Poststelle",
                        "email": "poststelle@musterstadt.example",
                    },
                    "message:ToRecipients": [{"name": "Dr. Anna Berg", "email": CHEF}],
                    "item:DateTimeReceived": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "message:IsRead": i % 3 == 0,
                },
                created_by=CHEF,
                now=now,
            )
    lab.close()


def timed(fn: Callable[[], Any], repeats: int = REPEATS) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    from exchangelib import BASIC, DELEGATE, Account, Build, Configuration, Credentials, Version
    from exchangelib.folders import Folder as ExFolder
    from exchangelib.properties import DistinguishedFolderId
    from exchangelib.properties import Mailbox as ExMailbox

    from exlab.demo import DEMO_PASSWORD
    from med import DelegateSession, ItemQuery, Mailbox, MailboxKind, SyncChange, SyncCheckpoint
    from med.backends.ews import EwsBackend

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lab.sqlite"
        with lab_server(path) as url:
            pass  # seed the demo organisation
        seed_big_folder(path, SYNC_ITEMS)
        with lab_server(path) as url, RequestCounter().installed() as counter:
            backend = EwsBackend(
                endpoint=url,
                user=ASSISTENZ,
                password=DEMO_PASSWORD,
                auth=__import__("med").AuthMethod.BASIC,
                version="Exchange2016",
            )
            session = DelegateSession(backend, mailboxes=[CHEF])

            async def scenario() -> None:
                inbox = await session.default_folder(CHEF, "inbox")
                counter.take()
                page = await session.items(inbox, ItemQuery(limit=50))
                results["first_page_requests"] = counter.take()
                results["first_page_items"] = len(page.items)

                for item in page.items[:10]:
                    await session.get(item.id)
                counter.take()
                results["items_fetched_more_than_once"] = sum(
                    1 for n in counter.get_item_ids.values() if n > 1
                )

                await session.folder_tree(Mailbox(CHEF, "Chef", MailboxKind.DELEGATED))
                results["mailbox_tree_requests"] = counter.take()

                tree = await session.folder_tree(Mailbox(CHEF, "Chef", MailboxKind.DELEGATED))
                big = next(f for f in tree.walk() if f.name == "Massenablage")
                counter.take()
                start = time.perf_counter()
                count = 0
                state = None
                async for event in session.sync(big):
                    if isinstance(event, SyncChange):
                        count += 1
                    elif isinstance(event, SyncCheckpoint):
                        state = event.state
                elapsed = time.perf_counter() - start
                results["initial_sync"] = {
                    "items": count,
                    "seconds": round(elapsed, 3),
                    "items_per_s": round(count / elapsed, 1),
                    "requests": counter.take(),
                }
                again = [e async for e in session.sync(big, state)]
                results["incremental_sync_no_changes"] = {
                    "events": len(again),
                    "requests": counter.take(),
                }

                results["_inbox"] = inbox

            asyncio.run(scenario())

            # med vs raw exchangelib for the same request: FindItem of the first 50 items
            # with the same fields, order and page size; runs interleaved, medians compared.
            inbox = results.pop("_inbox")
            config = Configuration(
                service_endpoint=url,
                credentials=Credentials(ASSISTENZ, DEMO_PASSWORD),
                auth_type=BASIC,
                version=Version(build=Build(15, 1)),
            )
            account = Account(CHEF, config=config, autodiscover=False, access_type=DELEGATE)
            raw_inbox = ExFolder(
                _distinguished_id=DistinguishedFolderId(
                    id="inbox", mailbox=ExMailbox(email_address=CHEF)
                ),
                root=account.root,
            )
            from exchangelib.fields import FieldOrder
            from exchangelib.services import FindItem

            from med.backends.ews.convert import LIST_FIELDS
            from med.model import FolderKind

            names = [
                f
                for f in LIST_FIELDS[FolderKind.MAIL]
                if f in {x.name for x in raw_inbox.allowed_item_fields(version=account.version)}
            ]
            fields = {fp for fp in raw_inbox.normalize_fields(fields=names)}

            def raw_page() -> None:
                list(
                    FindItem(account=account, page_size=50).call(
                        folders=[raw_inbox],
                        additional_fields=fields,
                        restriction=None,
                        order_fields=[FieldOrder.from_string("-datetime_received", raw_inbox)],
                        shape="IdOnly",
                        query_string=None,
                        depth="Shallow",
                        calendar_view=None,
                        max_items=50,
                        offset=0,
                    )
                )

            loop = asyncio.new_event_loop()

            def med_page() -> None:
                loop.run_until_complete(session.items(inbox, ItemQuery(limit=50)))

            raw_page()
            med_page()
            raw_times, med_times = [], []
            for _ in range(REPEATS * 5):  # interleaved: both see the same machine load
                raw_times.append(timed(raw_page, 1))
                med_times.append(timed(med_page, 1))
            loop.close()
            raw = statistics.median(raw_times)
            med_t = statistics.median(med_times)
            results["raw_exchangelib_first_page_s"] = round(raw, 4)
            results["med_first_page_s"] = round(med_t, 4)
            results["med_overhead_vs_exchangelib"] = round(med_t / raw - 1, 3)
            session._pool.shutdown(wait=False)
            backend.close()

    results["checks"] = {
        "first_page_is_one_finditem": results["first_page_requests"] == {"FindItem": 1},
        "no_item_fetched_twice": results["items_fetched_more_than_once"] == 0,
        "mailbox_tree_at_most_2_requests": sum(results["mailbox_tree_requests"].values()) <= 2,
        "incremental_sync_one_request": sum(
            results["incremental_sync_no_changes"]["requests"].values()
        )
        == 1,
        "overhead_at_most_10_percent": results["med_overhead_vs_exchangelib"] <= 0.10,
    }
    results["measured_at"] = datetime.now(UTC).isoformat()
    print(json.dumps(results, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
