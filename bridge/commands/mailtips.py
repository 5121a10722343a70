"""`medbridge mailtips check ADDRESS...`: what the server says about recipients before sending."""

from __future__ import annotations

import typer

from bridge.commands._med import JSON, PROFILE, emit, open_session, run

app = typer.Typer(help="Mail tips: check recipients before sending.", no_args_is_help=True)


@app.command("check")
def check(
    recipients: list[str] = typer.Argument(..., help="Recipient addresses."),
    profile: str | None = PROFILE,
    sending_as: str | None = typer.Option(
        None, "--from", help="The mailbox the message goes out from (default: your own)."
    ),
    as_json: bool = JSON,
) -> None:
    """Out-of-office recipients (with their reply), outside addresses, large audiences and
    moderated lists; exit 0 either way."""

    async def work() -> None:
        async with open_session(profile) as session:
            tips = await session.mail_tips(recipients, sending_as=sending_as)

            def human() -> None:
                words = [w for t in tips for w in t.warnings()]
                for line in words or ["No warnings."]:
                    typer.echo(line)

            emit(
                [{"tip": t, "warnings": t.warnings()} for t in tips],
                as_json,
                human,
            )

    run(work)
