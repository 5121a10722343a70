"""`medbridge permissions`: show and change folder permissions (Outlook roles)."""

from __future__ import annotations

import typer

from bridge.commands._med import JSON, MAILBOX, PROFILE, emit, find_folder, open_session, run

app = typer.Typer(help="Folder permissions (you must own the folder).", no_args_is_help=True)


@app.command("show")
def show(
    folder: str = typer.Argument("calendar", help="Well-known name, path or id."),
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    as_json: bool = JSON,
) -> None:
    """Who has which role on a folder, and your own effective rights."""

    async def work() -> None:
        async with open_session(profile) as session:
            target = await find_folder(session, mailbox, folder)
            perms = await session.permissions(target)

            def human() -> None:
                typer.echo(f"{target.name} ({target.mailbox})")
                for p in perms:
                    typer.echo(f"  {p.principal:40} {p.role.value}")

            emit({"folder": target, "permissions": perms}, as_json, human)

    run(work)


@app.command("set")
def set_permission(
    folder: str = typer.Argument(..., help="Well-known name, path or id."),
    principal: str = typer.Argument(..., help="Address, 'default' or 'anonymous'."),
    role: str = typer.Argument(..., help="Owner, Editor, Author, Reviewer, None, ..."),
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    as_json: bool = JSON,
) -> None:
    """Give someone a role on a folder (None removes them)."""
    from med import InvalidInput, Role

    async def work() -> None:
        roles = {r.value.lower(): r for r in Role if r is not Role.CUSTOM}
        chosen = roles.get(role.lower())
        if chosen is None:
            raise InvalidInput(f"Role is one of {', '.join(r.value for r in roles.values())}.")
        async with open_session(profile) as session:
            target = await find_folder(session, mailbox, folder)
            perms = await session.set_permission(target, principal, chosen)
            emit(
                {"folder": target, "permissions": perms},
                as_json,
                lambda: typer.echo(f"{principal}: {chosen.value} on {target.name}"),
            )

    run(work)
