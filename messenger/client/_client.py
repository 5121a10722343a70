"""The async messenger client: REST calls over httpx, events over a resuming WebSocket."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.protocol import State

from messenger.client._errors import (
    MessengerError,
    TransportError,
    Unauthenticated,
    error_from_response,
)

log = logging.getLogger("messenger.client")

TRANSIENT_STATUS = {502, 503, 504}
#: A lost stream tries again after 0.1 s, then after twice as long each time, up to this many
#: seconds. The cap bounds how long a client stays away once its server (or, behind a load
#: balancer, any server) is back: with a cap of 5 s, `make chaos` saw streams come back 5 s
#: after their restarted node did (11.5 s after the kill, the node 6.5 s).
STREAM_RETRY_MAX_S = 2.0


def next_stream_retry(delay: float) -> float:
    return min(delay * 2, STREAM_RETRY_MAX_S)


def jittered(delay: float) -> float:
    """Between half the delay and all of it, so the clients of a restarted node spread out."""
    return delay * (0.5 + secrets.randbelow(1001) / 2000)


def new_txn_id() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class SendResult:
    message_id: str
    conversation_id: str
    seq: int
    ts: str
    duplicate: bool


@dataclass(frozen=True)
class Envelope:
    """A to-device message: ciphertext for exactly one device."""

    user_id: str
    device_id: str
    ciphertext: bytes


@dataclass
class Cursors:
    """Where the stream resumes: last seq per conversation and of the to-device queue."""

    conversations: dict[str, int] = field(default_factory=dict)
    to_device: int = 0


class MessengerClient:
    """Client of one messenger server for one user.

    Usage::

        async with MessengerClient("https://chat.example.org") as client:
            await client.login("anna@example.org", "secret")
            device = await client.register_device("laptop", signing_key, exchange_key, sig)
            conv = await client.create_conversation("group", ["<user id>"], name="Leitstelle")
            await client.send_raw(conv["conversation_id"], ciphertext)
            async for event in client.events():
                ...

    Parameters:
        base_url: the server address.
        transport: an httpx transport (e.g. `httpx.ASGITransport(app)` to run the server in
            process); the default talks over the network.
        retries: attempts for transient failures (502/503/504, connection errors) of calls
            that are safe to repeat; other errors are raised at once.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retries: int = 3,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, transport=transport, timeout=timeout)
        self._retries = retries
        self.token: str | None = None
        self.user_id: str | None = None
        self.tenant_id: str | None = None
        self.device_id: str | None = None
        self.cursors = Cursors()

    async def __aenter__(self) -> MessengerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- plumbing ----------------------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        replayable: bool | None = None,
        auth: bool = True,
    ) -> httpx.Response:
        headers = {}
        if auth:
            if self.token is None:
                raise Unauthenticated(401, "unauthenticated", "log in first")
            headers["Authorization"] = f"Bearer {self.token}"
        if content is not None:
            headers["Content-Type"] = "application/octet-stream"
        safe = method in ("GET", "DELETE") if replayable is None else replayable
        attempts = self._retries if safe else 1
        delay = 0.2
        for attempt in range(1, attempts + 1):
            try:
                response = await self._http.request(
                    method, path, json=json_body, content=content, params=params, headers=headers
                )
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise TransportError(f"cannot reach {self.base_url}: {exc}") from exc
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in TRANSIENT_STATUS or attempt == attempts:
                    try:
                        body = response.json()
                    except ValueError:
                        body = response.text
                    raise error_from_response(
                        response.status_code, body, response.headers.get("retry-after")
                    )
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = await self._request(method, path, **kw)
        return response.json() if response.content else None

    # -- accounts ----------------------------------------------------------------------------

    def _session(self, data: dict[str, Any]) -> dict[str, Any]:
        self.token = data["token"]
        self.user_id = data["user_id"]
        self.tenant_id = data["tenant_id"]
        self.device_id = data.get("device_id")
        return data

    async def login(
        self, email: str, password: str, device_id: str | None = None
    ) -> dict[str, Any]:
        body = {"email": email, "password": password, "device_id": device_id}
        return self._session(await self._json("POST", "/v1/login", json_body=body, auth=False))

    async def register(
        self,
        invite_token: str,
        password: str,
        display_name: str | None = None,
        phone: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "invite_token": invite_token,
            "password": password,
            "display_name": display_name,
            "phone": phone,
        }
        return self._session(await self._json("POST", "/v1/register", json_body=body, auth=False))

    async def logout(self) -> None:
        await self._request("POST", "/v1/logout")
        self.token = None

    async def me(self) -> dict[str, Any]:
        return dict(await self._json("GET", "/v1/me"))

    async def tenant_config(self) -> dict[str, Any]:
        """The tenant's branding (`primary_colour`, `accent_colour`, base64 `logo`) and its
        managed app configuration (`app_config`: dotted keys as in managed.json)."""
        return dict(await self._json("GET", "/v1/tenant/config"))

    async def sessions(self) -> list[dict[str, Any]]:
        return list(await self._json("GET", "/v1/sessions"))

    async def revoke_session(self, session_id: str) -> None:
        await self._request("DELETE", f"/v1/sessions/{session_id}")

    # -- devices and directory ---------------------------------------------------------------

    async def register_device(
        self,
        name: str,
        signing_key: bytes,
        exchange_key: bytes,
        signature: bytes,
        device_id: str | None = None,
    ) -> str:
        body = {
            "name": name,
            "signing_key": _b64(signing_key),
            "exchange_key": _b64(exchange_key),
            "signature": _b64(signature),
            "device_id": device_id,
        }
        data = await self._json("POST", "/v1/devices", json_body=body)
        self.device_id = data["device_id"]
        return str(data["device_id"])

    async def devices(self, user_id: str) -> list[dict[str, Any]]:
        return list(await self._json("GET", f"/v1/users/{user_id}/devices"))

    async def remove_device(self, device_id: str) -> None:
        await self._request("DELETE", f"/v1/devices/{device_id}")

    async def directory(self, query: str = "") -> list[dict[str, Any]]:
        return list(await self._json("GET", "/v1/directory", params={"q": query}))

    async def user(self, user_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", f"/v1/users/{user_id}"))

    # -- conversations -----------------------------------------------------------------------

    async def create_conversation(
        self, kind: str, members: Sequence[str], name: str = ""
    ) -> dict[str, Any]:
        body = {"kind": kind, "members": list(members), "name": name}
        return dict(await self._json("POST", "/v1/conversations", json_body=body))

    async def conversations(self) -> list[dict[str, Any]]:
        return list(await self._json("GET", "/v1/conversations"))

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", f"/v1/conversations/{conversation_id}"))

    async def add_members(
        self,
        conversation_id: str,
        user_ids: Sequence[str],
        *,
        signed: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add members; `signed` ({device_id, after_seq, signatures: {user_id: b64}}) carries
        the actor device's signed membership statements (E2ESession.add_members makes them)."""
        body: dict[str, Any] = {"user_ids": list(user_ids)}
        if signed is not None:
            body["signed"] = dict(signed)
        return dict(
            await self._json("POST", f"/v1/conversations/{conversation_id}/members", json_body=body)
        )

    async def remove_member(
        self, conversation_id: str, user_id: str, *, signed: Mapping[str, Any] | None = None
    ) -> None:
        """Remove a member or leave; `signed` ({device_id, after_seq, signature}) signs it."""
        params = {k: str(v) for k, v in signed.items()} if signed is not None else None
        await self._request(
            "DELETE", f"/v1/conversations/{conversation_id}/members/{user_id}", params=params
        )

    # -- public keys (prekeys, cross-signing) ------------------------------------------------

    async def publish_prekeys(
        self,
        device_id: str,
        *,
        signed_prekey: Mapping[str, Any] | None = None,
        one_time_prekeys: Sequence[Mapping[str, Any]] = (),
    ) -> int:
        """Publish prekeys ({key_id, public_key(b64)[, signature]}); returns the unclaimed
        one-time prekey count."""
        body: dict[str, Any] = {"one_time_prekeys": [dict(k) for k in one_time_prekeys]}
        if signed_prekey is not None:
            body["signed_prekey"] = dict(signed_prekey)
        data = await self._json("PUT", f"/v1/devices/{device_id}/prekeys", json_body=body)
        return int(data["one_time_count"])

    async def prekey_count(self, device_id: str) -> int:
        data = await self._json("GET", f"/v1/devices/{device_id}/prekeys")
        return int(data["one_time_count"])

    async def claim_prekeys(self, devices: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        """One prekey bundle per (user id, device id); each one-time prekey is handed out
        once. Devices without prekeys (or unknown) are missing from the answer."""
        body = {"devices": [{"user_id": u, "device_id": d} for u, d in devices]}
        data = await self._json("POST", "/v1/prekeys/claim", json_body=body)
        return list(data["bundles"])

    async def publish_master_key(self, master_key: bytes, signature: bytes) -> None:
        body = {"master_key": _b64(master_key), "signature": _b64(signature)}
        await self._json("PUT", "/v1/users/me/master_key", json_body=body)

    async def master_key(self, user_id: str) -> dict[str, Any]:
        """{user_id, master_key, signature} (base64); NotFound if the user has none."""
        return dict(await self._json("GET", f"/v1/users/{user_id}/master_key"))

    async def approve_device(self, user_id: str, device_id: str, signature: bytes) -> None:
        """Store the caller's master-key signature over a device (own, or as tenant admin)."""
        await self._json(
            "PUT",
            f"/v1/users/{user_id}/devices/{device_id}/approval",
            json_body={"signature": _b64(signature)},
        )

    async def history(
        self, conversation_id: str, after_seq: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        data = await self._json(
            "GET",
            f"/v1/conversations/{conversation_id}/events",
            params={"after_seq": after_seq, "limit": limit},
        )
        return list(data["events"])

    # -- raw sends (the E2E layer wraps these) -----------------------------------------------

    async def send_raw(
        self,
        conversation_id: str,
        ciphertext: bytes,
        *,
        txn_id: str | None = None,
        attachment_ids: Sequence[str] = (),
        device_id: str | None = None,
        membership_seq: int | None = None,
    ) -> SendResult:
        """Store opaque ciphertext in a conversation; a repeated `txn_id` stores nothing new.
        With `membership_seq` (the latest membership change the sender saw) the server refuses
        the message (MembershipChanged) if the members changed since."""
        body: dict[str, Any] = {
            "txn_id": txn_id or new_txn_id(),
            "sender_device_id": self._device(device_id),
            "ciphertext": _b64(ciphertext),
            "attachment_ids": list(attachment_ids),
        }
        if membership_seq is not None:
            body["membership_seq"] = membership_seq
        data = await self._json(
            "POST", f"/v1/conversations/{conversation_id}/messages", json_body=body, replayable=True
        )
        return SendResult(
            data["message_id"], data["conversation_id"], data["seq"], data["ts"], data["duplicate"]
        )

    async def delete_message(self, conversation_id: str, seq: int) -> int:
        """Delete one's own message for everyone; returns the seq of the deletion event."""
        data = await self._json("DELETE", f"/v1/conversations/{conversation_id}/messages/{seq}")
        return int(data["seq"])

    async def send_to_device(
        self,
        envelopes: Sequence[Envelope],
        *,
        txn_id: str | None = None,
        device_id: str | None = None,
    ) -> int:
        """Deliver pairwise ciphertexts to exact devices; all or nothing."""
        body = {
            "txn_id": txn_id or new_txn_id(),
            "sender_device_id": self._device(device_id),
            "messages": [
                {"user_id": e.user_id, "device_id": e.device_id, "ciphertext": _b64(e.ciphertext)}
                for e in envelopes
            ],
        }
        data = await self._json("POST", "/v1/to_device", json_body=body, replayable=True)
        return int(data["count"])

    def _device(self, device_id: str | None) -> str:
        device = device_id or self.device_id
        if device is None:
            raise MessengerError("register a device (or log in with one) before sending")
        return device

    async def receipt(self, conversation_id: str, seq: int, kind: str = "read") -> None:
        await self._request(
            "POST",
            f"/v1/conversations/{conversation_id}/receipts",
            json_body={"seq": seq, "kind": kind},
            replayable=True,
        )

    async def typing(self, conversation_id: str, typing: bool = True) -> None:
        """Members' open streams get a live `typing` event (nothing is stored)."""
        await self._request(
            "POST",
            f"/v1/conversations/{conversation_id}/typing",
            json_body={"typing": typing},
            replayable=True,
        )

    async def receipts(self, conversation_id: str, seq: int) -> list[dict[str, Any]]:
        return list(
            await self._json("GET", f"/v1/conversations/{conversation_id}/messages/{seq}/receipts")
        )

    # -- attachments -------------------------------------------------------------------------

    async def upload(self, conversation_id: str, encrypted: bytes) -> str:
        """Upload an already encrypted blob; returns its attachment id."""
        data = await self._json(
            "POST", f"/v1/conversations/{conversation_id}/attachments", content=encrypted
        )
        return str(data["attachment_id"])

    async def download(self, attachment_id: str) -> bytes:
        return (await self._request("GET", f"/v1/attachments/{attachment_id}")).content

    async def quota(self) -> dict[str, int]:
        return dict(await self._json("GET", "/v1/quota"))

    # -- four-eyes audit ---------------------------------------------------------------------
    # Raw calls; `messenger.client.audit` does the cryptography around them.

    async def audit_state(self) -> dict[str, Any]:
        """Whether audit is on for this tenant (show a banner while it is) and its key."""
        return dict(await self._json("GET", "/v1/audit"))

    async def publish_audit_key(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._json("PUT", "/v1/admin/audit/key", json_body=body))

    async def set_audit_enabled(self, enabled: bool) -> None:
        await self._request("PUT", "/v1/admin/audit/state", json_body={"enabled": enabled})

    async def audit_log(self) -> list[dict[str, Any]]:
        return list((await self._json("GET", "/v1/admin/audit/log"))["entries"])

    async def deposit_audit_seal(self, conversation_id: str, body: dict[str, Any]) -> str:
        data = await self._json(
            "POST", f"/v1/conversations/{conversation_id}/audit-seals", json_body=body
        )
        return str(data["seal_id"])

    async def create_audit_request(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(await self._json("POST", "/v1/audit/requests", json_body=body))

    async def audit_requests(self) -> list[dict[str, Any]]:
        return list(await self._json("GET", "/v1/audit/requests"))

    async def audit_request(self, request_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", f"/v1/audit/requests/{request_id}"))

    async def approve_audit_request(self, request_id: str, partials: bytes) -> dict[str, Any]:
        body = {"partials": _b64(partials)}
        return dict(
            await self._json("POST", f"/v1/audit/requests/{request_id}/approvals", json_body=body)
        )

    async def reject_audit_request(self, request_id: str, reason: str = "") -> dict[str, Any]:
        body = {"reason": reason}
        return dict(
            await self._json("POST", f"/v1/audit/requests/{request_id}/reject", json_body=body)
        )

    async def audit_export(self, request_id: str) -> bytes:
        """The sealed export; handed out once, so never retried automatically."""
        path = f"/v1/audit/requests/{request_id}/export"
        return (await self._request("GET", path, replayable=False)).content

    # -- alarm lists (tenant administrators) and alarms ---------------------------------------

    async def alarm_lists(self) -> list[dict[str, Any]]:
        """The tenant's alarm lists (with members when the caller administers the tenant)."""
        return list(await self._json("GET", "/v1/alarm-lists"))

    async def create_alarm_list(
        self,
        name: str,
        members: Sequence[Mapping[str, Any]] = (),
        *,
        repeat_seconds: int = 60,
        escalation_seconds: int = 300,
        ack_needed: int = 1,
        emergency: bool = False,
    ) -> dict[str, Any]:
        """`members`: `{"user_id": ..., "tier": 1, "role": "member" | "admin"}` each."""
        body = {
            "name": name,
            "members": [dict(m) for m in members],
            "repeat_seconds": repeat_seconds,
            "escalation_seconds": escalation_seconds,
            "ack_needed": ack_needed,
            "emergency": emergency,
        }
        return dict(await self._json("POST", "/v1/alarm-lists", json_body=body))

    async def alarm_list(self, list_id: str) -> dict[str, Any]:
        return dict(await self._json("GET", f"/v1/alarm-lists/{list_id}"))

    async def update_alarm_list(self, list_id: str, **changes: Any) -> dict[str, Any]:
        return dict(await self._json("PATCH", f"/v1/alarm-lists/{list_id}", json_body=changes))

    async def set_alarm_list_member(
        self, list_id: str, user_id: str, *, tier: int = 1, role: str = "member"
    ) -> dict[str, Any]:
        path = f"/v1/alarm-lists/{list_id}/members/{user_id}"
        body = {"tier": tier, "role": role}
        return dict(await self._json("PUT", path, json_body=body, replayable=True))

    async def remove_alarm_list_member(self, list_id: str, user_id: str) -> None:
        await self._request("DELETE", f"/v1/alarm-lists/{list_id}/members/{user_id}")

    async def delete_alarm_list(self, list_id: str) -> None:
        await self._request("DELETE", f"/v1/alarm-lists/{list_id}")

    async def alarm_list_devices(self, list_id: str) -> list[dict[str, Any]]:
        return list(await self._json("GET", f"/v1/alarm-lists/{list_id}/devices"))

    async def upload_alarm_attachment(self, encrypted: bytes, level: str) -> str:
        """Upload an already encrypted blob for an alarm of `level`; returns its id."""
        data = await self._json(
            "POST", "/v1/alarms/attachments", content=encrypted, params={"level": level}
        )
        return str(data["attachment_id"])

    async def download_alarm_attachment(self, attachment_id: str) -> bytes:
        return (await self._request("GET", f"/v1/alarms/attachments/{attachment_id}")).content

    async def raise_alarm_raw(
        self,
        list_id: str,
        level: str,
        ciphertext: bytes,
        keys: Sequence[Envelope],
        *,
        attachment_ids: Sequence[str] = (),
        txn_id: str | None = None,
        device_id: str | None = None,
    ) -> dict[str, Any]:
        """Raise an alarm with opaque content and its key sealed per device (the E2E layer,
        `messenger.client.alarms`, makes both); a repeated `txn_id` raises nothing new."""
        body = {
            "txn_id": txn_id or new_txn_id(),
            "list_id": list_id,
            "level": level,
            "sender_device_id": self._device(device_id),
            "ciphertext": _b64(ciphertext),
            "keys": [
                {"user_id": k.user_id, "device_id": k.device_id, "ciphertext": _b64(k.ciphertext)}
                for k in keys
            ],
            "attachment_ids": list(attachment_ids),
        }
        return dict(await self._json("POST", "/v1/alarms", json_body=body, replayable=True))

    async def alarm_status(self, alarm_id: str) -> dict[str, Any]:
        """Recipients, their answers and the alarm's log (for the sender and admins)."""
        return dict(await self._json("GET", f"/v1/alarms/{alarm_id}"))

    async def answer_alarm(self, alarm_id: str, kind: str, reason: str | None = None) -> None:
        """`delivered`, `seen`, `acknowledged` or `declined` (with a reason)."""
        body = {"kind": kind, "reason": reason}
        await self._request(
            "POST", f"/v1/alarms/{alarm_id}/answers", json_body=body, replayable=True
        )

    async def end_alarm(self, alarm_id: str) -> dict[str, Any]:
        return dict(await self._json("POST", f"/v1/alarms/{alarm_id}/end"))

    async def open_alarms(self) -> list[dict[str, Any]]:
        """Open alarms this device was alarmed with and not answered (stream-event shape)."""
        return list((await self._json("GET", "/v1/alarms"))["alarms"])

    # -- events ------------------------------------------------------------------------------

    def events(self, *, reconnect: bool = True) -> EventStream:
        """The raw event stream (resumes from `self.cursors` after any disconnect)."""
        if self.token is None:
            raise Unauthenticated(401, "unauthenticated", "log in first")
        return EventStream(self, reconnect=reconnect)

    def stream_url(self) -> str:
        url = httpx.URL(self.base_url)
        scheme = "wss" if url.scheme == "https" else "ws"
        return str(url.copy_with(scheme=scheme, path=url.path.rstrip("/") + "/v1/stream"))


class EventStream:
    """Async iterator of raw events as dicts (see docs/messenger-api.md, "Stream").

    Advances the client's cursors as events are handed out; after a connection loss it
    reconnects with those cursors, so nothing is skipped or repeated. `connection_class` is
    the websockets connection made (a subclass can watch the socket, as the benchmark does).
    """

    connection_class: type[ClientConnection] = ClientConnection

    def __init__(self, client: MessengerClient, *, reconnect: bool) -> None:
        self._client = client
        self._reconnect = reconnect
        self._ws: ClientConnection | None = None
        self._closed = False
        self.connects = 0
        self._answers: dict[str, asyncio.Future[dict[str, Any] | None]] = {}
        self._reader: asyncio.Task[Any] | None = None  # the task iterating the stream

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        self._closed = True
        if self._ws is not None:
            await self._ws.close()

    @property
    def connection(self) -> ClientConnection | None:
        """The current WebSocket connection, if one is open."""
        return self._ws

    async def drop(self) -> None:
        """Break the current connection (as a network failure would); the stream resumes."""
        if self._ws is not None:
            self._ws.transport.abort()

    async def send_raw(
        self,
        conversation_id: str,
        ciphertext: bytes,
        *,
        txn_id: str | None = None,
        attachment_ids: Sequence[str] = (),
        membership_seq: int | None = None,
        timeout: float = 10.0,
    ) -> SendResult:
        """`MessengerClient.send_raw` through this stream's connection, from its device:
        without an HTTP request's overhead. The answer comes with the events, read by the task
        that iterates the stream; a send from that task itself (an event handler answering)
        could not read it, so it goes over HTTP at once. If the stream is not connected, or
        the connection ends or `timeout` passes before the answer, the send goes over HTTP
        with the same transaction id: the message is stored once either way."""
        txn = txn_id or new_txn_id()
        answer = await self._send_frame(
            {
                "type": "send",
                "conversation_id": conversation_id,
                "txn_id": txn,
                "ciphertext": _b64(ciphertext),
                "attachment_ids": list(attachment_ids),
                "membership_seq": membership_seq,
            },
            timeout,
        )
        if answer is None:
            return await self._client.send_raw(
                conversation_id,
                ciphertext,
                txn_id=txn,
                attachment_ids=attachment_ids,
                membership_seq=membership_seq,
            )
        if answer["type"] == "send_failed":
            retry_after = answer.get("retry_after")
            raise error_from_response(
                int(answer["status"]), answer, None if retry_after is None else str(retry_after)
            )
        return SendResult(
            answer["message_id"],
            answer["conversation_id"],
            answer["seq"],
            answer["ts"],
            answer["duplicate"],
        )

    async def _send_frame(self, frame: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        """The server's answer to a frame with a `txn_id`, or None if none came."""
        ws = self._ws
        if ws is None or ws.state is not State.OPEN or asyncio.current_task() is self._reader:
            return None
        txn = frame["txn_id"]
        answer: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._answers[txn] = answer
        try:
            await ws.send(json.dumps(frame, separators=(",", ":")))
            async with asyncio.timeout(timeout):
                return await answer
        except (ConnectionClosed, TimeoutError):
            return None
        finally:
            if self._answers.get(txn) is answer:
                del self._answers[txn]

    def _answered(self, event: dict[str, Any]) -> bool:
        """Whether a frame answers a send made through the stream (then it is not an event)."""
        if event.get("type") not in ("sent", "send_failed"):
            return False
        waiting = self._answers.get(event.get("txn_id") or "")
        if waiting is not None and not waiting.done():
            waiting.set_result(event)
        return True

    def _unanswered(self) -> None:
        """The connection ended: sends still waiting go over HTTP (see `send_raw`)."""
        for waiting in self._answers.values():
            if not waiting.done():
                waiting.set_result(None)

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next event, or TimeoutError."""
        if not hasattr(self, "_iter"):
            self._iter = self._iterate()
        async with asyncio.timeout(timeout):  # in this task (see `send_raw`)
            return await anext(self._iter)

    async def _connect(self) -> ClientConnection:
        c = self._client
        # No permessage-deflate: the events carry ciphertext, which does not compress.
        ws = await websockets.connect(
            c.stream_url(),
            open_timeout=10,
            max_size=2**22,
            compression=None,
            create_connection=self.connection_class,
        )
        hello = {
            "type": "hello",
            "token": c.token,
            "since": c.cursors.conversations,
            "to_device_since": c.cursors.to_device,
        }
        await ws.send(json.dumps(hello))
        self.connects += 1
        return ws

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        delay = 0.1
        while not self._closed:
            try:
                self._ws = await self._connect()
                delay = 0.1
                async for frame in self._ws:
                    event = json.loads(frame)
                    if self._answered(event):
                        continue
                    self._advance(event)
                    self._reader = asyncio.current_task()  # it handles the event meanwhile
                    yield event
                self._unanswered()
                if self._closed:
                    return
            except ConnectionClosed as exc:
                self._unanswered()
                code = exc.rcvd.code if exc.rcvd else None
                if code in (4400, 4401):
                    reason = exc.rcvd.reason if exc.rcvd else ""
                    raise Unauthenticated(
                        401, "unauthenticated", reason or "stream refused"
                    ) from exc
                if self._closed:
                    return
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self._unanswered()
                if not self._reconnect:
                    raise TransportError(f"stream lost: {exc}") from exc
            if not self._reconnect:
                raise TransportError("stream closed")
            await asyncio.sleep(jittered(delay))
            delay = next_stream_retry(delay)

    def _advance(self, event: dict[str, Any]) -> None:
        cursors = self._client.cursors
        kind = event.get("type")
        if kind in ("message", "membership", "redaction"):
            cid = event["conversation_id"]
            cursors.conversations[cid] = max(cursors.conversations.get(cid, 0), int(event["seq"]))
        elif kind == "to_device":
            cursors.to_device = max(cursors.to_device, int(event["seq"]))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_ciphertext(event: dict[str, Any]) -> bytes:
    """The raw ciphertext bytes of a `message` or `to_device` event."""
    return base64.b64decode(event["ciphertext"])
