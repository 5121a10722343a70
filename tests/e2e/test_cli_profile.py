"""The medbridge CLI without a server: profiles, and errors as one line with an exit code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_profile_add_and_list_as_json() -> None:
    added = cli(
        "profile",
        "add",
        "lab",
        "--server",
        "http://127.0.0.1:1/EWS/Exchange.asmx",
        "--user",
        "Assistenz@Musterstadt.example",
        "--auth",
        "basic",
        "--mailbox",
        "chef@musterstadt.example",
    )
    assert added.returncode == 0, added.stderr
    listed = cli("profile", "list", "--json")
    data = json.loads(listed.stdout)
    assert data["default"] == "lab"
    (prof,) = data["profiles"]
    assert prof["user"] == "assistenz@musterstadt.example" and prof["auth"] == "basic"
    assert prof["mailboxes"] == ["chef@musterstadt.example"]


def test_profile_with_unknown_auth_is_refused_in_one_line() -> None:
    result = cli(
        "profile",
        "add",
        "x",
        "--server",
        "http://h/EWS/Exchange.asmx",
        "--user",
        "a@musterstadt.example",
        "--auth",
        "magic",
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "auth must be one of" in result.stderr


def test_without_profile_commands_say_how_to_add_one() -> None:
    result = cli("mail", "ls")
    assert result.returncode == 5
    assert result.stderr.strip() == (
        "medbridge: No profile yet; add one with `medbridge profile add`."
    )


def test_without_password_non_interactive_fails_cleanly() -> None:
    cli(
        "profile",
        "add",
        "lab",
        "--server",
        "http://127.0.0.1:1/EWS/Exchange.asmx",
        "--user",
        "assistenz@musterstadt.example",
        "--auth",
        "basic",
    )
    result = cli("calendar", "day")
    assert result.returncode == 3 and "MEDBRIDGE_PASSWORD" in result.stderr  # sign-in
    assert "Traceback" not in result.stderr


def test_unreachable_server_is_one_line_and_non_zero() -> None:
    port = closed_port()
    cli(
        "profile",
        "add",
        "lab",
        "--server",
        f"http://127.0.0.1:{port}/EWS/Exchange.asmx",
        "--user",
        "assistenz@musterstadt.example",
        "--auth",
        "basic",
    )
    result = cli("folders", "tree", env={"MEDBRIDGE_PASSWORD": "x"})
    assert result.returncode == 9  # the server: unreachable, with its URL
    assert result.stderr.startswith("medbridge: The server cannot be reached")
    assert f"127.0.0.1:{port}" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_bad_date_is_invalid_input() -> None:
    cli(
        "profile",
        "add",
        "lab",
        "--server",
        "http://127.0.0.1:1/EWS/Exchange.asmx",
        "--user",
        "assistenz@musterstadt.example",
        "--auth",
        "basic",
    )
    result = cli("calendar", "day", "next tuesday", env={"MEDBRIDGE_PASSWORD": "x"})
    assert result.returncode == 2 and "is no date" in result.stderr


def test_profile_add_without_a_terminal_says_what_is_missing() -> None:
    result = cli("profile", "add", "lab", "--user", "assistenz@musterstadt.example")
    assert result.returncode == 2
    assert result.stderr.startswith("medbridge: profile add needs --server")
    assert "Traceback" not in result.stderr
    assert json.loads(cli("profile", "list", "--json").stdout)["profiles"] == []


def test_profile_add_in_a_terminal_asks_for_server_user_and_auth() -> None:
    import pty
    import select

    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "profile", "add", "lab"],
        cwd=REPO,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=dict(os.environ),
    )
    os.close(follower)
    answers = [b"http://127.0.0.1:1/EWS/Exchange.asmx\n", b"assistenz@musterstadt.example\n"]
    answers.append(b"basic\n")
    seen = b""
    try:
        for prompt, answer in zip((b"Server", b"E-mail address", b"Auth"), answers, strict=True):
            while prompt not in seen:
                ready, _, _ = select.select([leader], [], [], 30)
                assert ready, seen
                chunk = os.read(leader, 1024)
                assert chunk, seen
                seen += chunk
            os.write(leader, answer)
        assert proc.wait(timeout=60) == 0, seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
    (prof,) = json.loads(cli("profile", "list", "--json").stdout)["profiles"]
    assert prof["server"] == "http://127.0.0.1:1/EWS/Exchange.asmx"
    assert prof["user"] == "assistenz@musterstadt.example" and prof["auth"] == "basic"
