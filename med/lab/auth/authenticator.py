"""The lab's login edge: the answer is a mailbox address or the 401 to send back, never a 500."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Protocol, runtime_checkable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

log = logging.getLogger(__name__)

DEMO_DOMAIN = "musterstadt.example"
_STATE_KEY = "lab_auth_final_token"


@runtime_checkable
class PasswordChecker(Protocol):
    """What the authenticator needs from the lab: `med.lab.Lab` satisfies it."""

    def check_password(self, address: str, password: str) -> bool: ...


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


class _LoginCache:
    """Remembers recent good Basic logins so that every EWS call does not cost an argon2 verify.

    Keys are HMACs under a per-process random key: no password is kept in memory as such.
    """

    def __init__(self, ttl_s: float = 60.0, size: int = 256) -> None:
        self._key = secrets.token_bytes(32)
        self._ttl = ttl_s
        self._size = size
        self._entries: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def _digest(self, address: str, password: str) -> bytes:
        msg = address.encode() + b"\x00" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, msg, hashlib.sha256).digest()

    def hit(self, address: str, password: str) -> bool:
        digest = self._digest(address, password)
        with self._lock:
            expires = self._entries.get(digest)
            if expires is None:
                return False
            if expires < time.monotonic():
                del self._entries[digest]
                return False
            return True

    def add(self, address: str, password: str) -> None:
        digest = self._digest(address, password)
        with self._lock:
            self._entries[digest] = time.monotonic() + self._ttl
            self._entries.move_to_end(digest)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


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
    ) -> None:
        self.lab = lab
        self.keytab = keytab
        self.realm = realm
        self.domain = domain.lower()
        self._logins = _LoginCache()

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
        except Exception as exc:  # the auth boundary: any failure is a refused login
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
        if self._logins.hit(address, password):
            return address
        ok = await run_in_threadpool(self.lab.check_password, address, password)
        if not ok:
            log.info("basic login refused for %s", address)
            return self.challenge()
        self._logins.add(address, password)
        return address
