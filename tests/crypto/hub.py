"""An in-memory stand-in for the server's routing, speaking the event shapes of
docs/messenger-api.md, for fast tests of E2ESession's protocol logic. The real-server tests are
tests/messenger/test_e2e_*.py."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from messenger.client import MembershipChanged
from messenger.client.e2e import Bundle, DeviceAddress, DeviceRecord, Roster
from messenger.crypto import MasterKeyRecord, OneTimePrekey, SignedPrekey


@dataclass
class Hub:
    members: dict[str, list[str]] = field(default_factory=dict)
    devices: dict[str, list[DeviceRecord]] = field(default_factory=dict)
    inbox: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)
    membership_seq: dict[str, int] = field(default_factory=dict)
    signed_prekeys: dict[DeviceAddress, SignedPrekey] = field(default_factory=dict)
    one_time_prekeys: dict[DeviceAddress, list[OneTimePrekey]] = field(default_factory=dict)
    masters: dict[str, MasterKeyRecord] = field(default_factory=dict)

    def deliver(self, user_id: str, event: dict[str, Any]) -> None:
        for rec in self.devices.get(user_id, []):
            self.inbox.setdefault((rec.user_id, rec.device_id), []).append(event)

    def take(self, user_id: str, device_id: str) -> list[dict[str, Any]]:
        return self.inbox.pop((user_id, device_id), [])

    def remove_member(
        self, cid: str, user_id: str, by: str | None = None, signed: Mapping[str, Any] = {}
    ) -> None:
        self.members[cid].remove(user_id)
        self._membership(cid, "removed", user_id, by, signed, [*self.members[cid], user_id])

    def add_member(
        self, cid: str, user_id: str, by: str | None = None, signed: Mapping[str, Any] = {}
    ) -> None:
        self.members[cid].append(user_id)
        self._membership(cid, "added", user_id, by, signed, self.members[cid])

    def _membership(
        self,
        cid: str,
        action: str,
        user_id: str,
        by: str | None,
        signed: Mapping[str, Any],
        to: list[str],
    ) -> None:
        self.seq[cid] = self.membership_seq[cid] = self.seq.get(cid, 0) + 1
        event: dict[str, Any] = {
            "type": "membership",
            "conversation_id": cid,
            "seq": self.seq[cid],
            "action": action,
            "user_id": user_id,
            "by_user_id": by,
        }
        if signed:
            event |= {
                "by_device_id": signed["device_id"],
                "after_seq": signed["after_seq"],
                "signature": signed["signature"],
            }
        for member in to:
            self.deliver(member, event)

    def approve(self, user_id: str, device_id: str, approval: bytes, by: str) -> None:
        self.devices[user_id] = [
            dataclasses.replace(r, approval=approval, approved_by=by)
            if r.device_id == device_id
            else r
            for r in self.devices[user_id]
        ]


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

    async def conversation_roster(self, conversation_id: str) -> Roster:
        await asyncio.sleep(0)
        return Roster(
            tuple(self.hub.members[conversation_id]),
            self.hub.membership_seq.get(conversation_id, 0),
        )

    async def publish_prekeys(
        self, device_id: str, signed: SignedPrekey | None, one_time: Sequence[OneTimePrekey]
    ) -> int:
        address = (self.user_id, device_id)
        if signed is not None:
            self.hub.signed_prekeys[address] = signed
        keys = self.hub.one_time_prekeys.setdefault(address, [])
        keys.extend(one_time)
        return len(keys)

    async def claim_prekeys(self, devices: Sequence[DeviceAddress]) -> Sequence[Bundle]:
        await asyncio.sleep(0)
        bundles = []
        for address in devices:
            signed = self.hub.signed_prekeys.get(address)
            if signed is None:
                continue
            keys = self.hub.one_time_prekeys.get(address, [])
            bundles.append(Bundle(*address, signed, keys.pop(0) if keys else None))
        return bundles

    async def publish_master_key(self, record: MasterKeyRecord) -> bool:
        if self.user_id in self.hub.masters:
            return False
        self.hub.masters[self.user_id] = record
        return True

    async def master_key(self, user_id: str) -> MasterKeyRecord | None:
        return self.hub.masters.get(user_id)

    async def approve_device(self, user_id: str, device_id: str, signature: bytes) -> None:
        self.hub.approve(user_id, device_id, signature, self.user_id)

    async def add_members(
        self, conversation_id: str, user_ids: Sequence[str], signed: Mapping[str, Any]
    ) -> None:
        for user_id in user_ids:
            one = {**signed, "signature": signed["signatures"][user_id]}
            self.hub.add_member(conversation_id, user_id, self.user_id, one)

    async def remove_member(
        self, conversation_id: str, user_id: str, signed: Mapping[str, Any]
    ) -> None:
        self.hub.remove_member(conversation_id, user_id, self.user_id, signed)

    async def send_message(
        self,
        conversation_id: str,
        *,
        txn_id: str,
        sender_device_id: str,
        ciphertext: bytes,
        attachment_ids: Sequence[str] = (),
        membership_seq: int | None = None,
    ) -> int:
        latest = self.hub.membership_seq.get(conversation_id, 0)
        if membership_seq is not None and latest > membership_seq:
            raise MembershipChanged(409, "membership_changed", "the members changed")
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
