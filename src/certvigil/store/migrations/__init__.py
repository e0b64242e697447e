"""Alembic migrations for the inventory, packaged with certvigil and run programmatically."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

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

    Args:
        engine: The inventory engine (see ``certvigil.store.engine``).
    """
    if current_revision(engine) == head_revision():
        return
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), "head")
        connection.commit()
