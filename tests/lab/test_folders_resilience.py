"""Faults on purpose: throttling budget, outage, latency, restart with the data kept."""

from __future__ import annotations

import threading

import httpx
import pytest
from exchangelib.errors import ErrorServerBusy
from exchangelib.folders import Folder
from exchangelib.protocol import BaseProtocol, FailFast, FaultTolerance

from exlab.demo import ASSISTENZ, DEMO_PASSWORD
from tests.lab.conftest import LabServer

GET_ROOT = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"'
    ' xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"'
    ' xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages">'
    '<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header><s:Body>'
    "<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>"
    '<m:FolderIds><t:DistinguishedFolderId Id="root"/></m:FolderIds></m:GetFolder>'
    "</s:Body></s:Envelope>"
)


def post(lab: LabServer, user: str = "chef", timeout: float = 10.0) -> httpx.Response:
    return httpx.post(
        lab.url,
        content=GET_ROOT,
        auth=(f"{user}@musterstadt.example", DEMO_PASSWORD),
        headers={"Content-Type": "text/xml; charset=utf-8"},
        timeout=timeout,
    )


def test_over_budget_user_gets_server_busy_with_back_off(lab: LabServer) -> None:
    knobs = lab.lab.knobs
    knobs.throttle_budget = {ASSISTENZ: 1}
    knobs.throttle_window_s = 60
    knobs.throttle_back_off_ms = 1500
    account = lab.account("assistenz", "chef", retry_policy=FailFast())
    _ = account.root  # the one request within budget
    with pytest.raises(ErrorServerBusy) as busy:
        _ = account.inbox
    assert busy.value.back_off is not None and busy.value.back_off >= 1.5
    assert post(lab, "sachbearbeitung").status_code == 200  # budgets are per user
    raw = post(lab, "assistenz")
    assert raw.status_code == 500
    assert b"ErrorServerBusy" in raw.content and b"BackOffMilliseconds" in raw.content


def test_fault_tolerance_retry_completes_after_the_back_off(lab: LabServer) -> None:
    knobs = lab.lab.knobs
    # Root and walk take four requests. A budget of two in a window of three seconds refuses the
    # third however slow the machine is (a 0.5 s window let a loaded CI machine pass untouched).
    knobs.throttle_budget = {ASSISTENZ: 2}
    knobs.throttle_window_s = 3
    knobs.throttle_back_off_ms = 100
    account = lab.account("assistenz", "chef", retry_policy=FaultTolerance(max_wait=60))
    names = {f.name for f in account.root.walk()}
    assert "Posteingang" in names
    assert knobs.throttled > 0  # the walk was refused on the way and retried


def test_outage_answers_503_and_the_client_recovers_when_it_ends(
    lab: LabServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # exchangelib waits RETRY_WAIT seconds (10) after a 503 before retrying; keep the test short.
    monkeypatch.setattr(BaseProtocol, "RETRY_WAIT", 0.25)
    lab.lab.knobs.outage = True
    assert post(lab).status_code == 503
    with pytest.raises(ErrorServerBusy, match="503"):
        _ = lab.account("chef", retry_policy=FailFast()).root
    timer = threading.Timer(0.5, lambda: setattr(lab.lab.knobs, "outage", False))
    timer.start()
    try:
        account = lab.account("chef", retry_policy=FaultTolerance(max_wait=60))
        assert account.inbox.name == "Posteingang"
    finally:
        timer.cancel()


def test_latency_beyond_the_client_timeout_times_out_and_the_lab_stays_up(lab: LabServer) -> None:
    lab.lab.knobs.latency_s = 1.0
    with pytest.raises(httpx.ReadTimeout):
        post(lab, timeout=0.2)
    lab.lab.knobs.latency_s = 0.0
    assert post(lab).status_code == 200


def test_restart_keeps_folders_created_before(lab: LabServer) -> None:
    account = lab.account("chef")
    Folder(parent=account.inbox, name="Bleibt", folder_class="IPF.Note").save()
    url = lab.url
    lab.restart()
    assert lab.url == url
    again = lab.account("chef")
    assert "Bleibt" in {f.name for f in again.inbox.children}
