"""App configuration set in the portal reaches the TUI's settings as managed, locked keys:
`medbridge config sync-managed` signs in to a real messenger server, fetches the tenant's
keys, writes those the settings know and reports the others; every TUI start refreshes them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from messenger_harness import PASSWORD, Harness
from test_messenger_portal import csrf_of, portal_login
from typer.testing import CliRunner

from bridge import cli
from bridge.managed_config import MessengerSignIn, sign_in_file
from bridge.settings import tenant_managed_file
from messenger.server import admin_service
from messenger.store.models import User

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """The `medbridge` command in a thread (it runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, cli.app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


async def sync_as_anna(msg: Harness) -> tuple[int, str, str]:
    return await run_cli(
        "config",
        "sync-managed",
        "--server",
        msg.url,
        "--user",
        "anna@kreis.example",
        env={"MEDBRIDGE_MESSENGER_PASSWORD": PASSWORD},
    )


async def shown() -> dict[str, dict[str, object]]:
    code, out, err = await run_cli("config", "show", "--json")
    assert code == 0, err
    return {s["name"]: s for s in json.loads(out)["settings"]}


async def set_in_portal(
    http: httpx.AsyncClient, key: str, value: str, remove: bool = False
) -> None:
    token = csrf_of((await http.get("/admin/config")).text)
    form = {"key": key, "value": value, "csrf": token, **({"remove": "1"} if remove else {})}
    answer = await http.post("/admin/config", data=form)
    assert answer.status_code == 303, answer.text


async def test_keys_set_in_the_portal_become_locked_tui_settings_after_a_sync(
    msg: Harness, tmp_path: Path
) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    await msg.user("anna@kreis.example")
    user_file = tmp_path / "xdg_config_home" / "medbridge" / "config.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text("[tui]\npage_size = 20\n", encoding="utf-8")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        await portal_login(http, "admin@kreis.example")
        await set_in_portal(http, "tui.page_size", "50")
        await set_in_portal(http, "tui.animations", "false")
        await set_in_portal(http, "tui.colour", '"pink"')  # no such setting
        await set_in_portal(http, "tui.editor", "5")  # a setting, but not a command line

        code, out, err = await sync_as_anna(msg)
        assert code == 0, err
        delivered = tenant_managed_file()
        assert f"2 managed setting(s) from your tenant in {delivered}" in out
        assert "tenant setting tui.colour not applied" in err
        assert "tenant setting tui.editor not applied" in err
        assert json.loads(delivered.read_text(encoding="utf-8")) == {
            "tui.animations": False,
            "tui.page_size": 50,
        }
        settings = await shown()
        page = settings["tui.page_size"]
        assert (page["value"], page["source"], page["locked"]) == (50, "managed", True)
        assert page["origin"] == str(delivered)  # the tenant's key beats the user's 20
        assert "tui.colour" not in settings and "tui.editor" not in settings
        assert cli._tui_config().page_size == 50 and cli._tui_config().animations is False
        code, _, err = await run_cli("config", "set", "tui.page_size", "30")
        assert code == 2 and "locked by your administrator" in err
        # The session is kept (readable by the user only) for the refresh at every TUI start.
        saved = MessengerSignIn.load()
        assert saved is not None and saved.token and saved.user == "anna@kreis.example"
        assert sign_in_file().stat().st_mode & 0o777 == 0o600

        # The admin withdraws a key and changes another: the next TUI start applies both.
        await set_in_portal(http, "tui.animations", "", remove=True)
        await set_in_portal(http, "tui.page_size", "80")
    await asyncio.to_thread(cli._refresh_tenant_settings)
    assert json.loads(tenant_managed_file().read_text(encoding="utf-8")) == {"tui.page_size": 80}
    settings = await shown()
    assert settings["tui.page_size"]["value"] == 80
    assert "tui.animations" not in settings  # withdrawn: the TUI's default applies again


async def test_an_ended_session_keeps_the_keys_delivered_last_and_says_so(
    msg: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    await msg.tenant("Kreis", "kreis.example")
    admin_id = await msg.user("admin@kreis.example", role="tenant_admin")
    await msg.user("anna@kreis.example")
    async with msg.sessions() as db:  # the service layer the portal and the API share
        admin = await db.get(User, admin_id)
        assert admin is not None
        await admin_service.set_app_config(db, admin, "tui.page_size", 60, msg.clock())
        await db.commit()
    code, _, err = await sync_as_anna(msg)
    assert code == 0, err
    before = tenant_managed_file().read_text(encoding="utf-8")
    saved = MessengerSignIn.load()
    assert saved is not None
    MessengerSignIn(saved.server, saved.user, "ended-session-token").save()
    await asyncio.to_thread(cli._refresh_tenant_settings)
    assert "your messenger session has ended" in capsys.readouterr().err
    assert tenant_managed_file().read_text(encoding="utf-8") == before
    code, _, err = await run_cli(
        "config",
        "sync-managed",
        env={"MEDBRIDGE_MESSENGER_PASSWORD": "wrong password"},
    )
    assert code == 1 and "refused the sign-in of anna@kreis.example" in err
    assert tenant_managed_file().read_text(encoding="utf-8") == before
