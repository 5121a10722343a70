"""TUI speed: start to first paint, key-to-redraw while scrolling a 10,000-item folder, and
the redraw when new mail arrives at the top of it (viewed at the top, and scrolled down); and
the time from a chat message arriving at a real messenger server (sent by another person's
client, in its own thread) to its row being drawn in the messenger pane.

Runs the real app headless (Textual's test driver) over a real DelegateSession whose backend is
the in-memory demo organisation of the TUI tests, so the numbers are the UI's own cost plus
the session's thread hop, without network. Prints the numbers and writes bench/results/tui.json.

`start_to_boss_inbox` measures, against the Exchange lab over EWS on loopback, the time from
starting the TUI as the assistant to the boss's (chef's) inbox listed on screen (goal ≤ 1 s,
issue #22); it writes bench/results/bench_tui.json.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ITEMS = 10_000
KEYS = 300
ARRIVALS = 30
CHAT_MESSAGES = 150


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _run() -> dict[str, Any]:
    from med import DelegateSession
    from med.model import Address, Message
    from tests.tui.conftest import MAILBOXES
    from tests.tui.fakeorg import NOW, FakeOrg
    from tui.app import make_app
    from tui.config import TuiConfig
    from tui.screens.mail import MailScreen
    from tui.widgets.item_list import ItemList

    org = FakeOrg(inbox_size=ITEMS)
    with tempfile.TemporaryDirectory() as tmp:
        config = TuiConfig(drafts_dir=Path(tmp), animations=False)
        app = make_app(DelegateSession(org, mailboxes=MAILBOXES), config, clock=lambda: NOW)
        t0 = time.perf_counter()
        async with app.run_test(size=(140, 40)) as pilot:
            items: ItemList | None = None
            while True:  # first paint: the inbox's first rows are on screen
                await pilot.pause()
                found = app.screen.query(ItemList)
                if found and found.first().rows:
                    items = found.first()
                    break
                if time.perf_counter() - t0 > 60:
                    raise RuntimeError("the inbox did not appear within 60 s")
            await pilot.pause()
            first_paint = time.perf_counter() - t0
            assert items is not None
            await pilot.press("l")

            # Note when the list paints its cursor row: that is the redraw the user waits for.
            painted: list[float] = []
            original = items.render_line

            def render_line(y: int) -> Any:
                strip = original(y)
                if round(items.scroll_offset.y) + y == items.cursor:
                    painted.append(time.perf_counter())
                return strip

            items.render_line = render_line  # type: ignore[method-assign]

            async def timed(key: str, count: int) -> list[float]:
                out = []
                for _ in range(count):
                    painted.clear()
                    start = time.perf_counter()
                    await pilot.press(key)  # returns once the key is handled and the app idle
                    end = painted[0] if painted else time.perf_counter()
                    out.append((end - start) * 1000)
                return out

            idle = await timed("z", 60)  # unbound key: no repaint, the harness's own cost
            step = await timed("j", KEYS)
            pages = await timed("ctrl+d", 60)
            start = time.perf_counter()
            await pilot.press("G")
            # Every worker but the inbox's watch, which runs until the app ends.
            finite = [w for w in app.workers if w.group != "live"]
            if finite:  # (an empty list would mean every worker)
                await app.workers.wait_for_complete(finite)
            await pilot.pause()
            jump_end = (time.perf_counter() - start) * 1000
            assert items.current is not None
            requests = sum(1 for c in org.calls if c.startswith("find_items:chef:inbox"))

            # New mail on top: from the merge of the fresh first rows to the list's repaint
            # (redraw), and from delivery to that repaint (arrival, includes the coalescing
            # wait of the live updates and the fake server's notification poll).
            merged: list[float] = []
            original_merge = items.merge_top

            def merge_top(page: Any) -> None:
                painted.clear()
                merged.append(time.perf_counter())
                original_merge(page)

            items.merge_top = merge_top  # type: ignore[method-assign]

            async def arrivals(count: int, tag: str) -> tuple[list[float], list[float]]:
                redraw, arrival = [], []
                for n in range(count):
                    total = items.total
                    merged.clear()
                    sent = time.perf_counter()
                    org.deliver(
                        "chef:inbox",
                        Message(
                            subject=f"Neu {tag} {n}",
                            from_=Address("wolf@kreis.example", "Dr. Jens Wolf"),
                            to=(Address("chef@musterstadt.example"),),
                            received=NOW,
                        ),
                    )
                    while items.total == total:
                        if time.perf_counter() - sent > 30:
                            raise RuntimeError("new mail did not reach the list within 30 s")
                        await pilot.pause(0.005)
                    await pilot.pause()
                    done = painted[0] if painted else time.perf_counter()
                    redraw.append((done - merged[-1]) * 1000)
                    arrival.append((done - sent) * 1000)
                return redraw, arrival

            # Watch the inbox from here on (the key timings above ran without the watch's
            # heartbeats): opening it again starts the subscription.
            org.live = True
            screen = app.screen
            assert isinstance(screen, MailScreen) and screen.folder is not None
            screen.open_folder(screen.folder)
            while not items.rows or screen._watched is None:
                await pilot.pause(0.05)
            await pilot.pause(0.5)  # the subscription is open
            top_redraw, top_arrival = await arrivals(ARRIVALS, "oben")
            await pilot.press("G")
            while items.current is None:
                await pilot.pause(0.05)
            scrolled_redraw, scrolled_arrival = await arrivals(ARRIVALS, "unten")
            notice = items.new_above
    return {
        "items": ITEMS,
        "start_to_first_paint_ms": round(first_paint * 1000, 1),
        "unbound_key_harness_ms": {
            "median": round(statistics.median(idle), 2),
            "p95": round(_pct(idle, 0.95), 2),
            "n": len(idle),
        },
        "key_j_redraw_ms": {
            "median": round(statistics.median(step), 2),
            "p95": round(_pct(step, 0.95), 2),
            "n": len(step),
        },
        "key_page_down_redraw_ms": {
            "median": round(statistics.median(pages), 2),
            "p95": round(_pct(pages, 0.95), 2),
            "n": len(pages),
        },
        "jump_to_end_with_page_load_ms": round(jump_end, 1),
        "page_requests_for_the_whole_run": requests,
        "new_mail_at_top_redraw_ms": _summary(top_redraw),
        "new_mail_scrolled_down_redraw_ms": _summary(scrolled_redraw),
        "new_mail_scrolled_down_notice_count": notice,
        "new_mail_delivery_to_screen_ms": _summary(top_arrival + scrolled_arrival),
        "redraw_goal_p95_ms": 50,
    }


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 2),
        "p95": round(_pct(values, 0.95), 2),
        "n": len(values),
    }


#: Starts measured against the lab (each a fresh session, as each `medbridge tui` is).
STARTS = 7
BOSS_INBOX_GOAL_S = 1.0


async def _start_to_boss_inbox(lab: Any, drafts: Path) -> tuple[list[float], list[float]]:
    """Seconds from making the app to the boss's inbox rows on screen, per start; and from
    `q` to the app's end while the inbox's streaming subscription is open."""
    from med import DelegateSession
    from tests.e2e.conftest import ASSISTENZ, CHEF, POSTSTELLE, TEAMKALENDER, backend_for
    from tui.app import make_app
    from tui.config import TuiConfig
    from tui.screens.mail import MailScreen
    from tui.widgets.item_list import ItemList

    config = TuiConfig(drafts_dir=drafts, animations=False)
    times: list[float] = []
    quits: list[float] = []
    for _ in range(STARTS):
        session = DelegateSession(
            backend_for(lab, ASSISTENZ),
            mailboxes=(CHEF, f"functional:{POSTSTELLE}", f"shared:{TEAMKALENDER}"),
        )
        t0 = time.perf_counter()
        app = make_app(session, config)
        async with app.run_test(size=(140, 40)) as pilot:
            while True:
                await pilot.pause(0.01)  # polling more often would slow what it measures
                screen = app.screen
                if (
                    isinstance(screen, MailScreen)
                    and screen.folder is not None
                    and screen.folder.mailbox == CHEF
                    and screen.folder.distinguished == "inbox"
                    and screen.query_one(ItemList).rows
                ):
                    break
                if time.perf_counter() - t0 > 60:
                    raise RuntimeError("chef's inbox was not listed within 60 s")
            times.append(time.perf_counter() - t0)
            while screen._watched is None or not any(
                t.name == "med-watch" for t in threading.enumerate()
            ):
                await pilot.pause(0.05)
            # Everything else has loaded; the stream is open and waiting on the server.
            finite = [w for w in app.workers if w.group not in ("live", "messenger")]
            if finite:
                await app.workers.wait_for_complete(finite)
            await pilot.pause(0.3)
            quit_start = time.perf_counter()
            await pilot.press("q")
        quits.append(time.perf_counter() - quit_start)
        await session.close()
    return times, quits


def start_to_boss_inbox() -> dict[str, Any]:
    """TUI start to the boss's inbox listed, against the lab; printed and written to
    bench/results/bench_tui.json (key `start_to_boss_inbox`)."""
    import shutil

    from exlab.demo import open_demo
    from tests.lab.conftest import LabServer

    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "demo.sqlite"
        open_demo(template).close()
        store = Path(tmp) / "lab.sqlite"
        shutil.copyfile(template, store)
        lab = LabServer(store)
        try:
            times, quits = asyncio.run(_start_to_boss_inbox(lab, Path(tmp) / "drafts"))
        finally:
            lab.stop()
    ms = [t * 1000 for t in times]
    result = {
        "what": "TUI start (make_app) to chef's inbox rows on screen, EWS lab on loopback, "
        "fresh session per start",
        "starts": len(ms),
        "first_ms": round(ms[0], 1),
        "median_ms": round(statistics.median(ms), 1),
        "max_ms": round(max(ms), 1),
        "all_ms": [round(m, 1) for m in ms],
        "goal_ms": BOSS_INBOX_GOAL_S * 1000,
        "quit_with_stream_open_ms": _summary([q * 1000 for q in quits]),
    }
    print(f"start_to_boss_inbox: {result}")
    out = Path(__file__).parent / "results" / "bench_tui.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(out.read_text()) if out.exists() else {}
    merged["start_to_boss_inbox"] = result
    out.write_text(json.dumps(merged, indent=2) + "\n")
    return result


async def _chat_arrivals(count: int) -> dict[str, Any]:
    """Server arrival (the stored event's timestamp) → the pane's row drawn, per message."""
    import threading
    from datetime import datetime

    from med import DelegateSession
    from tests.messenger.messenger_harness import (
        Clock,
        Database,
        Harness,
        ServerThread,
        make_settings,
    )
    from tests.tui.conftest import MAILBOXES
    from tests.tui.fakeorg import NOW, FakeOrg
    from tests.tui.messenger_rig import DOMAIN, ME, PEER, account_for, make_peer
    from tui.app import make_app
    from tui.config import TuiConfig
    from tui.messaging import ConnectionState
    from tui.screens.chat_pane import ChatPane

    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        clock = Clock()
        database = Database(f"sqlite:///{tmp / 'messenger.db'}")
        settings = make_settings(database, tmp, clock)
        server = ServerThread(settings)
        await server.start()
        harness = Harness(database, settings, clock, server)
        await harness.tenant("Kreisklinik", DOMAIN)
        for email in (ME, PEER):
            await harness.user(email)
        # The other person's client runs on its own loop and thread, as on another computer.
        peer_loop = asyncio.new_event_loop()
        peer_thread = threading.Thread(target=peer_loop.run_forever, daemon=True)
        peer_thread.start()

        def on_peer(coro: Any) -> Any:
            return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, peer_loop))

        peer_harness = Harness(database, settings, clock, server)
        peer = await on_peer(make_peer(peer_harness, PEER))
        config = TuiConfig(drafts_dir=tmp / "drafts", animations=False)
        app = make_app(
            DelegateSession(FakeOrg(), mailboxes=MAILBOXES),
            config,
            clock=lambda: NOW,
            messenger_accounts={"work": account_for(harness, tmp / "chat")},
        )
        arrived: dict[int, float] = {}
        received: dict[int, float] = {}
        drawn: dict[int, float] = {}
        latencies: list[float] = []
        on_the_wire: list[float] = []
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                assert app.messenger is not None
                conn = app.messenger.current
                assert conn is not None
                while conn.state is not ConnectionState.ONLINE:
                    await pilot.pause(0.05)

                async def note_arrival(_conn: Any, event: Any) -> None:
                    if event.get("type") == "message":
                        stored = datetime.fromisoformat(event["ts"]).timestamp()
                        arrived[int(event["seq"])] = stored
                        received[int(event["seq"])] = time.time()

                conn.add_event_hook(note_arrival)
                row = await on_peer(peer.client.create_conversation("direct", [conn.user_id]))
                cid = str(row["conversation_id"])
                await pilot.press("6")
                while cid not in conn.conversations:
                    await pilot.pause(0.05)
                pane = app.screen.query_one(ChatPane)
                pane.open_conversation(cid)
                painted = asyncio.Event()

                def on_drawn(_profile: str, _cid: str, seq: int) -> None:
                    drawn.setdefault(seq, time.time())
                    painted.set()

                pane.on_drawn = on_drawn
                for n in range(count + 5):  # the first five warm up (keys, caches)
                    seq = await on_peer(peer.session.send_text(cid, f"Nachricht {n}"))
                    while seq not in drawn:
                        painted.clear()
                        await asyncio.wait_for(painted.wait(), 30)
                    if n >= 5:
                        latencies.append((drawn[seq] - arrived[seq]) * 1000)
                        on_the_wire.append((received[seq] - arrived[seq]) * 1000)
        finally:
            await on_peer(peer.client.aclose())
            peer_loop.call_soon_threadsafe(peer_loop.stop)
            peer_thread.join(5)
            await peer_harness.engine.dispose()
            await harness.close()
            await server.stop()
    return {
        "chat_arrival_to_redraw_ms": _summary(latencies),
        "chat_arrival_to_client_stream_ms": _summary(on_the_wire),
        "chat_arrival_to_redraw_goal_p95_ms": 100,
    }


def main() -> None:
    start_to_boss_inbox()
    result = asyncio.run(_run())
    result.update(asyncio.run(_chat_arrivals(CHAT_MESSAGES)))
    for key, value in result.items():
        print(f"{key}: {value}")
    out = Path(__file__).parent / "results" / "tui.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
