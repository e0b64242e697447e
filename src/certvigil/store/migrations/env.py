"""Alembic environment: migrates through the connection certvigil hands it."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from certvigil.store.migrations import include_object_for
from certvigil.store.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=include_object_for(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "certvigil migrations run through certvigil.store.migrations.upgrade_to_head"
        )
    _run(connection)


_main()
