"""What `medbridge messenger serve` keeps in memory: libraries load when a feature needs them.

Every module a server imports stays resident for its whole life, on every node. A server on a
current schema serving logins, streams and sends needs neither Alembic (migrations), httpx
(bot webhooks), Jinja2 (the admin portal) nor the command line's framework (typer, rich).
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from messenger_harness import PASSWORD, Harness, free_port, next_of, wait_ready

from messenger.client import MessengerClient
from messenger.server.config import metadata_key_path

REPO = Path(__file__).resolve().parents[2]

# Loaded only when needed: an upgrade, a webhook delivery, a portal page, a CLI command.
NOT_WHILE_SERVING = ("alembic", "mako", "httpx", "jinja2", "typer", "rich", "bridge")

IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$")


def modules_of_last_interpreter(stderr: str) -> set[str]:
    """Top-level packages imported by the last interpreter that wrote `-X importtime` lines
    (the command line hands over to a fresh interpreter that serves)."""
    sections: list[set[str]] = []
    for line in stderr.splitlines():
        if line.startswith("import time: self [us]"):
            sections.append(set())
        elif (found := IMPORT_LINE.match(line)) and sections:
            sections[-1].add(found.group(1).split(".")[0])
    assert sections, "no import timings in the server's output"
    return sections[-1]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_serving_loads_no_migrations_webhooks_portal_or_cli(
    msg: Harness, tmp_path: Path
) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("anna@kreis.example")
    await msg.user("ben@kreis.example")
    port = free_port()
    log = tmp_path / "serve.log"  # a file: a pipe nobody reads yet would fill and stall it
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bridge.cli",
                "messenger",
                "--db",
                msg.database.url,
                "--metadata-keys",
                str(metadata_key_path(msg.settings)),
                "serve",
                "--port",
                str(port),
                "--blob-dir",
                str(tmp_path / "serve-blobs"),
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, proc)
        # A day's work: log in, open a stream, talk in a group.
        async with MessengerClient(base, retries=1) as anna, MessengerClient(base) as ben:
            for client, email in ((anna, "anna@kreis.example"), (ben, "ben@kreis.example")):
                await client.login(email, PASSWORD)
                await client.register_device("test", *(secrets.token_bytes(32),) * 2, b"sig")
            stream = ben.events()
            try:
                await next_of(stream, "synced")
                group = await anna.create_conversation("group", [ben.user_id or ""], "Team")
                await anna.send_raw(group["conversation_id"], b"ciphertext")
                assert (await next_of(stream, "message"))["conversation_id"] == group[
                    "conversation_id"
                ]
            finally:
                await stream.aclose()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    loaded = modules_of_last_interpreter(log.read_text())
    assert {"messenger", "uvicorn", "sqlalchemy"} <= loaded  # it did serve
    assert sorted(loaded & set(NOT_WHILE_SERVING)) == []
