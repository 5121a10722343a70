"""`medbridge profile`: connection profiles (server, user, auth) in the config file."""

from __future__ import annotations

import typer

from bridge import paths
from bridge.commands._common import current_settings, fail, print_json, refuse_locked

app = typer.Typer(help="Connection profiles; passwords are never stored.", no_args_is_help=True)


@app.command("add")
def add(
    name: str = typer.Argument(..., help="Profile name."),
    server: str | None = typer.Option(None, "--server", help="EWS endpoint URL."),
    user: str | None = typer.Option(None, "--user", help="Your address."),
    auth: str | None = typer.Option(
        None, "--auth", help="basic, ntlm (default), kerberos; oauth (the default) for graph."
    ),
    backend: str = typer.Option("ews", "--backend"),
    username: str | None = typer.Option(None, "--username", help="Login name if not the address."),
    version: str | None = typer.Option(None, "--version", help="e.g. Exchange2016."),
    ca_bundle: str | None = typer.Option(None, "--ca-bundle", help="CA file for TLS."),
    insecure: bool = typer.Option(False, "--insecure", help="No TLS verification (labs only)."),
    mailbox: list[str] = typer.Option(
        [],
        "--mailbox",
        "-m",
        help="Other mailbox to work in; kind:address for functional/shared (repeatable).",
    ),
    default: bool = typer.Option(False, "--default", help="Make it the default profile."),
) -> None:
    """Add or replace a profile; asks for server, user and auth method when not given.

    The password is never stored: it comes from MEDBRIDGE_PASSWORD or a prompt on use.
    """
    import sys

    from med import MedError
    from med.config import profile_from_mapping, save_profile

    settings = current_settings(creating=True)
    refuse_locked(settings, "med", "profiles", name)
    if default:
        refuse_locked(settings, "med", "default_profile")
    if sys.stdin.isatty():
        server = server or typer.prompt("Server (EWS URL)")
        user = user or typer.prompt("E-mail address")
        auth = auth or typer.prompt("Auth (basic/ntlm/kerberos)", default="ntlm")
    missing = [flag for flag, value in (("--server", server), ("--user", user)) if not value]
    if missing:
        fail(f"profile add needs {' and '.join(missing)} (or run it in a terminal to be asked)", 2)

    values: dict[str, object] = {
        "server": server,
        "user": user,
        "auth": auth or ("oauth" if backend == "graph" else "ntlm"),
        "backend": backend,
        "mailboxes": mailbox,
    }
    for key, value in (("username", username), ("version", version), ("ca_bundle", ca_bundle)):
        if value:
            values[key] = value
    if insecure:
        values["verify_tls"] = False
    try:
        prof = profile_from_mapping(name, values)
        if prof.ca_bundle:
            from pathlib import Path

            if not Path(prof.ca_bundle).is_file():
                fail(f"CA bundle {prof.ca_bundle} does not exist", 2)
        save_profile(paths.config_file(), prof, make_default=default)
    except MedError as exc:
        fail(str(exc), 2)
    typer.echo(f"profile {name} saved in {paths.config_file()}")


@app.command("list")
def list_profiles(as_json: bool = typer.Option(False, "--json")) -> None:
    """All profiles; the default one is marked."""
    from med import MedError, to_jsonable
    from med.config import default_profile_in, profiles_in

    settings = current_settings()
    med = settings.table("med")
    try:
        profiles = profiles_in(med)
        default = default_profile_in(med)
    except MedError as exc:
        fail(str(exc), 2)
    if as_json:
        print_json({"default": default, "profiles": [to_jsonable(p) for p in profiles.values()]})
        return
    for name, prof in profiles.items():
        mark = "*" if name == default else " "
        lock = "  (locked)" if settings.locked("med", "profiles", name) else ""
        typer.echo(f"{mark} {name:16} {prof.user:36} {prof.auth.value:8} {prof.server}{lock}")


@app.command("remove")
def remove(name: str) -> None:
    """Remove a profile."""
    from med import MedError
    from med.config import remove_profile

    refuse_locked(current_settings(), "med", "profiles", name)
    try:
        remove_profile(paths.config_file(), name)
    except MedError as exc:
        fail(str(exc), 5)
    typer.echo(f"profile {name} removed")
