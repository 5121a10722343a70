"""Conversation names and display names are sealed at rest: their columns become unbounded text.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing plain names stay readable; the server seals them when it next starts.
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("display_name", type_=sa.Text(), existing_type=sa.String(200))
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.alter_column("name", type_=sa.Text(), existing_type=sa.String(200))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch_op:
        batch_op.alter_column("name", type_=sa.String(200), existing_type=sa.Text())
    with op.batch_alter_table("users") as batch_op:
        batch_op.alter_column("display_name", type_=sa.String(200), existing_type=sa.Text())
