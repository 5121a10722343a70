"""What every subcommand shares: one-line errors, JSON output, the settings."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer

from bridge import settings as settings_model


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line on stderr and exit non-zero; users never see a traceback."""
    typer.echo(f"medbridge: {message}", err=True)
    raise typer.Exit(code)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def current_settings(*, creating: bool = False) -> settings_model.Settings:
    """Every settings source merged (`bridge.settings`); an unusable one is one clear line.
    `creating`: the command writes the user's file, so a `--config` file may be new."""
    try:
        return settings_model.load(creating=creating)
    except settings_model.SettingsError as exc:
        fail(str(exc), 2)


def med_settings() -> dict[str, Any]:
    """The merged `[med]` table (profiles, default profile)."""
    return current_settings().table("med")


def refuse_locked(settings: settings_model.Settings, *key: str) -> None:
    """Stop a change to a setting the administrator's managed configuration locks."""
    if settings.locked(*key):
        fail(f"{'.'.join(key)} is locked by your administrator's managed configuration", 2)
