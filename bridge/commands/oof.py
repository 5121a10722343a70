"""`medbridge oof show|set`: automatic replies (out of office) of your or the boss's mailbox.

Changing another person's automatic replies needs FullAccess on that mailbox, as in Exchange.
"""

from __future__ import annotations

import typer

from bridge.commands._med import JSON, MAILBOX, PROFILE, emit, open_session, parse_when, run, when

app = typer.Typer(help="Automatic replies (out of office) of a mailbox.", no_args_is_help=True)


def _show(replies: object, address: str, as_json: bool) -> None:
    from med import AutoReplies

    assert isinstance(replies, AutoReplies)

    def human() -> None:
        typer.echo(f"Mailbox:  {address}")
        typer.echo(f"State:    {replies.state.value}")
        if replies.start and replies.end:
            typer.echo(f"Window:   {when(replies.start)} – {when(replies.end)}")
        typer.echo(f"External: {replies.audience.value}")
        typer.echo(f"Internal reply: {replies.internal_reply}")
        typer.echo(f"External reply: {replies.external_reply}")

    emit({"mailbox": address, "auto_replies": replies}, as_json, human)


@app.command("show")
def show(
    profile: str | None = PROFILE, mailbox: str | None = MAILBOX, as_json: bool = JSON
) -> None:
    """The mailbox's automatic replies: state, window, audience and both texts."""

    async def work() -> None:
        async with open_session(profile) as session:
            address = (mailbox or session.user).lower()
            _show(await session.auto_replies(address), address, as_json)

    run(work)


@app.command("set")
def set_(
    state: str = typer.Argument(..., help="on, off, or scheduled (with --start and --end)."),
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    start: str | None = typer.Option(None, "--start", help="Scheduled from (2026-12-21T08:00)."),
    end: str | None = typer.Option(None, "--end", help="Scheduled until (2027-01-04)."),
    internal: str | None = typer.Option(None, "--internal", help="Reply inside the organisation."),
    external: str | None = typer.Option(None, "--external", help="Reply to outside senders."),
    audience: str | None = typer.Option(
        None, "--audience", help="Who outside gets the external reply: none, known, all."
    ),
    as_json: bool = JSON,
) -> None:
    """Switch automatic replies on, off or to a window; texts and audience not given stay."""
    import dataclasses

    from bridge.commands._common import fail
    from med import AutoReplyState, ExternalAudience

    states = {"on": AutoReplyState.ENABLED, "off": AutoReplyState.DISABLED}
    states["scheduled"] = AutoReplyState.SCHEDULED
    if state.lower() not in states:
        fail(f"{state!r} is no state: use on, off or scheduled", 2)
    if audience is not None and audience.lower() not in set(ExternalAudience):
        fail(f"{audience!r} is no audience: use none, known or all", 2)
    begins = parse_when(start) if start else None
    ends = parse_when(end, end_of_day=len(end) <= 10) if end else None

    async def work() -> None:
        async with open_session(profile) as session:
            address = (mailbox or session.user).lower()
            current = await session.auto_replies(address)
            wanted = dataclasses.replace(
                current,
                state=states[state.lower()],
                start=begins or current.start,
                end=ends or current.end,
                internal_reply=current.internal_reply if internal is None else internal,
                external_reply=current.external_reply if external is None else external,
                audience=current.audience
                if audience is None
                else ExternalAudience(audience.lower()),
            )
            _show(await session.set_auto_replies(address, wanted), address, as_json)

    run(work)
