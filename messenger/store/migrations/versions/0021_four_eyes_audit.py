"""Four-eyes audit: audit keys and their shares, deposited seals, requests, approvals, exports
and the hash-chained audit log.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "audit_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(32),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("public_key", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("admin_user_id", sa.String(32), nullable=False),
        sa.Column("admin_device_id", sa.String(64), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("retired_at", TS, nullable=True),
    )
    op.create_index("ix_audit_keys_tenant_epoch", "audit_keys", ["tenant_id", "epoch"], unique=True)
    op.create_table(
        "audit_shares",
        sa.Column(
            "key_id",
            sa.String(32),
            sa.ForeignKey("audit_keys.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "auditor_user_id",
            sa.String(32),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
        sa.Column("auditor_device_id", sa.String(64), nullable=False),
        sa.Column("x", sa.Integer(), nullable=False),
        sa.Column("sealed_share", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "audit_seals",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "conversation_id",
            sa.String(32),
            sa.ForeignKey("conversations.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "audit_key_id",
            sa.String(32),
            sa.ForeignKey("audit_keys.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("sender_user_id", sa.String(32), nullable=False),
        sa.Column("sender_device_id", sa.String(64), nullable=False),
        sa.Column("chain_key_id", sa.String(64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False, index=True),
    )
    op.create_table(
        "audit_requests",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.String(32),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("conversation_id", sa.String(32), nullable=False),
        sa.Column(
            "audit_key_id",
            sa.String(32),
            sa.ForeignKey("audit_keys.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("range_start", TS, nullable=False),
        sa.Column("range_end", TS, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requester_user_id", sa.String(32), nullable=False),
        sa.Column("requester_device_id", sa.String(64), nullable=False),
        sa.Column("requester_signature", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "audit_approvals",
        sa.Column(
            "request_id",
            sa.String(32),
            sa.ForeignKey("audit_requests.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("auditor_user_id", sa.String(32), primary_key=True),
        sa.Column("partials", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "audit_exports",
        sa.Column(
            "request_id",
            sa.String(32),
            sa.ForeignKey("audit_requests.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("sealed", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("downloaded_at", TS, nullable=True),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("tenant_id", sa.String(32), nullable=False, index=True),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor_user_id", sa.String(32), nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "audit_log",
        "audit_exports",
        "audit_approvals",
        "audit_requests",
        "audit_seals",
        "audit_shares",
        "audit_keys",
    ):
        op.drop_table(table)
