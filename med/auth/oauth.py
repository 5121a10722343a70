"""OAuth sign-in for Microsoft Graph with MSAL: device code, browser with loopback, app-only.

Users sign in once (device code on a terminal, or the system browser with a redirect to a
loopback port); MSAL keeps the refresh token in a cache file (0600) so later runs get tokens
silently. Services use the client-credentials grant (app-only). The authority may be Entra ID
(`https://login.microsoftonline.com/<tenant>`) or any compatible https authority, such as the
lab's; `ca_file` trusts a private CA for it.

Paths are arguments: the caller (the CLI) decides where the cache lives under its XDG data dir.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msal
import requests

from med.auth import Login
from med.errors import AuthError, BadCredentials, InvalidInput, Unreachable
from med.files import write_private
from med.model import AuthMethod, Profile

GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
MEDBRIDGE_CLIENT_ID = "95f45d29-e8c4-5a49-949e-c36b535ca824"
"""medbridge's public client (app registration) id; the lab registers the same id."""
USER_SCOPES = (
    "https://graph.microsoft.com/Mail.ReadWrite.Shared",
    "https://graph.microsoft.com/Mail.Send.Shared",
    "https://graph.microsoft.com/Calendars.ReadWrite.Shared",
    "https://graph.microsoft.com/Contacts.ReadWrite.Shared",
    "https://graph.microsoft.com/Tasks.ReadWrite",
    "https://graph.microsoft.com/MailboxSettings.Read",
    "https://graph.microsoft.com/User.Read",
    "https://graph.microsoft.com/User.ReadBasic.All",
    "https://graph.microsoft.com/Place.Read.All",
)
"""Delegated scopes a delegate mailbox user needs (own and shared mail, calendars, contacts)."""


@dataclass(frozen=True)
class OAuthConfig:
    """Where and as whom to sign in.

    `client_secret` makes it a confidential (app-only) client; `cache_file` None keeps tokens in
    memory only; `ca_file` adds a CA to trust for the authority (a lab or an inspecting proxy).
    """

    client_id: str
    authority: str
    scopes: tuple[str, ...] = USER_SCOPES
    cache_file: Path | None = None
    client_secret: str | None = None
    ca_file: Path | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True)
class DeviceCodePrompt:
    """What to show the user during a device-code sign-in."""

    verification_uri: str
    user_code: str
    message: str
    expires_in: int


def _raise_for(result: dict[str, Any], who: str | None = None) -> None:
    """MSAL answers errors as dicts; turn them into MedErrors with the server's sentence."""
    error = str(result.get("error", ""))
    description = str(result.get("error_description", "")).split("\r\n")[0] or error
    if error in ("invalid_grant", "invalid_client", "unauthorized_client"):
        raise BadCredentials(f"Sign-in refused: {description}", mailbox=who, code=error)
    if error in ("invalid_scope", "invalid_request", "unsupported_grant_type"):
        raise InvalidInput(f"Sign-in request refused: {description}", mailbox=who, code=error)
    raise AuthError(f"Sign-in failed: {description}", mailbox=who, code=error or None)


class TokenCacheFile:
    """MSAL's serialisable cache persisted to one file, written 0600 and atomically."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.cache = msal.SerializableTokenCache()
        self._lock = threading.Lock()
        if path is not None and path.exists():
            self.cache.deserialize(path.read_text(encoding="utf-8"))

    def save(self) -> None:
        if self.path is None or not self.cache.has_state_changed:
            return
        with self._lock:
            write_private(self.path, self.cache.serialize().encode("utf-8"))
            self.cache.has_state_changed = False


class OAuthSignIn:
    """Get Graph access tokens for one app registration and authority.

    Raises MedErrors only: `BadCredentials` (refused), `AuthError` (needs an interactive sign-in
    or failed otherwise), `InvalidInput` (bad request), `Unreachable` (authority down).
    """

    def __init__(self, config: OAuthConfig) -> None:
        self.config = config
        self._cache = TokenCacheFile(config.cache_file)
        self._http = session_trusting(config.ca_file)
        self._app: msal.ClientApplication | None = None

    @property
    def app_only(self) -> bool:
        return self.config.client_secret is not None

    @contextlib.contextmanager
    def _network(self) -> Iterator[None]:
        try:
            yield
        except requests.exceptions.SSLError as exc:
            raise Unreachable(
                f"TLS verification of {self.config.authority} failed; trust its CA (ca_file).",
                code="tls",
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise Unreachable(
                f"The sign-in server {self.config.authority} is unreachable."
            ) from exc
        except ValueError as exc:
            # MSAL raises ValueError when OpenID discovery of the authority fails.
            raise Unreachable(f"{self.config.authority} is no OAuth authority: {exc}") from exc
        finally:
            self._cache.save()

    def _application(self) -> msal.ClientApplication:
        if self._app is None:
            with self._network():
                common: dict[str, Any] = {
                    "authority": self.config.authority,
                    "token_cache": self._cache.cache,
                    "http_client": self._http,
                    "instance_discovery": not _is_custom(self.config.authority),
                    "timeout": self.config.timeout_s,
                }
                if self.config.client_secret is not None:
                    self._app = msal.ConfidentialClientApplication(
                        self.config.client_id, client_credential=self.config.client_secret, **common
                    )
                else:
                    self._app = msal.PublicClientApplication(self.config.client_id, **common)
        return self._app

    def accounts(self) -> list[str]:
        """User names with tokens in the cache."""
        return [str(a["username"]) for a in self._application().get_accounts()]

    def sign_out(self, username: str | None = None) -> None:
        """Forget cached tokens of `username` (everyone when None)."""
        app = self._application()
        for account in app.get_accounts(username=username):
            app.remove_account(account)
        self._cache.save()

    def token(self, username: str | None = None) -> str:
        """An access token without user interaction (cache, then refresh token).

        Raises:
            AuthError: nobody signed in (or the refresh token expired): sign in again.
        """
        app = self._application()
        if self.app_only:
            return self.app_token()
        with self._network():
            accounts = app.get_accounts(username=username)
            if not accounts:
                raise AuthError(
                    f"No cached sign-in for {username or 'any user'}; sign in first.",
                    mailbox=username,
                )
            result = app.acquire_token_silent(list(self.config.scopes), account=accounts[0])
        if not result or "access_token" not in result:
            if result:
                _raise_for(result, username)
            raise AuthError(f"The sign-in of {username or 'the user'} has expired; sign in again.")
        return str(result["access_token"])

    def app_token(self) -> str:
        """An app-only token (client credentials; MSAL caches it until it nearly expires)."""
        app = self._application()
        if not isinstance(app, msal.ConfidentialClientApplication):
            raise InvalidInput("App-only tokens need a client secret.")
        with self._network():
            result = app.acquire_token_for_client([GRAPH_DEFAULT_SCOPE])
        if "access_token" not in result:
            _raise_for(result)
        return str(result["access_token"])

    def on_behalf_of(self, user_assertion: str) -> str:
        """A Graph token for the user of `user_assertion`, a token issued to this (web API) app.

        The on-behalf-of grant lets a service act toward Exchange as its caller, with the
        caller's rights, holding no credential of the caller's beyond the token it was given.
        MSAL caches the answer per assertion until it nearly expires.
        """
        app = self._application()
        if not isinstance(app, msal.ConfidentialClientApplication):
            raise InvalidInput("On-behalf-of tokens need a client secret.")
        with self._network():
            result = app.acquire_token_on_behalf_of(user_assertion, [GRAPH_DEFAULT_SCOPE])
        if "access_token" not in result:
            _raise_for(result)
        return str(result["access_token"])

    def sign_in_device_code(
        self, prompt: Callable[[DeviceCodePrompt], None], *, poll: bool = True
    ) -> str:
        """Device-code sign-in: show `prompt`, wait until the user approved; returns the user name.

        Raises:
            AuthError: declined, expired, or refused.
        """
        app = self._application()
        if not isinstance(app, msal.PublicClientApplication):
            raise InvalidInput("Device-code sign-in is for public clients (no client secret).")
        with self._network():
            flow = app.initiate_device_flow(scopes=list(self.config.scopes))
        if "user_code" not in flow:
            _raise_for(flow)
        prompt(
            DeviceCodePrompt(
                str(flow["verification_uri"]),
                str(flow["user_code"]),
                str(flow.get("message", "")),
                int(flow["expires_in"]),
            )
        )
        with self._network():
            result = app.acquire_token_by_device_flow(flow)
        return self._signed_in(result)

    def sign_in_browser(self, open_url: Callable[[str], None], *, timeout_s: float = 300) -> str:
        """Authorization code with PKCE: `open_url` shows the sign-in page (the system browser);
        the authority redirects to a one-shot HTTP listener on 127.0.0.1. Returns the user name.

        Raises:
            AuthError: the user cancelled, the sign-in failed or nothing came back in time.
        """
        app = self._application()
        if not isinstance(app, msal.PublicClientApplication):
            raise InvalidInput("Browser sign-in is for public clients (no client secret).")
        with _LoopbackListener() as listener:
            with self._network():
                flow = app.initiate_auth_code_flow(
                    list(self.config.scopes), redirect_uri=listener.redirect_uri
                )
            open_url(str(flow["auth_uri"]))
            answer = listener.wait(timeout_s)
        if answer is None:
            raise AuthError("No answer from the sign-in page in time; try again.")
        if "error" in answer:
            _raise_for(answer)
        with self._network():
            try:
                result = app.acquire_token_by_auth_code_flow(flow, answer)
            except ValueError as exc:
                raise AuthError("The sign-in answer did not match this request (state).") from exc
        return self._signed_in(result)

    def _signed_in(self, result: dict[str, Any]) -> str:
        if "access_token" not in result:
            _raise_for(result)
        claims = result.get("id_token_claims") or {}
        return str(claims.get("preferred_username", "")).lower()


class _CaSession(requests.Session):
    """A session whose own CA file wins over `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE`.

    requests lets those variables override `Session.verify` (not a per-request `verify`), so a
    machine-wide bundle would silently replace the CA we were told to trust.
    """

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None or verify is True:
            settings["verify"] = self.verify
        return settings


def session_trusting(ca_file: Path | None) -> requests.Session:
    """A requests session that trusts `ca_file` (plus nothing else) when given."""
    if ca_file is None:
        return requests.Session()
    session = _CaSession()
    session.verify = str(ca_file)
    return session


def _is_custom(authority: str) -> bool:
    """Anything but Microsoft's own hosts: MSAL must not ask Microsoft to validate it."""
    host = (urlsplit(authority).hostname or "").lower()
    return not (host.endswith(".microsoftonline.com") or host.endswith(".microsoftonline.us"))


class _LoopbackListener:
    """A one-shot HTTP server on 127.0.0.1 that catches the authority's redirect."""

    def __init__(self) -> None:
        self._answer: dict[str, str] | None = None
        self._done = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                if "code" not in query and "error" not in query:
                    self.send_response(404)
                    self.end_headers()
                    return
                outer._answer = {k: v[0] for k, v in query.items()}
                ok = "code" in query
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                text = "Signed in. You may close this window." if ok else "Sign-in failed."
                self.wfile.write(f"<!doctype html><p>{text}</p>".encode())
                outer._done.set()

            def log_message(self, format: str, *args: Any) -> None:
                return  # the query holds the authorization code: never log it

        self._server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = int(self._server.server_address[1])
        self.redirect_uri = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> _LoopbackListener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout_s: float) -> dict[str, str] | None:
        self._done.wait(timeout_s)
        return self._answer


CLOUD_GRAPH = "https://graph.microsoft.com"
CLOUD_AUTHORITY = "https://login.microsoftonline.com/organizations"


def config_for_profile(profile: Profile, *, cache_file: Path | None) -> OAuthConfig:
    """The sign-in for a Graph profile: Entra ID for the Microsoft cloud, else the profile's
    server is its own authority (`<server>/organizations`, as the lab serves it)."""
    server = (profile.server or CLOUD_GRAPH).rstrip("/")
    authority = CLOUD_AUTHORITY if server == CLOUD_GRAPH else f"{server}/organizations"
    return OAuthConfig(
        client_id=MEDBRIDGE_CLIENT_ID,
        authority=authority,
        cache_file=cache_file,
        ca_file=Path(profile.ca_bundle) if profile.ca_bundle else None,
        timeout_s=profile.timeout_s,
    )


def scopes_for(resources: Sequence[str]) -> tuple[str, ...]:
    """Full Graph scope names for short ones (`Mail.Read` → `https://graph.microsoft.com/Mail.Read`)."""
    return tuple(
        s
        if s.startswith("https://") or s in ("offline_access", "openid", "profile")
        else f"https://graph.microsoft.com/{s}"
        for s in resources
    )


def login(profile: Profile, *, password: str | None = None, token_cache: Path | None) -> Login:
    """OAuth for Graph: tokens for the profile's user from MSAL's cache in `token_cache`
    (where `medbridge signin` put them; None keeps tokens in memory, so nobody is signed in)."""
    signer = OAuthSignIn(config_for_profile(profile, cache_file=token_cache))
    user = profile.user

    def token() -> str:
        return signer.token(user)

    return Login(AuthMethod.OAUTH, user, token=token)
