"""Alarms, end to end: raise one to a list, receive, answer, and the panic button.

The content (level, text, position, an attachment's key) is encrypted once under a fresh key;
that key is sealed pairwise to every device of the list's members (`E2ESession.seal_for`), so
the server stores and forwards ciphertext only and learns nothing but the level and who is
alarmed when. A recipient's client opens it and gets an `AlarmReceived`; clients show it
highlighted until it is acknowledged, declined or closed (`Alarms.active`).

    alarms = Alarms(client, session)
    raised = await alarms.raise_alarm(list_id, "Brand in Halle 3", level="urgent")
    async for event in client.events():
        await session.handle_event(event)
        for item in await alarms.handle_event(event):
            ...                         # AlarmReceived, AlarmStatus or AlarmRejected
    await alarms.acknowledge(alarm_id)

    await alarms.panic(Position(52.52, 13.40, 8.0), voice_ogg, duration_ms=4200)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from messenger.client._client import Envelope, MessengerClient, new_txn_id
from messenger.client._errors import MessengerError, NotFound
from messenger.client.content import VOICE_MIMES
from messenger.client.e2e import E2ESession, _b64, _unb64, device_records
from messenger.crypto import (
    AttachmentKey,
    CryptoError,
    MalformedError,
    decrypt_attachment,
    encrypt_attachment,
)

log = logging.getLogger(__name__)

LEVELS = ("info", "urgent", "alarm", "panic")


@dataclass(frozen=True)
class Position:
    """A GPS fix: degrees, and the accuracy radius in metres when known."""

    lat: float
    lon: float
    accuracy_m: float | None = None

    def __post_init__(self) -> None:
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError("a position needs -90 <= lat <= 90 and -180 <= lon <= 180")


@dataclass(frozen=True)
class AlarmAttachment:
    """An alarm's attachment (a voice message, a photo); `Alarms.fetch_attachment` opens it."""

    attachment_id: str
    mime: str
    name: str
    key: AttachmentKey
    duration_ms: int | None = None


@dataclass(frozen=True)
class AlarmReceived:
    """An alarm for this device: highlight it until acknowledged. `round` counts re-alarms."""

    alarm_id: str
    list_id: str
    level: str
    text: str
    round: int
    tier: int
    sender_user_id: str
    sender_device_id: str
    raised_at: str
    position: Position | None = None
    attachment: AlarmAttachment | None = None


@dataclass(frozen=True)
class AlarmStatus:
    """A state change or a recipient's answer (`kind`), as the sender and list admins see it."""

    alarm_id: str
    kind: str
    state: str
    user_id: str | None = None
    reason: str | None = None
    tier: int | None = None


@dataclass(frozen=True)
class AlarmRejected:
    """An alarm event that failed verification; show it as "could not be verified"."""

    alarm_id: str
    sender_user_id: str
    error: CryptoError


@dataclass(frozen=True)
class RaisedAlarm:
    alarm_id: str
    state: str
    duplicate: bool


AlarmResult = AlarmReceived | AlarmStatus | AlarmRejected


class Alarms:
    """The alarm functions of one logged-in device (its SDK client and E2E session)."""

    def __init__(self, client: MessengerClient, session: E2ESession) -> None:
        self.client = client
        self.session = session
        self.active: dict[str, AlarmReceived] = {}  # to highlight until answered or closed
        self._opened: dict[str, AlarmReceived] = {}
        self._delivered: set[str] = set()

    # raising ---------------------------------------------------------------------------------

    async def raise_alarm(
        self,
        list_id: str,
        text: str,
        *,
        level: str = "alarm",
        position: Position | None = None,
        attachment: bytes | None = None,
        mime: str = "application/octet-stream",
        name: str = "",
        duration_ms: int | None = None,
        txn_id: str | None = None,
    ) -> RaisedAlarm:
        """Raise an alarm to every device of the list's members (E2E); the server alarms tier 1
        at once and the rest as the list says. Repeating with the same `txn_id` after a crash
        raises it once."""
        if level not in LEVELS:
            raise ValueError(f"unknown alarm level {level!r} (one of {', '.join(LEVELS)})")
        records = device_records(await self.client.alarm_list_devices(list_id))
        devices = await self.session.trust_devices(records)
        if not devices:
            raise MessengerError("no member of this alarm list has a verified device to alarm")
        txn = txn_id or new_txn_id()
        content: dict[str, Any] = {"type": "alarm", "raise_id": txn, "level": level, "text": text}
        if position is not None:
            content["position"] = {
                "lat": position.lat,
                "lon": position.lon,
                "accuracy_m": position.accuracy_m,
            }
        attachment_ids: list[str] = []
        if attachment is not None:
            blob, key = encrypt_attachment(attachment)
            attachment_id = await self.client.upload_alarm_attachment(blob, level)
            attachment_ids.append(attachment_id)
            content["attachment"] = {
                "attachment_id": attachment_id,
                "key": _b64(key.key),
                "sha256": _b64(key.sha256),
                "size": key.size,
                "mime": mime,
                "name": name,
                "duration_ms": duration_ms,
            }
        blob, content_key = encrypt_attachment(json.dumps(content).encode())
        sealed_key = json.dumps(
            {
                "type": "alarm_key",
                "raise_id": txn,
                "key": _b64(content_key.key),
                "sha256": _b64(content_key.sha256),
                "size": content_key.size,
            }
        ).encode()
        keys = [Envelope(u, d, ct) for u, d, ct in self.session.seal_for(devices, sealed_key)]
        data = await self.client.raise_alarm_raw(
            list_id,
            level,
            blob,
            keys,
            attachment_ids=attachment_ids,
            txn_id=txn,
            device_id=self.session.device_id,
        )
        return RaisedAlarm(str(data["alarm_id"]), str(data["state"]), bool(data["duplicate"]))

    async def emergency_list(self) -> str:
        """The id of the tenant's emergency list (NotFound when it has none)."""
        for row in await self.client.alarm_lists():
            if row.get("emergency"):
                return str(row["list_id"])
        raise NotFound(404, "not_found", "this tenant has no emergency list")

    async def panic(
        self,
        position: Position,
        voice: bytes,
        *,
        duration_ms: int,
        mime: str = "audio/ogg",
        text: str = "",
        txn_id: str | None = None,
    ) -> RaisedAlarm:
        """The panic button: position and voice message to the tenant's emergency list at the
        highest level. Needs no shared conversation with the recipients, and a full storage
        quota does not stop it (panic alarms have a reserve)."""
        if mime not in VOICE_MIMES:
            raise ValueError(f"a voice message is one of {', '.join(VOICE_MIMES)}")
        if duration_ms <= 0:
            raise ValueError("a voice message has a positive duration")
        return await self.raise_alarm(
            await self.emergency_list(),
            text,
            level="panic",
            position=position,
            attachment=voice,
            mime=mime,
            name="voice" + (".ogg" if mime == "audio/ogg" else ".wav"),
            duration_ms=duration_ms,
            txn_id=txn_id,
        )

    # receiving -------------------------------------------------------------------------------

    async def handle_event(self, event: Mapping[str, Any]) -> list[AlarmResult]:
        """Turn an `alarm` or `alarm_status` stream event into results (others give none).

        A new alarm is reported `delivered` to the server once it opened on this device.
        """
        kind = event.get("type")
        if kind == "alarm":
            return await self._on_alarm(event)
        if kind == "alarm_status":
            status = AlarmStatus(
                alarm_id=str(event["alarm_id"]),
                kind=str(event["kind"]),
                state=str(event["state"]),
                user_id=event.get("user_id"),
                reason=event.get("reason"),
                tier=event.get("tier"),
            )
            mine = status.user_id == self.session.user_id
            if status.state == "closed" or (mine and status.kind in ("acknowledged", "declined")):
                self.active.pop(status.alarm_id, None)
            return [status]
        return []

    async def _on_alarm(self, event: Mapping[str, Any]) -> list[AlarmResult]:
        alarm_id = str(event["alarm_id"])
        sender_user, sender_device = str(event["sender_user_id"]), str(event["sender_device_id"])
        opened = self._opened.get(alarm_id)
        if opened is None:
            try:
                opened = await self._open(alarm_id, event, sender_user, sender_device)
            except CryptoError as exc:
                log.warning("alarm %s refused: %s", alarm_id, type(exc).__name__)
                return [AlarmRejected(alarm_id, sender_user, exc)]
            self._opened[alarm_id] = opened
        received = dataclasses.replace(opened, round=int(event["round"]), tier=int(event["tier"]))
        self.active[alarm_id] = received
        if alarm_id not in self._delivered:
            try:
                await self.client.answer_alarm(alarm_id, "delivered")
                self._delivered.add(alarm_id)
            except MessengerError as exc:
                log.warning("cannot report alarm %s delivered: %s", alarm_id, exc)
        return [received]

    async def _open(
        self, alarm_id: str, event: Mapping[str, Any], sender_user: str, sender_device: str
    ) -> AlarmReceived:
        try:
            sealed = json.loads(
                await self.session.open_sealed(sender_user, sender_device, _unb64(event["key"]))
            )
            key = AttachmentKey(
                key=_unb64(sealed["key"]),
                sha256=_unb64(sealed["sha256"]),
                size=int(sealed["size"]),
            )
            content = json.loads(decrypt_attachment(_unb64(event["ciphertext"]), key))
            if content.get("type") != "alarm" or content.get("raise_id") != sealed["raise_id"]:
                raise MalformedError("alarm content does not belong to its sealed key")
            if content.get("level") != event["level"]:
                raise MalformedError("the server shows another level than the sender set")
            position = content.get("position")
            attachment = content.get("attachment")
            return AlarmReceived(
                alarm_id=alarm_id,
                list_id=str(event["list_id"]),
                level=str(content["level"]),
                text=str(content.get("text", "")),
                round=int(event["round"]),
                tier=int(event["tier"]),
                sender_user_id=sender_user,
                sender_device_id=sender_device,
                raised_at=str(event["raised_at"]),
                position=(
                    Position(
                        float(position["lat"]),
                        float(position["lon"]),
                        None
                        if position.get("accuracy_m") is None
                        else float(position["accuracy_m"]),
                    )
                    if position
                    else None
                ),
                attachment=(
                    AlarmAttachment(
                        attachment_id=str(attachment["attachment_id"]),
                        mime=str(attachment.get("mime", "application/octet-stream")),
                        name=str(attachment.get("name", "")),
                        key=AttachmentKey(
                            key=_unb64(attachment["key"]),
                            sha256=_unb64(attachment["sha256"]),
                            size=int(attachment["size"]),
                        ),
                        duration_ms=(
                            None
                            if attachment.get("duration_ms") is None
                            else int(attachment["duration_ms"])
                        ),
                    )
                    if attachment
                    else None
                ),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise MalformedError(f"alarm content is not valid: {type(exc).__name__}") from exc

    async def fetch_attachment(self, ref: AlarmAttachment) -> bytes:
        """Download and decrypt an alarm's attachment (checked against its digest)."""
        return decrypt_attachment(
            await self.client.download_alarm_attachment(ref.attachment_id), ref.key
        )

    # answering -------------------------------------------------------------------------------

    async def seen(self, alarm_id: str) -> None:
        await self.client.answer_alarm(alarm_id, "seen")

    async def acknowledge(self, alarm_id: str) -> None:
        await self.client.answer_alarm(alarm_id, "acknowledged")
        self.active.pop(alarm_id, None)

    async def decline(self, alarm_id: str, reason: str) -> None:
        await self.client.answer_alarm(alarm_id, "declined", reason)
        self.active.pop(alarm_id, None)

    async def end(self, alarm_id: str) -> None:
        """End an alarm this user raised (or administers): it closes for everyone."""
        await self.client.end_alarm(alarm_id)

    async def status(self, alarm_id: str) -> dict[str, Any]:
        return await self.client.alarm_status(alarm_id)
