"""Conversations remember the seq of their latest membership change.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "conversations",
        sa.Column("membership_seq", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.execute(
        "UPDATE conversations SET membership_seq = COALESCE((SELECT MAX(events.seq) FROM events"
        " WHERE events.conversation_id = conversations.id AND events.kind = 'membership'), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_column("membership_seq")
