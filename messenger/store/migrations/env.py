"""Alembic environment: runs on the connection handed over by messenger.store.schema."""

from __future__ import annotations

from alembic import context

from messenger.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the package always passes a connection
    raise RuntimeError(
        "messenger migrations run through messenger.store.schema, not the alembic CLI"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    transaction_per_migration=True,
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
