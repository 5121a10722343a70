"""Conversations, their members, messages (opaque ciphertext) and receipts."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field
from sqlalchemy.exc import IntegrityError

from messenger.server.api._common import INT64_MAX, Body, Id, Seq, TxnId, unb64
from messenger.server.auth import Authed, SenderAuthed
from messenger.server.state import DB, AppState, State
from messenger.server.wire import conversation_event, receipt_event, route_conversation
from messenger.store import repo
from messenger.store.errors import NotFound
from messenger.store.models import (
    MAX_GROUP_MEMBERS,
    Conversation,
    Membership,
    Tenant,
    new_id,
)
from messenger.store.sends import PendingSend

router = APIRouter(prefix="/conversations")
log = logging.getLogger("messenger.server.conversations")


class CreateBody(Body):
    kind: Literal["direct", "group"]
    name: str = Field(default="", max_length=200)
    members: list[Id] = Field(default_factory=list, max_length=MAX_GROUP_MEMBERS + 1)


class SignedChange(Body):
    """The actor device's signature per added user (docs/crypto.md, membership statements)."""

    device_id: Id
    after_seq: Seq
    signatures: dict[Id, Annotated[str, Field(max_length=128)]] = Field(
        max_length=MAX_GROUP_MEMBERS + 1
    )


class MembersBody(Body):
    user_ids: list[Id] = Field(min_length=1, max_length=MAX_GROUP_MEMBERS + 1)
    signed: SignedChange | None = None


async def _statement(
    db: DB, caller: Authed, device_id: str, after_seq: int, signatures: dict[str, str]
) -> repo.Statement:
    await repo.active_device(db, caller.user.id, device_id)
    for signature in signatures.values():
        unb64(signature, "signature", exact=64)
    return repo.Statement(device_id, after_seq, dict(signatures))


class MessageBody(Body):
    txn_id: TxnId
    sender_device_id: Id
    ciphertext: str
    attachment_ids: list[Id] = Field(default_factory=list, max_length=32)
    # The latest membership change the sender has seen; newer ones refuse the send (409).
    membership_seq: Seq | None = None


class ReceiptBody(Body):
    seq: Seq
    kind: Literal["delivered", "read"]


def conversation_json(conv: Conversation, mem: Membership) -> dict[str, Any]:
    return {
        "conversation_id": conv.id,
        "kind": conv.kind,
        "name": conv.name,
        "tenant_id": conv.tenant_id,
        "last_seq": conv.last_seq,
        "membership_seq": conv.membership_seq,
        "role": mem.role,
    }


@router.post("", status_code=201)
async def create(body: CreateBody, caller: Authed, state: State, db: DB) -> dict[str, Any]:
    tenant = await db.get(Tenant, caller.user.tenant_id)
    assert tenant is not None
    conv, appended = await repo.create_conversation(
        db, caller.user, tenant, body.kind, body.name, body.members, state.now()
    )
    mem = await repo.membership(db, conv.id, caller.user.id)
    assert mem is not None
    await db.commit()
    await state.publish([route_conversation(e) for e in appended.events])
    return conversation_json(conv, mem)


@router.get("")
async def list_mine(caller: Authed, db: DB) -> list[dict[str, Any]]:
    return [conversation_json(c, m) for c, m in await repo.conversations_of(db, caller.user)]


@router.get("/{cid}")
async def get_one(cid: str, caller: Authed, db: DB) -> dict[str, Any]:
    conv, mem = await repo.conversation_for_member(db, caller.user, cid)
    members = await repo.members_of(db, conv.id)
    return {
        **conversation_json(conv, mem),
        "members": [{"user_id": m.user_id, "role": m.role} for m in members],
    }


@router.post("/{cid}/members")
async def add_members(
    cid: str, body: MembersBody, caller: Authed, state: State, db: DB
) -> dict[str, Any]:
    conv, _ = await _conversation_to_manage(db, caller, cid)
    signed, statement = body.signed, None
    if signed is not None:
        statement = await _statement(
            db, caller, signed.device_id, signed.after_seq, signed.signatures
        )
    appended = await repo.add_members(
        db, conv, caller.user, body.user_ids, state.now(), statement=statement
    )
    await db.commit()
    await state.publish([route_conversation(e) for e in appended.events])
    return {"added": [e.payload["user_id"] for e in appended.events], "last_seq": conv.last_seq}


@router.delete("/{cid}/members/{user_id}", status_code=204)
async def remove_member(
    cid: str,
    user_id: str,
    caller: Authed,
    state: State,
    db: DB,
    device_id: Annotated[Id | None, Query()] = None,
    after_seq: Annotated[int | None, Query(ge=0, le=INT64_MAX)] = None,
    signature: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """Remove a member (or leave); `device_id`, `after_seq` and `signature` sign the change."""
    conv, _ = await _conversation_to_manage(db, caller, cid)
    statement = None
    if device_id is not None and after_seq is not None and signature is not None:
        statement = await _statement(db, caller, device_id, after_seq, {user_id: signature})
    appended = await repo.remove_member(
        db, conv, caller.user, user_id, state.now(), statement=statement
    )
    await db.commit()
    await state.publish([route_conversation(e) for e in appended.events])
    return Response(status_code=204)


async def _conversation_to_manage(
    db: DB, caller: Authed, cid: str
) -> tuple[Conversation, Membership | None]:
    """Members manage (if admins); a tenant admin manages its tenant's managed groups unseen.

    The instance administrator is a tenant admin of their own tenant only here: instance
    administration acts on tenants, never inside another tenant's conversations.
    """
    conv, mem = await repo.conversation_and_membership(db, cid, caller.user.id)
    if (
        conv is not None
        and conv.kind == "managed"
        and caller.user.role in ("tenant_admin", "instance_admin")
        and caller.user.tenant_id == conv.tenant_id
    ):
        return conv, mem
    return await repo.as_member(db, conv, mem)


@router.post("/{cid}/messages")
async def send(cid: str, body: MessageBody, caller: SenderAuthed, state: State) -> Response:
    """Store a message; concurrent sends to the conversation share a transaction (group
    commit, messenger.server.sending), each checked and answered on its own."""
    return _json(
        await store_message(
            state,
            cid,
            caller.user_id,
            body.sender_device_id,
            body.txn_id,
            body.ciphertext,
            body.attachment_ids,
            body.membership_seq,
        )
    )


async def store_message(
    state: AppState,
    cid: str,
    user_id: str,
    device_id: str,
    txn_id: str,
    ciphertext_b64: str,
    attachment_ids: list[str],
    membership_seq: int | None,
    *,
    session_to_check: str | None = None,
) -> dict[str, Any]:
    """A send's answer (`seq`, `duplicate`, ...) or its error; one path for a send over HTTP
    and one made over the stream (whose session the batch checks: `session_to_check`)."""
    started = time.perf_counter()
    refusal: Exception | None = None
    try:
        ciphertext = unb64(
            ciphertext_b64, "ciphertext", max_bytes=state.settings.max_ciphertext_bytes
        )
    except Exception as exc:  # raised where a single send met it: after membership and device
        ciphertext, refusal = b"", exc
    pending = PendingSend(
        user_id=user_id,
        txn_id=txn_id,
        device_id=device_id,
        ciphertext=ciphertext,
        attachment_ids=attachment_ids,
        membership_seen=membership_seq,
        message_id=new_id(),
        now=state.now(),
        refusal=refusal,
    )
    outcome = await state.sends.send(cid, pending, session_id=session_to_check)
    assert outcome.result is not None
    if outcome.duplicate:
        state.metrics.duplicates.inc()
    else:
        state.metrics.messages.inc()
        state.metrics.send_seconds.observe(time.perf_counter() - started)
        log.info(
            "message stored conv=%s seq=%d bytes=%d", cid, outcome.result["seq"], len(ciphertext)
        )
    return {**outcome.result, "duplicate": outcome.duplicate}


def _json(data: dict[str, Any]) -> Response:
    """A JSON answer made directly (FastAPI's encoder walks the value first, for nothing here)."""
    return Response(json.dumps(data, separators=(",", ":")), media_type="application/json")


@router.delete("/{cid}/messages/{seq}")
async def delete_message(
    cid: str, seq: Annotated[int, Path(ge=1, le=INT64_MAX)], caller: Authed, state: State, db: DB
) -> dict[str, Any]:
    """Delete the caller's own message for everyone: the ciphertext and attachments go."""
    conv, _ = await repo.conversation_for_member(db, caller.user, cid)
    redaction, blob_ids = await repo.redact_message(db, caller.user, conv, seq, state.now())
    result = {"conversation_id": conv.id, "seq": redaction.seq, "redacts": seq}
    await db.commit()
    for blob_id in blob_ids:
        state.blobs.delete(blob_id)
    await state.publish([route_conversation(redaction)])
    log.info("message deleted conv=%s seq=%d", conv.id, seq)
    return result


class TypingBody(Body):
    typing: bool


@router.post("/{cid}/typing", status_code=204)
async def typing(cid: str, body: TypingBody, caller: Authed, state: State, db: DB) -> Response:
    """Tell the members' open streams that the caller is (not) typing; nothing is stored."""
    conv, _ = await repo.conversation_for_member(db, caller.user, cid)
    event = {
        "type": "typing",
        "conversation_id": conv.id,
        "user_id": caller.user.id,
        "typing": body.typing,
        "ts": state.now().isoformat(),
    }
    await db.commit()
    await state.publish([{"conversation_id": conv.id, "event": event}])
    return Response(status_code=204)


@router.get("/{cid}/events")
async def history(
    cid: str,
    caller: Authed,
    db: DB,
    after_seq: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    _, mem = await repo.conversation_for_member(db, caller.user, cid, allow_left=True)
    events = await repo.events_for(db, mem, after_seq, limit)
    return {"events": [conversation_event(e) for e in events]}


@router.post("/{cid}/receipts", status_code=204)
async def receipt(cid: str, body: ReceiptBody, caller: Authed, state: State, db: DB) -> Response:
    conv, _ = await repo.conversation_for_member(db, caller.user, cid)
    try:
        stored, message = await repo.add_receipt(
            db, caller.user, conv, body.seq, body.kind, state.now()
        )
        sender = message.sender_user_id
        await db.commit()
    except IntegrityError:
        await db.rollback()  # the same receipt arrived twice at once: it is stored once
        return Response(status_code=204)
    if stored is not None and sender:
        await state.publish([{"user_ids": [sender], "event": receipt_event(stored)}])
    return Response(status_code=204)


@router.get("/{cid}/messages/{seq}/receipts")
async def receipts(
    cid: str, seq: Annotated[int, Path(ge=0, le=INT64_MAX)], caller: Authed, db: DB
) -> list[dict[str, Any]]:
    conv, mem = await repo.conversation_for_member(db, caller.user, cid)
    if not repo.in_window(mem, seq):
        raise NotFound("no such message")  # a late joiner sees receipts of its window only
    return [
        {"user_id": r.user_id, "kind": r.kind, "ts": r.created_at.isoformat()}
        for r in await repo.receipts_for(db, conv.id, seq)
    ]
