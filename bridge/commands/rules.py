"""`medbridge rules list|add|enable|disable|delete`: server-side inbox rules of a mailbox.

Another person's rules need FullAccess on that mailbox, as in Exchange.
"""

from __future__ import annotations

import typer

from bridge.commands._med import JSON, MAILBOX, PROFILE, emit, find_folder, open_session, run

app = typer.Typer(help="Inbox rules of a mailbox.", no_args_is_help=True)


@app.command("list")
def list_(
    profile: str | None = PROFILE, mailbox: str | None = MAILBOX, as_json: bool = JSON
) -> None:
    """The rules in the order the server applies them."""

    async def work() -> None:
        async with open_session(profile) as session:
            address = (mailbox or session.user).lower()
            rules = await session.inbox_rules(address)

            def human() -> None:
                for r in rules:
                    on = "on " if r.enabled else "off"
                    typer.echo(f"{r.id}  {on}  {r.name}: {r.describe()}")

            emit({"mailbox": address, "rules": rules}, as_json, human)

    run(work)


@app.command("add")
def add(
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    move_from: str | None = typer.Option(
        None, "--move-from", help="Move mail from this sender (with --to-folder)."
    ),
    to_folder: str | None = typer.Option(None, "--to-folder", help="Folder to move to."),
    flag_keyword: str | None = typer.Option(
        None,
        "--flag-keyword",
        help="Mark mail with this word in the subject important, in category 'Follow up'.",
    ),
    forward_to: str | None = typer.Option(
        None, "--forward-to", help="Forward mail to this address (e.g. the assistant)."
    ),
    sender: list[str] = typer.Option([], "--from", help="Only mail from this sender (forward)."),
    name: str = typer.Option("", "--name", help="The rule's name (default: describes it)."),
    as_json: bool = JSON,
) -> None:
    """Create one of the common rules: move by sender, flag by keyword, forward."""
    from bridge.commands._common import fail
    from med import InboxRule

    chosen = [x for x in (move_from, flag_keyword, forward_to) if x]
    if len(chosen) != 1:
        fail("give exactly one of --move-from, --flag-keyword, --forward-to", 2)
    if move_from and not to_folder:
        fail("--move-from needs --to-folder", 2)

    async def work() -> None:
        async with open_session(profile) as session:
            address = (mailbox or session.user).lower()
            if move_from and to_folder:
                folder = await find_folder(session, address, to_folder)
                rule = InboxRule.move_by_sender(move_from, folder, name=name)
            elif flag_keyword:
                rule = InboxRule.flag_by_keyword(flag_keyword, name=name)
            else:
                assert forward_to is not None
                rule = InboxRule.forward_to_assistant(forward_to, senders=tuple(sender), name=name)
            made = await session.create_rule(address, rule)
            emit(made, as_json, lambda: typer.echo(f"{made.id}  {made.name}: {made.describe()}"))

    run(work)


def _switch(
    profile: str | None, mailbox: str | None, rule_id: str, on: bool, as_json: bool
) -> None:
    async def work() -> None:
        async with open_session(profile) as session:
            address = (mailbox or session.user).lower()
            rule = await session.enable_rule(address, rule_id, on)
            word = "on" if rule.enabled else "off"
            emit(rule, as_json, lambda: typer.echo(f"{rule.name}: {word}"))

    run(work)


@app.command("enable")
def enable(
    rule_id: str, profile: str | None = PROFILE, mailbox: str | None = MAILBOX, as_json: bool = JSON
) -> None:
    """Switch a rule on."""
    _switch(profile, mailbox, rule_id, True, as_json)


@app.command("disable")
def disable(
    rule_id: str, profile: str | None = PROFILE, mailbox: str | None = MAILBOX, as_json: bool = JSON
) -> None:
    """Switch a rule off (it stays, to switch on again)."""
    _switch(profile, mailbox, rule_id, False, as_json)


@app.command("delete")
def delete(rule_id: str, profile: str | None = PROFILE, mailbox: str | None = MAILBOX) -> None:
    """Remove a rule."""

    async def work() -> None:
        async with open_session(profile) as session:
            await session.delete_rule((mailbox or session.user).lower(), rule_id)
            typer.echo("Deleted.")

    run(work)
