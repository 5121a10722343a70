"""`medbridge messenger admin bot …` (bot accounts, on the database like the other admin
commands) and `medbridge messenger bot oncall` (the on-call rota bot, a client of a server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bridge.commands._common import fail, print_json

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

admin_bot_app = typer.Typer(
    help="Bot accounts: scopes read, send, alarm; token and webhook secret shown once.",
    no_args_is_help=True,
)
bot_app = typer.Typer(help="Run a bot shipped with the messenger.", no_args_is_help=True)

ScopeOpt = Annotated[
    list[str] | None, typer.Option("--scope", help="read, send or alarm (repeatable).")
]


async def _tenant_id(db: AsyncSession, tenant: str) -> str:
    from messenger.store import repo

    return (await repo.tenant_by_ref(db, tenant)).id


@admin_bot_app.command("create")
def bot_create(
    tenant: Annotated[str, typer.Argument(help="Tenant name or id.")],
    name: str,
    scope: ScopeOpt = None,
    rate: Annotated[int, typer.Option(help="Messages and alarms per minute.")] = 60,
    webhook: Annotated[str | None, typer.Option(help="Webhook URL (https).")] = None,
) -> None:
    """Create a bot; prints its token (and webhook secret) once."""
    from bridge.commands.messenger import _run
    from messenger.server import bots

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, Any]:
        info, token, secret = await bots.create_bot(
            db,
            await _tenant_id(db, tenant),
            name,
            scope or [],
            now,
            rate_per_minute=rate,
            webhook_url=webhook,
        )
        return {**info.as_json(), "token": token, "webhook_secret": secret}

    print_json(_run(work))


@admin_bot_app.command("list")
def bot_list(tenant: Annotated[str, typer.Argument(help="Tenant name or id.")]) -> None:
    """List a tenant's bots."""
    from bridge.commands.messenger import _run
    from messenger.server import bots

    async def work(db: AsyncSession, now: dt.datetime) -> list[dict[str, Any]]:
        return [i.as_json() for i in await bots.list_bots(db, await _tenant_id(db, tenant))]

    print_json(_run(work))


@admin_bot_app.command("update")
def bot_update(
    tenant: str,
    bot_id: str,
    scope: ScopeOpt = None,
    rate: Annotated[int | None, typer.Option(help="Messages and alarms per minute.")] = None,
    webhook: Annotated[str | None, typer.Option(help="New webhook URL (new secret).")] = None,
    no_webhook: Annotated[bool, typer.Option(help="Remove the webhook.")] = False,
) -> None:
    """Change a bot's scopes (all given replace the old), rate or webhook."""
    from bridge.commands.messenger import _run
    from messenger.server import bots

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, Any]:
        info, secret = await bots.update_bot(
            db,
            await _tenant_id(db, tenant),
            bot_id,
            scopes=scope,
            rate_per_minute=rate,
            webhook_url=webhook,
            remove_webhook=no_webhook,
        )
        return {**info.as_json(), "webhook_secret": secret}

    print_json(_run(work))


@admin_bot_app.command("token")
def bot_token(tenant: str, bot_id: str) -> None:
    """Rotate a bot's token: prints the new one; the old one stops working."""
    from bridge.commands.messenger import _run
    from messenger.server import bots

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, str]:
        token = await bots.rotate_token(db, await _tenant_id(db, tenant), bot_id, now)
        return {"bot_id": bot_id, "token": token}

    print_json(_run(work))


@admin_bot_app.command("delete")
def bot_delete(tenant: str, bot_id: str) -> None:
    """Delete a bot: its token ends and it leaves its conversations."""
    from bridge.commands.messenger import _publish, _run
    from messenger.server import bots
    from messenger.server.wire import route_departure

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, str]:
        departure = await bots.delete_bot(db, await _tenant_id(db, tenant), bot_id, now)
        await db.commit()
        await _publish(route_departure(bot_id, departure))
        return {"bot_id": bot_id, "deleted": "true"}

    print_json(_run(work))


@admin_bot_app.command("dead-letters")
def bot_dead_letters(tenant: str, bot_id: str) -> None:
    """Webhook deliveries that failed every attempt."""
    from bridge.commands.messenger import _run
    from messenger.server import bots

    async def work(db: AsyncSession, now: dt.datetime) -> list[dict[str, Any]]:
        rows = await bots.dead_letters(db, await _tenant_id(db, tenant), bot_id)
        return [bots.delivery_json(d) for d in rows]

    print_json(_run(work))


@admin_bot_app.command("redrive")
def bot_redrive(
    tenant: str,
    bot_id: str,
    delivery: Annotated[
        list[str] | None, typer.Option(help="Only this delivery id (repeatable).")
    ] = None,
) -> None:
    """Send dead letters again (all, or the ones named)."""
    from bridge.commands.messenger import _run
    from messenger.server import bots

    async def work(db: AsyncSession, now: dt.datetime) -> dict[str, int]:
        count = await bots.redrive(db, await _tenant_id(db, tenant), bot_id, now, delivery)
        return {"redriven": count}

    print_json(_run(work))


def _secret(file: Path | None, env: str, what: str) -> str:
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            fail(f"cannot read the {what} file {file}: {exc.strerror}")
    found = os.environ.get(env)
    if not found:
        fail(f"give the {what} in {env} or with a file option")
    return found


@bot_app.command("oncall")
def oncall(
    server: Annotated[str, typer.Option(help="Messenger server URL.")],
    rota: Annotated[Path, typer.Option(help="Rota file (TOML).")],
    state_dir: Annotated[Path, typer.Option(help="Where the bot keeps its keys and state.")],
    token_file: Annotated[
        Path | None, typer.Option(help="File with the bot token (else MEDBRIDGE_BOT_TOKEN).")
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(help="File with the key passphrase (else MEDBRIDGE_BOT_PASSPHRASE)."),
    ] = None,
    check: Annotated[bool, typer.Option(help="Check the rota, say who is on call, stop.")] = False,
) -> None:
    """Run the on-call rota bot: answers "who is on call", alarms the person on call."""
    from messenger.bots.oncall import Rota, RotaError, run
    from messenger.client import MessengerError
    from messenger.client.bot import Bot
    from messenger.crypto import CryptoError

    try:
        shifts = Rota.load(rota).on_call(dt.datetime.now(dt.UTC))
    except RotaError as exc:
        fail(str(exc))
    if check:
        print_json({"on_call": [{"who": s.who, "name": s.name, "until": s.end} for s in shifts]})
        return
    token = _secret(token_file, "MEDBRIDGE_BOT_TOKEN", "token")
    passphrase = _secret(passphrase_file, "MEDBRIDGE_BOT_PASSPHRASE", "passphrase")
    bot = Bot(server, token, state_dir, passphrase, name="on-call rota bot")

    async def main() -> None:
        try:
            await run(bot, rota)
        finally:
            await bot.aclose()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except (MessengerError, CryptoError, RotaError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
