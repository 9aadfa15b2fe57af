"""Alembic environment: run with a connection handed over by :mod:`rxvault.server._db`."""

from __future__ import annotations

from alembic import context

from rxvault.server._models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only through rxvault.server._db
    raise RuntimeError("run migrations with `rxvault server migrate`")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
