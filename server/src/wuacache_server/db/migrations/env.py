"""Alembic environment of the server's database.

Migrations run through :func:`wuacache_server.db.engine.migrate`, which opens
the connection (and its transaction) and hands it over here.
"""

from __future__ import annotations

from alembic import context

from wuacache_server.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("migrations need a connection: run them with `wuacache-server migrate`")

# render_as_batch: SQLite alters tables by "move and copy" (batch operations).
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
