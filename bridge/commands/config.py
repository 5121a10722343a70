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
    try:
        update_file(settings.user_file, key, parse_value(value))
    except MedError as exc:
        fail(str(exc), 2)
    typer.echo(f"{name} saved in {settings.user_file}")


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
