"""Four-eyes audit keys: a tenant key that only two auditors together can use, each share unshown.

The audit key is a scalar `a` of the prime-order group of edwards25519 (order L); its public key
is A = a·B. Sender keys are sealed to A (`seal`): an ephemeral r gives E = r·B, the data key is
BLAKE2b(r·A ‖ E ‖ A) and the record is XChaCha20-Poly1305-encrypted under it, E and A bound as
associated data.

The secret `a` is split with Shamir's scheme over the prime field of order L (`split_secret`):
any `threshold` shares give `a` back, fewer say nothing about it. Auditors never pool their
shares: for a seal with ephemeral point E each auditor i computes the partial decryption
D_i = s_i·E with its share s_i (`partial_decrypt`), and the requester combines two partials with
Lagrange coefficients into a·E = r·A (`combine_partials`), which opens that one seal and no other.
So one auditor alone learns nothing, the requester learns the seals the auditors chose to answer,
and nobody, ever, holds `a` again after the tenant admin's client made and split it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

from messenger.crypto import _wire
from messenger.crypto._errors import MalformedError, PolicyError, TamperedError

L = 2**252 + 27742317777372353535851937790883648493  # order of the edwards25519 group
POINT_BYTES = 32
SEAL_MAGIC = b"MBS1"
SHARE_MAGIC = b"MBH1"
PARTIALS_MAGIC = b"MBR1"
NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
AUDIT_KEY_CONTEXT = b"medbridge/audit-key/v1"
AUDIT_REQUEST_CONTEXT = b"medbridge/audit-request/v1"
AUDIT_SEAL_CONTEXT = b"medbridge/audit-seal/v1"


def _scalar(n: int) -> bytes:
    return (n % L).to_bytes(32, "little")


def random_scalar() -> int:
    """A uniformly random non-zero scalar mod L."""
    while True:
        wide = nacl.utils.random(64)
        n = int.from_bytes(sodium.crypto_core_ed25519_scalar_reduce(wide), "little")
        if n:
            return n


def _point(data: bytes, what: str) -> bytes:
    if len(data) != POINT_BYTES or not sodium.crypto_core_ed25519_is_valid_point(data):
        raise MalformedError(f"{what}: not a valid group element")
    return data


def _mul(n: int, point: bytes) -> bytes:
    try:
        return bytes(sodium.crypto_scalarmult_ed25519_noclamp(_scalar(n), point))
    except nacl.exceptions.RuntimeError as exc:  # identity result: a degenerate input
        raise TamperedError("audit: degenerate group element") from exc


def public_key(secret: int) -> bytes:
    if not 0 < secret < L:
        raise PolicyError("an audit secret is a non-zero scalar below the group order")
    return bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(_scalar(secret)))


# Shamir's secret sharing over GF(L) ---


@dataclass(frozen=True)
class Share:
    """One auditor's share: the point (x, y) of the sharing polynomial, x = 1..n."""

    x: int
    y: int

    def to_bytes(self) -> bytes:
        return _wire.envelope(SHARE_MAGIC, _wire.u32(self.x), _scalar(self.y))

    @classmethod
    def from_bytes(cls, data: bytes) -> Share:
        f = _wire.open_envelope(data, SHARE_MAGIC, 2, "audit share")
        x = _wire.to_int(f[0], 4, "audit share")
        y = int.from_bytes(_wire.fixed(f[1], 32, "audit share"), "little")
        if not 0 < x < L or y >= L:
            raise MalformedError("audit share: out of range")
        return cls(x, y)

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"Share(x={self.x})"


def split_secret(secret: int, threshold: int, count: int) -> list[Share]:
    """`count` shares of `secret` of which any `threshold` recover it."""
    if not 1 <= threshold <= count <= 255:
        raise PolicyError("a sharing needs 1 <= threshold <= shares <= 255")
    if not 0 <= secret < L:
        raise PolicyError("the secret must be a scalar below the group order")
    coefficients = [secret] + [random_scalar() for _ in range(threshold - 1)]
    return [
        Share(x, sum(c * pow(x, i, L) for i, c in enumerate(coefficients)) % L)
        for x in range(1, count + 1)
    ]


def lagrange_at_zero(x: int, xs: Sequence[int]) -> int:
    """The coefficient of the share at `x` when the shares at `xs` interpolate f(0)."""
    if len(set(xs)) != len(xs) or x not in xs:
        raise PolicyError("shares must come from distinct auditors")
    num, den = 1, 1
    for other in xs:
        if other != x:
            num = num * other % L
            den = den * (other - x) % L
    return num * pow(den, -1, L) % L


def combine_shares(shares: Sequence[Share]) -> int:
    """f(0) through the given shares (the secret when at least `threshold` of them)."""
    xs = [s.x for s in shares]
    return sum(s.y * lagrange_at_zero(s.x, xs) for s in shares) % L


# Sealing to the audit key ---


def _seal_key(shared: bytes, ephemeral: bytes, audit_key: bytes) -> bytes:
    return hashlib.blake2b(
        shared + ephemeral + audit_key, digest_size=32, person=b"medbridge-audit1"
    ).digest()


@dataclass(frozen=True)
class Seal:
    audit_key: bytes
    ephemeral: bytes
    nonce: bytes
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        fields = (self.audit_key, self.ephemeral, self.nonce, self.ciphertext)
        return _wire.envelope(SEAL_MAGIC, *fields)

    @classmethod
    def from_bytes(cls, data: bytes) -> Seal:
        f = _wire.open_envelope(data, SEAL_MAGIC, 4, "audit seal")
        return cls(
            audit_key=_point(f[0], "audit seal"),
            ephemeral=_point(f[1], "audit seal"),
            nonce=_wire.fixed(f[2], NONCE_BYTES, "audit seal"),
            ciphertext=f[3],
        )


def seal(audit_key: bytes, plaintext: bytes) -> bytes:
    """Encrypt `plaintext` so that only the audit key (its shares, together) opens it."""
    _point(audit_key, "audit key")
    r = random_scalar()
    ephemeral = bytes(sodium.crypto_scalarmult_ed25519_base_noclamp(_scalar(r)))
    key = _seal_key(_mul(r, audit_key), ephemeral, audit_key)
    nonce = nacl.utils.random(NONCE_BYTES)
    ciphertext = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext, audit_key + ephemeral, nonce, key
    )
    return Seal(audit_key, ephemeral, nonce, bytes(ciphertext)).to_bytes()


def open_with_shared(sealed: bytes, shared: bytes) -> bytes:
    """Open a seal given a·E (from `combine_partials`, or the whole secret in tests)."""
    s = Seal.from_bytes(sealed)
    key = _seal_key(shared, s.ephemeral, s.audit_key)
    try:
        return bytes(
            sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
                s.ciphertext, s.audit_key + s.ephemeral, s.nonce, key
            )
        )
    except nacl.exceptions.CryptoError as exc:
        raise TamperedError("audit seal does not open with these shares") from exc


def open_with_secret(secret: int, sealed: bytes) -> bytes:
    """Open with the whole secret; only test vectors do this, nobody holds it in service."""
    return open_with_shared(sealed, _mul(secret, Seal.from_bytes(sealed).ephemeral))


@dataclass(frozen=True)
class Partial:
    """One auditor's partial decryption of one seal: x of its share and s_x·E."""

    x: int
    point: bytes


def partial_decrypt(share: Share, sealed: bytes) -> Partial:
    return Partial(share.x, _mul(share.y, Seal.from_bytes(sealed).ephemeral))


def combine_partials(partials: Sequence[Partial]) -> bytes:
    """a·E from partials of distinct auditors (at least the threshold); opens that seal only."""
    if not partials:
        raise PolicyError("no partial decryptions")
    xs = [p.x for p in partials]
    total: bytes | None = None
    for p in partials:
        term = _mul(lagrange_at_zero(p.x, xs), _point(p.point, "partial decryption"))
        total = term if total is None else bytes(sodium.crypto_core_ed25519_add(total, term))
    assert total is not None
    return total


def pack_partials(items: Sequence[tuple[str, Partial]]) -> bytes:
    """(seal id, partial) pairs of one auditor, as the bytes sealed to the requester."""
    fields: list[bytes] = []
    for seal_id, p in items:
        fields += [_wire.text(seal_id), _wire.u32(p.x), p.point]
    return _wire.envelope(PARTIALS_MAGIC, _wire.u32(len(items)), _wire.pack(*fields))


def unpack_partials(data: bytes) -> dict[str, Partial]:
    what = "partial decryptions"
    head, body = _wire.open_envelope(data, PARTIALS_MAGIC, 2, what)
    count = _wire.to_int(head, 4, what)
    f = _wire.unpack(body, 3 * count, what)
    return {
        _wire.from_text(f[i], what): Partial(_wire.to_int(f[i + 1], 4, what), f[i + 2])
        for i in range(0, len(f), 3)
    }


# What the tenant admin, requesters and senders sign ---


def audit_key_statement(tenant_id: str, audit_key: bytes, epoch: int, threshold: int) -> bytes:
    """The bytes a tenant admin's device signs to publish an audit key."""
    return _wire.join_signed(
        AUDIT_KEY_CONTEXT,
        [_wire.text(tenant_id), audit_key, _wire.u64(epoch), _wire.u32(threshold)],
    )


def audit_request_statement(
    request_id: str,
    conversation_id: str,
    start: str,
    end: str,
    reason: str,
    requester_user: str,
    requester_device: str,
) -> bytes:
    """The bytes a requester's device signs; auditors check them before they answer."""
    fields = [request_id, conversation_id, start, end, reason, requester_user, requester_device]
    return _wire.join_signed(AUDIT_REQUEST_CONTEXT, [_wire.text(f) for f in fields])


def audit_seal_statement(conversation_id: str, key_id: bytes, sealed: bytes) -> bytes:
    """The bytes a sender's device signs when it deposits a seal: auditors answer only seals
    that the conversation's own senders made for that conversation."""
    return _wire.join_signed(AUDIT_SEAL_CONTEXT, [_wire.text(conversation_id), key_id, sealed])
