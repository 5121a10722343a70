"""Tenants keep their retention within bounds the instance administrator sets (1-365 days).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("retention_min_days", sa.Integer(), nullable=False, server_default="1"),
    )
    op.add_column(
        "tenants",
        sa.Column("retention_max_days", sa.Integer(), nullable=False, server_default="365"),
    )
    # A retention set before the bounds existed stays as it was: the bounds widen to hold it.
    op.execute("UPDATE tenants SET retention_max_days = retention_days WHERE retention_days > 365")


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch_op:
        batch_op.drop_column("retention_max_days")
        batch_op.drop_column("retention_min_days")
