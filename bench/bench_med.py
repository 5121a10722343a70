"""med over EWS against the lab: round trips per operation, overhead, sync throughput,
and an assistant's day of five tasks beside the same tasks in plain exchangelib.

Prints the numbers and writes bench/results/med.json (operations) and
bench/results/bench_med.json (the day). The lab runs in this process on a loopback port.
Operations count requests on the client side. The day counts them at the lab's HTTP side,
one counter for both clients, each of which runs in a child process of its own
(`python -m bench.bench_med --day` runs the day alone).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "med.json"
DAY_RESULTS = Path(__file__).parent / "results" / "bench_med.json"
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
    assistant_day()


# --------------------------------------------------------------------------- the assistant's day

TEAMKALENDER = "teamkalender@musterstadt.example"
SACHBEARBEITUNG = "sachbearbeitung@musterstadt.example"
TRIAGE_COUNT = 50
DAY_RUNS = 5
TRIAGE_TARGET = "Vorgänge"
SHARED_CALENDAR = "Termine Kreistag"
ATTACHMENT_BYTES = 40_000
TASKS = ("open_inbox", "three_calendars", "triage", "send_on_behalf", "accept")
#: The two days of each run: the first with an empty folder cache (a new installation),
#: the next in new processes, med's with the cache the first day left (every other day).
DAYS = ("first", "next")
#: What med's requests per task are for on the next day (folders from the cache), where the
#: count is the least EWS allows for it; the first day adds what finds the folders.
MED_REQUESTS_FOR = {
    "open_inbox": "FindItem (newest first) and GetItem (FindItem returns no body); the "
    "first day adds one GetFolder for the inbox's id and our rights",
    "three_calendars": "one FindItem per calendar (EWS views one folder at a time) and one "
    "GetItem naming the series masters of the occurrences; the first day adds one GetFolder "
    "for both mailbox calendars, a GetFolder and one FindFolder per level of the public tree",
    "triage": "FindItem, one UpdateItem and one MoveItem for all 50; the first day adds "
    "GetFolder and FindFolder (the boss's tree, to find the target)",
    "send_on_behalf": "one CreateItem carrying the attachment, sent and saved",
    "accept": "FindItem, then CreateItem with the listed change key: the least any client "
    "can do without holding the request already; a fair half (one request) would need the "
    "request's id before looking for it",
}
_OPERATION = re.compile(rb"<(?:\w+:)?Body\b[^>]*>\s*<(?:\w+:)?(\w+)")


class LabRequestCounter:
    """ASGI wrapper around the lab counting every HTTP request to its EWS endpoint, by the
    SOAP operation in the body: what reaches the server, whichever client sent it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.counts: Counter[str] = Counter()
        self.paused = False
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "/ews/" not in scope["path"].lower() or self.paused:
            await self.app(scope, receive, send)
            return
        body = bytearray()
        counted = False

        def count(operation: str) -> None:
            nonlocal counted
            if not counted:
                counted = True
                with self._lock:
                    self.counts[operation] += 1

        async def peek() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                if len(body) < 4096:
                    body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    found = _OPERATION.search(bytes(body))
                    count(found.group(1).decode() if found else "(other)")
            return message

        try:
            await self.app(scope, peek, send)
        finally:
            count("(body not read)")  # refused before the body was read: still a round trip

    def take(self) -> dict[str, int]:
        with self._lock:
            out = dict(self.counts)
            self.counts.clear()
        return out


def _soap(url: str, user: str, body: str) -> None:
    """One raw SOAP request (seeding, warming up: outside the count); fails loudly on an
    error."""
    import httpx

    from exlab.demo import DEMO_PASSWORD

    envelope = (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"'
        ' xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">'
        '<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )
    answer = httpx.post(
        url,
        content=envelope.encode(),
        auth=(user, DEMO_PASSWORD),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=60,
    )
    if answer.status_code != 200 or 'ResponseClass="Error"' in answer.text:
        raise RuntimeError(f"seeding failed: {answer.status_code} {answer.text[:500]}")


_FIND_INBOX = (
    '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
    "</m:ItemShape><m:ParentFolderIds>"
    '<t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>'
)


def seed_mails(url: str, count: int, tag: str) -> None:
    """`count` mails from Lena Koch to the boss, delivered (the newest in her inbox)."""
    mails = "".join(
        "<t:Message>"
        f"<t:Subject>{tag} Vorgang {i:02d}</t:Subject>"
        '<t:Body BodyType="Text">Bitte prüfen.</t:Body>'
        f"<t:ToRecipients><t:Mailbox><t:EmailAddress>{CHEF}</t:EmailAddress></t:Mailbox>"
        "</t:ToRecipients></t:Message>"
        for i in range(count)
    )
    _soap(
        url,
        SACHBEARBEITUNG,
        f'<m:CreateItem MessageDisposition="SendOnly"><m:Items>{mails}</m:Items></m:CreateItem>',
    )


def seed_meeting(url: str, subject: str, day: datetime) -> None:
    """A meeting Lena Koch sends to the boss; its request lands in the boss's inbox."""
    start = day.replace(hour=13, minute=0, second=0, microsecond=0)
    _soap(
        url,
        SACHBEARBEITUNG,
        '<m:CreateItem SendMeetingInvitations="SendToAllAndSaveCopy"><m:Items>'
        f"<t:CalendarItem><t:Subject>{subject}</t:Subject>"
        f"<t:Start>{start:%Y-%m-%dT%H:%M:%SZ}</t:Start>"
        f"<t:End>{start + timedelta(hours=1):%Y-%m-%dT%H:%M:%SZ}</t:End>"
        "<t:RequiredAttendees><t:Attendee><t:Mailbox>"
        f"<t:EmailAddress>{CHEF}</t:EmailAddress></t:Mailbox></t:Attendee>"
        "</t:RequiredAttendees></t:CalendarItem></m:Items></m:CreateItem>",
    )


class MedDay:
    """The five tasks through one `DelegateSession`, as an application keeps it for the day,
    with a folder cache in `cache_dir` (kept from one day to the next, as the `medbridge`
    command keeps it in the user's cache directory)."""

    def __init__(self, url: str, password: str, cache_dir: str) -> None:
        from med import AuthMethod, DelegateSession
        from med.backends.ews import EwsBackend
        from med.folder_cache import FolderCache

        backend = EwsBackend(
            endpoint=url,
            user=ASSISTENZ,
            password=password,
            auth=AuthMethod.BASIC,
            version="Exchange2016",
        )
        cache = FolderCache(Path(cache_dir), backend="ews", endpoint=url, user=ASSISTENZ)
        self.session = DelegateSession(backend, mailboxes=[CHEF], folder_cache=cache)

    async def open_inbox(self) -> None:
        from med import ItemQuery

        inbox = await self.session.default_folder(CHEF, "inbox")
        page = await self.session.items(inbox, ItemQuery(limit=1))
        newest = await self.session.get(page.items[0].id)
        assert newest.body is not None

    async def three_calendars(self, start: str, end: str) -> None:
        from med import Folder

        s = self.session
        found = await s.default_folders([(CHEF, "calendar"), (TEAMKALENDER, "calendar")])
        calendars = [f for f in found if isinstance(f, Folder)]
        calendars.append(await s.folder_at("public", SHARED_CALENDAR))
        assert len(calendars) == 3
        events = await s.calendar_view(
            calendars, datetime.fromisoformat(start), datetime.fromisoformat(end)
        )
        assert {e.folder_id for e in events} == {c.id for c in calendars}  # all three shown

    async def triage(self, count: int, target: str, tag: str) -> None:
        from med import Flag, FlagStatus, ItemQuery, Message

        s = self.session
        inbox = await s.default_folder(CHEF, "inbox")
        page = await s.items(inbox, ItemQuery(limit=count, search=tag))
        folder = await s.folder_at(CHEF, f"inbox/{target}")
        mails = [m for m in page.items if isinstance(m, Message)]
        done = await s.update_many(
            [dataclasses.replace(m, is_read=True, flag=Flag(FlagStatus.FLAGGED)) for m in mails],
            ["is_read", "flag"],
        )
        moved = await s.move_many([m for m in done if isinstance(m, Message)], folder)
        assert len(mails) == count and all(isinstance(m, str) for m in moved)

    async def send_on_behalf(self, to: str, attachment_size: int) -> None:
        from med import Address, Message, OutgoingAttachment, SendOptions

        await self.session.send(
            Message(
                subject="Unterlagen zur Sitzung",
                body="Anbei die Unterlagen.",
                to=(Address(to),),
                new_attachments=(OutgoingAttachment("vorlage.pdf", b"%" * attachment_size),),
            ),
            SendOptions(from_mailbox=CHEF),
        )

    async def accept(self, subject: str) -> None:
        from med import ItemQuery, ResponseType

        s = self.session
        inbox = await s.default_folder(CHEF, "inbox")
        page = await s.items(inbox, ItemQuery(limit=10, search=subject))
        request = next(i for i in page.items if i.subject == subject)
        await s.respond(request, ResponseType.ACCEPT, "Frau Dr. Berg nimmt teil.")

    async def close(self) -> None:
        await self.session.close()


class ChildDay:
    """One side of the day in a child process (`python -m MODULE URL PASSWORD [ARG]`), one
    task per line: the lab in this process serves both sides alike."""

    def __init__(self, module: str, url: str, *extra: str) -> None:
        import subprocess
        import sys

        from exlab.demo import DEMO_PASSWORD

        self.child = subprocess.Popen(
            [sys.executable, "-m", module, url, DEMO_PASSWORD, *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parent.parent,
        )
        assert self.child.stdout is not None
        ready = self.child.stdout.readline().strip()
        if ready != "ready":
            raise RuntimeError(f"{module} did not start: {ready!r}")

    def run(self, task: str, args: dict[str, Any]) -> tuple[float | None, str | None]:
        assert self.child.stdin is not None and self.child.stdout is not None
        self.child.stdin.write(f"{task} {json.dumps(args)}\n")
        self.child.stdin.flush()
        answer = self.child.stdout.readline().strip()
        if answer.startswith("done "):
            return float(answer.split()[1]), None
        return None, answer or "the child process ended"

    def close(self) -> None:
        if self.child.stdin is not None:
            self.child.stdin.close()
        self.child.wait(timeout=30)


def med_worker(url: str, password: str, cache_dir: str) -> None:
    """The med side of the day in its own process (see `ChildDay`)."""
    from bench.exchangelib_day import answer_lines

    day = MedDay(url, password, cache_dir)
    loop = asyncio.new_event_loop()

    def blocking(task: Callable[..., Any]) -> Callable[..., Any]:
        return lambda **kwargs: loop.run_until_complete(task(**kwargs))

    try:
        answer_lines({name: blocking(getattr(day, name)) for name in TASKS})
    finally:
        loop.run_until_complete(day.close())
        loop.close()


def one_run(day_start: datetime) -> dict[str, list[dict[str, Any]]]:
    """The two days (`DAYS`) on a fresh demo lab, each in new child processes: per day, task
    and side the requests by operation, the milliseconds, and the error if the task failed."""
    from bridge.serving import ServerThread
    from exlab.demo import open_demo
    from exlab.server import create_app

    args: dict[str, dict[str, Any]] = {
        "open_inbox": {},
        # The boss's next two weeks: the team calendar and a council date fall in them.
        "three_calendars": {
            "start": day_start.isoformat(),
            "end": (day_start + timedelta(days=15)).isoformat(),
        },
        "triage": {"count": TRIAGE_COUNT, "target": TRIAGE_TARGET},
        "send_on_behalf": {"to": SACHBEARBEITUNG, "attachment_size": ATTACHMENT_BYTES},
        "accept": {},
    }
    days: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        lab = open_demo(Path(tmp) / "lab.sqlite")
        counter = LabRequestCounter(create_app(lab))
        server = ServerThread(counter, name="bench-lab").start()
        url = server.url("/EWS/Exchange.asmx")
        # The lab's first answers are slower (it checks the password hash once per login, its
        # caches fill): warm it up for the user both clients sign in as, outside the count.
        _soap(url, ASSISTENZ, _FIND_INBOX)
        try:
            for day in DAYS:
                sides = {
                    "med": ChildDay("bench.bench_med", url, str(Path(tmp) / "med-cache")),
                    "plain": ChildDay("bench.exchangelib_day", url),
                }
                try:
                    days[day] = _tasks(sides, counter, url, args, day, day_start)
                finally:
                    for child in sides.values():
                        child.close()
        finally:
            server.stop()
            lab.close()
    return days


def _tasks(
    sides: dict[str, ChildDay],
    counter: LabRequestCounter,
    url: str,
    args: dict[str, dict[str, Any]],
    day: str,
    day_start: datetime,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for number, task in enumerate(TASKS):
        row: dict[str, Any] = {"task": task}
        # Who goes first alternates, so neither always finds the lab's caches warm.
        for side in ("med", "plain") if number % 2 == 0 else ("plain", "med"):
            counter.paused = True
            task_args = dict(args[task])
            if task == "triage":
                task_args["tag"] = f"Triage {side} {day}"
                seed_mails(url, TRIAGE_COUNT, task_args["tag"])
            if task == "accept":
                task_args["subject"] = f"Abstimmung Haushalt ({side}, {day})"
                seed_meeting(url, task_args["subject"], day_start + timedelta(days=3))
            counter.take()
            counter.paused = False
            seconds, error = sides[side].run(task, task_args)
            row[side] = {
                "by_operation": counter.take(),
                "ms": None if seconds is None or error else seconds * 1000,
                "error": error,
            }
        rows.append(row)
    return rows


def _summary(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per task and side of one day over all runs: requests (the same every run, else
    flagged), median milliseconds, the first error; the ratio med / plain and the goal."""
    rows: list[dict[str, Any]] = []
    for number, task in enumerate(TASKS):
        row: dict[str, Any] = {"task": task}
        for side in ("med", "plain"):
            seen = [run[number][side] for run in runs]
            counts = [sum(s["by_operation"].values()) for s in seen]
            times = [s["ms"] for s in seen if s["ms"] is not None]
            errors = [s["error"] for s in seen if s["error"]]
            row[side] = {
                "requests": counts[0],
                "requests_vary": len(set(counts)) > 1,
                "by_operation": seen[0]["by_operation"],
                "ms": round(statistics.median(times), 1) if times else None,
                "ms_runs": [round(t, 1) for t in times],
                "error": errors[0] if errors else None,
            }
        m, p = row["med"]["requests"], row["plain"]["requests"]
        row["ratio"] = round(m / p, 2) if p and not row["plain"]["error"] else None
        row["goal_met"] = (
            row["ratio"] is not None and row["ratio"] <= 0.5 and not row["med"]["error"]
        )
        rows.append(row)
    return rows


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| task | med requests | plain requests | ratio | med ms | plain ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
        lines.append(
            f"| {row['task']} | {row['med']['requests']} | {row['plain']['requests']} | {ratio}"
            f" | {row['med']['ms'] or '-'} | {row['plain']['ms'] or '-'} |"
        )
        for side in ("med", "plain"):
            if row[side]["error"]:
                lines.append(f"|  {side} failed: {row[side]['error']} | | | | | |")
            if row[side]["requests_vary"]:
                lines.append(f"|  {side}: the request count varied between runs | | | | | |")
    return lines


def assistant_day() -> None:
    """Five tasks of a boss's assistant, med beside plain exchangelib: requests and time.

    Each of DAY_RUNS runs, on a fresh lab, is two days (`DAYS`): requests must come out the
    same every run (they are reported as varying otherwise); times are the medians. The goal
    (med at most half the requests of plain exchangelib) is judged on the next day, the one
    an assistant has every day; the first day is shown beside it."""
    import os

    day_start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    load_before = os.getloadavg()
    runs = [one_run(day_start) for _ in range(DAY_RUNS)]
    load_after = os.getloadavg()
    days = {day: _summary([run[day] for run in runs]) for day in DAYS}
    for row in days["next"]:
        row["med"]["requests_for"] = MED_REQUESTS_FOR[row["task"]]
    load = f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after (1 min)"
    lines = [
        "# med: an assistant's day, requests and wall time beside plain exchangelib",
        "",
        f"`python -m bench.bench_med --day`, {DAY_RUNS} runs on fresh labs, median times; "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {load}.",
        "",
        "Requests are counted at the lab's HTTP side. Each run is two days in new processes:",
        "the first with med's folder cache empty, the next with the cache the first day left",
        "(the plain script keeps nothing between days). Goal: med ≤ ½ of plain per task, on",
        "the next day.",
    ]
    for day in DAYS:
        lines += ["", f"## {day} day", "", *_table(days[day])]
    lines += ["", "What med's requests on the next day are for:", ""]
    lines += [f"- {task}: {MED_REQUESTS_FOR[task]}" for task in TASKS]
    print("\n".join(lines))
    out = {
        "days": days,
        "tasks": days["next"],
        "runs": DAY_RUNS,
        "goal": "med at most half the requests of plain exchangelib per task, on the next day",
        "all_goals_met": all(r["goal_met"] for r in days["next"]),
        "load_average": {"before": load_before, "after": load_after},
        "measured_at": datetime.now(UTC).isoformat(),
    }
    DAY_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    DAY_RESULTS.write_text(json.dumps(out, indent=2) + "\n")
    DAY_RESULTS.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    import sys

    if "--day" in sys.argv[1:]:
        assistant_day()
    elif len(sys.argv) == 4:  # the med side of the day, started by `ChildDay`
        med_worker(sys.argv[1], sys.argv[2], sys.argv[3])
    else:
        main()
