"""Alembic migrations for the inventory, packaged with certvigil and run programmatically."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from certvigil.store.engine import WRITE_OPTION

MIGRATIONS_DIR = Path(__file__).resolve().parent
"""The Alembic script directory (``env.py``, ``versions/``)."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at the packaged scripts.

    Args:
        connection: The connection ``env.py`` migrates through; ``None`` for commands
            that need no database (``revision`` without autogenerate, ``heads``).

    Returns:
        The configuration, with no ``alembic.ini`` needed.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision id among the packaged migrations."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, ``None`` for a database never migrated."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(engine: Engine) -> None:
    """Brings the database schema up to the newest revision; does nothing when it is there.

    Safe when several processes open a new database at once: the upgrade runs under
    the database's write lock (SQLite) or an advisory lock (PostgreSQL), and each
    process looks at the revision again once it holds the lock.

    Args:
        engine: The inventory engine (see ``certvigil.store.engine``).
    """
    head = head_revision()
    if current_revision(engine) == head:
        return
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
            if MigrationContext.configure(connection).get_current_revision() == head:
                return
            # Alembic runs inside the transaction already open on this connection.
            command.upgrade(alembic_config(connection), "head")


_MIGRATION_LOCK_ID = 0x63657274
"""PostgreSQL advisory lock key held while migrating ("cert" in ASCII)."""
