"""Negotiate/Kerberos logins with a real MIT KDC, kinit and pyspnego/curl clients."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import spnego

from exlab.auth import LabAuthenticator
from exlab.auth.kdc import LabKdc, start_kdc, start_lab_kdc, usage_lines
from exlab.demo import open_demo
from tests.lab.authserver import DEMO_PASSWORD, Served, demo_org, make_app, serve
from tests.lab.kdcrealm import DEMO_USERS, Tickets, require_kdc, shared_kdc, use_tickets

pytestmark = pytest.mark.kerberos

ASSISTENZ = "assistenz@musterstadt.example"


@pytest.fixture(scope="session")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> LabKdc:
    return shared_kdc(tmp_path_factory)


@pytest.fixture(scope="module")
def server(kdc: LabKdc) -> Iterator[Served]:
    auth = LabAuthenticator(demo_org(), keytab=kdc.keytab, realm=kdc.realm)
    with serve(make_app(auth)) as served:
        yield served
    auth.close()


@pytest.fixture
def tickets(kdc: LabKdc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tickets:
    return use_tickets(kdc, tmp_path, monkeypatch)


def _negotiate(url: str, host: str, protocol: str = "negotiate") -> tuple[requests.Response, Any]:
    client = spnego.client(hostname=host, service="HTTP", protocol=protocol)
    token = base64.b64encode(client.step()).decode()
    r = requests.post(url, headers={"Authorization": f"Negotiate {token}"}, timeout=10)
    return r, client


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("protocol", ["negotiate", "kerberos"])
def test_kerberos_ticket_logs_in_and_server_proves_itself(
    server: Served, tickets: Tickets, host: str, protocol: str
) -> None:
    assert tickets.kinit(ASSISTENZ).returncode == 0
    r, client = _negotiate(server.url.replace("127.0.0.1", host), host, protocol)
    assert r.status_code == 200
    assert r.text == ASSISTENZ
    (mutual,) = r.raw.headers.getlist("WWW-Authenticate")
    scheme, token = mutual.split(" ", 1)
    assert scheme == "Negotiate"
    client.step(base64.b64decode(token))
    assert client.complete


def test_each_user_is_mapped_to_their_own_mailbox(server: Served, tickets: Tickets) -> None:
    assert tickets.kinit("chef@musterstadt.example").returncode == 0
    r, _ = _negotiate(server.url, "127.0.0.1")
    assert r.text == "chef@musterstadt.example"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_negotiate_with_a_ticket(server: Served, tickets: Tickets) -> None:
    if "SPNEGO" not in subprocess.run(["curl", "-V"], capture_output=True, text=True).stdout:
        pytest.skip("this curl has no SPNEGO support")
    assert tickets.kinit(ASSISTENZ).returncode == 0
    out = subprocess.run(
        ["curl", "-s", "--negotiate", "-u", ":", "-X", "POST", server.url],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ),
    )
    assert out.stdout == ASSISTENZ


def test_kinit_with_a_wrong_password_fails_and_gives_no_ticket(tickets: Tickets) -> None:
    result = tickets.kinit(ASSISTENZ, "Demo-2025!")
    assert result.returncode != 0
    assert "incorrect" in result.stderr.lower()
    assert not tickets.ccache.exists()


def test_without_a_ticket_the_client_cannot_start_and_the_server_still_says_401(
    server: Served, tickets: Tickets
) -> None:
    with pytest.raises(spnego.exceptions.SpnegoError):
        spnego.client(hostname="127.0.0.1", service="HTTP", protocol="kerberos").step()
    r = requests.post(server.url, timeout=10)
    assert r.status_code == 401


def test_a_ticket_from_a_recreated_realm_is_401_not_500(
    server: Served, tickets: Tickets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The realm was recreated: the same names, new keys. The old service ticket is stale."""
    old = start_kdc(tmp_path / "old-realm", DEMO_USERS)
    try:
        (tmp_path / "old").mkdir()
        stale = use_tickets(old, tmp_path / "old", monkeypatch)
        assert stale.kinit(ASSISTENZ).returncode == 0
        for protocol in ("negotiate", "kerberos"):
            r, _ = _negotiate(server.url, "127.0.0.1", protocol)
            assert r.status_code == 401
            assert "Negotiate" in r.raw.headers.getlist("WWW-Authenticate")
    finally:
        old.stop()


def test_tickets_stay_valid_across_a_kdc_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_kdc()
    directory = tmp_path / "lab realm"  # a space in the path, as in many home directories
    first = start_kdc(directory, DEMO_USERS)
    tickets = use_tickets(first, tmp_path, monkeypatch)
    assert tickets.kinit(ASSISTENZ).returncode == 0
    first.stop()
    assert not first.running
    second = start_kdc(directory, DEMO_USERS)
    try:
        auth = LabAuthenticator(demo_org(), keytab=second.keytab, realm=second.realm)
        with serve(make_app(auth)) as served:
            r, _ = _negotiate(served.url, "127.0.0.1")
            assert r.text == ASSISTENZ
        assert tickets.kinit("chef@musterstadt.example").returncode == 0  # new port, same config
    finally:
        second.stop()


def _listening_addresses(port: int) -> set[str]:
    found = set()
    for name in ("/proc/net/tcp", "/proc/net/udp", "/proc/net/tcp6", "/proc/net/udp6"):
        for line in Path(name).read_text().splitlines()[1:]:
            local = line.split()[1]
            address, hexport = local.rsplit(":", 1)
            if int(hexport, 16) == port:
                found.add(address)
    return found


def test_the_kdc_listens_on_loopback_only(kdc: LabKdc) -> None:
    assert _listening_addresses(kdc.port) == {"0100007F"}  # 127.0.0.1, TCP and UDP


def test_the_realm_has_the_http_service_keys_in_one_keytab(kdc: LabKdc) -> None:
    out = subprocess.run(
        ["klist", "-k", str(kdc.keytab)], capture_output=True, text=True, check=True
    ).stdout
    for host in ("localhost", "127.0.0.1"):
        assert f"HTTP/{host}@MUSTERSTADT.EXAMPLE" in out
    assert {"assistenz@MUSTERSTADT.EXAMPLE", "chef@MUSTERSTADT.EXAMPLE"} <= kdc.principals()


_STARTER = """
import sys
from pathlib import Path
from exlab.auth.kdc import start_kdc
kdc = start_kdc(Path(sys.argv[1]), {})
print(kdc.pid, flush=True)
sys.stdin.read()
"""


def _wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat")
        if stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False


def test_the_kdc_dies_with_a_killed_parent(tmp_path: Path) -> None:
    require_kdc()
    with subprocess.Popen(
        [sys.executable, "-c", _STARTER, str(tmp_path / "realm")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    ) as parent:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
    assert _wait_gone(pid)


def test_a_leftover_kdc_of_the_same_realm_is_stopped_by_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_kdc()
    directory = tmp_path / "realm"
    first = start_kdc(directory, DEMO_USERS)
    second = start_kdc(directory, DEMO_USERS)
    try:
        assert _wait_gone(first.pid)
        assert second.running
        tickets = use_tickets(second, tmp_path, monkeypatch)
        assert tickets.kinit(ASSISTENZ, DEMO_PASSWORD).returncode == 0
    finally:
        second.stop()


def test_a_labs_realm_has_principals_for_its_logins_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_kdc()
    lab = open_demo(None)
    lab.set_password("sachbearbeitung@musterstadt.example", "Eigenes-Passwort-1")
    kdc = start_lab_kdc(lab, tmp_path / "realm")
    try:
        names = kdc.principals()
        assert {"chef@MUSTERSTADT.EXAMPLE", "assistenz@MUSTERSTADT.EXAMPLE"} <= names
        assert "poststelle@MUSTERSTADT.EXAMPLE" not in names  # functional mailbox, no login
        assert "sachbearbeitung@MUSTERSTADT.EXAMPLE" not in names  # its password is unknown
        lines = "\n".join(usage_lines(kdc, "127.0.0.1:8080", ASSISTENZ))
        assert f"KRB5_CONFIG={kdc.krb5_config}" in lines
        assert "kinit assistenz@MUSTERSTADT.EXAMPLE" in lines
        tickets = use_tickets(kdc, tmp_path, monkeypatch)
        assert tickets.kinit("chef@musterstadt.example").returncode == 0
    finally:
        kdc.stop()


GET_INBOX = b"""<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"
  xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">
  <s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>
  <s:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>
    <m:FolderIds><t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder></s:Body>
</s:Envelope>"""


def test_the_lab_ews_endpoint_proves_itself_to_a_kerberos_client(
    kdc: LabKdc, tickets: Tickets
) -> None:
    from exlab.server import create_app

    lab = open_demo(None)
    auth = LabAuthenticator(lab, keytab=kdc.keytab, realm=kdc.realm)
    try:
        with serve(create_app(lab, authenticator=auth)) as served:
            assert tickets.kinit(ASSISTENZ).returncode == 0
            client = spnego.client(hostname="127.0.0.1", service="HTTP", protocol="kerberos")
            token = base64.b64encode(client.step()).decode()
            r = requests.post(
                served.url,
                data=GET_INBOX,
                headers={"Authorization": f"Negotiate {token}", "Content-Type": "text/xml"},
                timeout=10,
            )
            assert r.status_code == 200, r.text
            assert "NoError" in r.text
            (mutual,) = r.raw.headers.getlist("WWW-Authenticate")
            client.step(base64.b64decode(mutual.split(" ", 1)[1]))
            assert client.complete
    finally:
        auth.close()
