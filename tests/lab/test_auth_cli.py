"""`medbridge lab serve --kerberos`: a KDC beside the lab, usable with kinit and exchangelib."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from exlab.demo import DEMO_PASSWORD
from med.auth.negotiate import NEGOTIATE, register
from tests.lab.kdcrealm import require_kdc

pytestmark = pytest.mark.kerberos

REPO = Path(__file__).resolve().parents[2]
SERVE = [sys.executable, "-m", "bridge.cli", "lab", "serve", "--demo", "--port", "0"]


@dataclass
class Serving:
    url: str
    krb5_config: str
    output: list[str]
    pid: int


@contextmanager
def serving(store: Path, *extra: str) -> Iterator[Serving]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    errors = store.with_name(store.name + ".stderr")
    with (
        errors.open("w") as stderr,
        subprocess.Popen(
            [*SERVE, "--store", str(store), "--kerberos", *extra],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        ) as proc,
    ):
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            while not any("curl --negotiate" in line for line in lines):
                line = proc.stdout.readline()
                assert line, "\n".join(lines) + errors.read_text()
                lines.append(line.strip())
            url = next(x for x in lines if x.startswith("EWS endpoint: ")).split(": ", 1)[1]
            config = next(x for x in lines if "export KRB5_CONFIG=" in x).split("=", 1)[1]
            yield Serving(url=url, krb5_config=config, output=lines, pid=proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)


def _kinit(config: str, ccache: Path, user: str, password: str) -> int:
    env = {**os.environ, "KRB5_CONFIG": config, "KRB5CCNAME": f"FILE:{ccache}"}
    return subprocess.run(
        ["kinit", user], input=password + "\n", env=env, capture_output=True, text=True, timeout=30
    ).returncode


def _inbox_name(url: str) -> str:
    from exchangelib import DELEGATE, Account, Build, Configuration, Version
    from exchangelib.protocol import close_connections

    register()
    config = Configuration(
        service_endpoint=url, auth_type=NEGOTIATE, version=Version(build=Build(15, 1))
    )
    account = Account(
        "chef@musterstadt.example", access_type=DELEGATE, config=config, autodiscover=False
    )
    try:
        return str(account.inbox.name)
    finally:
        close_connections()


def _gone(pid: int) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_serve_kerberos_prints_the_config_and_a_ticket_survives_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_kdc()
    store = tmp_path / "lab.sqlite"
    ccache = tmp_path / "ccache"
    with serving(store) as first:
        assert first.krb5_config == str(tmp_path / "kerberos" / "krb5.conf")
        assert any("kinit assistenz@MUSTERSTADT.EXAMPLE" in x for x in first.output)
        assert _kinit(first.krb5_config, ccache, "assistenz", "wrong") != 0
        assert _kinit(first.krb5_config, ccache, "assistenz", DEMO_PASSWORD) == 0
        monkeypatch.setenv("KRB5_CONFIG", first.krb5_config)
        monkeypatch.setenv("KRB5CCNAME", f"FILE:{ccache}")
        monkeypatch.delenv("NTLM_USER_FILE", raising=False)
        assert _inbox_name(first.url) == "Posteingang"
        kdc_pid = int((tmp_path / "kerberos" / "kdc.pid").read_text())
    assert _gone(kdc_pid)  # stopping the lab stops its KDC
    with serving(store) as second:
        # same realm, same keys: yesterday's ticket still opens the boss's inbox
        assert _inbox_name(second.url) == "Posteingang"


def _free_tcp_and_udp_port() -> int:
    import socket

    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise AssertionError("no free port")


def test_serve_kerberos_on_an_assigned_kdc_port(tmp_path: Path) -> None:
    require_kdc()
    port = _free_tcp_and_udp_port()
    with serving(tmp_path / "lab.sqlite", "--kdc-port", str(port)) as lab:
        assert any(f"KDC on 127.0.0.1:{port}," in line for line in lab.output)
        assert f"kdc = 127.0.0.1:{port}" in Path(lab.krb5_config).read_text()
        ccache = tmp_path / "cc"
        assert _kinit(lab.krb5_config, ccache, "assistenz", DEMO_PASSWORD) == 0


def test_kdc_port_without_kerberos_or_out_of_range_is_one_line(tmp_path: Path) -> None:
    for extra, code in ((["--kdc-port", "7088"], 2), (["--kerberos", "--kdc-port", "0"], 2)):
        result = subprocess.run(
            [*SERVE, "--store", str(tmp_path / "lab.sqlite"), *extra],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == code, result.stderr
        assert result.stderr.startswith("medbridge: ") and result.stderr.count("\n") == 1
        assert "kdc-port" in result.stderr
