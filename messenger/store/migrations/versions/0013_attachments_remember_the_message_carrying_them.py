"""Attachments remember the message that carries them (late joiners see only their window).

Existing attachments get the sequence number of the first message naming them.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("attachments", sa.Column("message_seq", sa.BigInteger(), nullable=True))
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT conversation_id, seq, payload FROM events "
            "WHERE kind = 'message' ORDER BY conversation_id, seq"
        )
    )
    for conversation_id, seq, payload in rows.fetchall():
        data = json.loads(payload) if isinstance(payload, str) else (payload or {})
        for attachment_id in data.get("attachment_ids", []):
            bind.execute(
                sa.text(
                    "UPDATE attachments SET message_seq = :seq WHERE id = :id "
                    "AND conversation_id = :cid AND message_seq IS NULL"
                ),
                {"seq": seq, "id": attachment_id, "cid": conversation_id},
            )


def downgrade() -> None:
    with op.batch_alter_table("attachments") as batch_op:
        batch_op.drop_column("message_seq")
