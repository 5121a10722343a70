"""Tenant admins choose their retention within bounds the instance administrator sets."""

from __future__ import annotations

import httpx
from messenger_harness import Harness


def as_user(msg: Harness, token: str | None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=msg.url, headers={"Authorization": f"Bearer {token}"})


async def test_retention_stays_within_the_instance_admins_bounds(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    nord = await msg.tenant("Nord", "nord.example")
    await msg.user("root@kreis.example", role="instance_admin")
    root = await msg.login("root@kreis.example")
    nora = await msg.member("nora@nord.example", role="tenant_admin")
    async with as_user(msg, nora.token) as admin, as_user(msg, root.token) as instance:
        assert (await admin.get("/v1/admin/tenant")).json()["retention_bounds"] == [1, 365]
        too_long = await admin.patch("/v1/admin/policy", json={"retention_days": 400})
        assert too_long.status_code == 400
        assert "between 1 and 365 days" in too_long.json()["detail"]
        assert (await admin.patch("/v1/admin/policy", json={"retention_days": 90})).is_success
        own = await admin.put(
            f"/v1/admin/tenants/{nord}/retention-bounds", json={"min_days": 1, "max_days": 9999}
        )
        assert own.status_code == 403  # a tenant admin cannot widen its own bounds
        narrowed = await instance.put(
            f"/v1/admin/tenants/{nord}/retention-bounds", json={"min_days": 7, "max_days": 30}
        )
        assert narrowed.json() == {
            "tenant_id": nord,
            "retention_days": 30,  # moved inside the new bounds
            "retention_bounds": [7, 30],
        }
        below = await admin.patch("/v1/admin/policy", json={"retention_days": 3})
        assert below.status_code == 400
        inverted = await instance.put(
            f"/v1/admin/tenants/{nord}/retention-bounds", json={"min_days": 40, "max_days": 30}
        )
        assert inverted.status_code == 400
