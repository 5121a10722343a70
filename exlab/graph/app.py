"""The lab's Graph face as one FastAPI app: OAuth (Entra-like) and Graph REST on one base URL.

Mount it beside the EWS face: `app.mount("/", create_graph_app(lab))` after the EWS routes,
served over TLS (see `exlab.graph.tls`) because MSAL only talks to an https authority.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request

from exlab.graph.oauth import DOMAIN, TENANT_ID, LabClient, OAuthServer, oauth_router
from exlab.graph.tokens import SigningKey, TokenIssuer

if TYPE_CHECKING:
    from exlab.lab import Lab


class GraphFace:
    """Everything the Graph face keeps between requests: signing key, OAuth state, knobs."""

    def __init__(
        self,
        lab: Lab,
        base_url: str | None = None,
        *,
        key: SigningKey | None = None,
        key_dir: Path | None = None,
    ) -> None:
        self.lab = lab
        self.base_url = base_url.rstrip("/") if base_url else None
        if key is None:
            key = SigningKey.load_or_create(key_dir) if key_dir else SigningKey.generate()
        self.issuer = TokenIssuer(key, TENANT_ID)
        self.oauth = OAuthServer(
            lab, self.display_name, self.issuer, DOMAIN, registry=self._registered_client
        )
        from exlab.graph.subscriptions import SubscriptionHub

        self.subscriptions = SubscriptionHub(self)
        """Change notifications to subscribers' listeners (`/v1.0/subscriptions`)."""
        self.outage_retry_after_s = 5
        """The Retry-After the face answers during an outage (a lab knob)."""

    def _registered_client(self, client_id: str) -> LabClient | None:
        from exlab.graph.apps import find_registered

        registration = find_registered(self.lab.store, client_id)
        return registration.client() if registration is not None else None

    def display_name(self, address: str) -> str:
        mailbox = self.lab.store.mailbox(address)
        return str(mailbox.display_name) if mailbox is not None else address

    def base(self, request: Request) -> str:
        """The absolute base URL clients reach the lab at (configured, or as the request came)."""
        if self.base_url:
            return self.base_url
        return f"{request.url.scheme}://{request.url.netloc}"

    def app(self) -> FastAPI:
        app = FastAPI(
            title="medbridge lab: Graph face", docs_url=None, redoc_url=None, openapi_url=None
        )
        app.state.graph = self
        app.include_router(oauth_router(self.oauth, self.base))
        from exlab.graph.api import graph_router

        app.include_router(graph_router(self))
        return app


def create_graph_app(
    lab: Lab, base_url: str | None = None, *, key_dir: Path | None = None
) -> FastAPI:
    """The Graph face of `lab`; `key_dir` keeps the token signing key across restarts."""
    return GraphFace(lab, base_url, key_dir=key_dir).app()


def mount_graph(app: FastAPI, lab: Lab, *, key_dir: Path | None = None) -> GraphFace:
    """Serve the Graph face from an existing lab app (the EWS face), ahead of its catch-all.

    The Graph routes (`/v1.0/...`, `/{tenant}/oauth2/...`, discovery, `/lab/device`) are put in
    front of the app's own routes, so that a catch-all route there does not shadow them.
    """
    face = GraphFace(lab, key_dir=key_dir)
    graph_routes = list(face.app().router.routes)
    app.router.routes[0:0] = graph_routes
    app.state.graph = face
    return face
