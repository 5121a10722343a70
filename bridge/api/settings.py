"""Settings of the delegate mailbox REST API: the `[api]` table of medbridge's settings.

One pydantic model, so a wrong entry is one clear line at start-up, never a 500 later.
Secrets never live in the file: Exchange passwords come from an environment variable or a
file named per caller, API keys are stored as SHA-256 hashes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "ApiKeyEntry",
    "ApiSettings",
    "CallerEntry",
    "ExchangeSettings",
    "NegotiateSettings",
    "OAuthSettings",
    "SettingsError",
    "load_settings",
]

#: The largest page a caller may ask for; the OpenAPI schema states it.
MAX_PAGE_SIZE = 200

SCOPES = ("read", "write", "send", "manage", "events")
Scope = Literal["read", "write", "send", "manage", "events"]


class SettingsError(Exception):
    """The `[api]` settings are missing or wrong; the message names the entry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NegotiateSettings(_Strict):
    """Kerberos (SPNEGO) on the API itself."""

    keytab: Path
    """The service keytab holding `HTTP/<host>` keys of the API's host names."""
    realm: str | None = None
    """Accept principals of this realm only (None: any realm the keytab's KDC vouches for)."""


def _secret(env: str | None, file: Path | None) -> str | None:
    """A secret from the environment variable or file named in the settings (never inline)."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise SettingsError(f"the environment variable {env} is not set")
        return value
    if file:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{file}: {exc.strerror}") from exc
    return None


class OnBehalfOf(_Strict):
    """The API's own app registration, to trade a caller's token for a Graph token of the caller.

    Tokens then carry the API's audience (`api://<client id>` or its client id), not Graph's:
    the caller consents to the API, and the API asks the authority for Graph on the caller's
    behalf (OAuth 2.0 on-behalf-of), so Exchange still applies the caller's own rights.
    """

    authority: str
    """The tenant authority (Entra: https://login.microsoftonline.com/<tenant>)."""
    client_id: str
    secret_env: str | None = None
    secret_file: Path | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> OnBehalfOf:
        if bool(self.secret_env) == bool(self.secret_file):
            raise ValueError("on_behalf_of needs exactly one of secret_env and secret_file")
        return self

    def secret(self) -> str:
        value = _secret(self.secret_env, self.secret_file)
        assert value is not None  # _one_secret
        return value


class OAuthSettings(_Strict):
    """OAuth bearer tokens: JWTs checked against an issuer and its JWKS."""

    issuer: str
    """The `iss` every token must carry (Entra: https://login.microsoftonline.com/<tenant>/v2.0)."""
    jwks_url: str
    """Where the issuer's signing keys are (fetched on start and when an unknown `kid` arrives)."""
    audience: str = "https://graph.microsoft.com"
    """The `aud` tokens must carry. Graph's audience means the token is passed on to Graph."""
    ca_file: Path | None = None
    """A CA bundle for the JWKS and Graph endpoints (the lab's own CA)."""
    user_claims: tuple[str, ...] = ("upn", "preferred_username", "unique_name")
    """Claims naming the caller, first present wins."""
    on_behalf_of: OnBehalfOf | None = None
    """Trade callers' tokens (audience: this API) for Graph tokens; without it, tokens must
    carry Graph's audience and go on to Graph unchanged."""


class ExchangeSettings(_Strict):
    """Where the callers' requests go."""

    ews_url: str | None = None
    """The EWS endpoint for callers acting through a configured identity."""
    ews_version: str | None = None
    graph_url: str | None = None
    """The Graph base URL (as in a Graph profile) bearer callers' tokens are passed on to."""
    ca_file: Path | None = None
    verify_tls: bool = True
    max_wait_s: float = Field(default=5.0, ge=0)
    """The longest back-off Exchange may ask for before the caller gets 429 with Retry-After
    (rather than a request held open for minutes)."""


class CallerEntry(_Strict):
    """How one caller reaches Exchange when it cannot pass its own credentials on.

    Kerberos and API-key callers act through the Exchange account named here (normally the
    caller's own), with a password the API reads from `password_env` or `password_file`.
    A caller without an entry may still sign in but gets 403 for anything mailbox-related.
    """

    exchange_user: str
    auth: Literal["basic", "ntlm", "kerberos"] = "ntlm"
    password_env: str | None = None
    password_file: Path | None = None
    mailboxes: tuple[str, ...] = ()
    """Mailboxes besides its own the caller works in (as in a profile: address, name or
    "functional:ADDRESS" / "shared:ADDRESS")."""

    def password(self) -> str | None:
        return _secret(self.password_env, self.password_file)


class ApiKeyEntry(_Strict):
    """An API key for scripts: only its SHA-256 is stored (`medbridge api keygen` makes one)."""

    id: str = Field(pattern=r"^[A-Za-z0-9]{4,32}$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    caller: str
    """The caller the key speaks for (a key into `callers`)."""
    scopes: tuple[Scope, ...] = ("read",)


class ApiSettings(_Strict):
    """The whole `[api]` table."""

    exchange: ExchangeSettings = ExchangeSettings()
    negotiate: NegotiateSettings | None = None
    oauth: OAuthSettings | None = None
    keys: tuple[ApiKeyEntry, ...] = ()
    callers: dict[str, CallerEntry] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    max_page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    rate_per_minute: int = Field(default=600, ge=1)
    """Requests a caller may make per minute (a token bucket with this burst)."""
    position_key_file: Path | None = None
    """A file with the secret that signs change positions (SSE ids, webhook positions), so
    they stay valid across restarts; without it a random key made once is kept in `data_dir`."""
    change_poll_s: float = Field(default=5.0, gt=0)
    """How often the change stream and webhooks ask Exchange for changes."""
    webhook_hosts: tuple[str, ...] | None = None
    """Hosts webhooks may post to (None: any). Set it: the API posts from inside the network."""
    webhook_attempts: int = Field(default=6, ge=1, le=20)
    webhook_backoff_s: float = Field(default=1.0, gt=0)
    """First wait between webhook attempts; it doubles each time."""
    idempotency_ttl_s: float = Field(default=24 * 3600, gt=0)
    data_dir: Path | None = None
    """Where the API keeps its database (Idempotency-Key answers, webhooks, dead letters) and
    its position key, so they outlive a restart; default: `api` in medbridge's data directory."""
    session_idle_s: float = Field(default=900, gt=0)
    """A caller's Exchange session is closed after this long without requests."""

    def database_file(self) -> Path:
        from bridge import paths

        return (self.data_dir or paths.data_dir() / "api") / "api.sqlite3"

    def caller(self, name: str) -> CallerEntry | None:
        wanted = name.lower()
        return next((e for n, e in self.callers.items() if n.lower() == wanted), None)


def load_settings(path: Path | None = None) -> ApiSettings:
    """The merged `[api]` table of every settings source (`bridge.settings`: the TOML file,
    `path` if given, `MEDBRIDGE_API__*` variables, managed configuration).

    Raises:
        SettingsError: a missing or unreadable source, no `[api]` table at all (an API without
            keys, callers or Exchange has nothing to serve), or a wrong entry (the message
            names it).
    """
    from bridge import settings as settings_model

    try:
        merged = settings_model.load(path)
    except settings_model.SettingsError as exc:
        raise SettingsError(str(exc)) from exc
    table = merged.table("api")
    if not table:
        raise SettingsError(
            f"{merged.user_file} has no [api] table: nothing to serve "
            "(give it [api.exchange], [api.callers] and [[api.keys]])"
        )
    return api_settings(table, str(merged.user_file))


def api_settings(table: Mapping[str, Any], origin: str) -> ApiSettings:
    """An `[api]` table as typed settings; `origin` names where it came from in errors.

    Raises:
        SettingsError: a wrong entry (the message names it).
    """
    try:
        return ApiSettings.model_validate(dict(table))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SettingsError(f"{origin}: [api] {where}: {first['msg']}") from exc
