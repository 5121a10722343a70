"""Every route, fed extreme integers, NUL bytes and junk in paths, queries and bodies, answers
a 4xx or a success, never a 5xx; the stream's hello likewise never ends in 1011."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from messenger_harness import PASSWORD, Harness

EXTREME_INTS = [0, -1, 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, -(10**30)]
EXTREME_TEXT = ["", "\x00", "a\x00b", "%00", "x" * 400, "\U0001f600", "\udc80", " ", "../.."]

scalars = st.one_of(
    st.sampled_from(EXTREME_INTS),
    st.integers(),
    st.sampled_from(EXTREME_TEXT),
    st.text(max_size=30),
    st.booleans(),
    st.none(),
    st.floats(),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
path_values = st.one_of(
    st.sampled_from([str(i) for i in EXTREME_INTS] + [t for t in EXTREME_TEXT if t]),
    st.text(min_size=1, max_size=20),
)


class World:
    """Valid values by field name, so generated requests get past the first checks."""

    def __init__(self, valid: dict[str, Any], ids: dict[str, str]) -> None:
        self.valid = valid
        self.ids = ids


def route_strategies(openapi: dict[str, Any], world: World) -> st.SearchStrategy[dict[str, Any]]:
    schemas = openapi["components"]["schemas"]
    options = []
    for path, operations in openapi["paths"].items():
        for method, op in operations.items():
            if path == "/v1/logout":
                continue  # ends the session every other example needs
            params = op.get("parameters", [])
            ref = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            schema = schemas[ref["schema"]["$ref"].rsplit("/", 1)[1]] if ref else None
            options.append(_request(method.upper(), path, params, schema, world))
    return st.one_of(options)


def _field(name: str, world: World) -> st.SearchStrategy[Any]:
    if name in world.valid:
        return st.one_of(st.just(world.valid[name]), json_values)
    return json_values


def _request(
    method: str,
    path: str,
    params: list[dict[str, Any]],
    schema: dict[str, Any] | None,
    world: World,
) -> st.SearchStrategy[dict[str, Any]]:
    path_params = {
        p["name"]: (
            st.one_of(st.just(world.ids[p["name"]]), path_values)
            if p["name"] in world.ids and method != "DELETE"
            else path_values
        )
        for p in params
        if p["in"] == "path"
    }
    query = {
        p["name"]: st.one_of(path_values, st.sampled_from(EXTREME_INTS).map(str))
        for p in params
        if p["in"] == "query"
    }
    body: st.SearchStrategy[Any] = st.none()
    if schema is not None:
        fields = {name: _field(name, world) for name in schema.get("properties", {})}
        body = st.one_of(st.fixed_dictionaries({}, optional=fields), json_values)
    return st.fixed_dictionaries(
        {
            "method": st.just(method),
            "path": st.just(path),
            "path_params": st.fixed_dictionaries(path_params),
            "query": st.fixed_dictionaries({}, optional=query),
            "body": body,
            "has_body": st.just(schema is not None),
        }
    )


def _quote(value: str) -> str:
    """Percent-encode any text, lone surrogates too (as a broken client would send them)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def send(http: httpx.Client, request: dict[str, Any]) -> httpx.Response:
    url = request["path"]
    for name, value in request["path_params"].items():
        url = url.replace("{" + name + "}", _quote(value))
    if request["query"]:
        url += "?" + "&".join(f"{k}={_quote(v)}" for k, v in request["query"].items())
    if request["has_body"]:
        content = json.dumps(request["body"]).encode()
        headers = {"Content-Type": "application/json"}
    else:
        content, headers = b"\x00\xff", {}
    return http.request(request["method"], url, content=content, headers=headers)


async def world_of(msg: Harness) -> World:
    kreis = await msg.tenant("Kreis", "kreis.example")
    nord = await msg.tenant("Nord", "nord.example")
    await msg.user("anna@kreis.example", role="instance_admin")
    anna = await msg.login("anna@kreis.example")
    bert = await msg.member("bert@kreis.example")
    assert anna.device_id and bert.device_id and bert.user_id
    cid = (await anna.create_conversation("group", [bert.user_id]))["conversation_id"]
    await anna.send_raw(cid, b"x")
    key = base64.b64encode(bytes(32)).decode()
    valid = {
        "email": "anna@kreis.example",
        "password": PASSWORD,
        "txn_id": "t1",
        "sender_device_id": anna.device_id,
        "ciphertext": "AA==",
        "seq": 1,
        "kind": "read",
        "user_ids": [bert.user_id],
        "members": [bert.user_id],
        "messages": [{"user_id": bert.user_id, "device_id": bert.device_id, "ciphertext": "AA=="}],
        "signing_key": key,
        "exchange_key": key,
        "signature": key,
        "retention_days": 7,
        "user_quota_bytes": 10**9,
        "role": "user",
    }
    ids = {"cid": cid, "user_id": bert.user_id, "partner_id": nord, "seq": "1"}
    assert kreis
    world = World(valid, ids)
    world.valid["token"] = anna.token
    return world


async def test_no_route_answers_5xx_to_extreme_integers_nul_bytes_or_junk(msg: Harness) -> None:
    world = await world_of(msg)
    requests = route_strategies(msg.server.app.openapi(), world)
    headers = {"Authorization": f"Bearer {world.valid['token']}"}
    failures: list[str] = []

    @settings(
        max_examples=250,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests)
    def check(request: dict[str, Any]) -> None:
        with httpx.Client(base_url=msg.url, headers=headers, timeout=30) as http:
            response = send(http, request)
        if response.status_code >= 500:
            failures.append(f"{request!r} -> {response.status_code} {response.text[:200]}")
        assert response.status_code < 500, failures[-1]

    await asyncio.to_thread(check)


@pytest.mark.parametrize(
    "hello",
    [
        {"to_device_since": 2**63},
        {"to_device_since": 2**64},
        {"to_device_since": -1},
        {"since": {"c": 2**64}},
        {"since": {"c\x00": 1}},
        {"since": {"c": -(2**63) - 1}},
        {"token": "a\x00b"},
    ],
)
async def test_stream_hello_with_extreme_values_is_refused_not_crashed(
    msg: Harness, hello: dict[str, Any]
) -> None:
    world = await world_of(msg)
    url = msg.url.replace("http", "ws") + "/v1/stream"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "hello", "token": world.valid["token"], **hello}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400


async def test_nul_in_a_stream_query_is_refused(msg: Harness) -> None:
    await world_of(msg)
    url = msg.url.replace("http", "ws") + "/v1/stream?x=%00"
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    assert refused.value.response.status_code == 403


async def test_values_refused_at_the_edge_answer_422_with_a_problem_body(msg: Harness) -> None:
    world = await world_of(msg)
    cid = world.ids["cid"]
    headers = {"Authorization": f"Bearer {world.valid['token']}"}
    async with httpx.AsyncClient(base_url=msg.url, headers=headers) as http:
        answers = [
            await http.get(f"/v1/conversations/{cid}/events", params={"after_seq": 2**63}),
            await http.post(
                f"/v1/conversations/{cid}/receipts", json={"seq": 2**64, "kind": "read"}
            ),
            await http.get(f"/v1/conversations/{cid}%00/events"),
            await http.post("/v1/login", json={"email": "a\x00@kreis.example", "password": "x"}),
            await http.post(
                f"/v1/conversations/{cid}/messages",
                json={
                    "txn_id": "t",
                    "sender_device_id": world.valid["sender_device_id"],
                    "ciphertext": "not base64!",
                },
            ),
        ]
        malformed = await http.post(
            "/v1/login", content=b"{not json", headers={"Content-Type": "application/json"}
        )
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"] == "invalid" and answer.json()["detail"]
    assert malformed.status_code == 400  # not JSON at all: a bad request, not a refused value
