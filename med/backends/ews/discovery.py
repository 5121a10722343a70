"""Autodiscover: the EWS URL of a user, asked of an Autodiscover service.

Given only a host (`https://mail.example.org`), the backend asks its SOAP Autodiscover service
(`/autodiscover/autodiscover.svc`, GetUserSettings) for the user's EWS URL through exchangelib's
`AutodiscoverProtocol`. Without a host, exchangelib's full discovery from the address's domain
(DNS and the well-known URLs) is used instead, by `Account(autodiscover=True)`.
"""

from __future__ import annotations

from typing import Any

from exchangelib import Configuration, FailFast
from exchangelib.autodiscover.protocol import AutodiscoverProtocol

from med.backends.ews.errors import ews_errors
from med.backends.ews.patches import TLS_LOCK, TLS_VERIFY
from med.errors import NotFound

SERVICE_PATH = "/autodiscover/autodiscover.svc"
SETTINGS = ("external_ews_url", "internal_ews_url", "ews_supported_schemas")


def autodiscover_url(host: str) -> str:
    """The SOAP Autodiscover URL of a host given as `host`, `https://host` or a full URL."""
    base = host if "://" in host else f"https://{host}"
    if base.lower().rstrip("/").endswith(SERVICE_PATH):
        return base.rstrip("/")
    return base.rstrip("/") + SERVICE_PATH


def discover_ews_url(
    host: str, user: str, *, credentials: Any, auth_type: str, verify: bool | str
) -> str:
    """The EWS URL the host's Autodiscover service names for `user` (NotFound if none)."""
    url = autodiscover_url(host)
    with TLS_LOCK:
        TLS_VERIFY[url] = verify
    protocol = AutodiscoverProtocol(
        config=Configuration(
            service_endpoint=url,
            credentials=credentials,
            auth_type=auth_type,
            retry_policy=FailFast(),
        )
    )
    with ews_errors(mailbox=user):
        response = protocol.get_user_settings(user=user, settings=list(SETTINGS))
        response.raise_errors()
    ews_url = response.ews_url or response.user_settings.get("internal_ews_url")
    if not ews_url:
        raise NotFound(f"Autodiscover at {url} names no EWS URL for {user}.", mailbox=user)
    return str(ews_url)
