"""Alembic environment, driven from code (engine.store.database.alembic_config): no alembic.ini."""

from __future__ import annotations

from alembic import context

from engine.store.database import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - offline SQL generation is not used
    raise RuntimeError("run migrations through engine.store.database.upgrade (it passes a connection)")

context.configure(connection=connection, target_metadata=target_metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
