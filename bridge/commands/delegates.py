"""`medbridge delegates show`: who works in your mailbox, with which levels."""

from __future__ import annotations

import typer

from bridge.commands._med import JSON, MAILBOX, PROFILE, emit, open_session, run

app = typer.Typer(help="Delegates of a mailbox you own.", no_args_is_help=True)


@app.command("show")
def show(
    profile: str | None = PROFILE, mailbox: str | None = MAILBOX, as_json: bool = JSON
) -> None:
    """Delegates, their level per folder, private items, and where meeting requests go."""

    async def work() -> None:
        async with open_session(profile) as session:
            address = (mailbox or session.user).lower()
            delegates, delivery = await session.delegates(address)

            def human() -> None:
                typer.echo(f"Meeting requests: {delivery.value}")
                for d in delegates:
                    levels = ", ".join(
                        f"{k}={v.value}" for k, v in d.levels.items() if v.value != "None"
                    )
                    extra = " +private" if d.view_private else ""
                    typer.echo(f"  {d.address:40} {levels}{extra}")

            emit(
                {"mailbox": address, "meeting_delivery": delivery, "delegates": delegates},
                as_json,
                human,
            )

    run(work)
