"""Pairwise channels v2: X3DH-style session setup from published prekeys, then a double ratchet.

Each device publishes a signed prekey (X25519, signed by its Ed25519 device key) and a batch of
one-time prekeys; the server hands one bundle out per claim and deletes the one-time key it gave.
The initiator combines its device exchange key and a fresh ephemeral key with the responder's
exchange key, signed prekey and one-time prekey (X3DH), and both sides run the double ratchet
(as Signal and Olm do): a new X25519 ratchet key per change of speaker, HKDF-SHA-256 root chain,
HMAC-SHA-256 message chains. A stolen device state therefore reveals no earlier message (forward
secrecy) and stops revealing later ones once both sides have spoken again (post-compromise
recovery). Message encryption is XChaCha20-Poly1305 under a key and nonce derived from the message
key; the clear header and both identities are the associated data. The protocol is in
docs/crypto.md section 4; nothing here reads a clock except the sender timestamp it carries.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.utils

from messenger.crypto import _wire
from messenger.crypto._errors import (
    IdentityError,
    MalformedError,
    PolicyError,
    ReplayError,
    SignatureError,
    TamperedError,
)
from messenger.crypto._identity import KEY_BYTES, DeviceIdentity, DeviceKeys, verify_signature

MAGIC = b"MBP2"
PREKEY_CONTEXT = b"medbridge/prekey/v1"
_AAD_CONTEXT = b"medbridge/pairwise/v2"
_X3DH_INFO = b"medbridge/x3dh/v1"
_ROOT_INFO = b"medbridge/ratchet-root/v1"
_MESSAGE_INFO = b"medbridge/ratchet-message/v1"
MAX_SKIP = 1000  # message keys derived ahead in one step (a longer gap is refused)
MAX_SKIPPED = 2000  # skipped message keys kept per session, oldest dropped first
OLD_REMOTE_KEPT = 32  # earlier ratchet keys of the peer remembered to tell replays apart
MAX_SESSIONS = 8  # sessions kept per peer (both sides may have started one at once)
ONE_TIME_BATCH = 50
SIGNED_PREKEYS_KEPT = 3


# Primitives composed: HKDF (RFC 5869) over HMAC-SHA-256, and X25519 (RFC 7748) ---------------


def hkdf(ikm: bytes, *, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA-256 (RFC 5869): extract with `salt` (zeros if empty), expand to `length`."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    out, block = b"", b""
    for counter in range(1, -(-length // 32) + 1):
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
    return out[:length]


def x25519(secret: bytes, public: bytes) -> bytes:
    """The X25519 function (RFC 7748); refuses a low-order peer key (all-zero result)."""
    try:
        return bytes(nacl.bindings.crypto_scalarmult(secret, public))
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError) as exc:
        raise TamperedError("X25519 with an invalid public key") from exc


def public_of(secret: bytes) -> bytes:
    return bytes(nacl.bindings.crypto_scalarmult_base(secret))


def chain_step(chain_key: bytes) -> tuple[bytes, bytes]:
    """(next chain key, message key) of a sending or receiving chain."""
    return (
        hmac.new(chain_key, b"\x02", hashlib.sha256).digest(),
        hmac.new(chain_key, b"\x01", hashlib.sha256).digest(),
    )


def root_step(root_key: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    """(next root key, new chain key) after a ratchet key agreement."""
    out = hkdf(dh_out, salt=root_key, info=_ROOT_INFO, length=64)
    return out[:32], out[32:]


def message_cipher_key(message_key: bytes) -> tuple[bytes, bytes]:
    """The XChaCha20-Poly1305 key and nonce of one message key (each used once)."""
    out = hkdf(message_key, salt=b"", info=_MESSAGE_INFO, length=56)
    return out[:32], out[32:]


# Prekeys --------------------------------------------------------------------------------------


def _prekey_binding(user_id: str, device_id: str, key_id: int, public: bytes) -> bytes:
    fields = [_wire.text(user_id), _wire.text(device_id), _wire.u32(key_id), public]
    return _wire.join_signed(PREKEY_CONTEXT, fields)


@dataclass(frozen=True)
class SignedPrekey:
    key_id: int
    public_key: bytes
    signature: bytes


@dataclass(frozen=True)
class OneTimePrekey:
    key_id: int
    public_key: bytes


@dataclass(frozen=True)
class PrekeyBundle:
    """What a claim returns for one device: its signed prekey and, while any are left, one
    one-time prekey (the server deletes it as it hands it out)."""

    identity: DeviceIdentity
    signed_prekey: SignedPrekey
    one_time_prekey: OneTimePrekey | None = None

    def verify(self) -> None:
        """Raise IdentityError unless the signed prekey is signed by the device's signing key."""
        self.identity.verify()
        spk = self.signed_prekey
        if len(spk.public_key) != KEY_BYTES or (
            self.one_time_prekey is not None and len(self.one_time_prekey.public_key) != KEY_BYTES
        ):
            raise IdentityError("prekeys must be 32 bytes")
        binding = _prekey_binding(
            self.identity.user_id, self.identity.device_id, spk.key_id, spk.public_key
        )
        try:
            verify_signature(self.identity.signing_key, binding, spk.signature)
        except SignatureError as exc:
            raise IdentityError(
                f"signed prekey of device {self.identity.device_id} does not verify"
            ) from exc


@dataclass
class PrekeyStore:
    """This device's prekey secrets (persisted with the session state, never published)."""

    signed: dict[int, bytes] = field(default_factory=dict)  # key id -> secret, newest last
    one_time: dict[int, bytes] = field(default_factory=dict)
    next_id: int = 1

    def _new_id(self) -> int:
        key_id = self.next_id
        self.next_id = (self.next_id % 0xFFFFFFFF) + 1
        return key_id

    def new_signed_prekey(self, keys: DeviceKeys, *, secret: bytes | None = None) -> SignedPrekey:
        """Make (and keep) a signed prekey; the last three stay usable for late first messages."""
        secret = secret if secret is not None else nacl.utils.random(KEY_BYTES)
        key_id = self._new_id()
        self.signed[key_id] = secret
        while len(self.signed) > SIGNED_PREKEYS_KEPT:
            del self.signed[next(iter(self.signed))]
        public = public_of(secret)
        signature = keys.sign(_prekey_binding(keys.user_id, keys.device_id, key_id, public))
        return SignedPrekey(key_id, public, signature)

    def new_one_time_prekeys(self, count: int = ONE_TIME_BATCH) -> list[OneTimePrekey]:
        made = []
        for _ in range(count):
            secret = nacl.utils.random(KEY_BYTES)
            key_id = self._new_id()
            self.one_time[key_id] = secret
            made.append(OneTimePrekey(key_id, public_of(secret)))
        return made

    def to_json(self) -> dict[str, Any]:
        return {
            "signed": {str(k): _b64(v) for k, v in self.signed.items()},
            "one_time": {str(k): _b64(v) for k, v in self.one_time.items()},
            "next_id": self.next_id,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> PrekeyStore:
        return cls(
            signed={int(k): _unb64(v) for k, v in doc["signed"].items()},
            one_time={int(k): _unb64(v) for k, v in doc["one_time"].items()},
            next_id=int(doc["next_id"]),
        )


# The ratchet ----------------------------------------------------------------------------------


def _associated(initiator: DeviceIdentity, responder: DeviceIdentity) -> bytes:
    """Both identities, initiator first: X3DH's AD, part of every message's AEAD data."""
    fields = []
    for ident in (initiator, responder):
        fields += [
            _wire.text(ident.user_id),
            _wire.text(ident.device_id),
            ident.signing_key,
            ident.exchange_key,
        ]
    return _wire.pack(*fields)


@dataclass
class RatchetSession:
    """One double-ratchet session with one peer device, identified by the initiator's
    ephemeral key (`session_id`). `prekey` (signed prekey id, one-time id or 0) stays set on
    the initiator until the peer first answers, so every message until then can start the
    session at the responder even if earlier ones were lost."""

    session_id: bytes
    associated: bytes
    root_key: bytes
    dh_secret: bytes
    dh_remote: bytes | None
    send_chain: bytes | None
    recv_chain: bytes | None
    send_n: int = 0
    recv_n: int = 0
    previous_n: int = 0
    skipped: dict[tuple[bytes, int], bytes] = field(default_factory=dict)
    prekey: tuple[int, int] | None = None
    old_remote: list[bytes] = field(default_factory=list)  # the peer's earlier ratchet keys

    def to_json(self) -> dict[str, Any]:
        return {
            "session_id": _b64(self.session_id),
            "associated": _b64(self.associated),
            "root_key": _b64(self.root_key),
            "dh_secret": _b64(self.dh_secret),
            "dh_remote": _b64(self.dh_remote) if self.dh_remote else None,
            "send_chain": _b64(self.send_chain) if self.send_chain else None,
            "recv_chain": _b64(self.recv_chain) if self.recv_chain else None,
            "send_n": self.send_n,
            "recv_n": self.recv_n,
            "previous_n": self.previous_n,
            "skipped": [[_b64(dh), n, _b64(k)] for (dh, n), k in self.skipped.items()],
            "prekey": list(self.prekey) if self.prekey else None,
            "old_remote": [_b64(k) for k in self.old_remote],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> RatchetSession:
        def opt(value: Any) -> bytes | None:
            return _unb64(value) if value else None

        return cls(
            session_id=_unb64(d["session_id"]),
            associated=_unb64(d["associated"]),
            root_key=_unb64(d["root_key"]),
            dh_secret=_unb64(d["dh_secret"]),
            dh_remote=opt(d["dh_remote"]),
            send_chain=opt(d["send_chain"]),
            recv_chain=opt(d["recv_chain"]),
            send_n=int(d["send_n"]),
            recv_n=int(d["recv_n"]),
            previous_n=int(d["previous_n"]),
            skipped={(_unb64(dh), int(n)): _unb64(k) for dh, n, k in d["skipped"]},
            prekey=(int(d["prekey"][0]), int(d["prekey"][1])) if d["prekey"] else None,
            old_remote=[_unb64(k) for k in d["old_remote"]],
        )


@dataclass(frozen=True)
class RatchetHeader:
    """The clear part of a v2 pairwise envelope (the server sees it anyway)."""

    sender_user: str
    sender_device: str
    recipient_user: str
    recipient_device: str
    session_id: bytes
    prekey: tuple[int, int] | None  # (signed prekey id, one-time prekey id or 0)
    ratchet_key: bytes
    previous_n: int
    n: int

    def fields(self) -> list[bytes]:
        prekey = (
            _wire.pack(_wire.u32(self.prekey[0]), _wire.u32(self.prekey[1])) if self.prekey else b""
        )
        return [
            _wire.text(self.sender_user),
            _wire.text(self.sender_device),
            _wire.text(self.recipient_user),
            _wire.text(self.recipient_device),
            self.session_id,
            prekey,
            self.ratchet_key,
            _wire.u32(self.previous_n),
            _wire.u32(self.n),
        ]


def parse_ratchet_envelope(envelope: bytes) -> tuple[RatchetHeader, bytes]:
    what = "pairwise envelope"
    f = _wire.open_envelope(envelope, MAGIC, 10, what)
    prekey = None
    if f[5]:
        spk, opk = _wire.unpack(f[5], 2, what)
        prekey = (_wire.to_int(spk, 4, what), _wire.to_int(opk, 4, what))
    header = RatchetHeader(
        sender_user=_wire.from_text(f[0], what),
        sender_device=_wire.from_text(f[1], what),
        recipient_user=_wire.from_text(f[2], what),
        recipient_device=_wire.from_text(f[3], what),
        session_id=_wire.fixed(f[4], KEY_BYTES, what),
        prekey=prekey,
        ratchet_key=_wire.fixed(f[6], KEY_BYTES, what),
        previous_n=_wire.to_int(f[7], 4, what),
        n=_wire.to_int(f[8], 4, what),
    )
    return header, f[9]


def is_ratchet_envelope(data: bytes) -> bool:
    return data[:4] == MAGIC


def initiate(
    own: DeviceKeys,
    bundle: PrekeyBundle,
    *,
    ephemeral_secret: bytes | None = None,
    ratchet_secret: bytes | None = None,
) -> RatchetSession:
    """X3DH as initiator against a claimed bundle (verified here). The secrets are for test
    vectors only; leave them random."""
    bundle.verify()
    ek = ephemeral_secret if ephemeral_secret is not None else nacl.utils.random(KEY_BYTES)
    spk = bundle.signed_prekey.public_key
    dh = x25519(own.exchange_secret, spk)
    dh += x25519(ek, bundle.identity.exchange_key)
    dh += x25519(ek, spk)
    if bundle.one_time_prekey is not None:
        dh += x25519(ek, bundle.one_time_prekey.public_key)
    shared = hkdf(b"\xff" * 32 + dh, salt=b"", info=_X3DH_INFO, length=32)
    ratchet = ratchet_secret if ratchet_secret is not None else nacl.utils.random(KEY_BYTES)
    root, send_chain = root_step(shared, x25519(ratchet, spk))
    otk = bundle.one_time_prekey.key_id if bundle.one_time_prekey else 0
    return RatchetSession(
        session_id=public_of(ek),
        associated=_associated(own.identity(), bundle.identity),
        root_key=root,
        dh_secret=ratchet,
        dh_remote=spk,
        send_chain=send_chain,
        recv_chain=None,
        prekey=(bundle.signed_prekey.key_id, otk),
    )


def respond(
    own: DeviceKeys, prekeys: PrekeyStore, peer: DeviceIdentity, header: RatchetHeader
) -> tuple[RatchetSession, int | None]:
    """X3DH as responder from the first message's header. Returns the session and the
    one-time prekey id it used; the caller deletes that secret once the message opened."""
    if header.prekey is None:
        raise PolicyError("no session with this device and the message does not start one")
    spk_id, otk_id = header.prekey
    spk_secret = prekeys.signed.get(spk_id)
    if spk_secret is None:
        raise PolicyError(f"signed prekey {spk_id} is unknown or expired")
    ek = header.session_id
    dh = x25519(spk_secret, peer.exchange_key)
    dh += x25519(own.exchange_secret, ek)
    dh += x25519(spk_secret, ek)
    if otk_id:
        otk_secret = prekeys.one_time.get(otk_id)
        if otk_secret is None:
            raise ReplayError(f"one-time prekey {otk_id} was used already")
        dh += x25519(otk_secret, ek)
    shared = hkdf(b"\xff" * 32 + dh, salt=b"", info=_X3DH_INFO, length=32)
    session = RatchetSession(
        session_id=ek,
        associated=_associated(peer, own.identity()),
        root_key=shared,
        dh_secret=spk_secret,
        dh_remote=None,
        send_chain=None,
        recv_chain=None,
    )
    return session, (otk_id or None)


def _aad(session: RatchetSession, header: RatchetHeader) -> bytes:
    return _wire.join_signed(_AAD_CONTEXT, [session.associated, *header.fields()])


def _inner(sent_at_ms: int, n: int, plaintext: bytes) -> bytes:
    return _wire.pack(_wire.u64(sent_at_ms), _wire.u32(n), plaintext)


def ratchet_encrypt(
    session: RatchetSession,
    own: DeviceKeys,
    peer: DeviceIdentity,
    plaintext: bytes,
    *,
    sent_at_ms: int | None = None,
) -> bytes:
    """Encrypt the next message of `session` (advances its sending chain)."""
    if session.send_chain is None:
        raise PolicyError("this pairwise session cannot send before the peer spoke")
    session.send_chain, message_key = chain_step(session.send_chain)
    header = RatchetHeader(
        own.user_id,
        own.device_id,
        peer.user_id,
        peer.device_id,
        session.session_id,
        session.prekey,
        public_of(session.dh_secret),
        session.previous_n,
        session.send_n,
    )
    if sent_at_ms is None:
        sent_at_ms = time.time_ns() // 1_000_000
    key, nonce = message_cipher_key(message_key)
    ciphertext = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        _wire.pad(_inner(sent_at_ms, header.n, plaintext)), _aad(session, header), nonce, key
    )
    session.send_n += 1
    return _wire.envelope(MAGIC, *header.fields(), ciphertext)


@dataclass(frozen=True)
class OpenedPairwise:
    header: RatchetHeader
    plaintext: bytes
    sent_at_ms: int


def _skip(state: RatchetSession, until: int) -> None:
    if state.recv_chain is None:
        return
    if until - state.recv_n > MAX_SKIP:
        raise PolicyError(f"pairwise message skips more than {MAX_SKIP} messages")
    assert state.dh_remote is not None
    while state.recv_n < until:
        state.recv_chain, key = chain_step(state.recv_chain)
        state.skipped[(state.dh_remote, state.recv_n)] = key
        state.recv_n += 1
    while len(state.skipped) > MAX_SKIPPED:
        del state.skipped[next(iter(state.skipped))]


def ratchet_decrypt(
    session: RatchetSession, header: RatchetHeader, ciphertext: bytes
) -> tuple[RatchetSession, OpenedPairwise]:
    """Open one message. Returns the advanced session state; `session` itself is not changed,
    so a failed or forged message leaves no trace (the caller stores the returned state)."""
    state = copy.deepcopy(session)
    slot = (header.ratchet_key, header.n)
    key = state.skipped.pop(slot, None)
    if key is None:
        if header.ratchet_key != state.dh_remote:
            if header.ratchet_key in state.old_remote:
                raise ReplayError("pairwise message was already received or is too old")
            _skip(state, header.previous_n)
            if state.dh_remote is not None:
                state.old_remote = [*state.old_remote[-(OLD_REMOTE_KEPT - 1) :], state.dh_remote]
            state.previous_n, state.send_n, state.recv_n = state.send_n, 0, 0
            state.dh_remote = header.ratchet_key
            state.root_key, state.recv_chain = root_step(
                state.root_key, x25519(state.dh_secret, state.dh_remote)
            )
            state.dh_secret = nacl.utils.random(KEY_BYTES)
            state.root_key, state.send_chain = root_step(
                state.root_key, x25519(state.dh_secret, state.dh_remote)
            )
        if header.n < state.recv_n:
            raise ReplayError(f"pairwise message {header.n} was already received")
        _skip(state, header.n)
        assert state.recv_chain is not None
        state.recv_chain, key = chain_step(state.recv_chain)
        state.recv_n += 1
    cipher_key, nonce = message_cipher_key(key)
    try:
        padded = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            ciphertext, _aad(session, header), nonce, cipher_key
        )
    except nacl.exceptions.CryptoError as exc:
        raise TamperedError("pairwise envelope: authentication failed") from exc
    what = "pairwise content"
    sent, counter, plaintext = _wire.unpack(_wire.unpad(padded, what), 3, what)
    if _wire.to_int(counter, 4, what) != header.n:
        raise TamperedError("pairwise envelope: counter inside differs from its header")
    state.prekey = None  # the peer answered or this side responded: no need to repeat it
    opened = OpenedPairwise(header, plaintext, _wire.to_int(sent, 8, what))
    return state, opened


@dataclass
class RatchetChannel:
    """All sessions with one peer device; sends on the newest, opens on whichever the message
    names. Replays fail: each message key is derived and used once, then forgotten."""

    own: DeviceKeys
    peer: DeviceIdentity
    sessions: dict[bytes, RatchetSession] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Whether a session can send (else claim the peer's prekeys and `start`)."""
        return any(s.send_chain is not None for s in self.sessions.values())

    def start(self, bundle: PrekeyBundle) -> None:
        if (bundle.identity.user_id, bundle.identity.device_id) != (
            self.peer.user_id,
            self.peer.device_id,
        ) or bundle.identity.signing_key != self.peer.signing_key:
            raise IdentityError("prekey bundle of another device than this channel's peer")
        self._keep(initiate(self.own, bundle))

    def _keep(self, session: RatchetSession) -> None:
        self.sessions.pop(session.session_id, None)
        self.sessions[session.session_id] = session  # most recently used last
        while len(self.sessions) > MAX_SESSIONS:
            del self.sessions[next(iter(self.sessions))]

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt on the most recently used session that can send."""
        for session in reversed(self.sessions.values()):
            if session.send_chain is not None:
                return ratchet_encrypt(session, self.own, self.peer, plaintext)
        raise PolicyError("no pairwise session that can send: claim the peer's prekeys first")

    def decrypt(self, envelope: bytes, prekeys: PrekeyStore) -> OpenedPairwise:
        """Open an envelope from the peer; starts a responder session from a first message.
        State (sessions, used one-time prekeys) changes only when the message authenticated."""
        header, ciphertext = parse_ratchet_envelope(envelope)
        if (header.sender_user, header.sender_device) != (self.peer.user_id, self.peer.device_id):
            raise TamperedError("pairwise envelope: sender does not match the expected device")
        if (header.recipient_user, header.recipient_device) != (
            self.own.user_id,
            self.own.device_id,
        ):
            raise TamperedError("pairwise envelope: addressed to another device")
        session = self.sessions.get(header.session_id)
        used_otk = None
        if session is None:
            session, used_otk = respond(self.own, prekeys, self.peer, header)
        state, opened = ratchet_decrypt(session, header, ciphertext)
        if used_otk is not None:
            del prekeys.one_time[used_otk]  # a one-time prekey starts one session only
        self._keep(state)
        return opened

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.sessions.values()]

    def load(self, sessions: list[Mapping[str, Any]]) -> None:
        """Restore saved sessions for receiving only: the saved sending chain may lag behind
        what was sent after the save, and reusing a message key would reuse its nonce. A
        session sends again after the peer's next ratchet step; until then a new one starts."""
        for d in sessions:
            session = RatchetSession.from_json(d)
            session.send_chain = None
            self._keep(session)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError as exc:
        raise MalformedError("state field is not base64") from exc
