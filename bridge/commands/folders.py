"""`medbridge folders tree`: the folder tree of a mailbox, the public folders or an archive."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from bridge.commands._med import JSON, MAILBOX, PROFILE, check_mailbox, emit, open_session, run

if TYPE_CHECKING:
    from med import FolderNode

app = typer.Typer(help="Folders of mailboxes, public folders and archives.", no_args_is_help=True)


def _node_json(node: FolderNode) -> dict[str, Any]:
    from med import to_jsonable

    data: dict[str, Any] = to_jsonable(node.folder)
    data["children"] = [_node_json(c) for c in node.children]
    return data


def _print(node: FolderNode, depth: int = 0) -> None:
    f = node.folder
    counts = ""
    if f.rights is None or f.rights.can_read_items:
        counts = f"  ({f.unread_count}/{f.total_count})"
    rights = ""
    if f.rights is not None and not f.rights.folder_owner:
        rights = "  [read-only]" if not f.rights.create_items else ""
        if not f.rights.can_read_items:
            rights = "  [free/busy]" if f.rights.can_see_free_busy else "  [no access]"
    mark = f" <{f.distinguished}>" if f.distinguished else ""
    typer.echo(f"{'  ' * depth}{f.name}{mark}  {f.kind.value}{counts}{rights}")
    for child in node.children:
        _print(child, depth + 1)


@app.command("tree")
def tree(
    public: bool = typer.Option(False, "--public", help="The public folder tree."),
    archive: bool = typer.Option(False, "--archive", help="The mailbox's archive."),
    profile: str | None = PROFILE,
    mailbox: str | None = MAILBOX,
    as_json: bool = JSON,
) -> None:
    """Print all folders of a mailbox with kind, unread/total counts and your access."""
    from med import InvalidInput, Mailbox, MailboxKind

    async def work() -> None:
        if public and archive:
            raise InvalidInput("Choose --public or --archive, not both.")
        async with open_session(profile) as session:
            address = check_mailbox(session, mailbox)
            in_public = public or address == "public"
            if in_public and archive:
                raise InvalidInput("The public folders have no archive.")
            if in_public:
                box = Mailbox("public", "Public Folders", MailboxKind.PUBLIC)
            elif archive:
                box = Mailbox(address, f"Archive {address}", MailboxKind.ARCHIVE)
            else:
                kind = MailboxKind.OWN if address == session.user else MailboxKind.DELEGATED
                box = Mailbox(address, address, kind)
            root = await session.folder_tree(box)
            if as_json:
                from bridge.commands._common import print_json

                print_json(
                    {"mailbox": address if not in_public else "public", "tree": _node_json(root)}
                )
            else:
                emit(root, False, lambda: _print(root))

    run(work)


@app.command("mailboxes")
def mailboxes(profile: str | None = PROFILE, as_json: bool = JSON) -> None:
    """The mailboxes you work in: own, configured ones, archives, public folders."""

    async def work() -> None:
        async with open_session(profile) as session:
            boxes = await session.mailboxes()

            def human() -> None:
                for b in boxes:
                    typer.echo(f"{b.kind.value:10} {b.address:40} {b.display_name}")

            emit(boxes, as_json, human)

    run(work)
