"""`medbridge mail`: list, read, send, reply, forward, flag, categorize, move, delete."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from bridge.commands._common import fail
from bridge.commands._med import (
    JSON,
    MAILBOX,
    PROFILE,
    emit,
    emit_page,
    find_folder,
    open_session,
    parse_when,
    run,
    when,
)

if TYPE_CHECKING:
    from med import Address

app = typer.Typer(help="Mail in your own and delegated mailboxes.", no_args_is_help=True)


@app.command("ls")
def list_mail(
    folder: str = typer.Option("inbox", "--folder", "-f", help="Well-known name, path or id."),
    limit: int = typer.Option(50, "--limit", "-n"),
    offset: int = typer.Option(0, "--offset"),
    unread: bool = typer.Option(False, "--unread", help="Only unread messages."),
    flagged: bool = typer.Option(False, "--flagged", help="Only flagged messages."),
    search: str | None = typer.Option(None, "--search", "-s", help="Text in subject or body."),
    category: str | None = typer.Option(None, "--category"),
    sort: str | None = typer.Option(None, "--sort", help="received, subject, from, importance ..."),
    ascending: bool = typer.Option(False, "--ascending"),
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    as_json: bool = JSON,
) -> None:
    """List messages, newest first (one page)."""
    from med import ItemQuery

    async def work() -> None:
        async with open_session(profile) as session:
            target = await find_folder(session, mailbox, folder)
            query = ItemQuery(
                offset=offset,
                limit=limit,
                unread_only=unread,
                flagged_only=flagged,
                search=search,
                category=category,
                sort=sort,  # type: ignore[arg-type]
                descending=not ascending,
            )
            page = await session.items(target, query)

            emit_page(target, page, as_json)

    run(work)


@app.command("show")
def show(
    item_id: str,
    save_attachments: Path | None = typer.Option(None, "--save-attachments", help="Directory."),
    mime: Path | None = typer.Option(None, "--mime", help="Write the message as .eml here."),
    audio: Path | None = typer.Option(None, "--audio", help="Voicemail: write the recording here."),
    profile: str | None = PROFILE,
    as_json: bool = JSON,
) -> None:
    """Show one message with body and attachments; optionally save them."""
    from med import Message, Voicemail

    async def work() -> None:
        async with open_session(profile) as session:
            item = await session.get(item_id)
            saved = []
            if save_attachments is not None:
                for att in item.attachments:
                    saved.append(str(await session.save_attachment(att, save_attachments)))
            if mime is not None:
                mime.write_bytes(await session.export_mime(item))
            if audio is not None:
                if not isinstance(item, Voicemail):
                    from med import InvalidInput

                    raise InvalidInput("This item is no voicemail.")
                content = await session.voicemail_audio(item)
                audio.write_bytes(content.content)

            def human() -> None:
                if isinstance(item, Message):
                    typer.echo(f"From:    {item.from_ or ''}")
                    if item.sender and item.from_ and item.sender.email != item.from_.email:
                        typer.echo(f"Sender:  {item.sender}")
                    typer.echo(f"To:      {', '.join(str(a) for a in item.to)}")
                    if item.cc:
                        typer.echo(f"Cc:      {', '.join(str(a) for a in item.cc)}")
                    typer.echo(f"Date:    {when(item.received or item.sent)}")
                typer.echo(f"Subject: {item.subject}")
                if item.categories:
                    typer.echo(f"Categories: {', '.join(item.categories)}")
                if item.flag.status.value != "not_flagged":
                    typer.echo(f"Flag:    {item.flag.status.value} due {when(item.flag.due)}")
                for att in item.attachments:
                    typer.echo(f"Attachment: {att.name} ({att.content_type}, {att.size} bytes)")
                typer.echo("")
                typer.echo(item.body or "")
                for path in saved:
                    typer.echo(f"saved {path}")

            emit({"item": item, "saved": saved}, as_json, human)

    run(work)


def _addresses(values: list[str]) -> tuple[Address, ...]:
    from med import Address

    return tuple(Address(v.strip()) for raw in values for v in raw.split(",") if v.strip())


@app.command("send")
def send(
    to: list[str] = typer.Option([], "--to", help="Recipient (repeat or comma-separate)."),
    cc: list[str] = typer.Option([], "--cc"),
    bcc: list[str] = typer.Option([], "--bcc"),
    subject: str = typer.Option("", "--subject"),
    body: str | None = typer.Option(None, "--body", help="Text; '-' reads stdin."),
    attach: list[Path] = typer.Option([], "--attach", help="File to attach (repeatable)."),
    importance: str = typer.Option("normal", "--importance"),
    draft: bool = typer.Option(False, "--draft", help="Save in Drafts instead of sending."),
    no_copy: bool = typer.Option(False, "--no-copy", help="Keep no copy in Sent Items."),
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
) -> None:
    """Send a message; with --mailbox on behalf of that mailbox (From = it, Sender = you)."""
    import sys

    from med import Importance, InvalidInput, Message, OutgoingAttachment, SendOptions

    text = sys.stdin.read() if body == "-" else (body or "")
    files = []
    for path in attach:
        if not path.is_file():
            fail(f"{path} is not a file", 2)
        files.append(OutgoingAttachment(path.name, path.read_bytes()))
    try:
        level = Importance(importance.lower())
    except ValueError:
        level = None
    message = Message(
        subject=subject,
        body=text,
        to=_addresses(to),
        cc=_addresses(cc),
        bcc=_addresses(bcc),
        importance=level or Importance.NORMAL,
        new_attachments=tuple(files),
    )
    options = SendOptions(from_mailbox=mailbox, save_copy=not no_copy)

    async def work() -> None:
        if level is None:
            raise InvalidInput("Importance is low, normal or high.")
        async with open_session(profile) as session:
            if draft:
                saved = await session.save_draft(message, options)
                typer.echo(f"draft saved: {saved.id}")
            else:
                await session.send(message, options)
                typer.echo("sent")

    run(work)


@app.command("reply")
def reply(
    item_id: str,
    body: str = typer.Option(..., "--body", help="Text; '-' reads stdin."),
    reply_all: bool = typer.Option(False, "--all", help="Reply to all."),
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
) -> None:
    """Reply to a message (on behalf of --mailbox when given)."""
    import sys

    from med import SendOptions

    text = sys.stdin.read() if body == "-" else body

    async def work() -> None:
        async with open_session(profile) as session:
            await session.reply(
                item_id, text, reply_all=reply_all, options=SendOptions(from_mailbox=mailbox)
            )
            typer.echo("sent")

    run(work)


@app.command("forward")
def forward(
    item_id: str,
    to: list[str] = typer.Option(..., "--to"),
    body: str = typer.Option("", "--body"),
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
) -> None:
    """Forward a message with its attachments."""
    from med import SendOptions

    async def work() -> None:
        async with open_session(profile) as session:
            recipients = [a.email for a in _addresses(to)]
            await session.forward(
                item_id, recipients, body, options=SendOptions(from_mailbox=mailbox)
            )
            typer.echo("sent")

    run(work)


@app.command("flag")
def flag(
    item_id: str,
    due: str | None = typer.Option(None, "--due", help="Due date (2026-11-30)."),
    start: str | None = typer.Option(None, "--start"),
    complete: bool = typer.Option(False, "--complete", help="Mark the flag complete."),
    clear: bool = typer.Option(False, "--clear", help="Remove the flag."),
    read: bool | None = typer.Option(None, "--read/--unread", help="Also mark read or unread."),
    profile: str | None = PROFILE,
    as_json: bool = JSON,
) -> None:
    """Flag for follow-up, complete or clear the flag; mark read/unread."""
    from med import FlagStatus, InvalidInput, Message

    async def work() -> None:
        if complete and clear:
            raise InvalidInput("Choose --complete or --clear, not both.")
        async with open_session(profile) as session:
            item = await session.get(item_id)
            if complete:
                item = await session.set_flag(item, FlagStatus.COMPLETE)
            elif clear:
                item = await session.set_flag(item, FlagStatus.NOT_FLAGGED)
            elif read is None or due or start:
                item = await session.set_flag(
                    item,
                    FlagStatus.FLAGGED,
                    start=parse_when(start) if start else None,
                    due=parse_when(due) if due else None,
                )
            if read is not None:
                if not isinstance(item, Message):
                    raise InvalidInput("Only messages are read or unread.")
                item = await session.mark_read(item, read)
            emit(item, as_json, lambda: typer.echo(f"{item.id}: flag {item.flag.status.value}"))

    run(work)


@app.command("categorize")
def categorize(
    item_id: str,
    categories: list[str] = typer.Argument(None, help="Categories to set (replace)."),
    add: bool = typer.Option(False, "--add", help="Add to the existing categories."),
    clear: bool = typer.Option(False, "--clear", help="Remove all categories."),
    profile: str | None = PROFILE,
    as_json: bool = JSON,
) -> None:
    """Set, add or clear an item's categories."""
    from med import InvalidInput

    async def work() -> None:
        if clear and categories:
            raise InvalidInput("Name categories or give --clear, not both.")
        if not clear and not categories:
            raise InvalidInput("Name the categories to set (or --add), or give --clear.")
        async with open_session(profile) as session:
            item = await session.get(item_id)
            new = [] if clear else list(categories or [])
            if add:
                new = [*item.categories, *new]
            item = await session.set_categories(item, new)
            emit(item, as_json, lambda: typer.echo(f"{item.id}: {', '.join(item.categories)}"))

    run(work)


@app.command("move")
def move(
    item_id: str,
    folder: str = typer.Argument(..., help="Target folder: well-known name, path or id."),
    copy: bool = typer.Option(False, "--copy", help="Copy instead of move."),
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
) -> None:
    """Move (or copy) a message to a folder of the mailbox it is in.

    Into another mailbox only with --mailbox naming it; the answer then says from where.
    """
    from med import AccessDenied

    async def work() -> None:
        async with open_session(profile) as session:
            item = await session.get(item_id)
            home = item.mailbox or session.user
            box = mailbox or home
            done = "copied" if copy else "moved"
            try:
                target = await find_folder(session, box, folder)
                if copy:
                    new_id = await session.copy(item, target)
                else:
                    new_id = await session.move(item, target)
            except AccessDenied as exc:
                hint = (
                    "; `medbridge mail delete` puts it into the Deleted Items of its mailbox"
                    if folder.lower() == "deleteditems"
                    else ""
                )
                raise AccessDenied(
                    f"You may not put items into {folder!r} of {box}{hint}.", mailbox=box
                ) from exc
            across = "" if target.mailbox.lower() == home.lower() else f" from {home}"
            typer.echo(f"{done}{across} to {target.name} ({target.mailbox}), new id: {new_id}")

    run(work)


@app.command("delete")
def delete(
    item_id: str,
    hard: bool = typer.Option(False, "--hard", help="Delete for good, not to Deleted Items."),
    profile: str | None = PROFILE,
) -> None:
    """Delete a message (to Deleted Items unless --hard)."""

    async def work() -> None:
        async with open_session(profile) as session:
            await session.delete(item_id, hard=hard)
            typer.echo("deleted")

    run(work)
