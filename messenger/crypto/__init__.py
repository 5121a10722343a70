"""End-to-end encryption for the messenger, on PyNaCl: pure functions and state, bytes in/out.

Nothing here talks to the network; `messenger.client.e2e` drives it. The protocol, threat model
and test vectors are in docs/crypto.md.
"""

from messenger.crypto._attachments import AttachmentKey, decrypt_attachment, encrypt_attachment
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
    "AuditSeal",
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
    "decrypt_attachment",
    "decrypt_pairwise",
    "encrypt_attachment",
    "encrypt_pairwise",
    "is_distribution",
    "is_group_message",
    "is_key_request",
    "load_device_keys",
    "open_audit_seal",
    "open_state",
    "open_with_password",
    "parse_header",
    "safety_number",
    "save_device_keys",
    "seal_state",
    "seal_with_password",
    "user_fingerprint",
    "write_private_file",
]
