"""The messenger's tables (SQLAlchemy 2 declarative).

The schema is shaped for what comes later without building it now: `users.kind` leaves room for
bots, `events.kind` for alarms and panic (they are conversation events with their own payload),
`tenants.audit_enabled` for four-eyes audit, and tenant policy columns for the admin portal.
Message content is ciphertext the server cannot read; the server never stores plaintext, and
the names it must read (conversations, display names) are sealed at rest with a server key.
Alarms have tables of their own (`alarm_*`, rules in `messenger.store.alarms`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from messenger.store.sealing import SealedText

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

GIB = 1024**3
DEFAULT_USER_QUOTA = GIB
EXTENSION_STEP = 500 * 1000**3
DEFAULT_RETENTION_DAYS = 30
MAX_GROUP_MEMBERS = 1250
MAX_KEY_ID = 2**32 - 1  # prekey ids are 32-bit in the pairwise envelope


def new_id() -> str:
    return uuid.uuid4().hex


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes on every backend (SQLite returns naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(dt.UTC)

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Tenant(Base):
    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    retention_days: Mapped[int] = mapped_column(Integer, default=DEFAULT_RETENTION_DAYS)
    user_quota_bytes: Mapped[int] = mapped_column(BigInteger, default=DEFAULT_USER_QUOTA)
    storage_extension_steps: Mapped[int] = mapped_column(Integer, default=0)
    storage_used: Mapped[int] = mapped_column(BigInteger, default=0)
    audit_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime]
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The instance administrator's bounds for the tenant's retention_days.
    retention_min_days: Mapped[int] = mapped_column(Integer, default=1)
    retention_max_days: Mapped[int] = mapped_column(Integer, default=365)


class Domain(Base):
    """An e-mail domain; it belongs to exactly one tenant and decides a user's tenant."""

    __tablename__ = "domains"
    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)


class TenantPartner(Base):
    """One tenant admin's consent to talk to another tenant; a pair is open only both ways."""

    __tablename__ = "tenant_partners"
    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    partner_tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[dt.datetime]


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    # Sealed at rest (messenger.store.sealing): a database dump shows no names.
    display_name: Mapped[str] = mapped_column(SealedText(), default="")
    phone: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(20), default="user")
    kind: Mapped[str] = mapped_column(String(20), default="person")
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    storage_used: Mapped[int] = mapped_column(BigInteger, default=0)
    quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime]
    # Set when the account was deleted: its personal data is gone and it cannot come back.
    deleted_at: Mapped[dt.datetime | None]
    # Cross-signing: the user's master public key (base64) and its self-signature.
    master_key: Mapped[str | None] = mapped_column(String(64))
    master_signature: Mapped[str | None] = mapped_column(Text)


class Invitation(Base):
    __tablename__ = "invitations"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]
    # "invite" sets the first password, "reset" a forgotten one.
    purpose: Mapped[str] = mapped_column(String(20), default="invite")


class Device(Base):
    __tablename__ = "devices"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    signing_key: Mapped[str] = mapped_column(String(64))
    exchange_key: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    to_device_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[dt.datetime]
    removed_at: Mapped[dt.datetime | None]
    # The signed prekey that starts pairwise sessions with this device (base64, key id).
    signed_prekey_id: Mapped[int | None] = mapped_column(BigInteger)
    signed_prekey: Mapped[str | None] = mapped_column(String(64))
    signed_prekey_signature: Mapped[str | None] = mapped_column(Text)
    # Cross-signing: a master key's signature over the device; `approved_by` is the user whose
    # master key made it (the owner, or a tenant administrator on the recovery path).
    approval: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[str | None] = mapped_column(String(32))


class OneTimePrekey(Base):
    """A published one-time prekey; a claim hands it out once and deletes it."""

    __tablename__ = "one_time_prekeys"
    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    key_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))


class Session(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[str | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class PortalSession(Base):
    """An administrator's browser session of the admin portal (cookie token, CSRF token);
    it ends after `portal_idle` without a request or `portal_lifetime` after login."""

    __tablename__ = "portal_sessions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime]
    seen_at: Mapped[dt.datetime]
    revoked_at: Mapped[dt.datetime | None]


class Conversation(Base):
    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(SealedText(), default="")  # sealed at rest
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Set once a member of another tenant joins; only such conversations need the tenant-pair
    # check on every send (existing rows start as True, the safe side).
    cross_tenant: Mapped[bool] = mapped_column(Boolean, default=False, server_default=true())
    created_at: Mapped[dt.datetime]
    # The seq of the latest membership change: a sender that has not seen it must not send.
    membership_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


class Membership(Base):
    """A user's place in a conversation; `left_seq` keeps history visible up to a removal."""

    __tablename__ = "memberships"
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(20), default="member")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    joined_seq: Mapped[int] = mapped_column(BigInteger)
    left_seq: Mapped[int | None] = mapped_column(BigInteger)


class Event(Base):
    """One entry of a conversation's gap-free sequence: a message or a membership change."""

    __tablename__ = "events"
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    sender_user_id: Mapped[str | None] = mapped_column(String(32))
    sender_device_id: Mapped[str | None] = mapped_column(String(64))
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class Transaction(Base):
    """Client transaction ids: a repeated id returns the stored first result (exactly once)."""

    __tablename__ = "transactions"
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    txn_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    result: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class ToDevice(Base):
    __tablename__ = "to_device"
    device_id: Mapped[str] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    sender_user_id: Mapped[str] = mapped_column(String(32))
    sender_device_id: Mapped[str] = mapped_column(String(64))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class Receipt(Base):
    __tablename__ = "receipts"
    conversation_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    created_at: Mapped[dt.datetime]
    __table_args__ = (Index("ix_receipts_conversation_created", "conversation_id", "created_at"),)


class Attachment(Base):
    """An encrypted blob; the bytes live in the blob store under the id."""

    __tablename__ = "attachments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    owner_user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    # The message that first carried it: members see it only if that lies in their window.
    message_seq: Mapped[int | None] = mapped_column(BigInteger)


# -- four-eyes audit -------------------------------------------------------------------------


class AuditKey(Base):
    """A tenant's audit public key, signed by a tenant admin's device; the secret exists only
    as shares (`AuditShare`), each sealed to one auditor's device."""

    __tablename__ = "audit_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(String(64))
    epoch: Mapped[int] = mapped_column(BigInteger)
    threshold: Mapped[int] = mapped_column(Integer)
    admin_user_id: Mapped[str] = mapped_column(String(32))
    admin_device_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime]
    retired_at: Mapped[dt.datetime | None]
    # Two admins publishing at once: one epoch, one key.
    __table_args__ = (Index("ix_audit_keys_tenant_epoch", "tenant_id", "epoch", unique=True),)


class AuditShare(Base):
    __tablename__ = "audit_shares"
    key_id: Mapped[str] = mapped_column(
        ForeignKey("audit_keys.id", ondelete="CASCADE"), primary_key=True
    )
    auditor_user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    auditor_device_id: Mapped[str] = mapped_column(String(64))
    x: Mapped[int] = mapped_column(Integer)
    sealed_share: Mapped[bytes] = mapped_column(LargeBinary)


class AuditSealRow(Base):
    """A sender key sealed to the audit key, deposited and signed by the sender's device."""

    __tablename__ = "audit_seals"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    audit_key_id: Mapped[str] = mapped_column(ForeignKey("audit_keys.id", ondelete="CASCADE"))
    sender_user_id: Mapped[str] = mapped_column(String(32))
    sender_device_id: Mapped[str] = mapped_column(String(64))
    chain_key_id: Mapped[str] = mapped_column(String(64))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    signature: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)


class AuditRequest(Base):
    __tablename__ = "audit_requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    conversation_id: Mapped[str] = mapped_column(String(32))
    audit_key_id: Mapped[str] = mapped_column(ForeignKey("audit_keys.id", ondelete="CASCADE"))
    range_start: Mapped[dt.datetime]
    range_end: Mapped[dt.datetime]
    reason: Mapped[str] = mapped_column(SealedText())
    requester_user_id: Mapped[str] = mapped_column(String(32))
    requester_device_id: Mapped[str] = mapped_column(String(64))
    requester_signature: Mapped[str] = mapped_column(Text)
    # pending -> ready (export built) -> downloaded; or rejected
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime]


class AuditApproval(Base):
    """One auditor's answer: its partial decryptions, sealed to the requester's device."""

    __tablename__ = "audit_approvals"
    request_id: Mapped[str] = mapped_column(
        ForeignKey("audit_requests.id", ondelete="CASCADE"), primary_key=True
    )
    auditor_user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    partials: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime]


class AuditExport(Base):
    """The export of an approved request, sealed to the requester; handed out once."""

    __tablename__ = "audit_exports"
    request_id: Mapped[str] = mapped_column(
        ForeignKey("audit_requests.id", ondelete="CASCADE"), primary_key=True
    )
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime]
    downloaded_at: Mapped[dt.datetime | None]


class AuditLogEntry(Base):
    """The append-only, hash-chained audit log (messenger.audit.log)."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(32), index=True)
    at: Mapped[dt.datetime]
    actor_user_id: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class Bot(Base):
    """A tenant's bot: a user of kind "bot" with scopes, a send rate and maybe a webhook.

    Its token is a session of that user (revoked and replaced on rotation). With a webhook,
    `cursors` is how far its events were queued per conversation and `lease_until` lets one
    node at a time queue them.
    """

    __tablename__ = "bots"
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    rate_per_minute: Mapped[int] = mapped_column(Integer, default=60)
    webhook_url: Mapped[str | None] = mapped_column(String(2000))
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    cursors: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    lease_until: Mapped[dt.datetime | None]
    created_by: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime]


class WebhookDelivery(Base):
    """A batch of a bot's events for its webhook: pending (due at `next_at`), delivered, dead
    (every attempt failed; re-drivable) or dropped (the bot was deleted)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    bot_user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[dt.datetime]
    last_error: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[dt.datetime]
    delivered_at: Mapped[dt.datetime | None]
    __table_args__ = (Index("ix_webhook_deliveries_state_next_at", "state", "next_at"),)


class AlarmList(Base):
    """Who an alarm reaches, tier by tier: tier 1 first, the next after the escalation timeout.

    At most one list per tenant is its emergency list, which the panic button alarms.
    """

    __tablename__ = "alarm_lists"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    repeat_seconds: Mapped[int] = mapped_column(Integer)
    escalation_seconds: Mapped[int] = mapped_column(Integer)
    # Acknowledgements that close an alarm of this list.
    ack_needed: Mapped[int] = mapped_column(Integer, default=1)
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime]
    __table_args__ = (Index("ix_alarm_lists_tenant_name", "tenant_id", "name", unique=True),)


class AlarmListMember(Base):
    __tablename__ = "alarm_list_members"
    list_id: Mapped[str] = mapped_column(
        ForeignKey("alarm_lists.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    tier: Mapped[int] = mapped_column(Integer, default=1)
    # "admin": sees every alarm of the list live and may end it.
    role: Mapped[str] = mapped_column(String(20), default="member")


class Alarm(Base):
    """One raised alarm: clear level and state, the content as ciphertext only.

    `next_due_at` is when the scheduler must look at it again (a repeat or an escalation);
    a node works on it only under a lease (`lease_owner` until `lease_until`).
    """

    __tablename__ = "alarms"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    list_id: Mapped[str] = mapped_column(
        ForeignKey("alarm_lists.id", ondelete="CASCADE"), index=True
    )
    sender_user_id: Mapped[str] = mapped_column(String(32), index=True)
    sender_device_id: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    tier: Mapped[int] = mapped_column(Integer, default=0)
    tier_started_at: Mapped[dt.datetime | None]
    round_at: Mapped[dt.datetime | None]
    next_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[dt.datetime | None]
    log_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    closed_at: Mapped[dt.datetime | None]


class AlarmRecipient(Base):
    """One list member's part in an alarm: when it was alarmed, and how it answered."""

    __tablename__ = "alarm_recipients"
    alarm_id: Mapped[str] = mapped_column(
        ForeignKey("alarms.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)
    tier: Mapped[int] = mapped_column(Integer)
    rounds: Mapped[int] = mapped_column(Integer, default=0)
    notified_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    seen_at: Mapped[dt.datetime | None]
    acknowledged_at: Mapped[dt.datetime | None]
    declined_at: Mapped[dt.datetime | None]
    decline_reason: Mapped[str | None] = mapped_column(Text)


class AlarmKey(Base):
    """The alarm's content key sealed pairwise to one recipient device (opaque to the server)."""

    __tablename__ = "alarm_keys"
    alarm_id: Mapped[str] = mapped_column(
        ForeignKey("alarms.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)


class AlarmLog(Base):
    """Every state transition and answer of an alarm, numbered per alarm."""

    __tablename__ = "alarm_log"
    alarm_id: Mapped[str] = mapped_column(
        ForeignKey("alarms.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    state: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime]


class AlarmAttachment(Base):
    """An encrypted attachment of an alarm (a voice message); bytes in the blob store."""

    __tablename__ = "alarm_attachments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    alarm_id: Mapped[str | None] = mapped_column(
        ForeignKey("alarms.id", ondelete="CASCADE"), index=True
    )
    level: Mapped[str] = mapped_column(String(20))
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
