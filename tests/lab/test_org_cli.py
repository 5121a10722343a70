"""`medbridge lab serve` and `medbridge lab users`, run as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from exlab.demo import DEMO_PASSWORD

REPO = Path(__file__).resolve().parents[2]
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", "lab", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


@contextmanager
def serving(*args: str) -> Iterator[str]:
    """Run `lab serve` on a free port; yields the EWS URL it prints."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "lab", "serve", "--port", "0", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("EWS endpoint: "), line + (proc.stderr.read() if proc.stderr else "")
        yield line.split(": ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def soap(url: str, body: str) -> httpx.Response:
    envelope = (
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:t="{T}" xmlns:m="{M}"><s:Body>{body}</s:Body>'
        "</s:Envelope>"
    )
    return httpx.post(
        url, content=envelope, auth=("chef@musterstadt.example", DEMO_PASSWORD), timeout=30
    )


def test_users_lists_the_demo_organisation(tmp_path: Path) -> None:
    result = cli("users", "--demo", "--store", str(tmp_path / "lab.sqlite"), "--json")
    assert result.returncode == 0, result.stderr
    users = {u["address"]: u for u in json.loads(result.stdout)}
    assert users["chef@musterstadt.example"]["has_login"] is True
    assert users["poststelle@musterstadt.example"]["has_login"] is False
    plain = cli("users", "--store", str(tmp_path / "lab.sqlite"))
    assert "Dr. Anna Berg" in plain.stdout and DEMO_PASSWORD in plain.stdout


def test_missing_store_is_one_clear_line(tmp_path: Path) -> None:
    result = cli("users", "--store", str(tmp_path / "nothing.sqlite"))
    assert result.returncode == 1
    assert "no lab store" in result.stderr and "Traceback" not in result.stderr


def test_serve_prints_the_endpoint_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    store = str(tmp_path / "lab.sqlite")
    create = (
        '<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="inbox"/>'
        "</m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>Bleibt</t:DisplayName>"
        "</t:Folder></m:Folders></m:CreateFolder>"
    )
    find = (
        '<m:FindFolder Traversal="Shallow"><m:FolderShape><t:BaseShape>Default</t:BaseShape>'
        '</m:FolderShape><m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/>'
        "</m:ParentFolderIds></m:FindFolder>"
    )
    with serving("--demo", "--store", store) as url:
        assert url.endswith("/EWS/Exchange.asmx")
        assert b"NoError" in soap(url, create).content
    with serving("--store", store) as url:
        assert b"<t:DisplayName>Bleibt</t:DisplayName>" in soap(url, find).content


def test_serve_refuses_a_busy_port(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = cli("serve", "--demo", "--store", str(tmp_path / "x.sqlite"), "--port", str(port))
    assert result.returncode == 1
    assert "cannot listen" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.timeout(120)
def test_sigterm_stops_the_server_cleanly_and_closes_the_store(tmp_path: Path) -> None:
    store = tmp_path / "lab.sqlite"
    command = [sys.executable, "-m", "bridge.cli", "lab", "serve", "--demo", "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--store", str(store)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("EWS endpoint: "), line + (proc.stderr.read() if proc.stderr else "")
        url = line.split(": ", 1)[1].strip()
        # A write, so the store has a write-ahead log that only a clean close folds back.
        created = soap(
            url,
            '<m:CreateFolder><m:ParentFolderId><t:DistinguishedFolderId Id="inbox"/>'
            "</m:ParentFolderId><m:Folders><t:Folder><t:DisplayName>Vor dem Stopp"
            "</t:DisplayName></t:Folder></m:Folders></m:CreateFolder>",
        )
        assert b"NoError" in created.content
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Lab stopped." in out and "Traceback" not in err
    assert not Path(f"{store}-wal").exists()  # the last connection was closed, not killed
    listed = cli("users", "--store", str(store))
    assert listed.returncode == 0 and "chef@musterstadt.example" in listed.stdout
