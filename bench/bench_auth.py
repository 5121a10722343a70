"""Lab login benchmark: what each scheme costs per request over loopback, and KDC start times.

A minimal app behind `LabAuthenticator` (demo lab, real KDC from `exlab.auth.kdc`) is served
by uvicorn in a thread; clients are requests sessions as exchangelib uses them: Basic, NTLM
(requests_ntlm, three legs per request) and Negotiate/Kerberos (`med.auth.negotiate`, one
leg per request after a 401).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from fastapi import FastAPI, Request
from requests_ntlm import HttpNtlmAuth
from starlette.responses import PlainTextResponse, Response

from bridge.serving import ServerThread
from exlab.auth import LabAuthenticator
from exlab.auth.kdc import find_kdc_binary, start_lab_kdc
from exlab.demo import DEMO_PASSWORD, open_demo
from med.auth.negotiate import NegotiateAuth

RESULTS = Path(__file__).parent / "results" / "auth.json"
REQUESTS = 200


def _app(auth: LabAuthenticator) -> FastAPI:
    app = FastAPI()

    @app.post("/EWS/Exchange.asmx")
    async def whoami(request: Request) -> Response:
        answer = await auth.authenticate(request)
        if isinstance(answer, Response):
            return answer
        response = PlainTextResponse(answer)
        auth.finish(request, response)
        return response

    return app


def _serve(app: FastAPI) -> tuple[str, ServerThread]:
    server = ServerThread(app, name="bench-auth").start()
    return server.url("/EWS/Exchange.asmx"), server


def _measure(url: str, auth: Any, n: int = REQUESTS) -> dict[str, float]:
    times = []
    with requests.Session() as session:
        session.auth = auth
        for _ in range(n):
            start = time.perf_counter()
            r = session.post(url, data=b"<x/>", timeout=30)
            times.append((time.perf_counter() - start) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"login failed: {r.status_code}")
    times.sort()
    return {
        "requests": n,
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(0.95 * (n - 1))], 3),
        "per_second": round(n / (sum(times) / 1000), 1),
    }


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    result = fn()
    return result, round((time.perf_counter() - start) * 1000, 1)


def main() -> None:
    results: dict[str, Any] = {}
    lab = open_demo(None)
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        kdc = None
        if find_kdc_binary() is not None:
            kdc, results["kdc_first_start_ms"] = _timed(lambda: start_lab_kdc(lab, Path(tmp)))
            kdc.stop()
            kdc, results["kdc_restart_ms"] = _timed(lambda: start_lab_kdc(lab, Path(tmp)))
            os.environ["KRB5_CONFIG"] = str(kdc.krb5_config)
            os.environ["KRB5CCNAME"] = f"FILE:{tmp}/ccache"
        auth = LabAuthenticator(
            lab, keytab=kdc.keytab if kdc else None, realm=kdc.realm if kdc else None
        )
        url, server = _serve(_app(auth))
        try:
            results["basic"] = _measure(url, ("assistenz", DEMO_PASSWORD))
            results["ntlm"] = _measure(url, HttpNtlmAuth("MUSTERSTADT\\assistenz", DEMO_PASSWORD))
            if kdc is not None:
                user = kdc.principal("assistenz@musterstadt.example")
                results["kerberos_password"] = _measure(
                    url, NegotiateAuth(user, DEMO_PASSWORD, protocol="kerberos")
                )
        finally:
            server.stop()
            auth.close()
            if kdc is not None:
                kdc.stop()
    lab.close()
    for name, value in results.items():
        print(f"{name}: {value}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
