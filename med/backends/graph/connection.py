"""O365's connection and protocol pointed at our Graph host, with tokens from our source."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from O365.connection import Connection, MSGraphProtocol
from O365.utils.token import BaseTokenBackend
from urllib3.util.retry import Retry

from med.auth.oauth import session_trusting
from med.backends.graph.errors import translate

RETRY_STATUS = (429, 503, 504)


class _NoTokenStore(BaseTokenBackend):  # type: ignore[misc]
    """O365 wants a token backend; tokens live in MSAL's cache (med.auth.oauth) instead."""

    def load_token(self) -> bool:
        return False

    def save_token(self, force: bool = False) -> bool:
        return False

    def delete_token(self) -> bool:
        return False

    def check_token(self) -> bool:
        return False


class _TokenConnection(Connection):  # type: ignore[misc]
    """O365's connection with the bearer token taken fresh from our token source per request."""

    def __init__(self, token: Callable[[], str], ca_file: Path | None, timeout_s: float) -> None:
        super().__init__(
            ("medbridge",),
            auth_flow_type="public",
            token_backend=_NoTokenStore(),
            timeout=timeout_s,
            requests_delay=0,
            raise_http_errors=False,
            default_headers={"Prefer": 'outlook.timezone="UTC"'},
        )
        self._token = token
        self._ca_file = ca_file
        self._session: requests.Session | None = None

    def get_session(self, load_token: bool = False) -> requests.Session:
        session = session_trusting(self._ca_file)
        retry = Retry(
            total=3,
            connect=1,
            read=1,
            status=3,
            backoff_factor=0.5,
            status_forcelist=RETRY_STATUS,
            allowed_methods=None,  # 429/503 mean "not processed": safe to repeat any method
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = requests.adapters.HTTPAdapter(max_retries=retry)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close_session(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def oauth_request(self, url: str, method: str, **kwargs: Any) -> requests.Response:
        """Every request of the backend and of O365's objects: fresh token, JSON body, one
        retry layer (the session's), and an error answer raised as a MedError here, so O365
        code never mistakes it for an empty result. (O365's own request path would log each
        4xx with its URL, which carries addresses and search words; this one logs nothing.)
        """
        session = self._session
        if session is None:
            session = self._session = self.get_session()
        headers = {**self.default_headers, **(kwargs.pop("headers", None) or {})}
        headers["Authorization"] = f"Bearer {self._token()}"
        if method.lower() in ("post", "put", "patch") and kwargs.get("data") is not None:
            headers.setdefault("Content-Type", "application/json")
            kwargs["data"] = json.dumps(kwargs["data"])
        response = session.request(
            method.upper(), url, headers=headers, timeout=self.timeout, **kwargs
        )
        if response.status_code >= 400:
            raise translate(response)
        return response


def _protocol(base_url: str) -> MSGraphProtocol:
    """O365's Graph protocol pointed at `base_url` (the cloud, or a lab)."""

    class _Protocol(MSGraphProtocol):  # type: ignore[misc]
        _protocol_url = base_url.rstrip("/") + "/"

    return _Protocol(api_version="v1.0", default_resource="me", timezone="UTC")
