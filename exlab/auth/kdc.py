"""A real MIT Kerberos KDC for the lab's realm, so that Negotiate logins are tested for real.

`start_kdc(directory, users)` creates the realm under `directory` the first time (database,
principals for the users, `HTTP/<host>` service keys in one keytab) and reuses it later, so
tickets users got with kinit stay valid across lab restarts. The KDC runs through k5test on
a free port of 127.0.0.1 only (TCP and UDP), is tied to the process that started it and is
stopped by pid.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shlex
import shutil
import signal
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exlab.auth.authenticator import DEMO_DOMAIN, PasswordChecker, demo_passwords

REALM = "MUSTERSTADT.EXAMPLE"
KDC_BINARY = "krb5kdc"
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class KdcError(RuntimeError):
    """The KDC could not be started: binaries missing, no free port, or a bad realm directory."""


def find_kdc_binary() -> str | None:
    """Path of MIT's krb5kdc (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which(KDC_BINARY)
    if found:
        return found
    for directory in _SBIN:
        candidate = Path(directory) / KDC_BINARY
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def service_hosts() -> list[str]:
    """Host names clients may put in the EWS URL; each gets an `HTTP/<host>` key."""
    hosts = ["localhost", "127.0.0.1", socket.gethostname().lower()]
    fqdn = socket.getfqdn().lower()
    hosts.append(fqdn)
    return list(dict.fromkeys(h for h in hosts if h))


def _free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (the KDC listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise KdcError("no free port on 127.0.0.1 for the KDC")


def _check_port(port: int) -> int:
    """A port asked for by the user: free for TCP and UDP on 127.0.0.1, else KdcError."""
    if not 1 <= port <= 65535:
        raise KdcError(f"the KDC port must be 1 to 65535, not {port}")
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", port))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", port))
    except OSError as exc:
        raise KdcError(f"the KDC cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    return port


def _listeners(port: int) -> tuple[int, int]:
    """How many TCP listeners and UDP sockets are bound to `port` (any address)."""
    counts = []
    for proto in ("tcp", "udp"):
        count = 0
        for name in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
            try:
                lines = Path(name).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                local, state = fields[1], fields[3]
                if int(local.rsplit(":", 1)[1], 16) != port:
                    continue
                if proto == "udp" or state == "0A":  # 0A: LISTEN
                    count += 1
        counts.append(count)
    return counts[0], counts[1]


def _write_private(path: Path, text: str, mode: int = 0o600) -> None:
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _krb5_conf(realm: str, port: int, hosts: Iterable[str], domain: str) -> str:
    mapping = "".join(f"\t{h} = {realm}\n" for h in hosts)
    return (
        "[libdefaults]\n"
        f"\tdefault_realm = {realm}\n"
        "\tdns_lookup_kdc = false\n"
        "\tdns_lookup_realm = false\n"
        "\trdns = false\n"
        "\tdns_canonicalize_hostname = false\n"
        "\tudp_preference_limit = 1\n"
        "[realms]\n"
        f"\t{realm} = {{\n"
        f"\t\tkdc = 127.0.0.1:{port}\n"
        "\t}\n"
        "[domain_realm]\n"
        f"{mapping}"
        f"\t.{domain} = {realm}\n"
        f"\t{domain} = {realm}\n"
    )


def _kdc_conf(realm: str, port: int, directory: Path) -> str:
    listen = f"127.0.0.1:{port}"
    return (
        "[kdcdefaults]\n"
        f"\tkdc_listen = {listen}\n"
        f"\tkdc_tcp_listen = {listen}\n"
        "[realms]\n"
        f"\t{realm} = {{\n"
        f"\t\tdatabase_name = {directory}/db\n"
        f"\t\tkey_stash_file = {directory}/stash\n"
        f"\t\tacl_file = {directory}/acl\n"
        f"\t\tkdc_listen = {listen}\n"
        f"\t\tkdc_tcp_listen = {listen}\n"
        "\t\tmax_life = 10h\n"
        "\t\tmax_renewable_life = 7d\n"
        "\t}\n"
        "[logging]\n"
        f"\tkdc = FILE:{directory}/kdc.log\n"
        f"\tdefault = FILE:{directory}/others.log\n"
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_kdc(pid: int, kdc_conf: Path) -> bool:
    """True if `pid` is a krb5kdc serving this realm directory (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return KDC_BINARY.encode() in cmdline and f"KRB5_KDC_PROFILE={kdc_conf}".encode() in environ


def _stop_pid(pid: int, timeout_s: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.02)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class LabKdc:
    """A running KDC: where its files are and what a client or the lab server needs."""

    realm: str
    directory: Path
    port: int
    pid: int
    domain: str = DEMO_DOMAIN
    _k5: Any = field(default=None, repr=False)

    @property
    def krb5_config(self) -> Path:
        """The `KRB5_CONFIG` clients (kinit, medbridge) must use for this realm."""
        return self.directory / "krb5.conf"

    @property
    def keytab(self) -> Path:
        """The HTTP service keys; the lab's acceptor reads them (`KRB5_KTNAME`)."""
        return self.directory / "keytab"

    @property
    def kdc_conf(self) -> Path:
        return self.directory / "kdc.conf"

    def principal(self, address: str) -> str:
        """`assistenz@musterstadt.example` -> `assistenz@MUSTERSTADT.EXAMPLE`."""
        return f"{address.split('@', 1)[0].lower()}@{self.realm}"

    def client_env(self, ccache: Path | str) -> dict[str, str]:
        """Environment for a client process with its own ticket cache."""
        return {"KRB5_CONFIG": str(self.krb5_config), "KRB5CCNAME": f"FILE:{ccache}"}

    def kinit_example(self, address: str) -> str:
        return f"KRB5_CONFIG={self.krb5_config} kinit {self.principal(address)}"

    def kadmin(self, query: str) -> str:
        """Run one kadmin.local query on the realm's database (no passwords in `query`)."""
        return str(self._k5.run_kadminl(query).decode())

    def principals(self) -> set[str]:
        out = self.kadmin("listprincs")
        return {line.strip() for line in out.splitlines() if "@" in line and " " not in line}

    def add_user(self, address: str, password: str) -> None:
        """Create the user's principal; the password goes over stdin, never on a command line."""
        query = f"addprinc +requires_preauth -clearpolicy {self.principal(address)}"
        self._k5.run_kadminl(query, input=f"{password}\n{password}\n")

    @property
    def running(self) -> bool:
        return _pid_alive(self.pid) and _is_our_kdc(self.pid, self.kdc_conf)

    def stop(self) -> None:
        """Stop the KDC by pid; the realm directory stays for the next start."""
        if self._k5 is not None and getattr(self._k5, "_kdc_proc", None) is not None:
            self._k5.stop_kdc()
        if _pid_alive(self.pid) and _is_our_kdc(self.pid, self.kdc_conf):
            _stop_pid(self.pid)
        with contextlib.suppress(FileNotFoundError):
            (self.directory / "kdc.pid").unlink()


def _stop_stale(directory: Path) -> None:
    """A KDC left by a crashed run of this realm directory holds the database: stop it."""
    pidfile = directory / "kdc.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    if _pid_alive(pid) and _is_our_kdc(pid, directory / "kdc.conf"):
        _stop_pid(pid)
    with contextlib.suppress(FileNotFoundError):
        pidfile.unlink()


def _launcher(directory: Path, kdc_binary: str) -> str:
    """krb5kdc behind `setpriv --pdeathsig`: the KDC ends when the thread that started it does."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return kdc_binary
    script = directory / "krb5kdc-tied"
    command = f"exec {shlex.quote(setpriv)} --pdeathsig TERM {shlex.quote(kdc_binary)}"
    _write_private(script, f'#!/bin/sh\n{command} "$@"\n', mode=0o700)
    return str(script)


def start_kdc(
    directory: Path,
    users: Mapping[str, str],
    *,
    realm: str = REALM,
    domain: str = DEMO_DOMAIN,
    hosts: Iterable[str] | None = None,
    attempts: int = 5,
    port: int | None = None,
) -> LabKdc:
    """Start (creating on first use) the realm in `directory` with principals for `users`.

    `users` maps mailbox addresses to passwords; existing principals keep their keys, so a
    user's ticket from an earlier run stays valid. Start it from the main thread: the KDC is
    tied to the starting thread and ends with it. `port` fixes the KDC's port (where ports are
    assigned); by default a free one is picked.

    Raises:
        KdcError: krb5kdc is not installed, or the KDC did not come up alone on its port.
    """
    kdc_binary = find_kdc_binary()
    if kdc_binary is None:
        raise KdcError(
            "krb5kdc not found: install the MIT KDC (Debian: apt install krb5-kdc "
            "krb5-admin-server krb5-user)"
        )
    from k5test import K5Realm  # heavy and lab-only; loaded when a KDC is wanted

    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    _stop_stale(directory)
    hosts = list(hosts) if hosts is not None else service_hosts()
    fresh = not (directory / "stash").exists()
    last_error = "no attempt made"
    wanted = port
    for _ in range(1 if wanted is not None else attempts):
        port = _check_port(wanted) if wanted is not None else _free_port()
        _write_private(directory / "krb5.conf", _krb5_conf(realm, port, hosts, domain))
        _write_private(directory / "kdc.conf", _kdc_conf(realm, port, directory))
        if not (directory / "acl").exists():
            _write_private(directory / "acl", "")
        k5 = K5Realm(
            realm=realm,
            portbase=port,
            existing=str(directory),
            get_creds=False,
            start_kdc=False,
        )
        k5.krb5kdc = _launcher(directory, kdc_binary)
        if fresh:
            k5.run([k5.kdb5_util, "create", "-W", "-s", "-P", os.urandom(16).hex()])
            fresh = False
        try:
            k5.start_kdc(args=["-P", str(directory / "kdc.pid")])
        except Exception as exc:  # k5test raises bare Exception when the daemon exits
            last_error = str(exc)
            continue
        pid = _wait_for_pidfile(directory / "kdc.pid")
        kdc = LabKdc(realm=realm, directory=directory, port=port, pid=pid, domain=domain, _k5=k5)
        if _listeners(port) != (1, 1):
            last_error = f"port {port} is shared with another process"
            kdc.stop()
            continue
        atexit.register(kdc.stop)
        _ensure_principals(kdc, users, hosts)
        return kdc
    raise KdcError(f"the lab KDC did not start: {last_error}")


def _wait_for_pidfile(path: Path, timeout_s: float = 5.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        time.sleep(0.01)
    raise KdcError(f"the KDC wrote no pid file ({path})")


def _ensure_principals(kdc: LabKdc, users: Mapping[str, str], hosts: Iterable[str]) -> None:
    existing = kdc.principals()
    for address, password in users.items():
        if kdc.principal(address) not in existing:
            kdc.add_user(address, password)
    services = [f"HTTP/{host}@{kdc.realm}" for host in hosts]
    new = [s for s in services if s not in existing]
    for service in new:
        kdc.kadmin(f"addprinc -randkey -clearpolicy {service}")
    to_export = services if not kdc.keytab.exists() else new
    for service in to_export:
        kdc.kadmin(f'ktadd -k "{kdc.keytab}" -norandkey {service}')


def start_lab_kdc(
    lab: PasswordChecker,
    directory: Path,
    *,
    extra_hosts: Iterable[str] = (),
    port: int | None = None,
) -> LabKdc:
    """The realm for a lab: a principal for every login that still has the demo password.

    `extra_hosts` get service keys beside the usual local names (e.g. the address served on);
    `port` is the KDC's (default: a free one).
    """
    hosts = [*service_hosts(), *(h.lower() for h in extra_hosts if h)]
    return start_kdc(directory, demo_passwords(lab), hosts=list(dict.fromkeys(hosts)), port=port)


def usage_lines(kdc: LabKdc, url_host: str, address: str) -> list[str]:
    """What a user needs to log in with Kerberos: the config to use and a kinit example."""
    return [
        f"Kerberos realm {kdc.realm}: KDC on 127.0.0.1:{kdc.port}, files in {kdc.directory}",
        f"  export KRB5_CONFIG={kdc.krb5_config}",
        f"  kinit {kdc.principal(address)}        # password: the user's lab password",
        f"  curl --negotiate -u : -X POST http://{url_host}/EWS/Exchange.asmx",
    ]
