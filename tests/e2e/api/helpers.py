"""Small steps the API tests share."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def folder_id(http: httpx.Client, mailbox: str, name: str) -> str:
    answer = http.get(f"/v1/mailboxes/{mailbox}/folders/{name}")
    assert answer.status_code == 200, answer.text
    found: str = answer.json()["id"]
    return found


def items(http: httpx.Client, folder: str, **params: Any) -> list[dict[str, Any]]:
    answer = http.get(f"/v1/folders/{folder}/items", params=params)
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["items"]
    return found


def wait_for(check: Callable[[], T | None], timeout_s: float = 15.0) -> T:
    """Poll `check` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.05)


def assert_problem(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = answer.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body
