"""The change stream (server-sent events, resumed with Last-Event-ID) and signed webhooks
with retries and dead letters, against the lab over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from starlette.responses import Response

from messenger.signing import verify
from tests.e2e.api.conftest import CHEF, ApiServer, World, api_settings
from tests.e2e.api.helpers import folder_id, wait_for
from tests.lab.authserver import serve


@dataclass
class SseEvent:
    event: str
    data: dict[str, Any]
    id: str | None


class SseReader:
    """Reads an event stream in a thread; events arrive in `events`."""

    def __init__(self, world: World, folder: str, last_event_id: str | None = None) -> None:
        headers = {"X-API-Key": world.keys["assistenz"]}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.events: queue.Queue[SseEvent] = queue.Queue()
        self._client = httpx.Client(base_url=world.api.url, timeout=httpx.Timeout(30, read=None))
        self._stream = self._client.stream("GET", f"/v1/folders/{folder}/changes", headers=headers)
        self.response = self._stream.__enter__()
        assert self.response.status_code == 200, self.response.read()
        assert self.response.headers["content-type"].startswith("text/event-stream")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fields: dict[str, str] = {}
        try:
            for line in self.response.iter_lines():
                if not line:
                    if "event" in fields:
                        data = json.loads(fields.get("data", "{}"))
                        self.events.put(SseEvent(fields["event"], data, fields.get("id")))
                    fields = {}
                    continue
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        except (httpx.HTTPError, RuntimeError):
            return  # closed by the test

    def next(self, timeout_s: float = 15.0) -> SseEvent:
        return self.events.get(timeout=timeout_s)

    def until_checkpoint_after(
        self, predicate: Any, timeout_s: float = 15.0
    ) -> tuple[list[SseEvent], str]:
        """Changes up to the checkpoint after the first change matching `predicate`."""
        seen: list[SseEvent] = []
        matched = False
        deadline = time.monotonic() + timeout_s
        while True:
            event = self.next(max(0.1, deadline - time.monotonic()))
            if event.event == "change":
                seen.append(event)
                matched = matched or predicate(event.data)
            elif event.event == "checkpoint" and matched:
                assert event.id
                return seen, event.id

    def close(self) -> None:
        self._stream.__exit__(None, None, None)
        self._client.close()


def _subject(change: dict[str, Any]) -> str | None:
    item = change.get("item")
    return item.get("subject") if isinstance(item, dict) else None


def _mail_the_boss(world: World, subject: str) -> None:
    with world.client("sachbearbeitung") as http:
        sent = http.post(
            "/v1/send", json={"message": {"to": [{"email": CHEF}], "subject": subject}}
        )
        assert sent.status_code == 202, sent.text


def test_sse_delivers_new_mail_and_resumes_after_a_disconnect_without_loss(
    world: World,
) -> None:
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
    reader = SseReader(world, inbox)
    try:
        start = reader.next()
        assert start.event == "checkpoint" and start.id
        first = f"Eilt: Vorlage {uuid.uuid4().hex[:6]}"
        _mail_the_boss(world, first)
        changes, position = reader.until_checkpoint_after(lambda c: _subject(c) == first)
        assert any(c.data["kind"] == "created" for c in changes)
    finally:
        reader.close()
    missed = [f"Während der Trennung {i} {uuid.uuid4().hex[:6]}" for i in range(3)]
    for subject in missed:
        _mail_the_boss(world, subject)
    resumed = SseReader(world, inbox, last_event_id=position)
    try:
        got: set[str] = set()
        deadline = time.monotonic() + 15
        while not set(missed) <= got and time.monotonic() < deadline:
            event = resumed.next()
            if event.event == "change" and _subject(event.data):
                got.add(str(_subject(event.data)))
        assert set(missed) <= got
        assert first not in got  # resumed after the checkpoint that followed it
    finally:
        resumed.close()


def test_sse_with_a_foreign_last_event_id_is_422(world: World) -> None:
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
        answer = http.get(f"/v1/folders/{inbox}/changes", headers={"Last-Event-ID": "bm9wZQ"})
        assert answer.status_code == 422


# ----------------------------------------------------------------------------- webhooks


@dataclass
class Receiver:
    """An integrator's endpoint: records deliveries, fails the first `fail_first` attempts."""

    fail_first: int = 1
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    attempts: int = 0

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            self.attempts += 1
            body = await request.body()
            headers = {k.title(): v for k, v in request.headers.items()}
            self.deliveries.append((headers, body))
            if self.attempts <= self.fail_first:
                return Response(status_code=503)
            return Response(status_code=204)

        @app.post("/broken")
        async def broken() -> Response:
            return Response(status_code=500)

        return app


def _signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's own check, written from the documented scheme."""
    expected = hmac.new(
        secret.encode(), headers["Webhook-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(headers["Webhook-Signature"], "v1=" + expected)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    found = Receiver()
    with serve(found.app()) as served:  # type: ignore[arg-type]
        yield found, f"http://127.0.0.1:{served.port}"


def test_webhook_deliveries_are_signed_retried_and_dead_lettered(
    world: World, receiver: tuple[Receiver, str]
) -> None:
    hook_receiver, base = receiver
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
        created = http.post("/v1/webhooks", json={"folder_id": inbox, "url": f"{base}/hook"})
        assert created.status_code == 201, created.text
        hook = created.json()
        elsewhere = http.post(
            "/v1/webhooks", json={"folder_id": inbox, "url": "https://intranet.example/hook"}
        )
        assert elsewhere.status_code == 422
        broken = http.post("/v1/webhooks", json={"folder_id": inbox, "url": f"{base}/broken"})
        assert broken.status_code == 201
        subject = f"Webhook {uuid.uuid4().hex[:6]}"
        wait_for(lambda: http.get(f"/v1/webhooks/{hook['id']}").json()["position"])
        wait_for(lambda: http.get(f"/v1/webhooks/{broken.json()['id']}").json()["position"])
        _mail_the_boss(world, subject)

        def delivered() -> list[tuple[dict[str, str], bytes]]:
            return [
                (h, b)
                for h, b in hook_receiver.deliveries
                if subject in b.decode() and hook_receiver.attempts > hook_receiver.fail_first
            ]

        found = wait_for(delivered)
        first_try, retry = found[0], found[-1]
        assert first_try[0]["Webhook-Id"] == retry[0]["Webhook-Id"]  # one delivery, retried
        for headers, body in found:
            assert _signature_ok(hook["secret"], headers, body)
            assert verify(hook["secret"], headers, body)
            assert not verify(hook["secret"], headers, body.replace(b"Webhook", b"Webbook"))
            assert not verify("another secret", headers, body)
        payload = json.loads(retry[1])
        assert payload["webhook_id"] == hook["id"]
        assert any(_subject(c) == subject for c in payload["changes"])

        letters = wait_for(
            lambda: http.get(f"/v1/webhooks/{broken.json()['id']}/dead-letters").json()[
                "dead_letters"
            ]
        )
        assert letters[0]["attempts"] == 3 and letters[0]["last_error"] == "HTTP 500"
        assert http.delete(f"/v1/webhooks/{hook['id']}").status_code == 204
        assert http.delete(f"/v1/webhooks/{broken.json()['id']}").status_code == 204
        assert http.get("/v1/webhooks").json()["webhooks"] == []
    with world.client("sachbearbeitung") as http:  # webhooks are their owner's only
        assert http.get(f"/v1/webhooks/{hook['id']}").status_code == 404


def test_webhooks_and_dead_letters_outlive_a_restart_and_miss_no_change(
    world: World, receiver: tuple[Receiver, str], tmp_path: Path
) -> None:
    hook_receiver, base = receiver
    hook_receiver.fail_first = 0
    settings, keys = api_settings(world.lab, world.graph, world.kdc, tmp_path, data_dir=tmp_path)

    def client(api: ApiServer) -> httpx.Client:
        return httpx.Client(base_url=api.url, headers={"X-API-Key": keys["assistenz"]}, timeout=30)

    api = ApiServer(settings)
    try:
        with client(api) as http:
            inbox = folder_id(http, CHEF, "inbox")
            hook = http.post("/v1/webhooks", json={"folder_id": inbox, "url": f"{base}/hook"})
            broken = http.post("/v1/webhooks", json={"folder_id": inbox, "url": f"{base}/broken"})
            assert hook.status_code == broken.status_code == 201, hook.text
            hook_id, secret, broken_id = (
                hook.json()["id"],
                hook.json()["secret"],
                broken.json()["id"],
            )
            wait_for(lambda: http.get(f"/v1/webhooks/{hook_id}").json()["position"])
            wait_for(lambda: http.get(f"/v1/webhooks/{broken_id}").json()["position"])
            before = f"Vor dem Neustart {uuid.uuid4().hex[:6]}"
            _mail_the_boss(world, before)
            wait_for(
                lambda: http.get(f"/v1/webhooks/{broken_id}/dead-letters").json()["dead_letters"]
            )
            wait_for(lambda: any(before in b.decode() for _, b in hook_receiver.deliveries))
            wait_for(lambda: http.get(f"/v1/webhooks/{hook_id}").json()["delivered"])
    finally:
        api.stop()
    during = f"Waehrend des Neustarts {uuid.uuid4().hex[:6]}"
    _mail_the_boss(world, during)  # arrives while no API runs
    api = ApiServer(settings)
    try:
        with client(api) as http:
            listed = {h["id"] for h in http.get("/v1/webhooks").json()["webhooks"]}
            assert listed == {hook_id, broken_id}
            letters = http.get(f"/v1/webhooks/{broken_id}/dead-letters").json()["dead_letters"]
            assert letters and letters[0]["last_error"] == "HTTP 500"
            assert any(_subject(c) == before for c in letters[0]["payload"]["changes"])
            found = wait_for(
                lambda: [(h, b) for h, b in hook_receiver.deliveries if during in b.decode()]
            )
            headers, body = found[0]
            assert verify(secret, headers, body)  # the same secret after the restart
            assert http.get(f"/v1/webhooks/{hook_id}").json()["error"] is None
            assert http.delete(f"/v1/webhooks/{hook_id}").status_code == 204
            assert http.delete(f"/v1/webhooks/{broken_id}").status_code == 204
    finally:
        api.stop()
    api = ApiServer(settings)
    try:
        with client(api) as http:  # a deleted webhook stays deleted
            assert http.get("/v1/webhooks").json()["webhooks"] == []
    finally:
        api.stop()


def test_sse_ends_with_an_error_event_when_exchange_fails(world: World) -> None:
    with world.client() as http:
        inbox = folder_id(http, CHEF, "inbox")
    reader = SseReader(world, inbox)
    try:
        assert reader.next().event == "checkpoint"
        world.lab.lab.knobs.outage = True
        deadline = time.monotonic() + 30
        event = reader.next()
        while event.event != "error" and time.monotonic() < deadline:
            event = reader.next()
        assert event.event == "error" and event.data["detail"]
    finally:
        world.lab.lab.knobs.outage = False
        reader.close()
