"""Whose identity a caller's request uses toward Exchange, and the sessions that carry it.

The decision (docs/api.md, "Identity"):

- A **bearer** caller's own token goes on to Graph unchanged: Exchange sees the caller and
  applies the caller's rights; the API holds no credential of its own. (Its audience must be
  Graph's, configured as the API's accepted audience; an on-behalf-of exchange for tokens
  issued to the API itself is not built.)
- A **Kerberos** or **API-key** caller acts through the Exchange account configured for it
  under `[api.callers."<caller>"]`, normally the caller's own account with a password the API
  reads from the environment or a file. A caller without such an entry is refused (403): the
  API never falls back to a shared service account. Forwarding the caller's Kerberos ticket
  (delegated credentials, S4U2Proxy) is not built; the entry is the honest, constrained form.

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
from med.backends import backend_class

__all__ = ["ExchangeIdentities"]


@dataclass
class _TokenBox:
    """The newest token of a bearer caller; Graph calls read it when they need one."""

    token: str

    def __call__(self) -> str:
        return self.token


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

    def _no_identity(self, caller: Caller, why: str) -> ApiProblem:
        return ApiProblem(
            403,
            "no-exchange-identity",
            "No Exchange identity",
            f"{caller.name} is signed in, but {why}; ask the API's administrator.",
        )

    def _key(self, caller: Caller) -> str:
        return f"{caller.scheme}:{caller.name.lower()}"

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
            box = _TokenBox(caller.token)
            factory = getattr(backend_class("graph"), "from_profile")  # noqa: B009
            backend = factory(profile, token=box)
            return _Held(DelegateSession(backend, mailboxes=profile.mailboxes), now, box)
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
