"""`medbridge signin`: OAuth sign-in for Graph profiles (device code or browser), token status."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from bridge import paths
from bridge.commands._common import fail, print_json

if TYPE_CHECKING:
    from med.auth.oauth import OAuthSignIn

NAME = "signin"
app = typer.Typer(
    help="Sign in to Microsoft Graph (or the lab's Graph face) for a Graph profile.",
    no_args_is_help=True,
)
PROFILE = typer.Option(None, "--profile", "-p", help="Profile from the config file.")


def _signer(profile_name: str | None) -> tuple[OAuthSignIn, str]:
    from bridge.commands._med import load_profile
    from med import MedError
    from med.auth.oauth import OAuthSignIn, config_for_profile

    try:
        profile = load_profile(profile_name)
    except MedError as exc:
        fail(str(exc), 2)
    if profile.backend != "graph":
        fail(f"profile {profile.name} uses the {profile.backend} backend; sign-in is for graph", 2)
    signer = OAuthSignIn(config_for_profile(profile, cache_file=paths.token_cache_file()))
    return signer, profile.user


def _guard(work: Callable[[], None]) -> None:
    from med import MedError

    try:
        work()
    except MedError as exc:
        fail(str(exc), 3)


@app.command()
def device(profile: str | None = PROFILE) -> None:
    """Sign in with a code entered on another device's browser (works over SSH)."""
    from med.auth.oauth import DeviceCodePrompt

    signer, expected = _signer(profile)

    def show(prompt: DeviceCodePrompt) -> None:
        typer.echo(f"Open {prompt.verification_uri} and enter the code {prompt.user_code}")

    def work() -> None:
        user = signer.sign_in_device_code(show)
        if user != expected.lower():
            typer.echo(f"note: signed in as {user}, the profile names {expected}", err=True)
        typer.echo(f"signed in as {user}")

    _guard(work)


@app.command()
def browser(profile: str | None = PROFILE) -> None:
    """Sign in with the system browser (the answer comes back to a port on this machine)."""
    import webbrowser

    signer, _ = _signer(profile)

    def open_url(url: str) -> None:
        typer.echo(f"If no browser opens, visit: {url}")
        webbrowser.open(url)

    def work() -> None:
        typer.echo(f"signed in as {signer.sign_in_browser(open_url)}")

    _guard(work)


@app.command()
def status(
    profile: str | None = PROFILE,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Who has cached tokens for the profile's authority."""
    signer, _ = _signer(profile)
    accounts: list[str] = []

    def work() -> None:
        accounts.extend(signer.accounts())

    _guard(work)
    if as_json:
        print_json({"accounts": accounts})
        return
    typer.echo("\n".join(accounts) if accounts else "nobody is signed in")


@app.command()
def forget(profile: str | None = PROFILE) -> None:
    """Remove the profile user's cached tokens."""
    signer, user = _signer(profile)
    _guard(lambda: signer.sign_out(user))
    typer.echo(f"tokens of {user} removed")
