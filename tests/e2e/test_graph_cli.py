"""`medbridge signin` for a Graph profile against the lab's authority (device code)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge import paths
from exlab import Lab
from exlab.graph.serve import GraphLab
from med import DelegateSession
from med.config import profile_from_mapping, save_profile
from med.model import Profile

ROOT = Path(__file__).resolve().parents[2]
ASSISTENZ = "assistenz@musterstadt.example"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[GraphLab]:
    lab = Lab.open()
    lab.add_mailbox(ASSISTENZ, "Tom Weber", password="Demo-2026!")
    with GraphLab(lab, tmp_path / "tls") as running:
        running.face.oauth.settings.device_interval_s = 1
        yield running
    lab.close()


async def _inbox_count(session: DelegateSession) -> int | None:
    inbox = await session.default_folder(ASSISTENZ, "inbox")
    return inbox.total_count


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MEDBRIDGE_PASSWORD"}
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def _graph_profile(served: GraphLab) -> Profile:
    profile = profile_from_mapping(
        "lab-graph",
        {
            "server": served.url,
            "user": ASSISTENZ,
            "auth": "oauth",
            "backend": "graph",
            "ca_bundle": str(served.ca_file),
        },
    )
    save_profile(paths.config_file(), profile, make_default=True)
    return profile


def _sign_in(served: GraphLab) -> str:
    """`medbridge signin device`, approved on the lab's device page; returns its output."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "signin", "device", "-p", "lab-graph"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"Open (\S+) and enter the code (\S+)", line)
        assert match, line
        ctx = ssl.create_default_context(cafile=str(served.ca_file))
        with httpx.Client(verify=ctx) as http:
            http.post(
                match.group(1),
                data={"user_code": match.group(2), "username": ASSISTENZ, "password": "Demo-2026!"},
            )
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    return out


def test_device_code_sign_in_from_the_command_line(served: GraphLab) -> None:
    profile = _graph_profile(served)
    out = _sign_in(served)
    assert f"signed in as {ASSISTENZ}" in out
    cache = paths.token_cache_file()
    assert cache.stat().st_mode & 0o777 == 0o600

    # The signed-in tokens open a Graph session like any other profile's, as mailbox commands do.
    session = DelegateSession.open(profile, token_cache=cache)
    try:
        inbox = asyncio.run(_inbox_count(session))
    finally:
        asyncio.run(session.close())
    assert inbox == 0

    status = _cli("signin", "status", "-p", "lab-graph", "--json")
    assert json.loads(status.stdout) == {"accounts": [ASSISTENZ]}
    assert _cli("signin", "forget", "-p", "lab-graph").returncode == 0
    assert json.loads(_cli("signin", "status", "--json").stdout) == {"accounts": []}


def test_signin_refuses_an_ews_profile(served: GraphLab) -> None:
    profile = profile_from_mapping(
        "lab-ews", {"server": served.url + "/EWS/Exchange.asmx", "user": ASSISTENZ, "auth": "basic"}
    )
    save_profile(paths.config_file(), profile)
    answer = _cli("signin", "device", "-p", "lab-ews")
    assert answer.returncode == 2 and "graph" in answer.stderr


def test_mailbox_commands_use_the_signed_in_graph_tokens(served: GraphLab) -> None:
    _graph_profile(served)
    _sign_in(served)
    listed = _cli("mail", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    data = json.loads(listed.stdout)
    assert data["folder"]["distinguished"] == "inbox"
    assert data["folder"]["mailbox"] == ASSISTENZ
    boxes = _cli("folders", "mailboxes", "--json")
    assert boxes.returncode == 0, boxes.stderr
    assert json.loads(boxes.stdout)[0]["address"] == ASSISTENZ
