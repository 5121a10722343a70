"""Negotiate (Kerberos, NTLM) logins for requests and exchangelib, on pyspnego.

exchangelib chooses NTLM or Basic from a server's 401 but never Negotiate. `register()`
adds `NEGOTIATE` to its auth map, so `Configuration(auth_type=NEGOTIATE)` logs in with the
user's ticket cache (after `kinit`; no password is stored anywhere) or, given credentials,
with a password (Kerberos first, NTLM if the realm cannot be reached).

Errors, all `NegotiateError` with a sentence saying what to do (`.hint`):

- NoTicket: no usable Kerberos ticket (never ran kinit, or it expired)
- WrongPassword: the KDC refused the user name or password
- ClockSkew: this machine's clock and the KDC's differ too much
- UnknownServer: the KDC has no key for `HTTP/<host>` (wrong host name in the URL)
- KdcUnreachable: no KDC answered for the realm (or no realm is configured)
- LoginRefused: the HTTP server answered the finished handshake with 401
- ServerNotVerified: the server's mutual-authentication token did not check out
"""

from __future__ import annotations

import base64
import functools
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import requests
import spnego
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from requests.cookies import extract_cookies_to_jar
from spnego.channel_bindings import GssChannelBindings

from med.auth import Login
from med.model import AuthMethod, Profile

log = logging.getLogger(__name__)

NEGOTIATE = "Negotiate"
"""The auth type name `register()` adds to exchangelib (`Configuration(auth_type=NEGOTIATE)`)."""

Protocol = Literal["negotiate", "kerberos", "ntlm"]

_MAX_LEGS = 5


class _NoTokens(logging.Filter):
    """pyspnego logs every handshake token at DEBUG; tickets and NTLM answers stay out of logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else ""
        return " step input" not in msg and " step output" not in msg


_NO_TOKENS = _NoTokens()
for _name in ("spnego._ntlm", "spnego._gss", "spnego._negotiate"):
    logging.getLogger(_name).addFilter(_NO_TOKENS)


class NegotiateError(Exception):
    """A Negotiate/NTLM login failed on the client side; `hint` says what to do."""

    hint = "Check the login settings."

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}. {self.hint}"


class NoTicket(NegotiateError):
    """No Kerberos ticket in the cache (no kinit yet, or it expired)."""

    hint = (
        "Run `kinit user@REALM` (with KRB5_CONFIG naming the realm's krb5.conf) "
        "and try again, or configure a password."
    )


class WrongPassword(NegotiateError):
    """The KDC refused the user name or the password."""

    hint = "Check the user name (user@REALM) and the password; `kinit` shows the same error."


class ClockSkew(NegotiateError):
    """This machine's clock and the KDC's differ by more than the allowed skew (5 minutes)."""

    hint = "Synchronise this machine's clock (NTP) with the domain, then try again."


class UnknownServer(NegotiateError):
    """The KDC has no service principal for the host in the URL."""

    hint = (
        "Use the server's host name as registered in Kerberos (HTTP/<host>) in the EWS URL, "
        "not an alias or another address."
    )


class KdcUnreachable(NegotiateError):
    """No KDC for the realm answered, or no realm is configured."""

    hint = (
        "Check that KRB5_CONFIG names the right krb5.conf and that its KDC is running "
        "and reachable."
    )


class LoginRefused(NegotiateError):
    """The server answered a complete handshake with 401."""

    hint = "The server did not accept this user: check the user name and password."


class ServerNotVerified(NegotiateError):
    """Mutual authentication failed: the answer did not come from the expected server."""

    hint = "Do not trust this connection; check the server URL and the realm's service keys."


# MIT krb5 error codes (com_err table "krb5", base -1765328384).
_KDC_ERR_C_PRINCIPAL_UNKNOWN = -1765328378
_KDC_ERR_S_PRINCIPAL_UNKNOWN = -1765328377
_KDC_ERR_KEY_EXPIRED = -1765328361
_KDC_ERR_PREAUTH_FAILED = -1765328360
_KRB_AP_ERR_BAD_INTEGRITY = -1765328353
_KRB_AP_ERR_TKT_EXPIRED = -1765328352
_KRB_AP_ERR_SKEW = -1765328347
_KRB5_KDC_UNREACH = -1765328228
_KRB5_REALM_UNKNOWN = -1765328230
_KRB5_CC_NOTFOUND = -1765328243
_KRB5_FCC_NOFILE = -1765328189
_KRB5_REALM_CANT_RESOLVE = -1765328164
_KRB5_CONFIG_NODEFREALM = -1765328160
# GSS-API major status (routine error << 16).
_GSS_S_NO_CRED = 7 << 16
_GSS_S_CREDENTIALS_EXPIRED = 11 << 16


def _signed(code: int) -> int:
    """GSS minor codes come unsigned; krb5 defines them as negative 32-bit numbers."""
    return code - (1 << 32) if code >= (1 << 31) else code


def _causes(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "base_error", None), current.__cause__, current.__context__]


def translate(exc: BaseException, *, spn: str, user: str | None) -> NegotiateError:
    """The typed error for a failure of pyspnego, gssapi or krb5 (by error code, not text)."""
    if isinstance(exc, NegotiateError):
        return exc
    who = user or "the cached ticket's user"
    for cause in _causes(exc):
        code = getattr(cause, "err_code", None)  # krb5.Krb5Error
        if code is None and isinstance(getattr(cause, "min_code", None), int):
            code = _signed(cause.min_code)  # type: ignore[attr-defined]
        if code in (_KDC_ERR_PREAUTH_FAILED, _KRB_AP_ERR_BAD_INTEGRITY):
            return WrongPassword(f"The KDC refused the password for {who}")
        if code == _KDC_ERR_C_PRINCIPAL_UNKNOWN:
            return WrongPassword(f"The KDC does not know the user {who}")
        if code == _KDC_ERR_KEY_EXPIRED:
            return WrongPassword(
                f"The password of {who} has expired", "Change it (kpasswd), then try again."
            )
        if code == _KRB_AP_ERR_SKEW:
            return ClockSkew("The clocks of this machine and the KDC differ too much")
        if code == _KDC_ERR_S_PRINCIPAL_UNKNOWN:
            return UnknownServer(f"The KDC has no service principal {spn}")
        if code in (_KRB5_KDC_UNREACH, _KRB5_REALM_CANT_RESOLVE, _KRB5_REALM_UNKNOWN):
            return KdcUnreachable(f"No KDC answered for the realm of {who}")
        if code == _KRB5_CONFIG_NODEFREALM:
            return KdcUnreachable("No Kerberos realm is configured")
        if code in (_KRB5_FCC_NOFILE, _KRB5_CC_NOTFOUND, _KRB_AP_ERR_TKT_EXPIRED):
            return NoTicket(f"No valid Kerberos ticket to reach {spn}")
        major = getattr(cause, "maj_code", None)
        if isinstance(major, int) and major & 0xFF0000 in (
            _GSS_S_NO_CRED,
            _GSS_S_CREDENTIALS_EXPIRED,
        ):
            return NoTicket(f"No valid Kerberos ticket to reach {spn}")
        if isinstance(cause, spnego.exceptions.NoCredentialError):
            return NoTicket(f"No valid Kerberos ticket to reach {spn}")
    return NegotiateError(f"The Negotiate login to {spn} failed ({type(exc).__name__})")


def tls_channel_bindings(certificate: bytes) -> GssChannelBindings:
    """RFC 5929 `tls-server-end-point` bindings for a server's DER certificate.

    The hash is the certificate's signature hash, except MD5 and SHA-1, which become SHA-256.
    """
    cert = x509.load_der_x509_certificate(certificate)
    try:
        algorithm = cert.signature_hash_algorithm
    except UnsupportedAlgorithm:
        algorithm = None
    if algorithm is None or isinstance(algorithm, hashes.MD5 | hashes.SHA1):
        algorithm = hashes.SHA256()
    digest = hashes.Hash(algorithm)
    digest.update(certificate)
    return GssChannelBindings(application_data=b"tls-server-end-point:" + digest.finalize())


def _peer_certificate(response: requests.Response) -> bytes | None:
    """The server's DER certificate from the response's still-open TLS connection."""
    connection = getattr(response.raw, "connection", None)
    getpeercert = getattr(getattr(connection, "sock", None), "getpeercert", None)
    if getpeercert is None:
        return None
    try:
        certificate = getpeercert(binary_form=True)
    except (OSError, ValueError):
        return None
    return certificate if isinstance(certificate, bytes) and certificate else None


def kerberos_principal(username: str) -> str:
    """`user@domain.example` (a mail-style login) -> `user@DOMAIN.EXAMPLE`.

    Kerberos realms are case-sensitive and, in Active Directory and the lab, the upper-case
    DNS domain; a login typed as the mail address would otherwise name a realm nobody serves.
    """
    local, at, realm = username.rpartition("@")
    return f"{local}@{realm.upper()}" if at and local else username


def _offered(response: requests.Response, scheme: str) -> tuple[bool, bytes | None]:
    """Whether `scheme` is offered in WWW-Authenticate, and the token it carries if any.

    requests joins repeated headers with ", "; tokens are base64 and hold no commas.
    """
    header = response.headers.get("WWW-Authenticate", "")
    for part in header.split(","):
        name, _, value = part.strip().partition(" ")
        if name.lower() == scheme.lower():
            value = value.strip()
            if not value or "=" in value.rstrip("="):
                return True, None
            try:
                return True, base64.b64decode(value, validate=True)
            except ValueError:
                return True, None
    return False, None


class NegotiateAuth(requests.auth.AuthBase):
    """requests auth for `Negotiate` (Kerberos or NTLM inside SPNEGO), `Kerberos` or `NTLM`.

    Without a password Kerberos uses the ticket cache (`KRB5CCNAME`, after kinit). With
    `username`/`password` pyspnego gets its own ticket in memory (or answers NTLM). The
    service principal is `HTTP/<host of the URL>` unless `hostname` says otherwise. When
    the server returns a mutual-authentication token it is checked; `require_mutual`
    makes its absence an error too. Over https the login is bound to the server's TLS
    certificate (RFC 5929 `tls-server-end-point`), as Exchange's Extended Protection
    requires; `channel_bindings=False` leaves that out.

    Example::

        session.auth = NegotiateAuth()  # after `kinit assistenz@MUSTERSTADT.EXAMPLE`
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        *,
        protocol: Protocol = "negotiate",
        service: str = "HTTP",
        hostname: str | None = None,
        require_mutual: bool = False,
        channel_bindings: bool = True,
        ccache: str | None = None,
        delegate: bool = False,
    ) -> None:
        self.username = username or None
        self.given_ccache = ccache
        """A ticket cache of this login's own (`MEMORY:…`, `FILE:…`), e.g. a caller's forwarded
        ticket that a service acts with; None means the process's cache or the password."""
        self.delegate = delegate
        """Forward the ticket-granting ticket to the server (it then acts as the user)."""
        self._password = password or None
        self.protocol = protocol
        self.service = service
        self.hostname = hostname
        self.require_mutual = require_mutual
        self.channel_bindings = channel_bindings
        self.scheme = "NTLM" if protocol == "ntlm" else "Negotiate"
        self._lock = threading.Lock()
        self._ccache: str | None = None
        self._cache_handle: tuple[Any, Any] | None = None
        self._ntlm_only = False

    def __repr__(self) -> str:  # never show the password
        return f"NegotiateAuth(username={self.username!r}, protocol={self.protocol!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Connection"] = "Keep-Alive"
        request.register_hook("response", self._on_response)  # type: ignore[no-untyped-call]
        return request

    def _credential(self, spn: str) -> Any:
        """What pyspnego logs in with.

        No password: the ticket cache. A password with Kerberos: a ticket got once into a
        private in-memory cache (not one AS exchange per request), plus the password for
        NTLM when the protocol is Negotiate. A `DOMAIN\\user` name is NTLM only.
        """
        if self.given_ccache is not None:
            return [spnego.KerberosCCache(ccache=self.given_ccache)]
        if self._password is None:
            return self.username
        kerberos_name = self.username is not None and "\\" not in self.username
        if self.protocol == "ntlm" or not kerberos_name or self._ntlm_only:
            return [spnego.Password(username=self.username or "", password=self._password)]
        with self._lock:
            if self._ccache is None:
                try:
                    self._ccache = self._kinit(spn)
                except KdcUnreachable:
                    if self.protocol == "kerberos":
                        raise
                    log.info("no KDC for %s: Negotiate goes on with NTLM", self.username)
                    self._ntlm_only = True
                    return [spnego.Password(username=self.username or "", password=self._password)]
            creds: list[Any] = [spnego.KerberosCCache(ccache=self._ccache)]
        if self.protocol == "negotiate":
            creds.append(spnego.Password(username=self.username or "", password=self._password))
        return creds

    def _kinit(self, spn: str) -> str:
        """Get a ticket-granting ticket with the password into a MEMORY cache of this process."""
        import krb5  # comes with pyspnego[kerberos]; only needed for password logins

        assert self.username is not None and self._password is not None
        try:
            ctx = krb5.init_context()
            principal = krb5.parse_name_flags(ctx, kerberos_principal(self.username).encode())
            opt = krb5.get_init_creds_opt_alloc(ctx)
            creds = krb5.get_init_creds_password(
                ctx, principal, opt, password=self._password.encode()
            )
            cache = krb5.cc_new_unique(ctx, b"MEMORY")
            krb5.cc_initialize(ctx, cache, principal)
            krb5.cc_store_cred(ctx, cache, creds)
        except Exception as exc:
            raise translate(exc, spn=spn, user=self.username) from exc
        self._cache_handle = (ctx, cache)  # keeps the cache alive with this object
        return f"MEMORY:{(cache.name or b'').decode()}"

    def _context(self, host: str, spn: str, bindings: GssChannelBindings | None) -> Any:
        try:
            wanted = spnego.ContextReq.default
            if self.delegate:
                wanted |= spnego.ContextReq.delegate
            return spnego.client(
                self._credential(spn),
                hostname=host,
                service=self.service,
                protocol=self.protocol,
                channel_bindings=bindings,
                context_req=wanted,
            )
        except NegotiateError:
            raise
        except Exception as exc:
            raise translate(exc, spn=spn, user=self.username) from exc

    def _start(self, host: str, spn: str, bindings: GssChannelBindings | None) -> tuple[Any, bytes]:
        """A new context and its first token; a ticket of ours that expired is renewed once."""
        context = self._context(host, spn, bindings)
        try:
            return context, self._step(context, None, spn)
        except NoTicket:
            if self._ccache is None:
                raise
            with self._lock:
                self._ccache = None
        context = self._context(host, spn, bindings)
        return context, self._step(context, None, spn)

    def _step(self, context: Any, token: bytes | None, spn: str) -> bytes:
        try:
            out = context.step(token)
        except Exception as exc:
            raise translate(exc, spn=spn, user=self.username) from exc
        return out or b""

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if response.status_code != 401:
            return response
        offered, _ = _offered(response, self.scheme)
        if not offered:
            return response
        url = response.request.url or ""
        host = self.hostname or urlsplit(url).hostname or ""
        spn = f"{self.service}/{host}"
        bindings = None
        if self.channel_bindings and urlsplit(url).scheme == "https":
            certificate = _peer_certificate(response)
            bindings = tls_channel_bindings(certificate) if certificate else None
        context, out = self._start(host, spn, bindings)
        for _ in range(_MAX_LEGS):
            following = self._resend(response, out, kwargs)
            offered, token = _offered(following, self.scheme)
            if following.status_code == 401:
                if token is None or context.complete:
                    raise LoginRefused(f"{url} refused the {self.scheme} login of {self._who()}")
                out = self._step(context, token, spn)
                response = following
                continue
            if token is not None and not context.complete:
                try:
                    context.step(token)
                except Exception as exc:
                    raise ServerNotVerified(f"{url} did not prove it is {spn}") from exc
            if self.require_mutual and not context.complete:
                raise ServerNotVerified(f"{url} sent no mutual-authentication token for {spn}")
            return following
        raise LoginRefused(f"{url} did not finish the {self.scheme} handshake")

    def _who(self) -> str:
        return self.username or "the ticket cache's user"

    def _resend(
        self, response: requests.Response, token: bytes, kwargs: dict[str, Any]
    ) -> requests.Response:
        """Send the request again with `token` on the same connection (NTLM needs that)."""
        _ = response.content  # drain, so the connection goes back to the pool for reuse
        response.raw.release_conn()
        request = response.request.copy()
        cookies: Any = getattr(request, "_cookies", None)
        if cookies is not None:
            extract_cookies_to_jar(cookies, response.request, response.raw)  # type: ignore[no-untyped-call]
            request.prepare_cookies(cookies)
        request.headers["Authorization"] = f"{self.scheme} {base64.b64encode(token).decode()}"
        connection: Any = response.connection
        following: requests.Response = connection.send(request, **kwargs)
        following.history.append(response)
        following.request = request
        return following


def register(ccache: str | None = None) -> str:
    """Add `NEGOTIATE` to exchangelib's auth map (idempotent) and return the name to use.

    exchangelib makes its auth objects from a name alone, so a login with a ticket cache of
    its own (`ccache`) gets a name of its own, bound to that cache.
    """
    from exchangelib import transport

    transport.AUTH_TYPE_MAP[NEGOTIATE] = NegotiateAuth
    if ccache is None:
        return NEGOTIATE
    name = f"{NEGOTIATE} {ccache}"
    transport.AUTH_TYPE_MAP[name] = functools.partial(NegotiateAuth, ccache=ccache)
    return name


def login(profile: Profile, *, password: str | None, token_cache: Path | None = None) -> Login:
    """Kerberos (Negotiate) for exchangelib: the ticket cache, or a password given instead."""
    username = (profile.username or profile.user) if password else None
    return Login(AuthMethod.KERBEROS, username, password, requests_auth=register())
