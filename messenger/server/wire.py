"""JSON shapes of events as clients see them (stream and history share them)."""

from __future__ import annotations

import base64
from typing import Any

from messenger.store.models import Alarm, AlarmKey, AlarmRecipient, Event, Receipt, ToDevice
from messenger.store.repo import Departure, EventRow


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def conversation_event(event: Event | EventRow) -> dict[str, Any]:
    base: dict[str, Any] = {
        "conversation_id": event.conversation_id,
        "seq": event.seq,
        "ts": event.created_at.isoformat(),
    }
    if event.kind == "membership":
        return {
            "type": "membership",
            **base,
            "action": event.payload["action"],
            "user_id": event.payload["user_id"],
            "by_user_id": event.sender_user_id,
            **_signed(event.payload.get("signed")),
        }
    if event.kind == "redaction":
        return {
            "type": "redaction",
            **base,
            "redacts": event.payload["redacts"],
            "by_user_id": event.sender_user_id,
        }
    deleted = {"deleted": True} if event.payload.get("deleted") else {}
    return {
        "type": event.kind,
        **base,
        "message_id": event.id,
        "sender_user_id": event.sender_user_id,
        "sender_device_id": event.sender_device_id,
        "ciphertext": b64(event.ciphertext or b""),
        "attachment_ids": list(event.payload.get("attachment_ids", [])),
        **deleted,
    }


def _signed(signed: dict[str, Any] | None) -> dict[str, Any]:
    """The actor device's signature of a membership change, when it signed one."""
    if not signed:
        return {}
    return {
        "by_device_id": signed["device_id"],
        "after_seq": signed["after_seq"],
        "signature": signed["signature"],
    }


def to_device_event(row: ToDevice) -> dict[str, Any]:
    return {
        "type": "to_device",
        "seq": row.seq,
        "sender_user_id": row.sender_user_id,
        "sender_device_id": row.sender_device_id,
        "ciphertext": b64(row.ciphertext),
        "ts": row.created_at.isoformat(),
    }


def receipt_event(receipt: Receipt) -> dict[str, Any]:
    return {
        "type": "receipt",
        "conversation_id": receipt.conversation_id,
        "seq": receipt.seq,
        "user_id": receipt.user_id,
        "kind": receipt.kind,
        "ts": receipt.created_at.isoformat(),
    }


def route_conversation(event: Event | EventRow) -> dict[str, Any]:
    return {"conversation_id": event.conversation_id, "event": conversation_event(event)}


def route_to_device(row: ToDevice) -> dict[str, Any]:
    return {"device_id": row.device_id, "event": to_device_event(row)}


def device_list_change(user_id: str, partners: list[str]) -> dict[str, Any]:
    """Tells the user and everyone sharing a conversation that its devices changed."""
    return {
        "user_ids": sorted({*partners, user_id}),
        "event": {"type": "device_list", "user_id": user_id},
    }


def route_departure(user_id: str, departure: Departure) -> list[dict[str, Any]]:
    """Hub items for a disabled or deleted user: it leaves, its devices' streams close."""
    return [
        *(route_conversation(e) for e in departure.events),
        device_list_change(user_id, departure.partners),
        *({"kick_device": d} for d in departure.device_ids),
    ]


def alarm_event(alarm: Alarm, recipient: AlarmRecipient, key: AlarmKey) -> dict[str, Any]:
    """An alarm as one recipient device gets it: the content and its key, both sealed."""
    return {
        "type": "alarm",
        "alarm_id": alarm.id,
        "list_id": alarm.list_id,
        "level": alarm.level,
        "state": alarm.state,
        "tier": recipient.tier,
        "round": recipient.rounds,
        "sender_user_id": alarm.sender_user_id,
        "sender_device_id": alarm.sender_device_id,
        "ciphertext": b64(alarm.ciphertext),
        "key": b64(key.ciphertext),
        "raised_at": alarm.created_at.isoformat(),
    }


def alarm_status_event(change: dict[str, Any], alarm: Alarm, ts: str) -> dict[str, Any]:
    """A state change or a recipient's answer, for the sender and the list's admins."""
    return {"type": "alarm_status", "state": alarm.state, **change, "ts": ts}
