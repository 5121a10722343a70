"""Liveness, readiness (database reachable, schema current) and Prometheus metrics."""

from __future__ import annotations

from hmac import compare_digest

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from messenger.server.clientip import client_address, is_loopback
from messenger.server.errors import ApiError
from messenger.server.state import State
from messenger.store.schema import current_revision, head_revision

router = APIRouter()


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State, response: Response) -> dict[str, str]:
    try:
        revision = await current_revision(state.engine)
    except (SQLAlchemyError, OSError):
        response.status_code = 503
        return {"status": "database unreachable"}
    if revision != head_revision():
        response.status_code = 503
        return {"status": f"schema at {revision}, expected {head_revision()}"}
    return {"status": "ready"}


@router.get("/metrics")
async def metrics(request: Request, state: State) -> Response:
    """Prometheus metrics for loopback clients (a local scraper or sidecar) or with the token."""
    token = state.settings.metrics_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    with_token = token is not None and scheme.lower() == "bearer" and compare_digest(given, token)
    if not with_token and not is_loopback(client_address(request, state.proxies)):
        raise ApiError(403, "metrics are served to loopback clients or with the metrics token")
    state.metrics.connections.set(state.hub.connected())
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
