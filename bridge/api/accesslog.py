"""Structured access logs: one JSON line per request, never bodies, queries or credentials.

Logged: method, the route's template (ids and search terms stay out), status, duration, body
sizes, the caller and the request id. The request id (`X-Request-Id`, made here unless the
caller sent a sane one) is also the answer's header, so a caller can quote it.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccessLog"]

log = logging.getLogger("bridge.api.access")
_SANE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers", ()))
        declared = headers.get(b"content-length", b"0")
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE_ID.match(given) else secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        status = 0
        sent = 0

        async def tracked(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [(b"x-request-id", request_id.encode())]
                reply = scope["state"].get("negotiate_reply")
                if reply:
                    extra.append((b"www-authenticate", f"Negotiate {reply}".encode()))
                message["headers"] = [*message.get("headers", []), *extra]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            if log.isEnabledFor(logging.INFO):
                self._write(scope, request_id, status, started, declared, sent)

    @staticmethod
    def _write(
        scope: Scope, request_id: str, status: int, started: float, declared: bytes, sent: int
    ) -> None:
        """The JSON line, built only when someone reads it."""
        route = scope.get("route")
        state = scope["state"]
        record = {
            "request_id": request_id,
            "method": scope.get("method"),
            "route": getattr(route, "path", None) or "(unrouted)",
            "status": status,
            "ms": round((time.perf_counter() - started) * 1000, 2),
            "in_bytes": int(declared) if declared.isdigit() else None,
            "out_bytes": sent,
            "caller": state.get("caller"),
            "auth": state.get("auth_scheme"),
        }
        log.info(json.dumps(record, separators=(",", ":")))
