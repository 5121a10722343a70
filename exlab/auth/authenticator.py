"""The lab's login edge: the answer is a mailbox address or the 401 to send back, never a 500."""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from spnego.exceptions import SpnegoError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from exlab.auth.handshake import (
    Handshakes,
    acceptor_env,
    is_ntlm_negotiate,
    new_acceptor,
    tls_server_end_point,
)
from exlab.auth.ntlm_users import NtlmUserFile
from exlab.demo import DEMO_PASSWORD, DOMAIN

log = logging.getLogger(__name__)

DEMO_DOMAIN = DOMAIN
_STATE_KEY = "lab_auth_final_token"


@runtime_checkable
class PasswordChecker(Protocol):
    """What the authenticator needs from the lab: `exlab.Lab` satisfies it."""

    def check_password(self, address: str, password: str) -> bool: ...


@runtime_checkable
class UserDirectory(PasswordChecker, Protocol):
    """A lab that can list its users (`exlab.Lab.users()` rows carry `address`, `has_login`)."""

    def users(self) -> Iterable[Any]: ...


def demo_passwords(lab: PasswordChecker) -> dict[str, str]:
    """The logins whose password is still the demo password, as address -> password.

    NTLM and the KDC need the password itself, which the store keeps only as an argon2
    hash; the demo password is published, so the lab checks which users still have it.
    """
    if not isinstance(lab, UserDirectory):
        return {}
    return {
        row.address.lower(): DEMO_PASSWORD
        for row in lab.users()
        if row.has_login and lab.check_password(row.address.lower(), DEMO_PASSWORD)
    }


def mailbox_address(login: str, domain: str = DEMO_DOMAIN) -> str | None:
    """Map the login forms Exchange accepts to a lower-case mailbox address.

    `assistenz`, `MUSTERSTADT\\assistenz`, `assistenz@musterstadt.example` and the Kerberos
    principal `assistenz@MUSTERSTADT.EXAMPLE` all name the same mailbox. A foreign domain
    prefix gives None: the lab only knows its own organisation.
    """
    login = login.strip()
    if "\\" in login:
        prefix, _, login = login.rpartition("\\")
        netbios = domain.split(".", 1)[0]
        if prefix and prefix.lower() not in (domain.lower(), netbios.lower()):
            return None
    if not login or any(c in login for c in ":\\/\x00 ") or login.count("@") > 1:
        return None
    local, at, dom = login.partition("@")
    if not local:
        return None
    if at and dom.lower() != domain.lower():
        return login.lower()
    return f"{local.lower()}@{domain.lower()}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class LabAuthenticator:
    """Authenticates lab requests the way IIS does for Exchange: Negotiate, NTLM or Basic.

    `await authenticate(request)` gives the lower-case mailbox address, or a `Response` (401
    with one `WWW-Authenticate` header per scheme, or the next leg of a handshake) to return
    as is. Wrong credentials and any failure inside an acceptor give 401, never 500.
    """

    def __init__(
        self,
        lab: PasswordChecker,
        *,
        keytab: Path | None = None,
        realm: str | None = None,
        domain: str = DEMO_DOMAIN,
        ntlm_passwords: Mapping[str, str] | None = None,
        tls_certificate: bytes | None = None,
    ) -> None:
        """`ntlm_passwords` (address -> password) are the logins NTLM knows; by default the
        lab's users whose password is still the demo password. Kerberos needs `keytab` (the
        HTTP service keys) and `realm` (whose principals map to mailboxes of `domain`).
        `tls_certificate` (DER), when the lab is served over https, makes NTLM and Kerberos
        logins check the client's channel binding to it (Extended Protection).
        """
        self.lab = lab
        self.keytab = keytab
        self.realm = realm
        self.domain = domain.lower()
        self._handshakes = Handshakes()
        self._ntlm_passwords = dict(ntlm_passwords) if ntlm_passwords is not None else None
        self._ntlm_file: NtlmUserFile | None = None
        self._ntlm_lock = threading.Lock()
        self._bindings = tls_server_end_point(tls_certificate) if tls_certificate else None

    def close(self) -> None:
        """Remove the NTLM user file (also done when the authenticator is collected)."""
        with self._ntlm_lock:
            if self._ntlm_file is not None:
                self._ntlm_file.close()
                self._ntlm_file = None

    @property
    def ntlm_user_file(self) -> Path | None:
        """Where the NTLM acceptor's user file is (written at the first NTLM login)."""
        return self._ntlm_file.path if self._ntlm_file is not None else None

    def _acceptor_values(self) -> dict[str, str]:
        """The environment pyspnego's acceptors need; writes the NTLM user file once."""
        with self._ntlm_lock:
            if self._ntlm_file is None:
                passwords = self._ntlm_passwords
                if passwords is None:
                    passwords = demo_passwords(self.lab)
                self._ntlm_file = NtlmUserFile(passwords, self.domain)
            values = {"NTLM_USER_FILE": str(self._ntlm_file.path)}
        if self.keytab is not None:
            values["KRB5_KTNAME"] = f"FILE:{self.keytab}"
        return values

    def principal_address(self, principal: str) -> str | None:
        """Mailbox of an accepted principal: `user@REALM` (Kerberos) or `DOMAIN\\user` (NTLM)."""
        local, at, suffix = principal.rpartition("@")
        if not at:
            return mailbox_address(principal, self.domain)
        realm = (self.realm or self.domain).upper()
        if suffix.upper() not in (realm, self.domain.upper()) or "@" in local:
            return None  # another realm or domain: no mailbox of this lab
        return mailbox_address(local, self.domain)

    def challenge(self) -> Response:
        """The 401 that lists every scheme the lab accepts, each in its own header."""
        response = Response(status_code=401, content=b"")
        response.headers.append("WWW-Authenticate", "Negotiate")
        response.headers.append("WWW-Authenticate", "NTLM")
        response.headers.append("WWW-Authenticate", f'Basic realm="{self.domain}"')
        return response

    def finish(self, request: Request, response: Response) -> None:
        """Add the server's last handshake token (Kerberos mutual auth) to a successful response.

        Call it on the response to a request that `authenticate` accepted; it does nothing
        for Basic and NTLM logins.
        """
        token = getattr(request.state, _STATE_KEY, None)
        if token:
            response.headers.append("WWW-Authenticate", token)

    async def authenticate(self, request: Request) -> str | Response:
        header = request.headers.get("authorization")
        if not header:
            return self.challenge()
        scheme, _, value = header.strip().partition(" ")
        scheme = scheme.lower()
        try:
            if scheme == "basic":
                return await self._basic(value.strip())
            if scheme == "ntlm":
                return await self._handshake(request, "NTLM", "ntlm", value.strip())
            if scheme == "negotiate":
                return await self._handshake(request, "Negotiate", "negotiate", value.strip())
        except SpnegoError as exc:  # a wrong password or a bad token: an ordinary refusal
            log.info("%s login refused: %s", scheme, type(exc).__name__)
            return self.challenge()
        except Exception as exc:  # the auth boundary: any failure is a refused login, not a 500
            log.warning("%s login failed: %s", scheme, type(exc).__name__, exc_info=True)
            return self.challenge()
        log.info("refused login with unsupported scheme %r", scheme[:20])
        return self.challenge()

    async def _basic(self, value: str) -> str | Response:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            log.info("basic login refused: malformed credentials")
            return self.challenge()
        login, sep, password = decoded.partition(":")
        address = mailbox_address(login, self.domain) if sep else None
        if address is None or not password:
            log.info("basic login refused: malformed credentials")
            return self.challenge()
        # The lab remembers good logins itself, so argon2 runs once per user, not per request.
        if not await run_in_threadpool(self.lab.check_password, address, password):
            log.info("basic login refused for %s", address)
            return self.challenge()
        return address

    async def _handshake(
        self, request: Request, scheme: str, protocol: str, value: str
    ) -> str | Response:
        try:
            token = base64.b64decode(value, validate=True)
        except binascii.Error:
            token = b""
        if not token:
            log.info("%s login refused: malformed token", scheme)
            return self.challenge()
        client = request.client
        key = (protocol, client.host, str(client.port)) if client else (protocol,)
        principal, out = await run_in_threadpool(self._step, key, protocol, token)
        if principal is None:
            if not out:
                return self.challenge()
            response = Response(status_code=401, content=b"")
            response.headers.append("WWW-Authenticate", f"{scheme} {_b64(out)}")
            return response
        address = self.principal_address(principal)
        if address is None:
            log.info("%s login refused: principal outside the lab's realm", scheme)
            return self.challenge()
        if out:
            setattr(request.state, _STATE_KEY, f"{scheme} {_b64(out)}")
        return address

    def _step(self, key: tuple[str, ...], protocol: str, token: bytes) -> tuple[str | None, bytes]:
        """One leg in a worker thread: (principal, token) when done, (None, next token) if not."""
        values = self._acceptor_values()
        with acceptor_env(values):
            context = self._handshakes.take(key)
            if context is None or is_ntlm_negotiate(token):
                context = new_acceptor(protocol, self._bindings)
            out: bytes | None = context.step(token)
            if not context.complete:
                self._handshakes.keep(key, context)
                return None, out or b""
            principal: str | None = context.client_principal
        if not principal:
            raise PermissionError("handshake completed without a client principal")
        return principal, out or b""
