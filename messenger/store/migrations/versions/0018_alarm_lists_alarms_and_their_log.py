"""Alarm lists, alarms, their recipients, sealed keys, log and attachments.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alarm_lists",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("repeat_seconds", sa.Integer(), nullable=False),
        sa.Column("escalation_seconds", sa.Integer(), nullable=False),
        sa.Column("ack_needed", sa.Integer(), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_alarm_lists_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_lists")),
    )
    op.create_index(op.f("ix_alarm_lists_tenant_id"), "alarm_lists", ["tenant_id"], unique=False)
    op.create_index("ix_alarm_lists_tenant_name", "alarm_lists", ["tenant_id", "name"], unique=True)
    op.create_table(
        "alarm_list_members",
        sa.Column("list_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["alarm_lists.id"],
            name=op.f("fk_alarm_list_members_list_id_alarm_lists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_alarm_list_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "user_id", name=op.f("pk_alarm_list_members")),
    )
    op.create_index(
        op.f("ix_alarm_list_members_user_id"), "alarm_list_members", ["user_id"], unique=False
    )
    op.create_table(
        "alarms",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("list_id", sa.String(length=32), nullable=False),
        sa.Column("sender_user_id", sa.String(length=32), nullable=False),
        sa.Column("sender_device_id", sa.String(length=64), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("tier_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("round_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("log_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["alarm_lists.id"],
            name=op.f("fk_alarms_list_id_alarm_lists"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_alarms_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    op.create_index(op.f("ix_alarms_created_at"), "alarms", ["created_at"], unique=False)
    op.create_index(op.f("ix_alarms_list_id"), "alarms", ["list_id"], unique=False)
    op.create_index(op.f("ix_alarms_next_due_at"), "alarms", ["next_due_at"], unique=False)
    op.create_index(op.f("ix_alarms_sender_user_id"), "alarms", ["sender_user_id"], unique=False)
    op.create_index(op.f("ix_alarms_tenant_id"), "alarms", ["tenant_id"], unique=False)
    op.create_table(
        "alarm_attachments",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner_user_id", sa.String(length=32), nullable=False),
        sa.Column("alarm_id", sa.String(length=32), nullable=True),
        sa.Column("level", sa.String(length=20), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
            name=op.f("fk_alarm_attachments_alarm_id_alarms"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_user_id"],
            ["users.id"],
            name=op.f("fk_alarm_attachments_owner_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarm_attachments")),
    )
    op.create_index(
        op.f("ix_alarm_attachments_alarm_id"), "alarm_attachments", ["alarm_id"], unique=False
    )
    op.create_index(
        op.f("ix_alarm_attachments_created_at"), "alarm_attachments", ["created_at"], unique=False
    )
    op.create_index(
        op.f("ix_alarm_attachments_owner_user_id"),
        "alarm_attachments",
        ["owner_user_id"],
        unique=False,
    )
    op.create_table(
        "alarm_keys",
        sa.Column("alarm_id", sa.String(length=32), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
            name=op.f("fk_alarm_keys_alarm_id_alarms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alarm_id", "device_id", name=op.f("pk_alarm_keys")),
    )
    op.create_index(op.f("ix_alarm_keys_user_id"), "alarm_keys", ["user_id"], unique=False)
    op.create_table(
        "alarm_log",
        sa.Column("alarm_id", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
            name=op.f("fk_alarm_log_alarm_id_alarms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alarm_id", "seq", name=op.f("pk_alarm_log")),
    )
    op.create_table(
        "alarm_recipients",
        sa.Column("alarm_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("tier", sa.Integer(), nullable=False),
        sa.Column("rounds", sa.Integer(), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("declined_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["alarm_id"],
            ["alarms.id"],
            name=op.f("fk_alarm_recipients_alarm_id_alarms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alarm_id", "user_id", name=op.f("pk_alarm_recipients")),
    )
    op.create_index(
        op.f("ix_alarm_recipients_user_id"), "alarm_recipients", ["user_id"], unique=False
    )


def downgrade() -> None:
    for table in (
        "alarm_recipients",
        "alarm_log",
        "alarm_keys",
        "alarm_attachments",
        "alarms",
        "alarm_list_members",
        "alarm_lists",
    ):
        op.drop_table(table)
