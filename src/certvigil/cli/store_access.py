"""Which database a store command reads, and opening it without creating one by mistake."""

from __future__ import annotations

from pathlib import Path

from certvigil.errors import UsageError
from certvigil.store import Store, open_store
from certvigil.store.engine import resolve_database_url


def database_url(db: str | None, config: Path | None) -> str | None:
    """The database a command means: ``--db``, else the one ``--config`` names.

    A relative path in the configuration is taken from the configuration file's
    directory, exactly as ``certvigil run`` takes it; ``None`` leaves the choice to
    ``$CERTVIGIL_DATABASE_URL`` and the default path (``certvigil.store.engine``).

    Raises:
        ConfigError: The configuration cannot be read or has mistakes.
    """
    if db:
        return db
    if config is not None:
        from certvigil.config.loading import load_config

        return load_config(config).database_url
    return None


def open_existing_store(db: str | None, config: Path | None) -> Store:
    """Open the store for a command that reads or amends what was recorded.

    Raises:
        UsageError: The URL is malformed, or names a SQLite file that does not exist
            (such a command must not leave an empty database behind).
        ConfigError: ``config`` cannot be read.
        StoreError: The database cannot be reached.
    """
    url = database_url(db, config)
    resolved = resolve_database_url(url)
    if resolved.get_backend_name() == "sqlite":
        path = Path(resolved.database or "")
        if not path.exists():
            raise UsageError(f"database {path}: does not exist (nothing has been recorded yet)")
    return open_store(url)
