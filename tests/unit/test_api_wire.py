"""What integrators rely on at the edge of the API: ids survive the URL, signatures refuse
replays and tampering, change positions only resume the folder they came from."""

from __future__ import annotations

import time

import pytest

from bridge.api.changes import Positions
from bridge.api.ids import inward, outward, outward_id
from med import InvalidInput, NotFound
from messenger.signing import TOLERANCE_S, signature_headers, verify

EWS_ID = "AAMkADk0/ZjE+YTEwLTU1=="


def test_exchange_ids_travel_url_safe_and_come_back_unchanged() -> None:
    wire = outward_id(EWS_ID)
    assert "/" not in wire and "+" not in wire and "=" not in wire
    assert inward(wire) == EWS_ID
    data = {"id": EWS_ID, "attachments": [{"id": EWS_ID, "name": "a"}], "subject": EWS_ID}
    assert outward(data) == {
        "id": wire,
        "attachments": [{"id": wire, "name": "a"}],
        "subject": EWS_ID,
    }


@pytest.mark.parametrize("foreign", ["0", "not base64!", "QR", "w4"])
def test_an_id_the_api_did_not_hand_out_is_not_found(foreign: str) -> None:
    with pytest.raises(NotFound):
        inward(foreign)


def test_signatures_refuse_tampering_other_secrets_and_replays() -> None:
    body = b'{"changes":[]}'
    headers = signature_headers("s3cret", "d1", body, time.time())
    assert verify("s3cret", headers, body)
    assert not verify("s3cret", headers, body + b" ")
    assert not verify("other", headers, body)
    later = int(headers["Webhook-Timestamp"]) + TOLERANCE_S + 1
    assert not verify("s3cret", headers, body, now=later)
    assert not verify("s3cret", {}, body)


def test_a_position_resumes_only_its_own_folder_and_key() -> None:
    positions = Positions(b"k" * 32)
    position = positions.position_of("folderA", "state-1")
    assert positions.state_of("folderA", position) == "state-1"
    with pytest.raises(InvalidInput):
        positions.state_of("folderB", position)
    with pytest.raises(InvalidInput):
        Positions(b"x" * 32).state_of("folderA", position)
    forged = outward_id("state-2") + "." + position.rpartition(".")[2]
    with pytest.raises(InvalidInput):
        positions.state_of("folderA", forged)
