"""Tenant administration over REST: consent from both admins, policies, invitations."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from messenger_harness import Harness

from messenger.client import MessengerClient


def admin_http(client: MessengerClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=client.base_url, headers={"Authorization": f"Bearer {client.token}"}
    )


async def test_both_tenant_admins_consent_over_rest(msg: Harness) -> None:
    kreis = await msg.tenant("Kreis", "kreis.example")
    klinik = await msg.tenant("Klinik", "klinik.example")
    kreis_admin = await msg.member("admin@kreis.example", role="tenant_admin")
    klinik_admin = await msg.member("admin@klinik.example", role="tenant_admin")
    await msg.user("kurt@klinik.example")
    async with admin_http(kreis_admin) as a, admin_http(klinik_admin) as b:
        assert (await a.put(f"/v1/admin/partners/{klinik}")).status_code == 204
        assert await kreis_admin.directory("kurt") == []
        state: dict[str, Any] = (await a.get("/v1/admin/tenant")).json()
        assert state["consented_partners"] == [klinik] and state["active_partners"] == []
        assert (await b.put(f"/v1/admin/partners/{kreis}")).status_code == 204
        assert [u["email"] for u in await kreis_admin.directory("kurt")] == ["kurt@klinik.example"]
        assert (await b.delete(f"/v1/admin/partners/{kreis}")).status_code == 204
        assert await kreis_admin.directory("kurt") == []
        missing = await a.put("/v1/admin/partners/nosuchtenant")
        assert missing.status_code == 404


async def test_only_tenant_admins_administer_and_only_their_tenant(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.tenant("Klinik", "klinik.example")
    admin = await msg.member("admin@kreis.example", role="tenant_admin")
    user = await msg.member("user@kreis.example")
    async with admin_http(admin) as a, admin_http(user) as u:
        assert (await u.get("/v1/admin/tenant")).status_code == 403
        assert (await u.patch("/v1/admin/policy", json={"retention_days": 7})).status_code == 403
        set_ = await a.patch("/v1/admin/policy", json={"retention_days": 7})
        assert set_.status_code == 200 and set_.json()["retention_days"] == 7
        quota = await a.patch("/v1/admin/policy", json={"user_quota_bytes": 10**12})
        assert quota.status_code == 403
        other = await a.post("/v1/admin/invitations", json={"email": "x@klinik.example"})
        assert other.status_code == 403
        escalate = await a.post(
            "/v1/admin/invitations", json={"email": "x@kreis.example", "role": "instance_admin"}
        )
        assert escalate.status_code == 422
        invited = await a.post("/v1/admin/invitations", json={"email": "new@kreis.example"})
        assert invited.status_code == 201
    newcomer = msg.client()
    await newcomer.register(invited.json()["invite_token"], "a new password")
    assert (await newcomer.me())["email"] == "new@kreis.example"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_instance_admin_sets_quota_and_extensions(msg: Harness) -> None:
    await msg.tenant("Kreis", "kreis.example")
    root = await msg.member("root@kreis.example", role="instance_admin")
    async with admin_http(root) as r:
        set_ = await r.patch(
            "/v1/admin/policy", json={"user_quota_bytes": 5 * 2**30, "storage_extension_steps": 2}
        )
    assert set_.status_code == 200
    assert (set_.json()["user_quota_bytes"], set_.json()["storage_extension_steps"]) == (
        5 * 2**30,
        2,
    )
    assert (await root.quota())["limit"] == 5 * 2**30
