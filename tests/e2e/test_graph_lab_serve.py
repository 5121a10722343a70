"""`medbridge lab serve --demo --graph`: EWS, Graph and the OAuth authority on one https port."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def _read_banner(proc: subprocess.Popen[str]) -> dict[str, str]:
    """The lines the command prints before serving, as {label: value}."""
    banner: dict[str, str] = {}
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        label, _, value = line.strip().partition(": ")
        banner[label] = value
        if label == "Users":
            return banner
    raise AssertionError(f"no banner from lab serve: {banner}")


def test_lab_serve_with_graph_answers_graph_and_oauth_over_tls(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "lab",
            "serve",
            "--demo",
            "--graph",
            "--port",
            "0",
            "--store",
            str(tmp_path / "lab.sqlite"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        banner = _read_banner(proc)
        base = banner["Graph endpoint"].removesuffix("/v1.0")
        assert base.startswith("https://127.0.0.1:")
        assert banner["EWS endpoint"] == f"{base}/EWS/Exchange.asmx"
        # Each lab keeps its CA (and token keys) next to its store, not in a shared place.
        assert Path(banner["CA file"]).parent == tmp_path / "tls"
        ctx = ssl.create_default_context(cafile=banner["CA file"])
        with httpx.Client(base_url=base, verify=ctx) as http:
            doc = http.get("/organizations/v2.0/.well-known/openid-configuration").json()
            token = http.post(
                doc["token_endpoint"],
                data={
                    "grant_type": "password",
                    "client_id": "95f45d29-e8c4-5a49-949e-c36b535ca824",
                    "username": "assistenz@musterstadt.example",
                    "password": "Demo-2026!",
                    "scope": "https://graph.microsoft.com/.default",
                },
            ).json()["access_token"]
            me = http.get("/v1.0/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json()["mail"] == "assistenz@musterstadt.example"
            ews = http.post("/EWS/Exchange.asmx", content=b"")
            assert ews.status_code == 401  # the EWS face is still there, asking for a login
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
