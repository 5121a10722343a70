"""To-device envelopes: pairwise ciphertext for exactly one device each."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy.exc import IntegrityError

from messenger.server.api._common import Body, Id, TxnId, unb64
from messenger.server.auth import Authed
from messenger.server.state import DB, State
from messenger.server.wire import route_to_device
from messenger.store import repo

router = APIRouter()

MAX_BATCH = 2000


class Envelope(Body):
    user_id: Id
    device_id: Id
    ciphertext: str


class ToDeviceBody(Body):
    txn_id: TxnId
    sender_device_id: Id
    messages: list[Envelope] = Field(min_length=1, max_length=MAX_BATCH)


@router.post("/to_device")
async def send_to_device(
    body: ToDeviceBody, caller: Authed, state: State, db: DB
) -> dict[str, Any]:
    user = caller.user
    user_id = user.id
    earlier = await repo.claim_txn(db, user_id, body.txn_id)
    if earlier is not None:
        state.metrics.duplicates.inc()
        return {**earlier, "duplicate": True}
    device = await repo.active_device(db, user.id, body.sender_device_id)
    envelopes = [
        (
            m.user_id,
            m.device_id,
            unb64(m.ciphertext, "ciphertext", max_bytes=state.settings.max_ciphertext_bytes),
        )
        for m in body.messages
    ]
    await repo.charge_user(db, user, sum(len(c) for _, _, c in envelopes))
    rows = await repo.append_to_device(db, user, device, envelopes, state.now())
    result = {"count": len(rows)}
    repo.record_txn(db, user.id, body.txn_id, "to_device", result, state.now())
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()  # expires every loaded row: use the id captured before
        earlier = await repo.claim_txn(db, user_id, body.txn_id)
        if earlier is None:
            raise
        return {**earlier, "duplicate": True}
    await state.publish([route_to_device(r) for r in rows])
    state.metrics.to_device.inc(len(rows))
    return {**result, "duplicate": False}
