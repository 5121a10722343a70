"""One command group per simple item kind: contacts, tasks, notes (ls/show/create/update/delete)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import typer

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
    from med import Item

#: kind → (well-known folder, fields the create/update commands accept)
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "contact": (
        "contacts",
        (
            "display_name",
            "given_name",
            "surname",
            "company",
            "job_title",
            "department",
            "emails",
            "phones",
            "body",
            "categories",
        ),
    ),
    "task": (
        "tasks",
        (
            "subject",
            "due",
            "start",
            "status",
            "percent_complete",
            "reminder_at",
            "body",
            "categories",
            "importance",
        ),
    ),
    "note": ("notes", ("subject", "body", "categories")),
}

FIELD_HELP = (
    "field=value (repeatable). Lists use commas (emails=a@x,b@y; categories=A,B); "
    "phones=business:+49 ...; dates ISO."
)


def _values(kind: str, pairs: list[str]) -> dict[str, Any]:
    from med import Importance, InvalidInput, TaskStatus

    allowed = KINDS[kind][1]
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in allowed:
            raise InvalidInput(f"Use field=value with a field of: {', '.join(allowed)}.")
        if key in ("emails", "categories"):
            out[key] = tuple(v.strip() for v in value.split(",") if v.strip())
        elif key == "phones":
            phones: dict[str, str] = {}
            for entry in value.split(","):
                label, _, number = entry.partition(":")
                phones[
                    {"business": "BusinessPhone", "mobile": "MobilePhone", "home": "HomePhone"}.get(
                        label.strip().lower(), label.strip()
                    )
                ] = number.strip()
            out[key] = phones
        elif key in ("due", "start"):
            out[key] = parse_when(value)
        elif key == "reminder_at":  # "none" switches the reminder off
            out[key] = None if value.strip().lower() in ("", "none") else parse_when(value)
        elif key == "status":
            try:
                out[key] = TaskStatus(value.strip().lower())
            except ValueError:
                choices = ", ".join(s.value for s in TaskStatus)
                raise InvalidInput(f"status is one of {choices}.") from None
        elif key == "importance":
            try:
                out[key] = Importance(value.strip().lower())
            except ValueError:
                raise InvalidInput("importance is low, normal or high.") from None
        elif key == "percent_complete":
            try:
                out[key] = int(value)
            except ValueError:
                raise InvalidInput("percent_complete is a number 0 to 100.") from None
        else:
            out[key] = value
    if kind == "task" and out.get("status") is TaskStatus.COMPLETED:
        out.setdefault("percent_complete", 100)  # as Exchange and Outlook do
    if kind == "task" and out.get("percent_complete") == 100:
        out.setdefault("status", TaskStatus.COMPLETED)
    if kind == "contact" and "display_name" in out:
        out.setdefault("subject", out["display_name"])
    return out


PHONE_LABELS = {"BusinessPhone": "business", "MobilePhone": "mobile", "HomePhone": "home"}


def _block(item: Item) -> list[tuple[str, str]]:
    """The header lines of `show`: label and text, empty values left out."""
    from med import Contact, Task

    lines: list[tuple[str, str]] = []
    if isinstance(item, Contact):
        lines.append(("Name", item.display_name or item.subject))
        job = ", ".join(p for p in (item.job_title, item.department, item.company) if p)
        lines.append(("Works", job))
        lines.append(("E-mail", ", ".join(item.emails)))
        for label, number in item.phones.items():
            lines.append(("Phone", f"{number} ({PHONE_LABELS.get(label, label)})"))
    else:
        lines.append(("Subject", item.subject))
    if isinstance(item, Task):
        lines.append(("Status", f"{item.status.value}, {item.percent_complete}% complete"))
        lines.append(("Start", when(item.start) if item.start else ""))
        lines.append(("Due", when(item.due) if item.due else ""))
        lines.append(("Completed", when(item.completed) if item.completed else ""))
        lines.append(("Reminder", when(item.reminder_at) if item.reminder_at else ""))
        lines.append(("Owner", item.owner))
    if item.importance.value != "normal":
        lines.append(("Importance", item.importance.value))
    if item.sensitivity.value != "normal":
        lines.append(("Sensitivity", item.sensitivity.value))
    lines.append(("Categories", ", ".join(item.categories)))
    if item.flag.status.value != "not_flagged":
        lines.append(("Flag", f"{item.flag.status.value} due {when(item.flag.due)}"))
    for att in item.attachments:
        lines.append(("Attachment", f"{att.name} ({att.content_type}, {att.size} bytes)"))
    lines.append(("Modified", when(item.last_modified) if item.last_modified else ""))
    lines.append(("Mailbox", item.mailbox or ""))
    lines.append(("Id", item.id))
    return [(label, value) for label, value in lines if value]


def make_app(kind: str, help_text: str) -> typer.Typer:
    """A typer group for one item kind."""
    folder_name = KINDS[kind][0]
    app = typer.Typer(help=help_text, no_args_is_help=True)

    @app.command("ls")
    def list_items(
        folder: str = typer.Option(folder_name, "--folder", "-f"),
        limit: int = typer.Option(50, "--limit", "-n"),
        offset: int = typer.Option(0, "--offset"),
        search: str | None = typer.Option(None, "--search", "-s"),
        profile: str | None = PROFILE,
        mailbox: str | None = MAILBOX,
        as_json: bool = JSON,
    ) -> None:
        """List items (one page)."""
        from med import ItemQuery

        async def work() -> None:
            async with open_session(profile) as session:
                target = await find_folder(session, mailbox, folder, default=folder_name)
                page = await session.items(
                    target, ItemQuery(offset=offset, limit=limit, search=search)
                )

                emit_page(target, page, as_json)

        run(work)

    @app.command("show")
    def show(item_id: str, profile: str | None = PROFILE, as_json: bool = JSON) -> None:
        """Show one item."""

        async def work() -> None:
            async with open_session(profile) as session:
                item = await session.get(item_id)

                def human() -> None:
                    for label, value in _block(item):
                        typer.echo(f"{label + ':':12} {value}")
                    if item.body:
                        typer.echo("")
                        typer.echo(item.body)

                emit(item, as_json, human)

        run(work)

    @app.command("create")
    def create(
        fields: list[str] = typer.Argument(..., help=FIELD_HELP),
        folder: str = typer.Option(folder_name, "--folder", "-f"),
        profile: str | None = PROFILE,
        mailbox: str | None = MAILBOX,
        as_json: bool = JSON,
    ) -> None:
        """Create an item from field=value pairs."""
        from med import Contact, Note, Task

        cls = {"contact": Contact, "task": Task, "note": Note}[kind]

        async def work() -> None:
            item = cls(**_values(kind, fields))
            async with open_session(profile) as session:
                target = await find_folder(session, mailbox, folder, default=folder_name)
                created = await session.create(target, item)
                emit(created, as_json, lambda: typer.echo(created.id))

        run(work)

    @app.command("update")
    def update(
        item_id: str,
        fields: list[str] = typer.Argument(..., help=FIELD_HELP),
        profile: str | None = PROFILE,
        as_json: bool = JSON,
    ) -> None:
        """Change fields of an item."""

        async def work() -> None:
            values = _values(kind, fields)
            async with open_session(profile) as session:
                item = await session.get(item_id)
                if item.kind.value != kind:
                    from med import InvalidInput

                    raise InvalidInput(f"This item is a {item.kind.value}, not a {kind}.")
                updated = await session.update(dataclasses.replace(item, **values), list(values))
                emit(updated, as_json, lambda: typer.echo(f"updated {updated.id}"))

        run(work)

    @app.command("delete")
    def delete(item_id: str, profile: str | None = PROFILE) -> None:
        """Delete an item (to Deleted Items)."""

        async def work() -> None:
            async with open_session(profile) as session:
                await session.delete(item_id)
                typer.echo("deleted")

        run(work)

    return app
