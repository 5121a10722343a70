"""The messenger's tables (SQLAlchemy 2 declarative).

The schema is shaped for what comes later without building it now: `users.kind` leaves room for
bots, `events.kind` for alarms and panic (they are conversation events with their own payload),
`tenants.audit_enabled` for four-eyes audit, and tenant policy columns for the admin portal.
Message content is ciphertext the server cannot read; the server never stores plaintext.
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
    display_name: Mapped[str] = mapped_column(String(200), default="")
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


class Conversation(Base):
    __tablename__ = "conversations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200), default="")
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
