"""Server-side cost of the lab's item operations on a 10,000-item folder (in process, no HTTP):
FindItem pages (sorted), SyncFolderItems initial and incremental sync, CalendarView over a
year of the demo boss's calendar."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import exlab.ews.items
import exlab.ews.sync  # noqa: F401  (registers the operations)
from exlab import Lab
from exlab.core import items as store_items
from exlab.demo import open_demo
from exlab.ews import soap

ITEMS = 10_000
USER = "bench@lab.example"
NS = (
    'xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types" '
    'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"'
)
STATE = re.compile(rb"<m:SyncState>(.*?)</m:SyncState>")


def _call(lab: Lab, user: str, body: str) -> bytes:
    result = soap.handle(
        lab, user, f"<s:Envelope {NS}><s:Body>{body}</s:Body></s:Envelope>".encode()
    )
    if result.status != 200 or b'ResponseClass="Error"' in result.body:
        raise RuntimeError(result.body[:400].decode(errors="replace"))
    return result.body


def _find_page(lab: Lab, offset: int) -> bytes:
    return _call(
        lab,
        USER,
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        '<t:AdditionalProperties><t:FieldURI FieldURI="item:Subject"/>'
        '<t:FieldURI FieldURI="item:DateTimeReceived"/></t:AdditionalProperties></m:ItemShape>'
        f'<m:IndexedPageItemView MaxEntriesReturned="100" Offset="{offset}" '
        'BasePoint="Beginning"/><m:SortOrder><t:FieldOrder Order="Descending">'
        '<t:FieldURI FieldURI="item:DateTimeReceived"/></t:FieldOrder></m:SortOrder>'
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds>'
        "</m:FindItem>",
    )


def _sync_all(lab: Lab, state: str) -> tuple[str, int, int]:
    calls = changes = 0
    while True:
        state_xml = f"<m:SyncState>{state}</m:SyncState>" if state else ""
        body = _call(
            lab,
            USER,
            "<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
            '<m:SyncFolderId><t:DistinguishedFolderId Id="inbox"/></m:SyncFolderId>'
            f"{state_xml}<m:MaxChangesReturned>512</m:MaxChangesReturned></m:SyncFolderItems>",
        )
        calls += 1
        changes += body.count(b"<t:Create>") + body.count(b"<t:Update>") + body.count(b"<t:Delete>")
        found = STATE.search(body)
        state = found.group(1).decode() if found else ""
        if b"<m:IncludesLastItemInRange>true" in body:
            return state, calls, changes


def main() -> None:
    lab = Lab.open()
    lab.add_mailbox(USER, "Bench")
    inbox = lab.store.distinguished_folder(USER, "inbox")
    assert inbox is not None
    base = datetime(2026, 1, 1, tzinfo=UTC)
    start = time.perf_counter()
    with lab.store.transaction():
        for i in range(ITEMS):
            store_items.create_item(
                lab.store,
                inbox,
                "IPM.Note",
                {
                    "item:Subject": f"Nachricht {i}",
                    "item:DateTimeReceived": (base + timedelta(minutes=i)).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    ),
                    "message:IsRead": i % 3 == 0,
                },
                created_by=USER,
                now=base,
            )
    seed_s = time.perf_counter() - start

    start = time.perf_counter()
    pages = 10
    for p in range(pages):
        _find_page(lab, p * 1000)
    find_page_s = (time.perf_counter() - start) / pages

    start = time.perf_counter()
    state, calls, changes = _sync_all(lab, "")
    initial_s = time.perf_counter() - start

    items = store_items.items_in(lab.store, inbox.id)[:100]
    for item in items:
        item.props["message:IsRead"] = True
        store_items.save_item(lab.store, item, base)
    start = time.perf_counter()
    _, inc_calls, inc_changes = _sync_all(lab, state)
    incremental_s = time.perf_counter() - start

    demo = open_demo()
    window = (datetime.now(UTC), datetime.now(UTC) + timedelta(days=365))
    start = time.perf_counter()
    body = _call(
        demo,
        "chef@musterstadt.example",
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
        '</m:ItemShape><m:CalendarView StartDate="'
        + window[0].strftime("%Y-%m-%dT%H:%M:%SZ")
        + '" EndDate="'
        + window[1].strftime("%Y-%m-%dT%H:%M:%SZ")
        + '"/><m:ParentFolderIds><t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds>'
        "</m:FindItem>",
    )
    calendar_s = time.perf_counter() - start
    entries = body.count(b"<t:CalendarItem>")

    results = {
        "folder_items": ITEMS,
        "seed_items_per_s": round(ITEMS / seed_s),
        "find_item_sorted_page_of_100_ms": round(find_page_s * 1000, 1),
        "sync_initial_items_per_s": round(changes / initial_s),
        "sync_initial_calls": calls,
        "sync_incremental_100_changes_ms": round(incremental_s * 1000, 1),
        "sync_incremental_calls": inc_calls,
        "sync_incremental_changes": inc_changes,
        "calendar_view_one_year_ms": round(calendar_s * 1000, 1),
        "calendar_view_entries": entries,
    }
    for key, value in results.items():
        print(f"{key:40} {value}")
    out = Path(__file__).parent / "results" / "lab_items.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    lab.close()
    demo.close()


if __name__ == "__main__":
    main()
