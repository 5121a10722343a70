"""`medbridge search mailboxes TEXT --in ...`: one search over several mailboxes."""

from __future__ import annotations

import typer

from bridge.commands._med import JSON, PROFILE, emit, find_folder, item_line, open_session, run

app = typer.Typer(help="Search across several mailboxes.", no_args_is_help=True)


@app.command("mailboxes")
def mailboxes(
    text: str = typer.Argument(..., help="What to look for (subject, body, sender)."),
    where: list[str] = typer.Option(
        [],
        "--in",
        "-i",
        help="A mailbox address (its inbox), ADDRESS:FOLDER, or public:PATH; repeat. "
        "Default: your own and every mailbox of your profile.",
    ),
    limit: int = typer.Option(25, "--limit", min=1, max=1000, help="Hits per mailbox."),
    profile: str | None = PROFILE,
    as_json: bool = JSON,
) -> None:
    """Hits grouped by mailbox; a mailbox that cannot be searched is reported, not fatal
    (exit 0 while at least one could be searched)."""
    from med import Folder, MailboxKind

    async def work() -> None:
        async with open_session(profile) as session:
            targets: list[str | Folder] = []
            for spec in where:
                box, _, path = spec.partition(":")
                if path:
                    targets.append(await find_folder(session, box, path))
                else:
                    targets.append(box)
            if not targets:
                targets = [
                    m.address
                    for m in await session.mailboxes()
                    if m.kind not in (MailboxKind.PUBLIC, MailboxKind.ARCHIVE, MailboxKind.ROOM)
                ]
            results = await session.search_mailboxes(text, targets, limit=limit)

            def human() -> None:
                for group in results.groups:
                    where_ = group.mailbox
                    if group.folder is not None and group.folder.distinguished != "inbox":
                        where_ += f" / {group.folder.name}"
                    if group.error is not None:
                        typer.echo(f"== {where_}: not searched — {group.error}")
                        continue
                    typer.echo(f"== {where_}: {len(group.items)} hit(s)")
                    for item in group.items:
                        typer.echo(f"  {item_line(item)}")

            emit(results, as_json, human)

    run(work)
