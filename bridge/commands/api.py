"""`medbridge api`: serve the delegate mailbox REST API, make API keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bridge.commands._common import fail

NAME = "api"
app = typer.Typer(help="The delegate mailbox REST API.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    # `\[`: typer renders help as rich markup, where `[api]` would be a style tag and vanish.
    typer.Option("--config", help="TOML file with an \\[api] table (default: the config file)."),
]


@app.command()
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8080,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM).")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
) -> None:
    """Serve the API (OpenAPI at /docs and /openapi.json)."""
    import logging

    import uvicorn

    from bridge.api import SettingsError, create_app, load_settings

    try:
        app = create_app(load_settings(config))
    except SettingsError as exc:
        fail(str(exc), 2)
    if (tls_cert is None) != (tls_key is None):
        fail("give both --tls-cert and --tls-key, or neither", 2)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    uvicorn.run(
        app,
        host=host,
        port=port,
        access_log=False,
        log_level="info",
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None,
    )


@app.command()
def keygen(
    caller: Annotated[str, typer.Option(help="The caller the key speaks for.")],
    scope: Annotated[
        list[str] | None,
        typer.Option(help="read, write, send, manage, events (repeat; default: read)."),
    ] = None,
) -> None:
    r"""Make an API key: prints the key once and the [\[api.keys]] entry to store."""
    from pydantic import ValidationError

    from bridge.api.auth import new_key

    try:
        key, entry = new_key(caller, scope or ["read"])
    except ValidationError as exc:
        fail(f"bad scope: {exc.errors()[0]['msg']}", 2)
    typer.echo(f"key (shown once): {key}")
    typer.echo("[[api.keys]]")
    for name, value in entry.model_dump().items():
        typer.echo(f"{name} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
