"""`medbridge lab apps`: the authority's registered clients, listed and added as a user does,
and an added confidential client signing in with MSAL against `lab serve --graph`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msal
import pytest

from exlab.demo import DEMO_PASSWORD
from exlab.graph.oauth import DAEMON_CLIENT_ID, PUBLIC_CLIENT_ID, TENANT_ID
from tests.lab.test_org_cli import REPO, cli


@contextmanager
def serving_graph(store: Path) -> Iterator[dict[str, str]]:
    """`lab serve --graph` on a free port; yields what it printed, by label."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bridge.cli",
            "lab",
            "serve",
            "--graph",
            "--port",
            "0",
            "--store",
            str(store),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        printed: dict[str, str] = {}
        for line in proc.stdout:
            label, _, value = line.partition(": ")
            printed[label] = value.strip()
            if label == "Store":
                break
        assert "EWS endpoint" in printed, printed
        yield printed
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo store made once by the CLI, as a user makes it."""
    path = tmp_path_factory.mktemp("apps") / "demo.sqlite"
    assert cli("users", "--demo", "--store", str(path)).returncode == 0
    return path


@pytest.fixture
def store(seeded: Path, tmp_path: Path) -> Path:
    path = tmp_path / "lab.sqlite"
    shutil.copyfile(seeded, path)
    return path


def test_apps_lists_the_built_in_clients_with_the_daemons_documented_secret(
    tmp_path: Path,
) -> None:
    result = cli("apps", "--demo", "--store", str(tmp_path / "lab.sqlite"), "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["client_id"]: row for row in json.loads(result.stdout)}
    assert rows[PUBLIC_CLIENT_ID]["kind"] == "public"
    assert rows[PUBLIC_CLIENT_ID]["redirect_uris"] == ["http://localhost"]
    assert rows[DAEMON_CLIENT_ID]["kind"] == "confidential"
    assert rows[DAEMON_CLIENT_ID]["secret"] == DEMO_PASSWORD


def test_a_registered_confidential_client_signs_in_and_an_unknown_one_is_refused(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = cli(
        "apps",
        "add",
        "Leitstand",
        "--confidential",
        "--role",
        "Mail.ReadWrite",
        "--store",
        str(store),
    )
    assert added.returncode == 0, added.stderr
    printed = dict(line.split(": ", 1) for line in added.stdout.splitlines() if ": " in line)
    client_id, secret = printed["Client id"], printed["Secret"]
    listing = cli("apps", "--store", str(store))
    assert client_id in listing.stdout and secret not in listing.stdout
    assert f"secret: {secret[:3]}…" in listing.stdout

    with serving_graph(store) as lab:
        assert lab["Public client id"].startswith(PUBLIC_CLIENT_ID)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", lab["CA file"])
        authority = lab["Graph endpoint"].removesuffix("/v1.0") + f"/{TENANT_ID}"
        app = msal.ConfidentialClientApplication(
            client_id, client_credential=secret, authority=authority, instance_discovery=False
        )
        result = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
        stranger = msal.ConfidentialClientApplication(
            "00000000-0000-0000-0000-0000000000aa",
            client_credential="x",
            authority=authority,
            instance_discovery=False,
        )
        refused = stranger.acquire_token_for_client(["https://graph.microsoft.com/.default"])
        # MSAL keeps its connections open; the lab waits for them when it stops.
        app.http_client.close()
        stranger.http_client.close()
        assert "access_token" in result, result
        assert "AADSTS700016" in refused.get("error_description", "")


def test_a_bad_registration_is_one_clear_line(store: Path) -> None:
    result = cli(
        "apps", "add", "Web", "--redirect-uri", "http://example.org/cb", "--store", str(store)
    )
    assert result.returncode != 0
    assert "Redirect URIs must be https" in result.stderr
    assert "Traceback" not in result.stderr
