"""The REST API's cost over calling DelegateSession directly, and its list throughput.

The lab runs as `medbridge lab serve` and the API as `medbridge api serve`, each its own
process as deployed; this process calls the lab directly through a DelegateSession, then the
same operations through the API (an API key, the caller's own EWS identity) with httpx.
"in_process" calls the app through httpx's ASGI transport (the API's own code: auth, limits,
conversion, JSON); "over_http" adds uvicorn and a socket. Prints the numbers and writes
bench/results/api.json. Goal: at most 1.2x the direct call.
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

RESULTS = Path(__file__).parent / "results" / "api.json"
ASSISTENZ = "assistenz@musterstadt.example"
CHEF = "chef@musterstadt.example"
PASSWORD = "Demo-2026!"
REPEATS = 40
THROUGHPUT_REQUESTS = 120
THROUGHPUT_CLIENTS = 4
GOAL = 1.2


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(args: list[str], ready_url: str, log: Path) -> Any:
    """A `medbridge` subprocess, returned once `ready_url` answers. Its output goes to `log`
    (a pipe nobody reads would stop the API once its access log filled the pipe)."""
    medbridge = Path(sys.executable).with_name("medbridge")
    with log.open("wb") as out:
        proc = subprocess.Popen([str(medbridge), *args], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"medbridge {args[0]} stopped: {log.read_text(errors='replace')}")
        try:
            httpx.get(ready_url, timeout=2)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"medbridge {args[0]} did not start")


def _stop(proc: Any) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


async def _interleaved(
    lab_url: str, settings: Any, key: str, base_url: str
) -> tuple[dict[str, dict[str, list[float]]], str]:
    """Times per operation and way, and the API id of the inbox.

    Each repetition times the direct call, the in-process API and the API over HTTP one after
    another, so that load from elsewhere on the machine hits all three alike.
    """
    from bridge.api import create_app
    from bridge.api.ids import outward_id
    from med import AuthMethod, DelegateSession, ItemQuery, Profile

    profile = Profile("bench", lab_url, ASSISTENZ, AuthMethod.BASIC, version="Exchange2016")
    headers = {"X-API-Key": key}
    transport = httpx.ASGITransport(app=create_app(settings))
    async with (
        DelegateSession.open(profile, password=PASSWORD) as session,
        httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as asgi,
        httpx.AsyncClient(base_url=base_url, headers=headers, timeout=60) as http,
    ):
        inbox = await session.default_folder(CHEF, "inbox")
        item_id = (await session.items(inbox, ItemQuery(limit=1))).items[0].id
        folder, item = outward_id(inbox.id), outward_id(item_id)
        calls: dict[str, dict[str, Callable[[], Awaitable[Any]]]] = {
            "list": {
                "direct": lambda: session.items(inbox, ItemQuery(limit=50)),
                "in_process": lambda: asgi.get(f"/v1/folders/{folder}/items?limit=50"),
                "over_http": lambda: http.get(f"/v1/folders/{folder}/items?limit=50"),
            },
            "get": {
                "direct": lambda: session.get(item_id),
                "in_process": lambda: asgi.get(f"/v1/items/{item}"),
                "over_http": lambda: http.get(f"/v1/items/{item}"),
            },
        }
        times: dict[str, dict[str, list[float]]] = {}
        for op, ways in calls.items():
            times[op] = {way: [] for way in ways}
            for call in ways.values():  # warm up: sessions, connections, caches
                answer = await call()
                if isinstance(answer, httpx.Response):
                    answer.raise_for_status()
            for _ in range(REPEATS):
                for way, call in ways.items():
                    start = time.perf_counter()
                    answer = await call()
                    times[op][way].append(time.perf_counter() - start)
                    if isinstance(answer, httpx.Response):
                        answer.raise_for_status()
        return times, folder


def _throughput(base_url: str, key: str, folder: str) -> float:
    path = f"/v1/folders/{folder}/items"
    clients = [
        httpx.Client(base_url=base_url, headers={"X-API-Key": key}, timeout=60)
        for _ in range(THROUGHPUT_CLIENTS)
    ]
    per_client = THROUGHPUT_REQUESTS // THROUGHPUT_CLIENTS

    def run(http: httpx.Client) -> None:
        for _ in range(per_client):
            http.get(path, params={"limit": 20}).raise_for_status()

    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(THROUGHPUT_CLIENTS) as pool:
            list(pool.map(run, clients))
        elapsed = time.perf_counter() - start
    finally:
        for http in clients:
            http.close()
    return round(per_client * THROUGHPUT_CLIENTS / elapsed, 1)


def _config(directory: Path, lab_url: str, entry: Any) -> Path:
    secret = directory / "password"
    secret.write_text(PASSWORD)
    secret.chmod(0o600)
    config = directory / "api.toml"
    config.write_text(
        "[api]\n"
        "rate_per_minute = 1000000\n"
        f'data_dir = "{directory / "api"}"\n'
        "[api.exchange]\n"
        f'ews_url = "{lab_url}"\n'
        'ews_version = "Exchange2016"\n'
        "[[api.keys]]\n"
        f'id = "{entry.id}"\nsha256 = "{entry.sha256}"\ncaller = "{ASSISTENZ}"\n'
        'scopes = ["read"]\n'
        f'[api.callers."{ASSISTENZ}"]\n'
        f'exchange_user = "{ASSISTENZ}"\nauth = "basic"\npassword_file = "{secret}"\n'
    )
    return config


def main() -> None:
    from bridge.api import load_settings
    from bridge.api.auth import new_key

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        lab_port, api_port = _free_port(), _free_port()
        lab_url = f"http://127.0.0.1:{lab_port}/EWS/Exchange.asmx"
        lab = _start(
            [
                "lab",
                "serve",
                "--demo",
                "--store",
                str(directory / "lab.sqlite"),
                "--port",
                str(lab_port),
            ],
            lab_url,
            directory / "lab.log",
        )
        key, entry = new_key(ASSISTENZ, ["read"])
        base_url = f"http://127.0.0.1:{api_port}"
        config = _config(directory, lab_url, entry)
        api = None
        try:
            api = _start(
                ["api", "serve", "--config", str(config), "--port", str(api_port)],
                f"{base_url}/openapi.json",
                directory / "api.log",
            )
            times, folder = asyncio.run(_interleaved(lab_url, load_settings(config), key, base_url))
            rps = _throughput(base_url, key, folder)
        finally:
            if api is not None:
                _stop(api)
            _stop(lab)
    results: dict[str, Any] = {"repeats": REPEATS, "goal_ratio": GOAL, "operations": {}}
    for op in ("list", "get"):
        d = _median_ms(times[op]["direct"])
        entry_out: dict[str, float] = {"direct_ms": d}
        for way in ("in_process", "over_http"):
            a = _median_ms(times[op][way])
            ratio = round(a / d, 3)
            entry_out[f"{way}_ms"] = a
            entry_out[f"{way}_ratio"] = ratio
            verdict = "ok" if ratio <= GOAL else "over goal"
            print(
                f"{op:5s} direct {d:8.2f} ms  API {way:10s} {a:8.2f} ms  {ratio:.2f}x ({verdict})"
            )
        results["operations"][op] = entry_out
    results["list_requests_per_s"] = rps
    results["throughput_clients"] = THROUGHPUT_CLIENTS
    print(f"list endpoint: {rps} requests/s with {THROUGHPUT_CLIENTS} clients (limit=20)")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
