"""`medbridge messenger admin alarm-list`: alarm lists from the command line, same rules."""

from __future__ import annotations

import pytest
from messenger_harness import Harness
from test_messenger_cli import cli, out


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_admin_manages_alarm_lists_from_the_command_line(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.tenant("Nachbar", "nachbar.example")
    for name in ("anna", "ben", "cem"):
        await msg.user(f"{name}@kreis.example")
    await msg.user("fremd@nachbar.example")
    created = out(
        cli(
            msg,
            *("admin", "alarm-list", "create", "Kreis", "Bereitschaft"),
            *("--member", "anna@kreis.example", "--member", "ben@kreis.example:2:admin"),
            *("--repeat", "30", "--escalation", "120", "--emergency"),
        )
    )
    assert (created["repeat_seconds"], created["escalation_seconds"], created["emergency"]) == (
        30,
        120,
        True,
    )
    assert sorted((m["tier"], m["role"]) for m in created["members"]) == [
        (1, "member"),
        (2, "admin"),
    ]
    changed = out(
        cli(
            msg,
            *("admin", "alarm-list", "set", "Kreis", "Bereitschaft"),
            *("--member", "cem@kreis.example:3", "--no-emergency", "--ack-needed", "2"),
        )
    )
    assert (changed["emergency"], changed["ack_needed"], len(changed["members"])) == (False, 2, 3)
    out(
        cli(msg, "admin", "alarm-list", "remove", "Kreis", created["list_id"], "anna@kreis.example")
    )
    (listed,) = out(cli(msg, "admin", "alarm-list", "list", "Kreis"))
    assert len(listed["members"]) == 2 and listed["name"] == "Bereitschaft"

    # Errors are one line, nothing is half-written.
    foreign = cli(
        msg,
        *("admin", "alarm-list", "set", "Kreis", "Bereitschaft"),
        *("--member", "fremd@nachbar.example", "--repeat", "5"),
        ok=False,
    )
    assert foreign.returncode == 1 and "in this tenant" in foreign.stderr
    bad_tier = cli(
        msg,
        "admin",
        "alarm-list",
        "set",
        "Kreis",
        "Bereitschaft",
        "--member",
        "cem@kreis.example:x",
        ok=False,
    )
    assert bad_tier.returncode == 1 and "tier" in bad_tier.stderr
    zero = cli(msg, "admin", "alarm-list", "create", "Kreis", "Null", "--repeat", "0", ok=False)
    assert zero.returncode == 1 and "repeat interval" in zero.stderr
    (listed,) = out(cli(msg, "admin", "alarm-list", "list", "Kreis"))
    assert listed["repeat_seconds"] == 30
    assert out(cli(msg, "admin", "alarm-list", "delete", "Kreis", "Bereitschaft")) == {
        "deleted": created["list_id"]
    }
    assert out(cli(msg, "admin", "alarm-list", "list", "Kreis")) == []
