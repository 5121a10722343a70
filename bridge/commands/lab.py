"""`medbridge lab`: run the Exchange lab (a simulated Exchange organisation speaking EWS)."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bridge import paths
from bridge.commands._common import fail, print_json

if TYPE_CHECKING:
    from types import FrameType

    import uvicorn

    from exlab import Lab
    from exlab.auth.kdc import LabKdc

NAME = "lab"
app = typer.Typer(
    help="The Exchange lab: a simulated Exchange organisation speaking EWS.",
    no_args_is_help=True,
)

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="SQLite file of the lab (default: the lab data directory)."),
]


def _store_path(store: Path | None) -> Path:
    if store is not None:
        return store
    return paths.lab_dir() / "lab.sqlite"


def _open(store: Path | None, demo: bool) -> Lab:
    """Open the lab store, seeding the demo organisation when asked; one clear line on failure."""
    import sqlite3

    from exlab import Lab
    from exlab.demo import open_demo

    path = _store_path(store)
    if not demo and not path.exists():
        fail(f"no lab store at {path}; start with --demo to create the demo organisation")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open_demo(path) if demo else Lab.open(path)
    except (OSError, sqlite3.Error) as exc:
        fail(f"cannot open the lab store {path}: {exc}")


@app.command()
def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed the demo organisation if the store is new.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on (0 picks a free one).", min=0, max=65535)
    ] = 8080,
    store: StoreOption = None,
    throttle: Annotated[
        int | None,
        typer.Option(help="Requests allowed per user per 10 seconds, then ErrorServerBusy."),
    ] = None,
    latency: Annotated[float, typer.Option(help="Seconds added to every request.")] = 0.0,
    kerberos: Annotated[
        bool,
        typer.Option(
            "--kerberos",
            help="Also run a Kerberos KDC for the lab's realm, for Negotiate logins "
            "(kept next to the store, so tickets survive restarts).",
        ),
    ] = False,
    kdc_port: Annotated[
        int | None,
        typer.Option(
            "--kdc-port",
            help="Port of the KDC with --kerberos (default: a free one).",
            min=1,
            max=65535,
        ),
    ] = None,
    graph: Annotated[
        bool,
        typer.Option(
            "--graph/--no-graph",
            help="Also serve Microsoft Graph (/v1.0) and its OAuth authority (implies --tls).",
        ),
    ] = False,
    tls: Annotated[
        bool | None,
        typer.Option(
            "--tls/--no-tls",
            help="Serve https with the lab's own CA (printed; on by default with --graph).",
        ),
    ] = None,
) -> None:
    """Serve EWS at http://HOST:PORT/EWS/Exchange.asmx until interrupted.

    With --graph the same port serves Graph at /v1.0 and an OAuth authority at /organizations
    (MSAL needs https: trust the printed CA file, e.g. REQUESTS_CA_BUNDLE for Python clients).
    """
    import uvicorn

    from exlab.auth import LabAuthenticator
    from exlab.server import STREAMS_CLOSE_S, create_app

    if kdc_port is not None and not kerberos:
        fail("--kdc-port needs --kerberos", 2)
    lab = _open(store, demo)
    if not lab.users():
        fail("the lab store holds no organisation; start with --demo")
    if throttle is not None:
        lab.knobs.throttle_budget = {"*": throttle}
    lab.knobs.latency_s = max(latency, 0.0)
    try:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    use_tls = graph if tls is None else tls
    scheme = "https" if use_tls else "http"
    cert_file: str | None = None
    key_file: str | None = None
    ca_file: Path | None = None
    if use_tls:
        from exlab.graph.tls import DEFAULT_HOSTS, ensure_tls

        hosts = DEFAULT_HOSTS if host in DEFAULT_HOSTS else (host, *DEFAULT_HOSTS)
        lab_tls = ensure_tls(_store_path(store).parent / "tls", hosts)
        cert_file, key_file = str(lab_tls.cert_file), str(lab_tls.key_file)
        ca_file = lab_tls.ca_file
    base = f"{scheme}://{shown}:{bound}"
    kdc = (
        _start_kdc(lab, _store_path(store).parent / "kerberos", host, kdc_port)
        if kerberos
        else None
    )
    auth = LabAuthenticator(
        lab,
        keytab=kdc.keytab if kdc else None,
        realm=kdc.realm if kdc else None,
    )
    web_app = create_app(lab, authenticator=auth)
    typer.echo(f"EWS endpoint: {base}/EWS/Exchange.asmx")
    if graph:
        from exlab.graph.app import mount_graph

        mount_graph(web_app, lab, key_dir=_store_path(store).parent / "tls")
        typer.echo(f"Graph endpoint: {base}/v1.0")
        typer.echo(
            f"OAuth authority: {base}/organizations (device sign-in page: {base}/lab/device)"
        )
        from exlab.graph.oauth import PUBLIC_CLIENT_ID

        typer.echo(
            f"Public client id: {PUBLIC_CLIENT_ID} (all apps: medbridge lab apps; "
            "register more: medbridge lab apps add NAME)"
        )
    if ca_file is not None:
        typer.echo(f"CA file: {ca_file}")
    typer.echo(f"Store: {_store_path(store)}")
    typer.echo("Users: medbridge lab users" + (f" --store {store}" if store else ""))
    if kdc is not None:
        from exlab.auth.kdc import usage_lines

        for line in usage_lines(kdc, f"{shown}:{bound}", "assistenz@musterstadt.example"):
            typer.echo(line)
    sys.stdout.flush()
    config = uvicorn.Config(
        web_app,
        log_level="warning",
        lifespan="off",
        access_log=False,
        ssl_certfile=cert_file,
        ssl_keyfile=key_file,
        # Open notification streams end when the server goes, as with a real server,
        # instead of holding the shutdown for their connection timeout (a minute).
        timeout_graceful_shutdown=STREAMS_CLOSE_S,
    )
    try:
        _serve_until_stopped(config, sock)
    finally:
        auth.close()
        if kdc is not None:
            kdc.stop()
        lab.close()
    typer.echo("Lab stopped.")


def _serve_until_stopped(config: uvicorn.Config, sock: socket.socket) -> None:
    """Serve until SIGTERM/SIGINT, then return normally so the caller can close the store."""
    import uvicorn

    class Server(uvicorn.Server):
        # uvicorn shuts down gracefully and then raises the signal again under the default
        # handler, which kills the process before the store is closed and the KDC stopped.
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True  # a second Ctrl-C stops waiting for open connections
            self.should_exit = True

    Server(config).run(sockets=[sock])


def _start_kdc(lab: Lab, directory: Path, host: str, port: int | None) -> LabKdc:
    """The lab's KDC, or one clear line and exit when it cannot run here."""
    from exlab.auth.kdc import KdcError, start_lab_kdc

    try:
        wildcard = host in ("", "0.0.0.0", "::")  # noqa: S104 - compared, not bound
        return start_lab_kdc(lab, directory, extra_hosts=[] if wildcard else [host], port=port)
    except KdcError as exc:
        lab.close()
        fail(str(exc))
    except Exception as exc:  # k5test reports a failed kadmin/kdb5_util run as a bare Exception
        lab.close()
        fail(f"cannot set up the Kerberos realm in {directory}: {exc}")


@app.command()
def users(
    store: StoreOption = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed the demo organisation if the store is new.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the lab's mailboxes: address, name, kind, and whether one can log in."""
    from exlab.demo import DEMO_PASSWORD

    lab = _open(store, demo)
    try:
        rows = lab.users()
        is_demo = lab.store.get_meta("demo") is not None
    finally:
        lab.close()
    if as_json:
        print_json([row._asdict() for row in rows])
        return
    width = max((len(r.address) for r in rows), default=10)
    for row in rows:
        login = "login" if row.has_login else "no login"
        typer.echo(f"{row.address:<{width}}  {row.kind:<6}  {login:<8}  {row.display_name}")
    if is_demo:
        typer.echo(f"Demo password for every login: {DEMO_PASSWORD}")


apps_app = typer.Typer(help="App registrations of the lab's OAuth authority (Graph clients).")
app.add_typer(apps_app, name="apps")


@apps_app.callback(invoke_without_command=True)
def apps(
    ctx: typer.Context,
    store: StoreOption = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed the demo organisation if the store is new.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the registered clients: id, name, kind, redirect URIs and secrets (confidential)."""
    if ctx.invoked_subcommand is not None:
        return
    from exlab.graph.apps import registrations

    lab = _open(store, demo)
    try:
        rows = registrations(lab.store)
    finally:
        lab.close()
    if as_json:
        print_json(
            [
                {
                    "client_id": r.client_id,
                    "name": r.name,
                    "kind": r.kind,
                    "redirect_uris": list(r.redirect_uris),
                    "roles": sorted(r.roles),
                    "secret": r.secret_hint,
                }
                for r in rows
            ]
        )
        return
    for r in rows:
        typer.echo(f"{r.client_id}  {r.kind:<12}  {r.name}")
        if r.redirect_uris:
            typer.echo(f"    redirect URIs: {', '.join(r.redirect_uris)}")
        if r.roles:
            typer.echo(f"    application roles: {', '.join(sorted(r.roles))}")
        if r.secret_hint:
            shown = (
                r.secret_hint
                if r.builtin
                else f"{r.secret_hint} (shown whole once, at registration)"
            )
            typer.echo(f"    secret: {shown}")


@apps_app.command("add")
def apps_add(
    name: Annotated[str, typer.Argument(help="Display name of the app.")],
    confidential: Annotated[
        bool,
        typer.Option(
            "--confidential", help="A confidential client (client credentials) with a secret."
        ),
    ] = False,
    redirect_uri: Annotated[
        list[str] | None,
        typer.Option("--redirect-uri", help="A redirect URI (https or http://localhost)."),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role", help="An application role of a confidential client, e.g. Mail.ReadWrite."
        ),
    ] = None,
    store: StoreOption = None,
) -> None:
    """Register a client; a confidential client's secret is printed once, here."""
    from exlab.graph.apps import register

    lab = _open(store, False)
    try:
        registration, secret = register(
            lab.store,
            name,
            kind="confidential" if confidential else "public",
            redirect_uris=tuple(redirect_uri or ()),
            roles=frozenset(role or ()),
        )
    except ValueError as exc:
        fail(str(exc))
    finally:
        lab.close()
    typer.echo(f"Client id: {registration.client_id}")
    if registration.redirect_uris:
        typer.echo(f"Redirect URIs: {', '.join(registration.redirect_uris)}")
    if secret is not None:
        typer.echo(f"Secret: {secret}")
        typer.echo("The secret is shown only now; the lab keeps a hash of it.")
