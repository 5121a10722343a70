"""Devices publish a signed prekey and one-time prekeys that start pairwise sessions.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("signed_prekey_id", sa.BigInteger(), nullable=True))
    op.add_column("devices", sa.Column("signed_prekey", sa.String(64), nullable=True))
    op.add_column("devices", sa.Column("signed_prekey_signature", sa.Text(), nullable=True))
    op.create_table(
        "one_time_prekeys",
        sa.Column(
            "device_id",
            sa.String(64),
            sa.ForeignKey("devices.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("key_id", sa.BigInteger(), primary_key=True),
        sa.Column("public_key", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("one_time_prekeys")
    with op.batch_alter_table("devices") as batch_op:
        batch_op.drop_column("signed_prekey_signature")
        batch_op.drop_column("signed_prekey")
        batch_op.drop_column("signed_prekey_id")
