"""`medbridge bridge`: the notification bridge (mailbox events into the messenger, actions back)."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from bridge import paths
from bridge.commands._common import fail

NAME = "bridge"
app = typer.Typer(help="The notification bridge between mailboxes and the messenger.")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Bridge TOML file (default: bridge.toml in the config dir)."
    ),
]
WorkerOpt = Annotated[
    str | None,
    typer.Option("--worker-id", help="This worker's name (default: host and process id)."),
]


def _load(config: Path | None, worker_id: str | None) -> object:
    from bridge.notify import ConfigError, load_config

    path = config or paths.config_dir() / "bridge.toml"
    try:
        return load_config(path, data_dir=paths.data_dir() / "bridge", worker_id=worker_id)
    except ConfigError as exc:
        fail(str(exc), 2)  # the message names the file; 2: invalid input, as documented


@app.command()
def check(config: ConfigOpt = None) -> None:
    """Validate the configuration and print what would be watched."""
    from bridge.notify import BridgeConfig

    loaded = _load(config, None)
    assert isinstance(loaded, BridgeConfig)
    for watch in loaded.watches:
        typer.echo(f"watch {watch.mailbox}: {', '.join(watch.folders)} as {watch.identity}")
    for rule in loaded.rules:
        typer.echo(f"rule {rule.name} → {', '.join(r.key for r in rule.to)}")


@app.command()
def run(
    config: ConfigOpt = None,
    worker_id: WorkerOpt = None,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run one bridge worker until interrupted (SIGINT or SIGTERM end it cleanly)."""
    from bridge.notify import BridgeConfig, BridgeWorker, ConfigError
    from bridge.notify.store import SchemaTooNew
    from med import MedError
    from messenger.client import MessengerError
    from messenger.crypto import KeyStoreError

    loaded = _load(config, worker_id)
    assert isinstance(loaded, BridgeConfig)
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    worker = BridgeWorker(loaded)

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        await worker.run()

    try:
        asyncio.run(main())
    except asyncio.CancelledError:
        typer.echo("bridge stopped", err=True)
    except (ConfigError, SchemaTooNew, KeyStoreError) as exc:
        fail(str(exc))
    except MessengerError as exc:
        fail(f"messenger: {exc}")
    except MedError as exc:
        fail(f"mailbox: {exc}")
