"""EWS round trips against the lab over loopback: exchangelib per operation, and a raw POST of the
same GetFolder to show what the client library adds."""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx

from bridge.serving import ServerThread
from exlab.demo import CHEF, DEMO_PASSWORD, open_demo
from exlab.server import create_app

REPEAT = 30
RAW_GET_FOLDER = (
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"'
    ' xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages"><s:Header>'
    '<t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body><m:GetFolder>'
    "<m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape><m:FolderIds>"
    '<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>chef@musterstadt.example'
    "</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></m:FolderIds></m:GetFolder>"
    "</s:Body></s:Envelope>"
)


def _median_ms(fn: Callable[[], object]) -> float:
    fn()  # warm up (connection, caches)
    samples = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(samples), 2)


def main() -> None:
    from exchangelib import (
        BASIC,
        DELEGATE,
        Account,
        Build,
        Configuration,
        Credentials,
        EWSDateTime,
        EWSTimeZone,
        Version,
    )
    from exchangelib.folders import SHALLOW, FolderCollection

    folder = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    lab = open_demo(folder / "lab.sqlite")
    server = ServerThread(create_app(lab), name="bench-lab").start()
    url = server.url("/EWS/Exchange.asmx")
    try:
        config = Configuration(
            service_endpoint=url,
            credentials=Credentials("assistenz@musterstadt.example", DEMO_PASSWORD),
            auth_type=BASIC,
            version=Version(build=Build(15, 1)),
        )
        account = Account(CHEF, access_type=DELEGATE, config=config, autodiscover=False)
        inbox = account.inbox
        top = account.msg_folder_root
        berlin = EWSTimeZone("Europe/Berlin")
        today = lab.now().astimezone(berlin)
        start = EWSDateTime(today.year, today.month, today.day, tzinfo=berlin)
        end = start + timedelta(days=7)
        with httpx.Client(auth=("chef@musterstadt.example", DEMO_PASSWORD)) as raw:
            results = {
                "repeat": REPEAT,
                "median_ms": {
                    "raw GetFolder (httpx)": _median_ms(
                        lambda: raw.post(url, content=RAW_GET_FOLDER).raise_for_status()
                    ),
                    "GetFolder (exchangelib refresh)": _median_ms(inbox.refresh),
                    "FindFolder shallow": _median_ms(
                        lambda: list(
                            FolderCollection(account=account, folders=[top]).find_folders(
                                depth=SHALLOW
                            )
                        )
                    ),
                    "ResolveNames": _median_ms(lambda: account.protocol.resolve_names(["Berg"])),
                    "GetUserAvailability 1 week": _median_ms(
                        lambda: list(
                            account.protocol.get_free_busy_info(
                                accounts=[(CHEF, "Required", False)], start=start, end=end
                            )
                        )
                    ),
                    "SyncFolderHierarchy": _median_ms(lambda: list(top.sync_hierarchy())),
                    "GetDelegate": _median_ms(lambda: account.delegates),
                },
            }
    finally:
        server.stop()
        lab.close()
    for name, value in results["median_ms"].items():  # type: ignore[attr-defined]
        print(f"{name:34} {value:8.2f} ms")
    out = Path(__file__).parent / "results" / "lab_ews.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
