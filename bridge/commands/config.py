"""`medbridge config`: the effective settings, where each comes from, and changing the user's."""

from __future__ import annotations

import typer

from bridge.commands._common import current_settings, fail, print_json, refuse_locked

app = typer.Typer(
    help="Settings: the TOML file, MEDBRIDGE_* variables and managed configuration, merged.",
    no_args_is_help=True,
)


@app.command()
def show(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every effective setting with its source; managed ones are locked."""
    settings = current_settings()
    if as_json:
        print_json(
            {
                "file": str(settings.user_file),
                "managed": [str(p) for p in settings.managed_files],
                "settings": [
                    {
                        "name": s.name,
                        "value": s.value,
                        "source": s.source.value,
                        "origin": s.origin,
                        "locked": s.locked,
                    }
                    for s in settings
                ],
            }
        )
        return
    for s in settings:
        lock = "  [locked]" if s.locked else ""
        typer.echo(f"{s.name} = {s.value!r}  ({s.source.value}: {s.origin}){lock}")


@app.command("set")
def set_value(
    name: str = typer.Argument(..., help="Dotted name, e.g. tui.page_size."),
    value: str = typer.Argument(..., help='A TOML value (50, true, "text") or plain text.'),
) -> None:
    """Write one setting to the user's settings file (refused for managed, locked ones)."""
    from bridge.settings import SettingsError, parse_value, split_name
    from med import MedError
    from med.config import update_file

    settings = current_settings(creating=True)
    try:
        key = split_name(name)
    except SettingsError as exc:
        fail(str(exc), 2)
    refuse_locked(settings, *key)
    parsed = parse_value(value)
    problem = _problem(key, parsed, settings.table(key[0]))
    if problem is not None:
        fail(f"{name} not saved: {problem}", 2)
    try:
        update_file(settings.user_file, key, parsed)
    except MedError as exc:
        fail(str(exc), 2)
    typer.echo(f"{name} saved in {settings.user_file}")


# The tables of the settings file and who reads them (docs/med.md, "Settings").
TABLES = ("api", "keymap", "med", "messenger", "tui")


def _problem(key: tuple[str, ...], value: object, table: dict[str, object]) -> str | None:
    """Why `value` cannot stand at `key` (a sentence), or None: the owner of the table checks
    the entry as it will read it, so a wrong value is refused now instead of stopping the TUI
    or a command at its next start. `[api]` and `[messenger]` entries are checked when
    `api serve` and the TUI read them (their tables only work whole)."""
    if key[0] not in TABLES:
        return f"{key[0]} is no table of the settings (they are {', '.join(TABLES)})."
    if len(key) < 2:
        return f"{key[0]} is a table; name one of its settings ({key[0]}.<name>)."
    if key[0] in ("tui", "keymap"):
        from bridge.cli import managed_key_check  # only the CLI imports the TUI

        return managed_key_check(key, value)
    if key[0] == "med":
        from med.config import setting_problem

        return setting_problem(key[1:], value, table)
    return None


@app.command()
def unset(name: str = typer.Argument(..., help="Dotted name, e.g. tui.page_size.")) -> None:
    """Remove one setting from the user's settings file (refused for managed, locked ones)."""
    from bridge.settings import SettingsError, split_name
    from med import MedError
    from med.config import update_file

    settings = current_settings()
    try:
        key = split_name(name)
    except SettingsError as exc:
        fail(str(exc), 2)
    refuse_locked(settings, *key)
    try:
        update_file(settings.user_file, key, None)
    except MedError as exc:
        fail(str(exc), 2)
    typer.echo(f"{name} removed from {settings.user_file}")


@app.command("sync-managed")
def sync_managed(
    server: str | None = typer.Option(
        None, "--server", help="The messenger's URL (default: messenger.server, else the last)."
    ),
    user: str | None = typer.Option(
        None, "--user", help="Your messenger account (default: messenger.user, else the last)."
    ),
) -> None:
    """Sign in to the messenger and apply your tenant's app configuration as managed (locked)
    settings; the TUI refreshes them at every start. The password comes from
    MEDBRIDGE_MESSENGER_PASSWORD or a prompt; a saved session of the same account needs none."""
    import asyncio
    import os

    from bridge.cli import managed_key_check
    from bridge.managed_config import MessengerSignIn, rejected_lines, sync_signed_in
    from messenger.client import MessengerError, Unauthenticated

    settings = current_settings()
    saved = MessengerSignIn.load()

    def configured(name: str) -> str | None:
        found = settings.get("messenger", name)
        return str(found.value) if found is not None and found.value else None

    server = server or configured("server") or (saved.server if saved else None)
    user = user or configured("user") or (saved.user if saved else None)
    if not server or not user:
        fail(
            "name the messenger and your account: --server URL --user EMAIL "
            "(or messenger.server and messenger.user in your settings)",
            2,
        )
    same = (
        saved is not None
        and saved.token is not None
        and (saved.server, saved.user)
        == (
            server,
            user,
        )
    )
    sign_in = MessengerSignIn(server, user, saved.token if same and saved else None)
    password = os.environ.get("MEDBRIDGE_MESSENGER_PASSWORD")

    def ask() -> str:
        return str(typer.prompt(f"Messenger password of {user}", hide_input=True))

    if password is None and sign_in.token is None:
        password = ask()
    try:
        try:
            report, kept = asyncio.run(
                sync_signed_in(sign_in, managed_key_check, password=password)
            )
        except Unauthenticated:
            if password is not None:
                raise
            password = ask()  # the saved session has ended
            report, kept = asyncio.run(
                sync_signed_in(sign_in, managed_key_check, password=password)
            )
    except Unauthenticated:
        fail(f"the messenger at {server} refused the sign-in of {user}: check the password")
    except MessengerError as exc:
        fail(f"cannot fetch your tenant's settings from {server}: {exc}")
    except OSError as exc:
        fail(f"cannot write {exc.filename}: {exc.strerror}")
    kept.save()
    typer.echo(f"{len(report.written)} managed setting(s) from your tenant in {report.path}")
    for name, value in report.written.items():
        typer.echo(f"  {name} = {value!r}  [locked]")
    for line in rejected_lines(report):
        typer.echo(f"medbridge: {line}", err=True)
