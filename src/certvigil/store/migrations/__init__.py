"""Alembic migrations for the inventory, packaged with certvigil and run programmatically.

Opening a store that is already current (every command but the first after an upgrade)
reads the ``alembic_version`` row with one query and compares it with ``HEAD_REVISION``;
Alembic itself, and the parsing of every script, is imported only when there is
something to migrate (about a tenth of a second of each command's start-up).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, inspect, text

from certvigil.store.engine import WRITE_OPTION
from certvigil.store.models import ONLY_ON_DIALECT

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent
"""The Alembic script directory (``env.py``, ``versions/``)."""

HEAD_REVISION = "0017"
"""The newest migration's revision id; a test holds it equal to the scripts' head."""

_VERSION_TABLE = "alembic_version"


def include_object_for(dialect_name: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """Alembic's ``include_object`` hook for one database: leaves out schema objects the
    models declare for another database only (``info[models.ONLY_ON_DIALECT]``)."""

    def include(obj: Any, _name: str | None, _type: str, _reflected: bool, _other: Any) -> bool:
        only_on = getattr(obj, "info", {}).get(ONLY_ON_DIALECT)
        return only_on is None or only_on == dialect_name

    return include


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration pointing at the packaged scripts.

    Args:
        connection: The connection ``env.py`` migrates through; ``None`` for commands
            that need no database (``revision`` without autogenerate, ``heads``).

    Returns:
        The configuration, with no ``alembic.ini`` needed.
    """
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision id among the packaged migration scripts (parsed by Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, ``None`` for a database never migrated."""
    with engine.connect() as connection:
        return _revision_of(connection)


def _revision_of(connection: Connection) -> str | None:
    if not inspect(connection).has_table(_VERSION_TABLE):
        return None
    row = connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).first()
    return str(row[0]) if row is not None else None


def upgrade_to_head(engine: Engine) -> None:
    """Brings the database schema up to the newest revision; does nothing when it is there.

    Safe when several processes open a new database at once: the upgrade runs under
    the database's write lock (SQLite) or an advisory lock (PostgreSQL), and each
    process looks at the revision again once it holds the lock.

    Args:
        engine: The inventory engine (see ``certvigil.store.engine``).
    """
    if current_revision(engine) == HEAD_REVISION:
        return
    from alembic import command

    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
            if _revision_of(connection) == HEAD_REVISION:
                return
            # Alembic runs inside the transaction already open on this connection.
            command.upgrade(alembic_config(connection), "head")


_MIGRATION_LOCK_ID = 0x63657274
"""PostgreSQL advisory lock key held while migrating ("cert" in ASCII)."""
