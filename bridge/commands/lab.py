"""`medbridge lab`: run the Exchange lab (a simulated Exchange organisation speaking EWS)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bridge import paths
from bridge.commands._common import fail, print_json

if TYPE_CHECKING:
    from med.lab import Lab

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

    from med.lab import Lab

    path = _store_path(store)
    if not demo and not path.exists():
        fail(f"no lab store at {path}; start with --demo to create the demo organisation")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return Lab.open(path, demo=demo)
    except (OSError, sqlite3.Error) as exc:
        fail(f"cannot open the lab store {path}: {exc}")


@app.command()
def serve(
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed the demo organisation if the store is new.")
    ] = False,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0 picks a free one).")] = 8080,
    store: StoreOption = None,
    throttle: Annotated[
        int | None,
        typer.Option(help="Requests allowed per user per 10 seconds, then ErrorServerBusy."),
    ] = None,
    latency: Annotated[float, typer.Option(help="Seconds added to every request.")] = 0.0,
) -> None:
    """Serve EWS at http://HOST:PORT/EWS/Exchange.asmx until interrupted."""
    import uvicorn

    from med.lab.server import create_app

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
    typer.echo(f"EWS endpoint: http://{shown}:{bound}/EWS/Exchange.asmx")
    typer.echo(f"Store: {_store_path(store)}")
    typer.echo("Users: medbridge lab users" + (f" --store {store}" if store else ""))
    sys.stdout.flush()
    config = uvicorn.Config(create_app(lab), log_level="warning", lifespan="off", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        lab.close()


@app.command()
def users(
    store: StoreOption = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Seed the demo organisation if the store is new.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the lab's mailboxes: address, name, kind, and whether one can log in."""
    from med.lab.demo import DEMO_PASSWORD

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
