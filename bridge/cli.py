"""The `medbridge` command: one entry point, subcommands assembled from `bridge/commands/`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bridge import paths
from bridge.commands._common import fail

if TYPE_CHECKING:
    from med import DelegateSession, Profile
    from tui.config import TuiConfig
    from tui.first_start import FirstStart

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


def _tui_config() -> TuiConfig:
    """The `[tui]` and `[keymap]` tables of the config file; a bad entry is one clear line."""
    import tomllib

    from tui.config import ConfigError, TuiConfig

    path = paths.config_file()
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        return TuiConfig.from_mapping(
            doc.get("tui"), doc.get("keymap"), drafts_dir=paths.data_dir() / "drafts"
        )
    except (OSError, tomllib.TOMLDecodeError, ConfigError) as exc:
        fail(f"{path}: {exc}")


def _run_tui(
    session: DelegateSession | None,
    start_folder: str | None = None,
    relogin: Callable[[str], DelegateSession] | None = None,
) -> FirstStart | None:
    # The only place outside tui/ that starts the Textual app (an import-linter contract).
    from tui.app import make_app

    return make_app(session, _tui_config(), start_folder=start_folder, relogin=relogin).run()


def _relogin(profile: Profile) -> Callable[[str], DelegateSession] | None:
    """How the TUI opens a session with a corrected password (None: no password to ask)."""
    from med import AuthMethod, DelegateSession

    if profile.backend == "graph" or profile.auth is AuthMethod.KERBEROS:
        return None
    return lambda password: DelegateSession.open(profile, password=password)


def _run_demo(store: Path | None) -> None:
    from bridge.demo import DEMO_START_FOLDER, LabThread, demo_profile
    from exlab.demo import DEMO_PASSWORD
    from med import DelegateSession

    store = store or paths.lab_dir() / "demo.sqlite"
    typer.echo("Starting the Exchange lab with the demo organisation …")
    with LabThread(store) as lab:
        typer.echo(f"Lab EWS endpoint: {lab.ews_url} (stops when you quit the TUI)")
        profile = demo_profile(lab.ews_url)
        session = DelegateSession.open(profile, password=DEMO_PASSWORD)
        try:
            _run_tui(session, start_folder=DEMO_START_FOLDER, relogin=_relogin(profile))
        finally:
            asyncio.run(session.close())


@app.command()
def demo(
    store: Path | None = typer.Option(
        None, "--store", help="Lab store file (default: demo.sqlite in the lab data directory)."
    ),
) -> None:
    """Start the lab with the demo organisation and open the TUI as assistenz."""
    _run_demo(store)


@app.command()
def tui(
    profile: str | None = typer.Option(None, "--profile", "-p", help="Profile to open."),
) -> None:
    """Open the terminal UI; without any profile it offers the demo or a profile wizard."""
    from bridge.commands._med import exit_code, load_profile, open_session
    from med import MedError
    from med.config import load_profiles, save_profile

    if profile is None and not load_profiles(paths.config_file()):
        choice = _run_tui(None)
        if choice is None:
            return
        if choice.choice == "demo":
            _run_demo(None)
            return
        if choice.profile is None:
            return
        save_profile(paths.config_file(), choice.profile, make_default=True)
        profile = choice.profile.name
    try:
        session = open_session(profile)
        relogin = _relogin(load_profile(profile))
    except MedError as exc:
        fail(str(exc), exit_code(exc))
    try:
        _run_tui(session, relogin=relogin)
    finally:
        asyncio.run(session.close())


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


#: Libraries whose log records are debugging detail (request dumps, retries) for users of the CLI.
_LIBRARY_LOGGERS = ("exchangelib", "O365", "msal", "requests_gssapi", "spnego", "urllib3")


def _quiet_libraries() -> None:
    """Users see our one-line errors, not library internals; MEDBRIDGE_DEBUG=1 shows them."""
    import logging
    import os

    if os.environ.get("MEDBRIDGE_DEBUG"):
        logging.basicConfig(level=logging.DEBUG)
        return
    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main() -> None:
    _quiet_libraries()
    app()


if __name__ == "__main__":
    main()
