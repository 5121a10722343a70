"""The lab's token signing: RS256 JWTs as Entra ID issues them, with the JWKS published.

Access tokens carry what Graph checks: `aud` (Graph), `tid`, `oid`, `upn`, `scp` (delegated,
space separated, without the resource prefix) or `roles` (app-only), `appid`. id tokens carry
`preferred_username` = the UPN, which MSAL and O365 use to find a cached account.
"""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

GRAPH_AUDIENCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
ACCESS_TOKEN_LIFETIME = timedelta(hours=1)
ID_TOKEN_LIFETIME = timedelta(hours=1)
KEY_FILE = "lab-token-signing.pem"


class TokenInvalid(Exception):
    """A bearer token the lab did not issue, or one that expired."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def stable_uuid(kind: str, value: str) -> str:
    """A UUID that always names the same user, app or tenant (Entra ids are GUIDs)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"medbridge-lab:{kind}:{value.lower()}"))


@dataclass(frozen=True)
class SigningKey:
    """An RSA key with its `kid`; the private half never leaves the lab process."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(key, cls._kid_of(key))

    @classmethod
    def load_or_create(cls, directory: Path) -> SigningKey:
        """Keep the key in `directory` (0600) so tokens stay valid across lab restarts."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / KEY_FILE
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(loaded, rsa.RSAPrivateKey):
                raise ValueError(f"{path} is not an RSA key")
            return cls(loaded, cls._kid_of(loaded))
        made = cls.generate()
        pem = made.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        os.replace(tmp, path)
        return made

    @staticmethod
    def _kid_of(key: rsa.RSAPrivateKey) -> str:
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()[:27]

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _b64url_uint(numbers.n),
            "e": _b64url_uint(numbers.e),
        }


@dataclass(frozen=True)
class Principal:
    """Who a verified access token speaks for: a user (delegated) or an app (app-only)."""

    user: str | None
    client_id: str
    scopes: frozenset[str]
    roles: frozenset[str]

    @property
    def app_only(self) -> bool:
        return self.user is None


class TokenIssuer:
    """Issues and verifies the lab's JWTs for one tenant."""

    def __init__(self, key: SigningKey, tenant_id: str) -> None:
        self.key = key
        self.tenant_id = tenant_id

    def issuer(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{self.tenant_id}/v2.0"

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [self.key.jwk()]}

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self.key.private_key, algorithm="RS256", headers={"kid": self.key.kid}
        )

    def access_token(
        self,
        *,
        base_url: str,
        now: datetime,
        client_id: str,
        user: str | None,
        scopes: frozenset[str] = frozenset(),
        roles: frozenset[str] = frozenset(),
        audience: str = GRAPH_AUDIENCE,
    ) -> str:
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer(base_url),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + ACCESS_TOKEN_LIFETIME).timestamp()),
            "tid": self.tenant_id,
            "appid": client_id,
            "azp": client_id,
            "uti": uuid.uuid4().hex,
            "ver": "1.0",
        }
        if user is None:
            claims["oid"] = stable_uuid("app", client_id)
            claims["sub"] = claims["oid"]
            claims["roles"] = sorted(roles)
        else:
            claims["oid"] = stable_uuid("user", user)
            claims["sub"] = claims["oid"]
            claims["upn"] = user
            claims["unique_name"] = user
            claims["scp"] = " ".join(sorted(scopes))
        return self._sign(claims)

    def id_token(
        self,
        *,
        base_url: str,
        now: datetime,
        client_id: str,
        user: str,
        name: str,
        nonce: str | None,
    ) -> str:
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": self.issuer(base_url),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int((now + ID_TOKEN_LIFETIME).timestamp()),
            "tid": self.tenant_id,
            "oid": stable_uuid("user", user),
            "sub": stable_uuid("user", user),
            "preferred_username": user,
            "name": name,
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def client_info(self, user: str) -> str:
        """The base64url `client_info` MSAL asks for (`client_info=1`): uid and utid."""
        raw = (
            '{"uid":"' + stable_uuid("user", user) + '","utid":"' + self.tenant_id + '"}'
        ).encode("ascii")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def verify(self, token: str, *, now: datetime) -> Principal:
        """Check signature, audience, tenant and lifetime of a Graph access token.

        Raises:
            TokenInvalid: with Graph's error code (`InvalidAuthenticationToken`).
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenInvalid(
                "InvalidAuthenticationToken", "IDX14100: JWT is not well formed."
            ) from exc
        if header.get("kid") != self.key.kid or header.get("alg") != "RS256":
            raise TokenInvalid(
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid signing key.",
            )
        try:
            claims = jwt.decode(
                token,
                self.key.private_key.public_key(),
                algorithms=["RS256"],
                audience=[GRAPH_AUDIENCE, GRAPH_APP_ID],
                options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise TokenInvalid(
                "InvalidAuthenticationToken",
                "Access token validation failure. Invalid audience or signature.",
            ) from exc
        stamp = now.timestamp()
        if float(claims.get("exp", 0)) <= stamp:
            raise TokenInvalid(
                "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
            )
        if float(claims.get("nbf", 0)) > stamp + 300:
            raise TokenInvalid(
                "InvalidAuthenticationToken",
                "Lifetime validation failed, the token is not yet valid.",
            )
        if claims.get("tid") != self.tenant_id or not str(claims.get("iss", "")).endswith(
            f"/{self.tenant_id}/v2.0"
        ):
            raise TokenInvalid(
                "InvalidAuthenticationToken", "Access token validation failure. Invalid issuer."
            )
        client_id = str(claims.get("appid", ""))
        if "scp" in claims:
            upn = str(claims.get("upn", "")).lower()
            if not upn:
                raise TokenInvalid("InvalidAuthenticationToken", "Access token has no user.")
            return Principal(upn, client_id, frozenset(str(claims["scp"]).split()), frozenset())
        roles = claims.get("roles") or []
        return Principal(None, client_id, frozenset(), frozenset(str(r) for r in roles))
