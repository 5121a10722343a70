"""Whose identity a caller's request uses toward Exchange, and the sessions that carry it.

The decision (docs/api.md, "Identity"):

- A **bearer** caller acts toward Graph as itself. With `[api.oauth.on_behalf_of]` its token
  is issued to the API (audience `api://<client id>`) and the API trades it for a Graph token
  of the same user (OAuth 2.0 on-behalf-of); without it the token must carry Graph's audience
  and goes on to Graph unchanged. Either way Exchange applies the caller's own rights.
- A **Kerberos** caller that forwards its ticket (delegation) acts with that ticket: Exchange
  sees the caller's own Kerberos login, and the API holds no password. Its mailbox is its
  principal's name in lower case (user@REALM = the address, as UPNs usually are).
- A **Kerberos** caller without a forwarded ticket and an **API-key** caller act through the
  Exchange account configured for them under `[api.callers."<caller>"]`, normally the
  caller's own account with a password the API reads from the environment or a file. A caller
  without such an entry is refused (403): the API never falls back to a shared service account.

One `DelegateSession` per caller, made on first use and closed after `session_idle_s` idle.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from bridge.api.auth.caller import Caller
from bridge.api.problems import ApiProblem
from bridge.api.settings import ApiSettings, SettingsError
from med import AuthMethod, DelegateSession, Profile
from med.auth.oauth import OAuthConfig, OAuthSignIn
from med.backends import backend_class

__all__ = ["ExchangeIdentities"]


@dataclass
class _TokenBox:
    """The newest token of a bearer caller; Graph calls read it when they need one.

    With on-behalf-of, what Graph gets is the token traded for it (cached by MSAL per token).
    """

    token: str
    trade: OAuthSignIn | None = None

    def __call__(self) -> str:
        if self.trade is None:
            return self.token
        return self.trade.on_behalf_of(self.token)


@dataclass
class _Held:
    session: DelegateSession
    last_used: float
    box: _TokenBox | None = None
    users: int = 0


@dataclass
class ExchangeIdentities:
    settings: ApiSettings
    _held: dict[str, _Held] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _trade: OAuthSignIn | None = None

    def _on_behalf_of(self) -> OAuthSignIn | None:
        """The API's own client for on-behalf-of trades (one MSAL app for every caller)."""
        obo = self.settings.oauth.on_behalf_of if self.settings.oauth else None
        if obo is None:
            return None
        if self._trade is None:
            ca_file = self.settings.oauth.ca_file if self.settings.oauth else None
            self._trade = OAuthSignIn(
                OAuthConfig(
                    client_id=obo.client_id,
                    authority=obo.authority,
                    client_secret=obo.secret(),
                    ca_file=ca_file or self.settings.exchange.ca_file,
                )
            )
        return self._trade

    def _no_identity(self, caller: Caller, why: str) -> ApiProblem:
        return ApiProblem(
            403,
            "no-exchange-identity",
            "No Exchange identity",
            f"{caller.name} is signed in, but {why}; ask the API's administrator.",
        )

    def _key(self, caller: Caller) -> str:
        forwarded = "+ticket" if caller.ccache else ""
        return f"{caller.scheme}{forwarded}:{caller.name.lower()}"

    async def session(self, caller: Caller) -> DelegateSession:
        """The caller's session toward Exchange (made on first use).

        Raises:
            ApiProblem: 403 when no identity is configured for the caller.
        """
        key = self._key(caller)
        held = self._held.get(key)
        if held is None:
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                held = self._held.get(key)
                if held is None:
                    held = self._open(caller)
                    self._held[key] = held
        if held.box is not None and caller.token:
            held.box.token = caller.token
        held.last_used = time.monotonic()
        return held.session

    def _open(self, caller: Caller) -> _Held:
        exchange = self.settings.exchange
        entry = self.settings.caller(caller.name)
        now = time.monotonic()
        if caller.scheme == "bearer" and caller.token:
            if not exchange.graph_url:
                raise self._no_identity(caller, "this API passes no tokens on (no graph_url)")
            profile = Profile(
                "api",
                exchange.graph_url,
                caller.name,
                AuthMethod.OAUTH,
                backend="graph",
                ca_bundle=str(exchange.ca_file) if exchange.ca_file else None,
                verify_tls=exchange.verify_tls,
                max_wait_s=exchange.max_wait_s,
                mailboxes=entry.mailboxes if entry else (),
            )
            try:
                box = _TokenBox(caller.token, self._on_behalf_of())
            except SettingsError as exc:
                raise self._no_identity(caller, str(exc)) from exc
            factory = getattr(backend_class("graph"), "from_profile")  # noqa: B009
            backend = factory(profile, token=box)
            return _Held(DelegateSession(backend, mailboxes=profile.mailboxes), now, box)
        if caller.scheme == "negotiate" and caller.ccache and exchange.ews_url:
            profile = Profile(
                "api",
                exchange.ews_url,
                caller.name.lower(),
                AuthMethod.KERBEROS,
                version=exchange.ews_version,
                ca_bundle=str(exchange.ca_file) if exchange.ca_file else None,
                verify_tls=exchange.verify_tls,
                max_wait_s=exchange.max_wait_s,
                mailboxes=entry.mailboxes if entry else (),
            )
            factory = getattr(backend_class("ews"), "from_profile")  # noqa: B009
            backend = factory(profile, ccache=caller.ccache)
            return _Held(DelegateSession(backend, mailboxes=profile.mailboxes), now)
        if entry is None:
            raise self._no_identity(caller, "no Exchange account is configured for this caller")
        if not exchange.ews_url:
            raise self._no_identity(caller, "this API has no EWS endpoint configured")
        try:
            password = entry.password()
        except SettingsError as exc:
            raise self._no_identity(caller, str(exc)) from exc
        profile = Profile(
            "api",
            exchange.ews_url,
            entry.exchange_user,
            AuthMethod(entry.auth),
            version=exchange.ews_version,
            ca_bundle=str(exchange.ca_file) if exchange.ca_file else None,
            verify_tls=exchange.verify_tls,
            max_wait_s=exchange.max_wait_s,
            mailboxes=entry.mailboxes,
        )
        return _Held(DelegateSession.open(profile, password=password), now)

    async def close_idle(self) -> None:
        """Close sessions idle longer than the configured time."""
        limit = time.monotonic() - self.settings.session_idle_s
        for key, held in list(self._held.items()):
            if held.last_used < limit:
                self._held.pop(key, None)
                await held.session.close()

    async def close(self) -> None:
        held, self._held = list(self._held.values()), {}
        for h in held:
            await h.session.close()
