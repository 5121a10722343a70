"""The lab's OAuth 2.0 / OpenID Connect face, shaped like Entra ID's v2.0 endpoints.

Real clients (MSAL, O365) only sign in against an https authority that serves OpenID discovery,
so this router answers what they ask, in the order they ask it:

- `GET /{tenant}/v2.0/.well-known/openid-configuration` and the JWKS at `jwks_uri`;
- `GET /common/userrealm/{user}` (MSAL asks it before a password grant; always "Managed");
- `POST /{tenant}/oauth2/v2.0/devicecode`, then the token endpoint answers
  `authorization_pending` until someone approves the user code at `/lab/device`;
- `GET/POST /{tenant}/oauth2/v2.0/authorize` (a login form; redirects with a code, PKCE S256);
- `POST /{tenant}/oauth2/v2.0/token`: grants password (lab only), client_credentials,
  refresh_token, device code, authorization code and on-behalf-of (jwt-bearer); errors are
  `{error, error_description, error_codes}` with 400 (401 for a bad client secret), as Entra
  answers.

Every confidential client is also a web API of its own, as an Entra app that exposes an API:
its application ID URI is `api://<client id>` with the one delegated scope `access_as_user`.
A user's token for it (`aud` = that URI) is what such an API receives from its callers, and
the API trades it for a Graph token of the same user with the on-behalf-of grant.

`{tenant}` may be `common`, `organizations`, the lab's tenant id or its domain.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from exlab.graph.tokens import GRAPH_APP_ID, GRAPH_AUDIENCE, TokenIssuer, stable_uuid

DOMAIN = "musterstadt.example"
TENANT_ID = stable_uuid("tenant", DOMAIN)
PUBLIC_CLIENT_ID = stable_uuid("app", "medbridge")
"""The lab's public client (device code, authorization code, password): what med uses."""
DAEMON_CLIENT_ID = stable_uuid("app", "medbridge-daemon")
"""The lab's confidential client for app-only access (client credentials)."""
DAEMON_SECRET = "Demo-2026!"  # noqa: S105 (the demo org's documented password)

GRAPH_PREFIXES = (GRAPH_AUDIENCE + "/", GRAPH_APP_ID + "/")
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
DELEGATED_SCOPES = frozenset(
    {
        "User.Read",
        "User.ReadBasic.All",
        "Mail.Read",
        "Mail.ReadWrite",
        "Mail.Read.Shared",
        "Mail.ReadWrite.Shared",
        "Mail.Send",
        "Mail.Send.Shared",
        "Calendars.Read",
        "Calendars.ReadWrite",
        "Calendars.Read.Shared",
        "Calendars.ReadWrite.Shared",
        "Contacts.Read",
        "Contacts.ReadWrite",
        "Contacts.Read.Shared",
        "Contacts.ReadWrite.Shared",
        "Tasks.Read",
        "Tasks.ReadWrite",
        "Tasks.ReadWrite.Shared",
        "MailboxSettings.Read",
        "MailboxSettings.ReadWrite",
        "Place.Read.All",
    }
)
APPLICATION_ROLES = frozenset(
    {
        "Mail.ReadWrite",
        "Mail.Send",
        "Calendars.ReadWrite",
        "Contacts.ReadWrite",
        "Tasks.ReadWrite.All",  # To Do lists of every user (the only app permission To Do has)
        "MailboxSettings.Read",
        "User.Read.All",
        "Place.Read.All",
    }
)
DEVICE_CODE_LIFETIME = timedelta(minutes=15)
AUTH_CODE_LIFETIME = timedelta(minutes=10)
REFRESH_LIFETIME = timedelta(days=90)
REFRESH_AUDIENCE = "urn:medbridge-lab:refresh"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ON_BEHALF_OF_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
API_SCOPE = "access_as_user"
"""The delegated scope every confidential client exposes as a web API."""
API_URI_PREFIX = "api://"


def api_uri(client_id: str) -> str:
    """The application ID URI of a confidential client seen as a web API."""
    return f"{API_URI_PREFIX}{client_id}"


def _resource_of(scopes: frozenset[str]) -> str:
    """The audience a token for these delegated scopes is issued to."""
    for scope in scopes:
        if scope.startswith(API_URI_PREFIX):
            return scope.rsplit("/", 1)[0]
    return GRAPH_AUDIENCE


class Directory(Protocol):
    """What the OAuth face needs from the lab: passwords, names and the lab's clock."""

    def check_password(self, address: str, password: str) -> bool: ...

    def now(self) -> datetime: ...


class DisplayNames(Protocol):
    def __call__(self, address: str) -> str: ...


@dataclass(frozen=True)
class LabClient:
    """An app registration: public clients have no secret; confidential ones get app roles."""

    client_id: str
    name: str
    secret_hash: str | None = None
    roles: frozenset[str] = frozenset()
    redirect_uris: tuple[str, ...] = ()
    """Registered redirect URIs besides loopback ones (which every public client may use)."""

    @property
    def public(self) -> bool:
        return self.secret_hash is None


class OAuthError(Exception):
    """An error answer of the token or authorize endpoint (Entra's AADSTS codes)."""

    def __init__(self, error: str, aadsts: int, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.aadsts = aadsts
        self.description = description
        self.status = status

    def response(self, now: datetime) -> JSONResponse:
        return JSONResponse(
            {
                "error": self.error,
                "error_description": f"AADSTS{self.aadsts}: {self.description}",
                "error_codes": [self.aadsts],
                "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
                "trace_id": secrets.token_hex(16),
                "correlation_id": secrets.token_hex(16),
            },
            status_code=self.status,
        )


@dataclass
class _DeviceFlow:
    device_code: str
    user_code: str
    client_id: str
    scopes: frozenset[str]
    expires: datetime
    user: str | None = None
    declined: bool = False


@dataclass
class _AuthCode:
    client_id: str
    redirect_uri: str
    scopes: frozenset[str]
    user: str
    challenge: str | None
    method: str | None
    nonce: str | None
    expires: datetime


@dataclass
class OAuthSettings:
    """Lab knobs of the OAuth face (mutable at run time, like the lab's other knobs)."""

    device_interval_s: int = 5
    """The polling interval the device-code answer asks for (MSAL waits this long between polls)."""
    allow_password_grant: bool = True
    """The resource-owner password grant exists for scripts against the lab only."""


@dataclass
class OAuthServer:
    """State of the lab's authorization server: app registrations, pending device and auth codes."""

    directory: Directory
    display_name: DisplayNames
    issuer: TokenIssuer
    domain: str = DOMAIN
    settings: OAuthSettings = field(default_factory=OAuthSettings)
    clients: dict[str, LabClient] = field(default_factory=dict)
    registry: Callable[[str], LabClient | None] | None = None
    """Where clients registered after start are found (the lab store's app registrations)."""
    _devices: dict[str, _DeviceFlow] = field(default_factory=dict)
    _codes: dict[str, _AuthCode] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _hasher: PasswordHasher = field(default_factory=PasswordHasher)

    def __post_init__(self) -> None:
        if not self.clients:
            self.register_client(LabClient(PUBLIC_CLIENT_ID, "medbridge"))
            self.register_client(
                LabClient(
                    DAEMON_CLIENT_ID,
                    "medbridge daemon",
                    self._hasher.hash(DAEMON_SECRET),
                    APPLICATION_ROLES,
                )
            )

    def register_client(self, client: LabClient) -> None:
        self.clients[client.client_id] = client

    def add_confidential_client(
        self, client_id: str, name: str, secret: str, roles: frozenset[str]
    ) -> None:
        self.register_client(LabClient(client_id, name, self._hasher.hash(secret), roles))

    # -- helpers --------------------------------------------------------------------------------

    def known_tenant(self, tenant: str) -> bool:
        return tenant.lower() in {"common", "organizations", self.issuer.tenant_id, self.domain}

    def client(self, client_id: str) -> LabClient:
        client = self.clients.get(client_id)
        if client is None and self.registry is not None:
            client = self.registry(client_id)
        if client is None:
            raise OAuthError(
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory"
                f" '{self.domain}'.",
            )
        return client

    def _authenticate_client(self, client: LabClient, secret: str | None) -> None:
        if client.public:
            return
        if not secret:
            raise OAuthError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or"
                " 'client_secret'.",
                401,
            )
        try:
            self._hasher.verify(client.secret_hash or "", secret)
        except VerificationError:
            raise OAuthError(
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is"
                " the client secret value, not the client secret ID.",
                401,
            ) from None

    @staticmethod
    def split_scopes(raw: str) -> tuple[frozenset[str], frozenset[str]]:
        """(Graph scopes without prefix, OIDC scopes); `.default` stays `.default`."""
        graph: set[str] = set()
        oidc: set[str] = set()
        for part in raw.split():
            if part in OIDC_SCOPES:
                oidc.add(part)
                continue
            name = part
            for prefix in GRAPH_PREFIXES:
                if part.lower().startswith(prefix.lower()):
                    name = part[len(prefix) :]
                    break
            graph.add(name)
        return frozenset(graph), frozenset(oidc)

    def _api_scope(self, scope: str) -> str:
        """`api://<client>/access_as_user` (or `/.default`) of a registered confidential client."""
        resource, _, name = scope[len(API_URI_PREFIX) :].partition("/")
        try:
            client = self.client(resource)
        except OAuthError:
            client = None
        if client is None or client.public:
            raise OAuthError(
                "invalid_resource",
                500011,
                f"The resource principal named {API_URI_PREFIX}{resource} was not found in the"
                f" tenant named {self.domain}.",
            )
        if name.lower() not in (API_SCOPE.lower(), ".default"):
            raise OAuthError(
                "invalid_scope",
                65005,
                f"The application asked for scope '{name}' that doesn't exist on the resource"
                f" '{API_URI_PREFIX}{resource}'.",
            )
        return f"{api_uri(client.client_id)}/{API_SCOPE}"

    def _delegated(self, raw: str) -> tuple[frozenset[str], frozenset[str]]:
        graph, oidc = self.split_scopes(raw)
        api = {s for s in graph if s.lower().startswith(API_URI_PREFIX)}
        if api:
            if api != graph or len({s.lower().rsplit("/", 1)[0] for s in api}) > 1:
                raise OAuthError(
                    "invalid_request",
                    28000,
                    "Provided value for the input parameter scope is not valid because it"
                    " contains more than one resource.",
                )
            return frozenset(self._api_scope(s) for s in api), oidc
        granted: set[str] = set()
        for scope in graph:
            if scope == ".default":
                granted |= DELEGATED_SCOPES
                continue
            match = next((s for s in DELEGATED_SCOPES if s.lower() == scope.lower()), None)
            if match is None:
                raise OAuthError(
                    "invalid_scope",
                    70011,
                    f"The provided value for the input parameter 'scope' is not valid. The scope"
                    f" '{scope}' does not exist.",
                )
            granted.add(match)
        if not granted:
            granted.add("User.Read")
        return frozenset(granted), oidc

    def _token_answer(
        self,
        base_url: str,
        client: LabClient,
        user: str,
        scopes: frozenset[str],
        oidc: frozenset[str],
        nonce: str | None = None,
    ) -> dict[str, Any]:
        now = self.directory.now()
        resource = _resource_of(scopes)
        answer: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(
                s if resource != GRAPH_AUDIENCE else f"{GRAPH_AUDIENCE}/{s}" for s in sorted(scopes)
            ),
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": self.issuer.access_token(
                base_url=base_url,
                now=now,
                client_id=client.client_id,
                user=user,
                scopes=frozenset(s.rsplit("/", 1)[-1] for s in scopes),
                audience=resource,
            ),
            "client_info": self.issuer.client_info(user),
        }
        if "openid" in oidc or "profile" in oidc:
            answer["id_token"] = self.issuer.id_token(
                base_url=base_url,
                now=now,
                client_id=client.client_id,
                user=user,
                name=self.display_name(user),
                nonce=nonce,
            )
        if "offline_access" in oidc:
            answer["refresh_token"] = self._refresh_token(now, client.client_id, user, scopes, oidc)
            answer["scope"] += " offline_access"
        if "openid" in oidc:
            answer["scope"] = "openid profile " + answer["scope"]
        return answer

    def _refresh_token(
        self, now: datetime, client_id: str, user: str, scopes: frozenset[str], oidc: frozenset[str]
    ) -> str:
        """Refresh tokens are signed too, so a restarted lab (same key) still honours them."""
        return jwt.encode(
            {
                "aud": REFRESH_AUDIENCE,
                "sub": user,
                "appid": client_id,
                "scp": " ".join(sorted(scopes)),
                "oidc": " ".join(sorted(oidc)),
                "iat": int(now.timestamp()),
                "exp": int((now + REFRESH_LIFETIME).timestamp()),
                "jti": secrets.token_hex(8),
            },
            self.issuer.key.private_key,
            algorithm="RS256",
            headers={"kid": self.issuer.key.kid},
        )

    # -- grants ---------------------------------------------------------------------------------

    def token(
        self, base_url: str, form: dict[str, str], basic: tuple[str, str] | None
    ) -> dict[str, Any]:
        """Answer one token request (form fields as posted), or raise OAuthError."""
        client_id = form.get("client_id") or (basic[0] if basic else "")
        if not client_id:
            raise OAuthError(
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_id'.",
            )
        client = self.client(client_id)
        self._authenticate_client(
            client, form.get("client_secret") or (basic[1] if basic else None)
        )
        grant = form.get("grant_type", "")
        if grant == "client_credentials":
            return self._client_credentials(base_url, client, form.get("scope", ""))
        if grant == "password":
            return self._password(base_url, client, form)
        if grant == "refresh_token":
            return self._refresh(base_url, client, form)
        if grant == DEVICE_GRANT:
            return self._device(base_url, client, form.get("device_code", ""))
        if grant == "authorization_code":
            return self._authorization_code(base_url, client, form)
        if grant == ON_BEHALF_OF_GRANT and form.get("requested_token_use") == "on_behalf_of":
            return self._on_behalf_of(base_url, client, form)
        raise OAuthError(
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )

    def _client_credentials(self, base_url: str, client: LabClient, scope: str) -> dict[str, Any]:
        if client.public:
            raise OAuthError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or"
                " 'client_secret'.",
                401,
            )
        graph, _ = self.split_scopes(scope)
        if graph != {".default"}:
            raise OAuthError(
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must"
                " have a scope value with /.default suffixed to the resource identifier.",
            )
        now = self.directory.now()
        return {
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": self.issuer.access_token(
                base_url=base_url,
                now=now,
                client_id=client.client_id,
                user=None,
                roles=client.roles,
            ),
        }

    def _on_behalf_of(
        self, base_url: str, client: LabClient, form: dict[str, str]
    ) -> dict[str, Any]:
        """A web API trades its caller's token (whose audience is the API) for a Graph token.

        Only a confidential client may, and only with a token issued for itself: a token of
        another audience, expired or not signed by this authority is refused as Entra does.
        """
        if client.public:
            raise OAuthError(
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or"
                " 'client_secret'.",
                401,
            )
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                self.issuer.key.private_key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise OAuthError(
                "invalid_grant", 50013, "Assertion failed signature validation."
            ) from None
        if claims.get("aud") not in (api_uri(client.client_id), client.client_id):
            raise OAuthError(
                "invalid_grant",
                50013,
                "Assertion audience does not match the Client app presenting the assertion.",
            )
        if float(claims.get("exp", 0)) <= self.directory.now().timestamp():
            raise OAuthError(
                "invalid_grant", 500133, "Assertion is not within its valid time range."
            )
        user = claims.get("upn")
        if not isinstance(user, str) or not user:
            raise OAuthError(
                "invalid_grant", 50013, "The assertion names no user to act on behalf of."
            )
        scopes, oidc = self._delegated(form.get("scope", ""))
        if _resource_of(scopes) != GRAPH_AUDIENCE:
            raise OAuthError(
                "invalid_scope",
                70011,
                "On behalf of a user this lab issues tokens for Microsoft Graph only.",
            )
        return self._token_answer(base_url, client, user, scopes, oidc)

    def _password(self, base_url: str, client: LabClient, form: dict[str, str]) -> dict[str, Any]:
        if not self.settings.allow_password_grant:
            raise OAuthError(
                "invalid_grant", 7000112, "The password grant is switched off in this lab."
            )
        user = form.get("username", "").strip().lower()
        if not user or not self.directory.check_password(user, form.get("password", "")):
            raise OAuthError(
                "invalid_grant",
                50126,
                "Error validating credentials due to invalid username or password.",
            )
        scopes, oidc = self._delegated(form.get("scope", ""))
        return self._token_answer(base_url, client, user, scopes, oidc)

    def _refresh(self, base_url: str, client: LabClient, form: dict[str, str]) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                form.get("refresh_token", ""),
                self.issuer.key.private_key.public_key(),
                algorithms=["RS256"],
                audience=REFRESH_AUDIENCE,
                options={"verify_exp": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            raise OAuthError(
                "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
            ) from None
        if float(claims.get("exp", 0)) <= self.directory.now().timestamp():
            raise OAuthError(
                "invalid_grant", 700082, "The refresh token has expired due to inactivity."
            )
        if claims.get("appid") != client.client_id:
            raise OAuthError(
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed: the refresh token was issued to"
                " another client.",
            )
        held = frozenset(str(claims.get("scp", "")).split())
        oidc = frozenset(str(claims.get("oidc", "")).split())
        asked, asked_oidc = self._delegated(form["scope"]) if form.get("scope") else (held, oidc)
        if not asked <= held:
            raise OAuthError(
                "invalid_grant",
                65001,
                "The user or administrator has not consented to use the application with the"
                " scopes asked.",
            )
        return self._token_answer(base_url, client, str(claims["sub"]), asked, asked_oidc | oidc)

    def start_device_flow(self, base_url: str, form: dict[str, str]) -> dict[str, Any]:
        client = self.client(form.get("client_id", ""))
        scopes, oidc = self._delegated(form.get("scope", ""))
        now = self.directory.now()
        user_code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(9))
        flow = _DeviceFlow(
            device_code=secrets.token_urlsafe(32),
            user_code=user_code,
            client_id=client.client_id,
            scopes=scopes | oidc,
            expires=now + DEVICE_CODE_LIFETIME,
        )
        with self._lock:
            self._devices = {k: v for k, v in self._devices.items() if v.expires > now}
            self._devices[flow.device_code] = flow
        uri = f"{base_url.rstrip('/')}/lab/device"
        return {
            "user_code": user_code,
            "device_code": flow.device_code,
            "verification_uri": uri,
            "expires_in": int(DEVICE_CODE_LIFETIME.total_seconds()),
            "interval": self.settings.device_interval_s,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code"
            f" {user_code} to authenticate.",
        }

    def approve_device(
        self, user_code: str, user: str, password: str, *, decline: bool = False
    ) -> None:
        """What the user does on the verification page: sign in and allow (or decline)."""
        user = user.strip().lower()
        code = user_code.strip().upper().replace("-", "")
        now = self.directory.now()
        with self._lock:
            flow = next(
                (f for f in self._devices.values() if f.user_code == code and f.expires > now), None
            )
        if flow is None:
            raise OAuthError(
                "invalid_grant", 70020, "The code you entered has expired or is not known."
            )
        if not self.directory.check_password(user, password):
            raise OAuthError(
                "invalid_grant",
                50126,
                "Error validating credentials due to invalid username or password.",
            )
        with self._lock:
            flow.user = user
            flow.declined = decline

    def _device(self, base_url: str, client: LabClient, device_code: str) -> dict[str, Any]:
        now = self.directory.now()
        with self._lock:
            flow = self._devices.get(device_code)
            if flow is None or flow.client_id != client.client_id:
                raise OAuthError("invalid_grant", 70000, "Provided grant is invalid or malformed.")
            if flow.expires <= now:
                del self._devices[device_code]
                raise OAuthError(
                    "expired_token",
                    70020,
                    "The provided value for the input parameter 'device_code' is not valid."
                    " Device codes expire after 15 minutes.",
                )
            if flow.declined:
                del self._devices[device_code]
                raise OAuthError(
                    "authorization_declined",
                    70019,
                    "The end user declined the authorization request.",
                )
            if flow.user is None:
                raise OAuthError(
                    "authorization_pending",
                    70016,
                    "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
                )
            del self._devices[device_code]
        return self._token_answer(
            base_url, client, flow.user, flow.scopes - OIDC_SCOPES, flow.scopes & OIDC_SCOPES
        )

    def authorize(self, query: dict[str, str], user: str, password: str) -> str:
        """Sign in on the authorize page; returns the redirect URL carrying the code."""
        client = self.client(query.get("client_id", ""))
        redirect_uri = query.get("redirect_uri", "")
        _check_redirect(redirect_uri, client)
        if query.get("response_type") != "code":
            raise OAuthError(
                "unsupported_response_type",
                700054,
                "response_type 'code' is the only one this lab supports.",
            )
        method = query.get("code_challenge_method")
        challenge = query.get("code_challenge")
        if challenge and method not in ("S256", "plain"):
            raise OAuthError(
                "invalid_request", 50097, "The code_challenge_method is not supported."
            )
        scopes, oidc = self._delegated(query.get("scope", ""))
        user = user.strip().lower()
        if not self.directory.check_password(user, password):
            raise OAuthError(
                "invalid_grant",
                50126,
                "Error validating credentials due to invalid username or password.",
            )
        code = secrets.token_urlsafe(32)
        now = self.directory.now()
        with self._lock:
            self._codes = {k: v for k, v in self._codes.items() if v.expires > now}
            self._codes[code] = _AuthCode(
                client.client_id,
                redirect_uri,
                scopes | oidc,
                user,
                challenge,
                method,
                query.get("nonce"),
                now + AUTH_CODE_LIFETIME,
            )
        params = {"code": code, "client_info": self.issuer.client_info(user)}
        if "state" in query:
            params["state"] = query["state"]
        joiner = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{joiner}{urlencode(params)}"

    def _authorization_code(
        self, base_url: str, client: LabClient, form: dict[str, str]
    ) -> dict[str, Any]:
        with self._lock:
            grant = self._codes.pop(form.get("code", ""), None)
        if (
            grant is None
            or grant.expires <= self.directory.now()
            or grant.client_id != client.client_id
        ):
            raise OAuthError(
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired or was already used.",
            )
        if form.get("redirect_uri", "") != grant.redirect_uri:
            raise OAuthError(
                "invalid_grant",
                50148,
                "The redirect_uri does not match the one of the authorization request.",
            )
        if grant.challenge is not None:
            verifier = form.get("code_verifier", "")
            if grant.method == "S256":
                digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
                computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
            else:
                computed = verifier
            if not secrets.compare_digest(computed, grant.challenge):
                raise OAuthError(
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the"
                    " authorization request.",
                )
        return self._token_answer(
            base_url,
            client,
            grant.user,
            grant.scopes - OIDC_SCOPES,
            grant.scopes & OIDC_SCOPES,
            grant.nonce,
        )

    # -- documents ------------------------------------------------------------------------------

    def openid_configuration(self, base_url: str, tenant: str) -> dict[str, Any]:
        base = base_url.rstrip("/")
        return {
            "issuer": self.issuer.issuer(base),
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "grant_types_supported": [
                "authorization_code",
                "refresh_token",
                "client_credentials",
                ON_BEHALF_OF_GRANT,
                "password",
                DEVICE_GRANT,
            ],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "name",
                "preferred_username",
                "oid",
                "tid",
                "nonce",
            ],
            "tenant_region_scope": "EU",
            "cloud_instance_name": urlsplit(base).hostname or "localhost",
        }


def _check_redirect(redirect_uri: str, client: LabClient) -> None:
    """Loopback redirects (any port, as Entra allows for native apps) or one registered for
    the client."""
    parts = urlsplit(redirect_uri)
    if parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1"):
        return
    if redirect_uri in client.redirect_uris:
        return
    raise OAuthError(
        "invalid_request",
        50011,
        f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect"
        " URIs configured for the application.",
    )


def _form(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:]).decode("utf-8")
    except ValueError:
        return None
    user, _, secret = decoded.partition(":")
    return unquote_plus(user), unquote_plus(secret)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        + html.escape(title)
        + "</title></head><body><h1>"
        + html.escape(title)
        + "</h1>"
        + body
        + "</body></html>",
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


def _login_fields() -> str:
    return (
        "<p><label>User <input name='username' autocomplete='username'></label></p>"
        "<p><label>Password <input name='password' type='password'"
        " autocomplete='current-password'></label></p>"
    )


def oauth_router(server: OAuthServer, base_url: Any) -> APIRouter:
    """The OAuth routes; `base_url(request)` gives the absolute base the lab is reached at."""
    router = APIRouter()

    def tenant_or_404(tenant: str) -> Response | None:
        if server.known_tenant(tenant):
            return None
        return OAuthError(
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID.",
        ).response(server.directory.now())

    @router.get("/{tenant}/v2.0/.well-known/openid-configuration")
    def openid_configuration(tenant: str, request: Request) -> Response:
        missing = tenant_or_404(tenant)
        if missing is not None:
            return missing
        return JSONResponse(server.openid_configuration(base_url(request), tenant))

    @router.get("/{tenant}/discovery/v2.0/keys")
    def keys(tenant: str) -> Response:
        return JSONResponse(server.issuer.jwks())

    @router.get("/common/userrealm/{user}")
    def userrealm(user: str) -> Response:
        domain = user.rpartition("@")[2].lower()
        known = domain == server.domain
        return JSONResponse(
            {
                "ver": "1.0",
                "account_type": "Managed" if known else "Unknown",
                "domain_name": domain,
                "cloud_instance_name": "medbridge.lab",
                "cloud_audience_urn": "urn:federation:MicrosoftOnline",
            }
        )

    @router.post("/{tenant}/oauth2/v2.0/token")
    async def token(tenant: str, request: Request) -> Response:
        now = server.directory.now()
        missing = tenant_or_404(tenant)
        if missing is not None:
            return missing
        form = _form(await request.body())
        try:
            answer = server.token(base_url(request), form, _basic(request))
        except OAuthError as err:
            return err.response(now)
        return JSONResponse(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @router.post("/{tenant}/oauth2/v2.0/devicecode")
    async def devicecode(tenant: str, request: Request) -> Response:
        now = server.directory.now()
        missing = tenant_or_404(tenant)
        if missing is not None:
            return missing
        try:
            return JSONResponse(
                server.start_device_flow(base_url(request), _form(await request.body()))
            )
        except OAuthError as err:
            return err.response(now)

    @router.get("/lab/device")
    def device_page() -> Response:
        return _page(
            "Enter code",
            "<form method='post'><p><label>Code <input name='user_code'></label></p>"
            + _login_fields()
            + "<p><button name='action' value='allow'>Allow</button>"
            " <button name='action' value='deny'>Decline</button></p></form>",
        )

    @router.post("/lab/device")
    async def device_approve(request: Request) -> Response:
        form = _form(await request.body())
        try:
            server.approve_device(
                form.get("user_code", ""),
                form.get("username", ""),
                form.get("password", ""),
                decline=form.get("action") == "deny",
            )
        except OAuthError as err:
            return _page("Sign-in failed", f"<p>{html.escape(err.description)}</p>", 400)
        return _page("Done", "<p>You may close this window and return to the application.</p>")

    @router.get("/{tenant}/oauth2/v2.0/authorize")
    def authorize_page(tenant: str, request: Request) -> Response:
        query = dict(request.query_params)
        try:
            client = server.client(query.get("client_id", ""))
            _check_redirect(query.get("redirect_uri", ""), client)
        except OAuthError as err:
            return _page("Sign-in failed", f"<p>{html.escape(err.description)}</p>", 400)
        hidden = "".join(
            f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
            for k, v in query.items()
        )
        return _page(
            "Sign in",
            f"<form method='post'>{hidden}{_login_fields()}<p><button>Sign in</button></p></form>",
        )

    @router.post("/{tenant}/oauth2/v2.0/authorize")
    async def authorize(tenant: str, request: Request) -> Response:
        form = _form(await request.body())
        user = form.pop("username", "")
        password = form.pop("password", "")
        try:
            target = server.authorize(form, user, password)
        except OAuthError as err:
            redirect = form.get("redirect_uri", "")
            if err.error == "invalid_grant" or not redirect:
                return _page("Sign-in failed", f"<p>{html.escape(err.description)}</p>", 400)
            try:
                _check_redirect(redirect, server.client(form.get("client_id", "")))
            except OAuthError:
                return _page("Sign-in failed", f"<p>{html.escape(err.description)}</p>", 400)
            params = {
                "error": err.error,
                "error_description": f"AADSTS{err.aadsts}: {err.description}",
            }
            if "state" in form:
                params["state"] = form["state"]
            joiner = "&" if "?" in redirect else "?"
            return RedirectResponse(f"{redirect}{joiner}{urlencode(params)}", status_code=302)
        return RedirectResponse(target, status_code=302)

    return router
