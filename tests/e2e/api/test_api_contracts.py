"""HTTP contracts of the API: ETags and If-Match, Idempotency-Key, throttling and limits,
problem details, and access logs that carry no message contents."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from bridge.api import ApiSettings, create_app
from bridge.api.auth import new_key
from bridge.api.idempotency import IdempotencyStore, Stored
from tests.e2e.api.conftest import ASSISTENZ, CHEF, SACHBEARBEITUNG, ApiServer, World, api_settings
from tests.e2e.api.helpers import assert_problem, folder_id, items


@pytest.fixture(autouse=True)
def calm_lab(world: World) -> Iterator[None]:
    back_off = world.lab.lab.knobs.throttle_back_off_ms
    yield
    world.lab.lab.knobs.throttle_budget.clear()
    world.lab.lab.knobs.throttle_back_off_ms = back_off


def _new_task(http: httpx.Client, subject: str) -> httpx.Response:
    tasks = folder_id(http, CHEF, "tasks")
    created = http.post(f"/v1/folders/{tasks}/items", json={"type": "task", "subject": subject})
    assert created.status_code == 201, created.text
    return created


def test_update_with_a_stale_etag_gets_412_and_changes_nothing(world: World) -> None:
    with world.client() as http:
        created = _new_task(http, "Vermerk Breitband")
        item_id, first_etag = created.json()["item"]["id"], created.headers["etag"]
        changed = http.patch(
            f"/v1/items/{item_id}",
            json={"subject": "Vermerk Breitband (neu)"},
            headers={"If-Match": first_etag},
        )
        assert changed.status_code == 200 and changed.headers["etag"] != first_etag
        stale = http.patch(
            f"/v1/items/{item_id}",
            json={"subject": "überschrieben"},
            headers={"If-Match": first_etag},
        )
        body = assert_problem(stale, 412)
        assert body["current_etag"] == changed.headers["etag"]
        assert http.get(f"/v1/items/{item_id}").json()["subject"] == "Vermerk Breitband (neu)"
        assert_problem(http.patch(f"/v1/items/{item_id}", json={"subject": "x"}), 428)
        stale_delete = http.delete(f"/v1/items/{item_id}", headers={"If-Match": first_etag})
        assert_problem(stale_delete, 412)


def test_a_patch_of_a_server_field_or_bad_value_is_422(world: World) -> None:
    with world.client() as http:
        created = _new_task(http, "Feldprüfung")
        item_id, etag = created.json()["item"]["id"], created.headers["etag"]
        for patch in ({"id": "x"}, {"percent_complete": "viel"}, {"nope": 1}):
            answer = http.patch(f"/v1/items/{item_id}", json=patch, headers={"If-Match": etag})
            assert_problem(answer, 422)


def _send(http: httpx.Client, subject: str, key: str) -> httpx.Response:
    return http.post(
        "/v1/send",
        json={
            "from_mailbox": CHEF,
            "message": {"to": [{"email": SACHBEARBEITUNG}], "subject": subject},
        },
        headers={"Idempotency-Key": key},
    )


def test_a_repeated_send_with_the_same_idempotency_key_sends_once(world: World) -> None:
    subject = f"Nur einmal {uuid.uuid4().hex[:8]}"
    key = uuid.uuid4().hex
    with world.client() as http:
        first = _send(http, subject, key)
        again = _send(http, subject, key)
        assert first.status_code == again.status_code == 202
        assert again.headers["idempotent-replayed"] == "true"
        with ThreadPoolExecutor(4) as pool:  # concurrent repeats also wait for the first answer
            answers = list(pool.map(lambda _: _send(http, subject, key).status_code, range(4)))
        assert answers == [202] * 4
        reused = _send(http, subject + " anders", key)
        assert_problem(reused, 409)
    with world.client("sachbearbeitung") as http:
        inbox = folder_id(http, SACHBEARBEITUNG, "inbox")
        assert len(items(http, inbox, search=subject)) == 1


def test_a_send_repeated_after_a_restart_of_the_api_is_still_sent_once(
    world: World, tmp_path: Path
) -> None:
    settings, keys = api_settings(world.lab, world.graph, world.kdc, tmp_path, data_dir=tmp_path)
    subject = f"Nach dem Neustart {uuid.uuid4().hex[:8]}"
    key = uuid.uuid4().hex
    answers = []
    for _ in range(2):  # the second API is a new process's state over the same data directory
        api = ApiServer(settings)
        try:
            with httpx.Client(
                base_url=api.url, headers={"X-API-Key": keys["assistenz"]}, timeout=30
            ) as http:
                answers.append(_send(http, subject, key))
        finally:
            api.stop()
    assert [a.status_code for a in answers] == [202, 202]
    assert "idempotent-replayed" not in answers[0].headers
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert answers[1].content == answers[0].content
    with world.client("sachbearbeitung") as http:
        inbox = folder_id(http, SACHBEARBEITUNG, "inbox")
        assert len(items(http, inbox, search=subject)) == 1
    with world.client("chef") as http:
        sent = folder_id(http, CHEF, "sentitems")
        assert len(items(http, sent, search=subject)) == 1


def test_a_send_whose_api_stopped_before_its_record_is_not_sent_again(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API stops between the send and writing its answer down (here: the write never
    happens, as after kill -9). The repeat cannot know whether the message went out, so it
    sends nothing and says so; a failed send, by contrast, may be retried with its key."""
    settings, keys = api_settings(world.lab, world.graph, world.kdc, tmp_path, data_dir=tmp_path)
    subject = f"Abgebrochen {uuid.uuid4().hex[:8]}"
    key = uuid.uuid4().hex

    async def stopped(self: IdempotencyStore, caller: str, key: str, result: Stored | None) -> None:
        if result is not None:
            raise asyncio.CancelledError  # the process is gone before the answer is recorded
        await real_finish(self, caller, key, result)

    real_finish = IdempotencyStore._finish
    api = ApiServer(settings)
    try:
        with httpx.Client(
            base_url=api.url, headers={"X-API-Key": keys["assistenz"]}, timeout=30
        ) as http:
            monkeypatch.setattr(IdempotencyStore, "_finish", stopped)
            with contextlib.suppress(httpx.HTTPError):
                http_answer = _send(http, subject, key)
                assert http_answer.status_code >= 500
    finally:
        monkeypatch.setattr(IdempotencyStore, "_finish", real_finish)
        api.stop()
    api = ApiServer(settings)  # restarted over the same data directory
    try:
        with httpx.Client(
            base_url=api.url, headers={"X-API-Key": keys["assistenz"]}, timeout=30
        ) as http:
            repeat = _send(http, subject, key)
            body = assert_problem(repeat, 409)
            assert body["type"].endswith("idempotency-outcome-unknown")
            # A send that fails (no such mailbox to send for) leaves its key free for a retry.
            failing_key = uuid.uuid4().hex
            failing = {
                "from_mailbox": "niemand@musterstadt.example",
                "message": {"to": [{"email": SACHBEARBEITUNG}], "subject": subject},
            }
            first = http.post("/v1/send", json=failing, headers={"Idempotency-Key": failing_key})
            again = http.post("/v1/send", json=failing, headers={"Idempotency-Key": failing_key})
            assert first.status_code == again.status_code and first.status_code in (403, 404)
    finally:
        api.stop()
    with world.client("sachbearbeitung") as http:
        inbox = folder_id(http, SACHBEARBEITUNG, "inbox")
        assert len(items(http, inbox, search=subject)) == 1


def test_a_repeated_create_with_the_same_key_creates_one_item(world: World) -> None:
    key = uuid.uuid4().hex
    subject = f"Einmalig {key[:8]}"
    with world.client() as http:
        tasks = folder_id(http, CHEF, "tasks")
        answers = [
            http.post(
                f"/v1/folders/{tasks}/items",
                json={"subject": subject},
                headers={"Idempotency-Key": key},
            )
            for _ in range(2)
        ]
        assert [a.status_code for a in answers] == [201, 201]
        assert answers[0].json()["item"]["id"] == answers[1].json()["item"]["id"]
        assert len(items(http, tasks, search=subject)) == 1


def test_exchange_throttling_is_429_with_retry_after(world: World) -> None:
    knobs = world.lab.lab.knobs
    knobs.throttle_back_off_ms = 3000
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
        knobs.throttle_budget[ASSISTENZ] = 0
        answer = http.get(f"/v1/folders/{inbox}/items")
        body = assert_problem(answer, 429)
        assert int(answer.headers["retry-after"]) >= 3 and body["retry_after"] >= 3


def test_access_log_names_route_and_caller_but_no_contents(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    secret_subject = f"Vertraulich Personalakte {uuid.uuid4().hex[:6]}"
    with caplog.at_level(logging.INFO, logger="bridge.api.access"), world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
        http.get(f"/v1/folders/{inbox}/items", params={"search": secret_subject})
        _send(http, secret_subject, uuid.uuid4().hex)
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "bridge.api.access"]
    routes = {r["route"] for r in records}
    assert {"/v1/folders/{folder_id}/items", "/v1/send"} <= routes
    assert all(r["caller"] == ASSISTENZ and r["request_id"] for r in records)
    text = caplog.text
    assert secret_subject not in text and "Personalakte" not in text and inbox not in text


# ---------------------------------------------------------------- limits (in process: no Exchange)


def _limited_app(**settings: object) -> tuple[httpx.AsyncClient, dict[str, str]]:
    keys = {}
    entries = []
    for who in ("a", "b"):
        keys[who], entry = new_key(f"{who}@musterstadt.example", ["events", "send"])
        entries.append(entry)
    app = create_app(ApiSettings.model_validate({"keys": entries, **settings}))
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://api"), keys


async def test_per_caller_rate_limit_answers_429_with_retry_after() -> None:
    http, keys = _limited_app(rate_per_minute=3)
    async with http:
        a = {"X-API-Key": keys["a"]}
        answers = [await http.get("/v1/webhooks", headers=a) for _ in range(4)]
        assert [r.status_code for r in answers[:3]] == [200] * 3
        assert_problem(answers[3], 429)
        assert int(answers[3].headers["retry-after"]) >= 1
        other = await http.get("/v1/webhooks", headers={"X-API-Key": keys["b"]})
        assert other.status_code == 200


async def test_a_body_over_the_limit_is_413() -> None:
    http, keys = _limited_app(max_body_bytes=2048)
    async with http:
        big = {"message": {"to": [{"email": CHEF}], "subject": "x", "body": "a" * 5000}}
        answer = await http.post("/v1/send", json=big, headers={"X-API-Key": keys["a"]})
        assert assert_problem(answer, 413)["max_bytes"] == 2048


def test_a_page_larger_than_allowed_is_422(world: World) -> None:
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
        assert_problem(http.get(f"/v1/folders/{inbox}/items", params={"limit": 5000}), 422)
