"""A tenant admin sets and clears one user's quota (portal, REST, one service layer): within
the tenant's storage, in the tenant's audit log, shown on the usage page and enforced on
uploads; forms without the session's CSRF token change nothing."""

from __future__ import annotations

import httpx
import pytest
from messenger_harness import Harness
from test_messenger_portal import csrf_of, portal_login

from messenger.audit import log as audit_log
from messenger.client import Forbidden, NotFound, QuotaExceeded
from messenger.server import admin_service
from messenger.sizes import human_size as human
from messenger.store.errors import Forbidden as StoreForbidden
from messenger.store.errors import InvalidInput
from messenger.store.errors import NotFound as StoreNotFound
from messenger.store.models import DEFAULT_USER_QUOTA, User

GB = DEFAULT_USER_QUOTA  # the default quota per user, 1 GiB


async def set_quota(msg: Harness, actor_id: str, user_id: str, quota: int | None) -> int:
    """The service call the portal and the REST API make, committed."""
    async with msg.sessions() as db:
        actor = await db.get(User, actor_id)
        assert actor is not None
        result = await admin_service.set_user_quota(db, actor, user_id, quota, msg.clock())
        await db.commit()
        return result


async def test_a_users_quota_stays_within_the_tenants_storage_and_is_audited(
    msg: Harness,
) -> None:
    kreis = await msg.tenant("Kreis", "kreis.example")
    admin = await msg.user("admin@kreis.example", role="tenant_admin")
    anna = await msg.user("anna@kreis.example")
    bert = await msg.user("bert@kreis.example")
    await msg.tenant("Klinik", "klinik.example")
    other_admin = await msg.user("admin@klinik.example", role="tenant_admin")
    # Three active users, no extension: 3 GB in all, 1 GB each promised already.
    with pytest.raises(InvalidInput, match="storage extension"):
        await set_quota(msg, admin, anna, 3 * GB // 2)
    assert await set_quota(msg, admin, bert, GB // 2) == GB // 2  # lowering is always allowed
    assert await set_quota(msg, admin, anna, 3 * GB // 2) == 3 * GB // 2
    with pytest.raises(InvalidInput, match="does not fit"):
        await set_quota(msg, admin, anna, 2 * GB)
    with pytest.raises(InvalidInput, match="negative"):
        await set_quota(msg, admin, anna, -1)
    with pytest.raises(StoreNotFound):  # another tenant's admin does not even see anna
        await set_quota(msg, other_admin, anna, GB // 2)
    with pytest.raises(StoreForbidden):  # a plain user is no administrator
        await set_quota(msg, bert, anna, GB // 2)
    assert await set_quota(msg, admin, bert, None) == DEFAULT_USER_QUOTA  # the default again
    async with msg.sessions() as db:
        assert (await db.get(User, anna)).quota_bytes == 3 * GB // 2  # type: ignore[union-attr]
        assert (await db.get(User, bert)).quota_bytes is None  # type: ignore[union-attr]
        entries = [e for e in await audit_log.entries(db, kreis) if e.action == "user.quota"]
        assert [e.details for e in reversed(entries)] == [  # newest first
            {"user_id": bert, "quota_bytes": GB // 2},
            {"user_id": anna, "quota_bytes": 3 * GB // 2},
            {"user_id": bert, "quota_bytes": None},
        ]
        assert (await audit_log.verify(db)).ok


async def test_uploads_beyond_a_users_quota_are_refused_and_rest_takes_it_too(
    msg: Harness,
) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    admin = await msg.login("admin@kreis.example", device=False)
    anna = await msg.member("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert anna.user_id and bert.user_id
    cid = (await anna.create_conversation("direct", [bert.user_id]))["conversation_id"]
    answer = await admin._json(
        "PUT", f"/v1/admin/users/{anna.user_id}/quota", json_body={"quota_bytes": 10_000}
    )
    assert answer == {"user_id": anna.user_id, "quota_bytes": 10_000, "quota": 10_000}
    used = (await anna.quota())["used"]
    assert (await anna.quota())["limit"] == 10_000
    await anna.upload(cid, b"x" * 4_000)
    with pytest.raises(QuotaExceeded) as refused:
        await anna.upload(cid, b"x" * 7_000)
    assert "exceeds your storage quota of 10000 bytes" in str(refused.value)
    assert (await anna.quota())["used"] == used + 4_000  # the refused upload is not charged
    with pytest.raises(Forbidden):  # anna may not give herself more
        await anna._json(
            "PUT", f"/v1/admin/users/{anna.user_id}/quota", json_body={"quota_bytes": GB}
        )
    await admin._json("PUT", f"/v1/admin/users/{anna.user_id}/quota", json_body={})
    assert (await anna.quota())["limit"] == DEFAULT_USER_QUOTA
    await anna.upload(cid, b"x" * 7_000)
    with pytest.raises(NotFound):
        await admin._json("PUT", "/v1/admin/users/u_nobody/quota", json_body={"quota_bytes": 1})


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_the_usage_page_sets_and_clears_a_quota_and_refuses_forms_without_csrf(
    msg: Harness,
) -> None:
    await msg.tenant("Kreis", "kreis.example")
    await msg.user("admin@kreis.example", role="tenant_admin")
    anna = await msg.user("anna@kreis.example")
    async with httpx.AsyncClient(base_url=msg.url) as http:
        await portal_login(http, "admin@kreis.example")
        page = (await http.get("/admin/usage")).text
        assert f'action="/admin/usage/{anna}/quota"' in page
        for sent in ({}, {"csrf": "guessed"}):
            bad = await http.post(f"/admin/usage/{anna}/quota", data={"quota_gb": 0.5, **sent})
            assert bad.status_code in (400, 403, 422)
        async with msg.sessions() as db:
            assert (await db.get(User, anna)).quota_bytes is None  # type: ignore[union-attr]
        token = csrf_of(page)
        done = await http.post(
            f"/admin/usage/{anna}/quota", data={"quota_gb": "0.25", "csrf": token}
        )
        assert done.status_code == 303
        page = (await http.get("/admin/usage")).text
        assert 'data-quota="250000000">250.0 MB (set for this user)' in page
        too_much = await http.post(
            f"/admin/usage/{anna}/quota", data={"quota_gb": "5", "csrf": token}
        )
        assert too_much.status_code == 303
        page = (await http.get(too_much.headers["location"])).text
        assert "does not fit" in page
        cleared = await http.post(f"/admin/usage/{anna}/quota", data={"clear": "1", "csrf": token})
        assert cleared.status_code == 303
        page = (await http.get("/admin/usage")).text
        assert f'data-quota="{GB}">{human(GB)} (tenant default)' in page
    async with msg.sessions() as db:
        assert (await db.get(User, anna)).quota_bytes is None  # type: ignore[union-attr]
