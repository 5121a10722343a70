"""The lab's HTTP face: EWS at `/EWS/Exchange.asmx` (any case, as IIS), with its fault switches.

Order of a request, as a real front end sees it: outage (503 from the load balancer), injected
latency, body size cap (413), login (401 from the authenticator), throttling budget
(ErrorServerBusy with a back-off), then the SOAP call in a worker thread.
"""

from __future__ import annotations

import asyncio
import html
import importlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import TYPE_CHECKING, Protocol

import anyio.to_thread
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response, StreamingResponse

from exlab.ews import autodiscover, soap
from exlab.ews.notifications import streaming_answer
from exlab.ews.push import PushDispatcher

if TYPE_CHECKING:
    from exlab.lab import Lab

log = logging.getLogger("exlab.server")

EWS_PATH = "/ews/exchange.asmx"
STREAMS_CLOSE_S = 2
"""How long a stopping server waits for open notification streams before it ends them."""
MAX_BODY = 10 * 1024 * 1024
"""Requests above 10 MB are refused with 413, before they are parsed."""

# Modules that register EWS operations when imported.
OPERATION_MODULES = (
    "exlab.ews.folders",
    "exlab.ews.org",
    "exlab.ews.availability",
    "exlab.ews.items",
    "exlab.ews.attachments",
    "exlab.ews.sync",
    "exlab.ews.notifications",
    "exlab.ews.mailbox_settings",
    "exlab.ews.directory",
    "exlab.ews.folder_actions",
    "exlab.ews.inbox_rules",
    "exlab.ews.people",
)


async def _abandoned_on_disconnect(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """The stream's chunks, each read in a worker thread that is left behind when the client
    goes: the stream waits seconds between chunks, and the response (and a shutting-down
    server) must not wait for that when nobody reads any more."""
    done = object()
    while True:
        chunk = await anyio.to_thread.run_sync(next, chunks, done, abandon_on_cancel=True)
        if chunk is done:
            return
        assert isinstance(chunk, bytes)
        yield chunk


class Authenticator(Protocol):
    async def authenticate(self, request: Request) -> str | Response: ...

    def finish(self, request: Request, response: Response) -> None:
        """Add what the login owes the client on success (the Kerberos mutual-auth token)."""


def load_operations() -> list[str]:
    """Import every operation module, so its operations are registered; returns their names."""
    for name in OPERATION_MODULES:
        importlib.import_module(name)
    return list(OPERATION_MODULES)


def service_page(request: Request) -> Response:
    """What a signed-in GET of the EWS URL shows: the web service's own page, as on Exchange.

    Gateways and setup wizards probe the URL this way and take a 405 for a wrong address.
    """
    url = str(request.url).split("?", 1)[0]
    body = SERVICE_PAGE.format(url=html.escape(url))
    return HTMLResponse(body, headers={"X-FEServer": "LAB-EX01"})


SERVICE_PAGE = """<!DOCTYPE html>
<html><head><title>Service</title></head>
<body><div id="content"><p class="heading1">Service</p>
<p>You have created a service.</p>
<p>To test this service, you will need to create a client and use it to call the service.
The service's address is <a href="{url}">{url}</a>.</p>
</div></body></html>
"""


class BodyTooLarge(Exception):
    pass


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, refusing (BodyTooLarge) as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    lab: Lab, *, authenticator: Authenticator | None = None, max_body: int = MAX_BODY
) -> FastAPI:
    """The lab's ASGI app; the authenticator defaults to the lab's own (Basic, NTLM, Negotiate)."""
    load_operations()
    if authenticator is None:
        from exlab.auth import LabAuthenticator

        authenticator = LabAuthenticator(lab)
    auth = authenticator
    app = FastAPI(title="medbridge Exchange lab", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.lab = lab
    # Push subscriptions are served while the face runs; the thread ends when the lab closes.
    pusher = PushDispatcher(lab)
    pusher.start()
    app.state.push = pusher

    async def ews(request: Request) -> Response:
        request_id = str(uuid.uuid4())
        if lab.knobs.outage:
            return PlainTextResponse("Service Unavailable", status_code=503)
        if lab.knobs.latency_s > 0:
            await asyncio.sleep(lab.knobs.latency_s)
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body:
            return PlainTextResponse("Request Entity Too Large", status_code=413)
        # IIS authenticates before it looks at the method: a request without credentials gets
        # the challenge whatever its verb.
        answer = await auth.authenticate(request)
        if isinstance(answer, Response):
            return answer
        user = answer
        if request.method in ("GET", "HEAD"):
            page = service_page(request)
            auth.finish(request, page)
            return page
        if request.method != "POST":
            return PlainTextResponse(
                "Method Not Allowed", status_code=405, headers={"Allow": "GET, POST"}
            )
        try:
            body = await read_capped(request, max_body)
        except BodyTooLarge:
            return PlainTextResponse("Request Entity Too Large", status_code=413)
        except ClientDisconnect:
            return Response(status_code=400)
        back_off = lab.knobs.charge(user)
        headers = {"request-id": request_id, "X-FEServer": soap.SERVER_NAME}
        if back_off is not None:
            result = soap.throttled(back_off)
        else:
            # GetStreamingEvents is answered as Exchange does: one envelope per chunk, kept open.
            chunks = streaming_answer(lab, user, body) if b"GetStreamingEvents" in body else None
            if chunks is not None:
                streamed = StreamingResponse(
                    _abandoned_on_disconnect(chunks),
                    media_type="text/xml; charset=utf-8",
                    headers=headers,
                )
                auth.finish(request, streamed)
                return streamed
            result = await run_in_threadpool(
                partial(
                    soap.handle,
                    lab,
                    user,
                    body,
                    request_id=request_id,
                    http_headers=dict(request.headers),
                )
            )
        response = Response(
            result.body,
            status_code=result.status,
            media_type="text/xml; charset=utf-8",
            headers=headers,
        )
        for name, value in result.cookies.items():
            response.set_cookie(name, value, path="/", secure=request.url.scheme == "https")
        auth.finish(request, response)
        return response

    async def discover(request: Request, path: str) -> Response:
        """Autodiscover (POX or SOAP): signed in first, like every Exchange virtual directory."""
        if lab.knobs.outage:
            return PlainTextResponse("Service Unavailable", status_code=503)
        answer = await auth.authenticate(request)
        if isinstance(answer, Response):
            return answer
        if request.method in ("GET", "HEAD") and path == autodiscover.SOAP_PATH:
            page = service_page(request)
            auth.finish(request, page)
            return page
        try:
            body = await read_capped(request, max_body) if request.method == "POST" else b""
        except BodyTooLarge:
            return PlainTextResponse("Request Entity Too Large", status_code=413)
        except ClientDisconnect:
            return Response(status_code=400)
        base_url = f"{request.url.scheme}://{request.url.netloc}"
        if path == autodiscover.POX_PATH:
            status, content = 200, autodiscover.pox_answer(lab, body, base_url)
        else:
            status, content = autodiscover.soap_answer(lab, body, base_url)
        response = Response(content, status_code=status, media_type="text/xml; charset=utf-8")
        auth.finish(request, response)
        return response

    async def dispatch(request: Request) -> Response:
        path = request.url.path.lower().rstrip("/")
        if path in (autodiscover.POX_PATH, autodiscover.SOAP_PATH):
            return await discover(request, path)
        if path != EWS_PATH:
            return PlainTextResponse("Not Found", status_code=404)
        return await ews(request)

    app.add_api_route(
        "/{path:path}",
        dispatch,
        methods=["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"],
        include_in_schema=False,
    )
    return app
