"""Alembic environment: migrates the connection handed over by tiermeet.store.migrate.

``render_as_batch`` lets SQLite alter tables by copy-and-move, which it needs for most
column changes.
"""

from alembic import context
from sqlmodel import SQLModel

import tiermeet.store.models  # noqa: F401  - registers the tables on SQLModel.metadata
import tiermeet.store.models_sync  # noqa: F401  - and the sync tables

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    """Run against the connection in ``config.attributes['connection']``."""
    connection = config.attributes["connection"]
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
