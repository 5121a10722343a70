"""The receiving end of Graph change notifications: a small HTTP listener in a thread.

Graph first POSTs `?validationToken=...` and wants the token echoed as text/plain (the
handshake that proves the URL belongs to the subscriber); afterwards it POSTs
`{"value": [notification, ...]}`. Each notification carries the subscription's `clientState`,
a secret only Graph and this listener know: notifications with another one are dropped, so a
stranger who finds the URL cannot inject events.
"""

from __future__ import annotations

import hmac
import json
import queue
import secrets
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_BODY = 1024 * 1024


class NotificationListener:
    """Listens on `host` (port 0: a free one) under a random path; `url` is what Graph calls.

    `public_url` replaces the URL handed to Graph when the listener is reached through a
    reverse proxy or tunnel; the path must still end in `path`.
    """

    def __init__(self, host: str = "127.0.0.1", *, public_url: str | None = None) -> None:
        self.client_state = secrets.token_urlsafe(32)
        self.path = f"/graph-notifications/{secrets.token_urlsafe(16)}"
        self.notifications: queue.Queue[Mapping[str, Any]] = queue.Queue()
        #: Notifications dropped for a wrong `clientState` (counted, never queued).
        self.rejected = 0
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != listener.path:
                    self._answer(404)
                    return
                token = parse_qs(parts.query).get("validationToken")
                if token:
                    self._answer(200, token[0].encode(), "text/plain; charset=utf-8")
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._answer(413)
                    return
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                    values = body.get("value", []) if isinstance(body, dict) else []
                except ValueError:
                    self._answer(400)
                    return
                listener.accept(values if isinstance(values, list) else [])
                self._answer(202)

            def _answer(self, status: int, body: bytes = b"", kind: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return  # notifications are not logged (they name items)

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        port = self._server.server_address[1]
        shown = f"[{host}]" if ":" in host else host
        self.url = public_url or f"http://{shown}:{port}{self.path}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="graph-notifications", daemon=True
        )
        self._thread.start()

    def accept(self, values: list[Any]) -> None:
        """Queue the notifications that carry our `clientState`; count the others."""
        for value in values:
            state = value.get("clientState") if isinstance(value, Mapping) else None
            if isinstance(state, str) and hmac.compare_digest(state, self.client_state):
                self.notifications.put(value)
            else:
                self.rejected += 1

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
