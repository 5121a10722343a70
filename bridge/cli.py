"""The `medbridge` command: one entry point, subcommands assembled from `bridge/commands/`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bridge import paths
from bridge.commands._common import current_settings, fail

if TYPE_CHECKING:
    from med import DelegateSession, Profile
    from tui.config import TuiConfig
    from tui.first_start import FirstStart
    from tui.messaging import MessengerAccount
    from tui.profiles import OpenProfile

app = typer.Typer(
    name="medbridge",
    help="Delegate access to Exchange mailboxes, tied to a secure messenger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    config: Path | None = typer.Option(
        None,
        "--config",
        help="Settings file to use instead of the XDG one (also MEDBRIDGE_CONFIG).",
        dir_okay=False,
    ),
) -> None:
    """Delegate access to Exchange mailboxes, tied to a secure messenger."""
    paths.use_config_file(config)


@app.command()
def locate() -> None:
    """Print where medbridge keeps its configuration and data, and what is locked."""
    for name, path in paths.all_paths().items():
        typer.echo(f"{name}: {path}")
    settings = current_settings()
    for path in settings.managed_files:
        state = "present" if path.exists() else "absent"
        typer.echo(f"managed: {path} ({state})")
    for setting in settings:
        if setting.locked:
            typer.echo(f"locked: {setting.name} (set by {setting.origin})")


def managed_key_check(key: tuple[str, ...], value: object) -> str | None:
    """The TUI's settings schema, for the tenant's managed keys (`bridge.managed_config`)."""
    from tui.config import check_setting

    return check_setting(key, value)


def _refresh_tenant_settings() -> None:
    """At TUI start: apply the tenant's app configuration again with the saved messenger
    session (`medbridge config sync-managed` made it); any failure keeps the keys delivered
    last and is one line, never a reason not to start."""
    from bridge.managed_config import MessengerSignIn, rejected_lines, sync_signed_in
    from messenger.client import MessengerError, Unauthenticated

    sign_in = MessengerSignIn.load()
    if sign_in is None or sign_in.token is None:
        return
    try:
        report, _ = asyncio.run(sync_signed_in(sign_in, managed_key_check))
    except Unauthenticated:
        typer.echo(
            "medbridge: your messenger session has ended; `medbridge config sync-managed` "
            "signs in again (the tenant settings delivered last stay)",
            err=True,
        )
        return
    except (MessengerError, OSError) as exc:
        typer.echo(
            f"medbridge: tenant settings not refreshed ({exc}); those delivered last stay",
            err=True,
        )
        return
    for line in rejected_lines(report):
        typer.echo(f"medbridge: {line}", err=True)


def _tui_config() -> TuiConfig:
    """The merged `[tui]` and `[keymap]` tables as typed values; a bad entry is one clear line."""
    from tui.config import ConfigError, TuiConfig

    settings = current_settings()
    try:
        return TuiConfig.from_mapping(
            settings.table("tui"), settings.table("keymap"), drafts_dir=paths.data_dir() / "drafts"
        )
    except ConfigError as exc:
        fail(f"{settings.user_file}: {exc}", 2)  # as documented: 2 for invalid input


def _messenger_accounts(profile: str) -> dict[str, MessengerAccount]:
    """The `[messenger.<profile>]` account of the profile opened (none: the pane says how).

    Its password comes from the variable or file the table names, never from the table; the
    device keys and protocol state live under the data directory, sealed."""
    import os

    from tui.messaging import MessengerConfigError, accounts_in

    settings = current_settings()
    table = settings.table("messenger")
    if profile not in table:
        return {}
    try:
        return accounts_in(
            {profile: table[profile]},
            state_root=paths.data_dir() / "messenger",
            environ=os.environ,
        )
    except MessengerConfigError as exc:
        fail(f"{settings.user_file}: {exc}", 2)


def _run_tui(
    session: DelegateSession | None,
    start_folder: str | None = None,
    relogin: Callable[[str], DelegateSession] | None = None,
    messenger_accounts: dict[str, MessengerAccount] | None = None,
    profiles: list[OpenProfile] | None = None,
) -> FirstStart | None:
    # The only place outside tui/ that starts the Textual app (an import-linter contract).
    from tui.app import make_app

    app = make_app(
        session,
        _tui_config(),
        start_folder=start_folder,
        relogin=relogin,
        messenger_accounts=messenger_accounts,
        profiles=profiles,
    )
    return app.run()


def _relogin(profile: Profile) -> Callable[[str], DelegateSession] | None:
    """How the TUI opens a session with a corrected password (None: no password to ask)."""
    from med import AuthMethod, DelegateSession

    if profile.backend == "graph" or profile.auth is AuthMethod.KERBEROS:
        return None
    return lambda password: DelegateSession.open(profile, password=password)


def _run_demo(store: Path | None, port: int = 0) -> None:
    from bridge.demo import (
        DEMO_START_FOLDER,
        DEMO_USER,
        BridgeThread,
        LabThread,
        MessengerThread,
        demo_bridge_config,
        demo_profile,
    )
    from exlab.demo import DEMO_PASSWORD
    from med import DelegateSession
    from tui.messaging import MessengerAccount

    store = store or paths.lab_dir() / "demo.sqlite"
    typer.echo("Starting the Exchange lab with the demo organisation …")
    lab_thread = LabThread(store, port=port)
    try:
        lab_thread.start(port_wait_s=0)  # a port in use is the user's to change, now
    except OSError as exc:
        lab_thread.stop()
        fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")
    with lab_thread as lab, MessengerThread(paths.data_dir() / "demo-messenger") as chat:
        typer.echo(f"Lab EWS endpoint: {lab.ews_url} (stops when you quit the TUI)")
        typer.echo(f"Messenger: {chat.url} (log in as {DEMO_USER} with the demo password)")
        config = demo_bridge_config(lab.ews_url, chat.url, paths.data_dir() / "demo-bridge")
        with BridgeThread(config):
            typer.echo("Bridge: new mail in chef's inbox is posted to assistenz's messenger")
            profile = demo_profile(lab.ews_url)
            session = DelegateSession.open(profile, password=DEMO_PASSWORD)
            # assistenz's own messenger device, beside the bridge's: bridged mail shows in her pane.
            chat_account = MessengerAccount(
                profile=profile.name,
                server=chat.url,
                user=DEMO_USER,
                password=DEMO_PASSWORD,
                state_dir=paths.data_dir() / "demo-messenger" / "assistenz",
            )
            try:
                _run_tui(
                    session,
                    start_folder=DEMO_START_FOLDER,
                    relogin=_relogin(profile),
                    messenger_accounts={profile.name: chat_account},
                )
            finally:
                asyncio.run(session.close())


@app.command()
def demo(
    store: Path | None = typer.Option(
        None, "--store", help="Lab store file (default: demo.sqlite in the lab data directory)."
    ),
    port: int = typer.Option(
        0, "--port", min=0, max=65535, help="Port of the lab on 127.0.0.1 (0 picks a free one)."
    ),
) -> None:
    """Start the lab with the demo organisation, the messenger and the notification bridge,
    and open the TUI as assistenz."""
    _tui_config()  # a bad [tui] or [keymap] entry stops here, before anything starts
    _run_demo(store, port)


def _open_profiles(names: list[str]) -> None:
    """Open several profiles side by side in one TUI, each with its own session and its own
    messenger account (`[messenger.<profile>]`). A profile that cannot be opened shows as
    failed in the tree; an unknown or repeated name stops here with one line."""
    from bridge.commands._med import exit_code, load_profile, open_session
    from med import MedError
    from tui.profiles import OpenProfile, check_profile_names

    try:
        check_profile_names(names)
        configs = [load_profile(name) for name in names]
    except ValueError as exc:
        fail(str(exc), 2)
    except MedError as exc:
        fail(str(exc), exit_code(exc))
    accounts: dict[str, MessengerAccount] = {}
    for name in names:  # one messenger connection per profile that has an account
        accounts.update(_messenger_accounts(name))
    profiles: list[OpenProfile] = []
    for name, config in zip(names, configs, strict=True):
        try:
            profiles.append(OpenProfile(name, open_session(name), relogin=_relogin(config)))
        except MedError as exc:
            profiles.append(OpenProfile(name, None, error=str(exc)))
    try:
        _run_tui(None, messenger_accounts=accounts, profiles=profiles)
    finally:
        for profile in profiles:
            if profile.session is not None:
                asyncio.run(profile.session.close())


@app.command()
def tui(
    profile: list[str] | None = typer.Option(
        None,
        "--profile",
        "-p",
        help="Profile to open; repeat it to open several side by side "
        "(default: \\[tui] profiles, else the default profile).",
    ),
) -> None:
    """Open the terminal UI; without any profile it offers the demo or a profile wizard."""
    from bridge.commands._med import exit_code, load_profile, open_session
    from med import MedError
    from med.config import profiles_in, save_profile

    _refresh_tenant_settings()
    tui_config = _tui_config()  # a bad [tui] or [keymap] entry stops here, before connecting
    names = list(profile or tui_config.profiles)
    if len(names) > 1:
        _open_profiles(names)
        return
    name = names[0] if names else None
    settings = current_settings()
    try:
        configured = profiles_in(settings.table("med"))
    except MedError as exc:
        fail(str(exc), exit_code(exc))
    if name is None and not configured:
        choice = _run_tui(None)
        if choice is None:
            return
        if choice.choice == "demo":
            _run_demo(None)
            return
        if choice.profile is None:
            return
        save_profile(paths.config_file(), choice.profile, make_default=True)
        name = choice.profile.name
    try:
        chosen = load_profile(name)
        accounts = _messenger_accounts(chosen.name)
        session = open_session(name)
        relogin = _relogin(chosen)
    except MedError as exc:
        fail(str(exc), exit_code(exc))
    try:
        _run_tui(session, relogin=relogin, messenger_accounts=accounts)
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
    """Run the command; usage errors are one line on stderr (exit 2), as every other error."""
    import logging
    import os
    import sys

    # Typer vendors click and names its exceptions only there; no public alias exists.
    from typer._click import exceptions as click

    _quiet_libraries()
    try:
        code = app(standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        typer.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        sys.exit(2)
    except click.UsageError as exc:
        where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        message = " ".join(exc.format_message().split())
        typer.echo(f"medbridge: {message}{where}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        typer.echo(f"medbridge: {' '.join(exc.format_message().split())}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("medbridge: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # the boundary: a bug still reaches the user as one line
        if os.environ.get("MEDBRIDGE_DEBUG"):
            raise
        logging.getLogger("medbridge").debug("internal error", exc_info=True)
        typer.echo(
            f"medbridge: internal error ({type(exc).__name__}); "
            "MEDBRIDGE_DEBUG=1 shows the traceback",
            err=True,
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
