"""Cross-signing: users publish a master key; devices carry the master-key approval.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("master_key", sa.String(64), nullable=True))
    op.add_column("users", sa.Column("master_signature", sa.Text(), nullable=True))
    op.add_column("devices", sa.Column("approval", sa.Text(), nullable=True))
    op.add_column("devices", sa.Column("approved_by", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("devices") as batch_op:
        batch_op.drop_column("approved_by")
        batch_op.drop_column("approval")
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("master_signature")
        batch_op.drop_column("master_key")
