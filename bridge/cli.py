"""The `medbridge` command: one entry point, subcommands assembled from `bridge/commands/`."""

from __future__ import annotations

import typer

from bridge import paths

app = typer.Typer(
    name="medbridge",
    help="Delegate access to Exchange mailboxes, tied to a secure messenger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Delegate access to Exchange mailboxes, tied to a secure messenger."""


@app.command()
def locate() -> None:
    """Print where medbridge keeps its configuration and data."""
    for name, path in paths.all_paths().items():
        typer.echo(f"{name}: {path}")


def _register_subcommands() -> None:
    # Each group module keeps heavy imports (exchangelib, FastAPI, textual) inside its commands,
    # so `medbridge --help` stays fast and needs no optional extra.
    import importlib
    import pkgutil

    import bridge.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bridge.commands.{info.name}")
        group = getattr(module, "app", None)
        if isinstance(group, typer.Typer):
            app.add_typer(group, name=getattr(module, "NAME", info.name))


_register_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
