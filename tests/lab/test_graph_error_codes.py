"""Every error code the lab's Graph face answers is one the Graph backend translates on purpose."""

from __future__ import annotations

import inspect
import io
import json
import re

import pytest
import requests

from exlab.graph import api, calendar, changes, core, mail, people, routes
from med.backends.graph import GRAPH_CODES, translate
from med.errors import AccessDenied, InvalidInput, NotFound, ServerError, Throttled


def _lab_codes() -> set[str]:
    source = "".join(
        inspect.getsource(m) for m in (api, calendar, changes, core, mail, people, routes)
    )
    found = set(re.findall(r'GraphError\(\s*\d{3},\s*"([A-Za-z_]+)"', source))
    found |= {code for _, code in core.EWS_TO_GRAPH.values()}
    found.add("InvalidAuthenticationToken")
    return found


def _response(status: int, code: str, headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer.raw = io.BytesIO(json.dumps({"error": {"code": code, "message": "m"}}).encode())
    answer.headers.update(headers or {})
    return answer


def test_every_code_the_lab_emits_has_a_translation() -> None:
    assert len(_lab_codes()) > 15  # the scan finds the face's codes
    missing = sorted(c for c in _lab_codes() if c not in GRAPH_CODES)
    assert missing == []


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (403, "ErrorAccessDenied", AccessDenied),
        (403, "ErrorSendAsDenied", AccessDenied),
        (404, "ErrorItemNotFound", NotFound),
        (400, "ErrorInvalidIdMalformed", InvalidInput),
        (429, "ApplicationThrottled", Throttled),
        (503, "ServiceUnavailable", Throttled),
        (500, "SomethingNew", ServerError),
        # A delta token Graph no longer knows: the caller syncs from scratch.
        (400, "SyncStateNotFound", InvalidInput),
        (410, "syncStateNotFound", InvalidInput),
        (410, "resyncRequired", InvalidInput),
        (410, "SomethingNew", InvalidInput),
    ],
)
def test_translation_by_code(status: int, code: str, expected: type[Exception]) -> None:
    assert type(translate(_response(status, code))) is expected


def test_throttled_keeps_the_servers_retry_after() -> None:
    err = translate(_response(429, "ApplicationThrottled", {"Retry-After": "7"}))
    assert isinstance(err, Throttled) and err.retry_after == 7.0


def test_unknown_code_keeps_the_code() -> None:
    err = translate(_response(500, "SomethingNew"))
    assert err.code == "SomethingNew"
