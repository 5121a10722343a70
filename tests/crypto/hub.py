"""An in-memory stand-in for the server's routing, speaking the event shapes of
docs/messenger-api.md, for fast tests of E2ESession's protocol logic. The real-server tests are
tests/messenger/test_e2e_*.py."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from messenger.client.e2e import DeviceRecord


@dataclass
class Hub:
    members: dict[str, list[str]] = field(default_factory=dict)
    devices: dict[str, list[DeviceRecord]] = field(default_factory=dict)
    inbox: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)

    def deliver(self, user_id: str, event: dict[str, Any]) -> None:
        for rec in self.devices.get(user_id, []):
            self.inbox.setdefault((rec.user_id, rec.device_id), []).append(event)

    def take(self, user_id: str, device_id: str) -> list[dict[str, Any]]:
        return self.inbox.pop((user_id, device_id), [])

    def remove_member(self, cid: str, user_id: str) -> None:
        self.members[cid].remove(user_id)
        self.seq[cid] = self.seq.get(cid, 0) + 1
        event = {
            "type": "membership",
            "conversation_id": cid,
            "seq": self.seq[cid],
            "action": "removed",
            "user_id": user_id,
        }
        for member in [*self.members[cid], user_id]:
            self.deliver(member, event)


@dataclass
class HubTransport:
    hub: Hub
    user_id: str
    device_id: str

    async def register_device(
        self,
        *,
        device_id: str,
        name: str,
        signing_key: bytes,
        exchange_key: bytes,
        signature: bytes,
    ) -> None:
        rec = DeviceRecord(self.user_id, device_id, signing_key, exchange_key, signature)
        self.hub.devices.setdefault(self.user_id, []).append(rec)

    async def list_devices(self, user_id: str) -> Sequence[DeviceRecord]:
        await asyncio.sleep(0)  # a network call yields to other tasks
        return list(self.hub.devices.get(user_id, []))

    async def conversation_members(self, conversation_id: str) -> Sequence[str]:
        await asyncio.sleep(0)
        return list(self.hub.members[conversation_id])

    async def send_message(
        self,
        conversation_id: str,
        *,
        txn_id: str,
        sender_device_id: str,
        ciphertext: bytes,
        attachment_ids: Sequence[str] = (),
    ) -> int:
        self.hub.seq[conversation_id] = seq = self.hub.seq.get(conversation_id, 0) + 1
        event = {
            "type": "message",
            "conversation_id": conversation_id,
            "seq": seq,
            "sender_user_id": self.user_id,
            "sender_device_id": sender_device_id,
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "attachment_ids": list(attachment_ids),
        }
        for member in self.hub.members[conversation_id]:
            self.hub.deliver(member, event)
        return seq

    async def send_to_device(
        self, *, txn_id: str, sender_device_id: str, messages: Sequence[tuple[str, str, bytes]]
    ) -> None:
        await asyncio.sleep(0)
        for user_id, device_id, ciphertext in messages:
            self.hub.inbox.setdefault((user_id, device_id), []).append(
                {
                    "type": "to_device",
                    "seq": 0,
                    "sender_user_id": self.user_id,
                    "sender_device_id": sender_device_id,
                    "ciphertext": base64.b64encode(ciphertext).decode(),
                }
            )

    async def upload_attachment(self, conversation_id: str, blob: bytes) -> str:
        aid = f"att{len(self.hub.blobs)}"
        self.hub.blobs[aid] = blob
        return aid

    async def download_attachment(self, attachment_id: str) -> bytes:
        return self.hub.blobs[attachment_id]
