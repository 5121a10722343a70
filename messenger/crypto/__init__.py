"""End-to-end encryption for the messenger, on PyNaCl: pure functions and state, bytes in/out.

Nothing here talks to the network; `messenger.client.e2e` drives it. The protocol, threat model
and test vectors are in docs/crypto.md.
"""

from messenger.crypto._attachments import AttachmentKey, decrypt_attachment, encrypt_attachment
from messenger.crypto._audit import Partial as AuditPartial
from messenger.crypto._audit import Share as AuditShare
from messenger.crypto._audit import (
    audit_key_statement,
    audit_request_statement,
    audit_seal_statement,
    combine_partials,
    combine_shares,
    pack_partials,
    partial_decrypt,
    split_secret,
    unpack_partials,
)
from messenger.crypto._audit import open_with_secret as open_sealed_with_secret
from messenger.crypto._audit import open_with_shared as open_sealed
from messenger.crypto._audit import public_key as audit_public_key
from messenger.crypto._audit import random_scalar as new_audit_secret
from messenger.crypto._audit import seal as seal_to_audit_key
from messenger.crypto._errors import (
    CryptoError,
    IdentityError,
    KeyStoreError,
    MalformedError,
    PolicyError,
    ReplayError,
    SignatureError,
    TamperedError,
    UnknownSenderKey,
    WrongPasswordError,
)
from messenger.crypto._identity import (
    DeviceIdentity,
    DeviceKeys,
    safety_number,
    user_fingerprint,
    verify_signature,
)
from messenger.crypto._keystore import (
    load_device_keys,
    open_state,
    open_with_password,
    save_device_keys,
    seal_state,
    seal_with_password,
    write_private_file,
)
from messenger.crypto._pairwise import (
    PairwiseChannel,
    PairwiseHeader,
    decrypt_pairwise,
    encrypt_pairwise,
    parse_header,
)
from messenger.crypto._replay import ReplayWindow
from messenger.crypto._senderkeys import (
    MAX_KEY_AGE_SECONDS,
    MAX_MESSAGES_PER_KEY,
    AuditSeal,
    GroupEnvelope,
    GroupHeader,
    InboundSenderKey,
    OpenedMessage,
    OutboundSenderKey,
    SenderKeyDistribution,
    SenderKeyRecord,
    SenderKeyRequest,
    SenderKeyStore,
    is_distribution,
    is_group_message,
    is_key_request,
    open_audit_seal,
)

__all__ = [
    "MAX_KEY_AGE_SECONDS",
    "MAX_MESSAGES_PER_KEY",
    "AttachmentKey",
    "AuditPartial",
    "AuditSeal",
    "AuditShare",
    "CryptoError",
    "DeviceIdentity",
    "DeviceKeys",
    "GroupEnvelope",
    "GroupHeader",
    "IdentityError",
    "InboundSenderKey",
    "KeyStoreError",
    "MalformedError",
    "OpenedMessage",
    "OutboundSenderKey",
    "PairwiseChannel",
    "PairwiseHeader",
    "PolicyError",
    "ReplayError",
    "ReplayWindow",
    "SenderKeyDistribution",
    "SenderKeyRecord",
    "SenderKeyRequest",
    "SenderKeyStore",
    "SignatureError",
    "TamperedError",
    "UnknownSenderKey",
    "WrongPasswordError",
    "audit_key_statement",
    "audit_public_key",
    "audit_request_statement",
    "audit_seal_statement",
    "combine_partials",
    "combine_shares",
    "decrypt_attachment",
    "decrypt_pairwise",
    "encrypt_attachment",
    "encrypt_pairwise",
    "is_distribution",
    "is_group_message",
    "is_key_request",
    "load_device_keys",
    "new_audit_secret",
    "open_audit_seal",
    "open_sealed",
    "open_sealed_with_secret",
    "open_state",
    "open_with_password",
    "pack_partials",
    "parse_header",
    "partial_decrypt",
    "safety_number",
    "save_device_keys",
    "seal_state",
    "seal_to_audit_key",
    "seal_with_password",
    "split_secret",
    "unpack_partials",
    "user_fingerprint",
    "verify_signature",
    "write_private_file",
]
