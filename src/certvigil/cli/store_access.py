"""Which database a store command reads, and opening it without creating one by mistake.

The rule, the same for ``run`` and every command that reads the store:

1. ``--db URL`` on the command line;
2. the ``database_url`` of the configuration file (``-c FILE``, else ``$CERTVIGIL_CONFIG``,
   else the first ``certvigil.yaml`` found, see ``certvigil.config.discovery``), a
   relative path taken from the file's directory;
3. ``$CERTVIGIL_DATABASE_URL``;
4. the default SQLite file (``certvigil.store.engine.default_database_path``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from certvigil.config.discovery import find_config
from certvigil.config.loading import LoadedConfig, load_config
from certvigil.errors import ConfigError, UsageError
from certvigil.store import Store, open_store
from certvigil.store.engine import (
    DATABASE_URL_ENV,
    creatable_database_directories,
    resolve_database_url,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseChoice:
    """The database a command uses and where that choice came from.

    Attributes:
        url: A URL or file path; ``None`` for the environment variable or default path.
        origin: ``"--db"``, the configuration file's name, ``"$CERTVIGIL_DATABASE_URL"``
            or ``"default"``, for messages.
    """

    url: str | None
    origin: str


def choose_database(db: str | None, config: Path | None) -> DatabaseChoice:
    """The database a command means, by the rule in this module's docstring.

    Raises:
        ConfigError: The configuration cannot be read or has mistakes.
        UsageError: Two candidate configuration files in one directory.
    """
    if db:
        return DatabaseChoice(url=db, origin="--db")
    choice = find_config(config)
    if choice.path is not None:
        url = load_config(choice.path).database_url
        if url is not None:
            return DatabaseChoice(url=url, origin=str(choice.path))
    if os.environ.get(DATABASE_URL_ENV, "").strip():
        return DatabaseChoice(url=None, origin=f"${DATABASE_URL_ENV}")
    return DatabaseChoice(url=None, origin="default")


def database_url(db: str | None, config: Path | None) -> str | None:
    """The URL of :func:`choose_database` (``None``: environment or default path)."""
    return choose_database(db, config).url


def open_existing_store(db: str | None, config: Path | None) -> Store:
    """Open the store for a command that reads or amends what was recorded.

    Raises:
        UsageError: The URL is malformed, or names a SQLite file that does not exist
            (such a command must not leave an empty database behind).
        ConfigError: ``config`` cannot be read.
        StoreError: The database cannot be reached.
    """
    choice = choose_database(db, config)
    resolved = resolve_database_url(choice.url)
    if resolved.get_backend_name() == "sqlite":
        path = Path(resolved.database or "")
        if not path.exists():
            source = {
                "--db": "",
                "default": " (the default path: no --db, no configuration found that "
                "names a database, no $" + DATABASE_URL_ENV + ")",
            }.get(choice.origin, f" (named by {choice.origin})")
            raise UsageError(
                f"database {path}{source}: does not exist (nothing has been recorded there yet)"
            )
    return open_store(choice.url)


def database_summary(url: str | None) -> str:
    """Where ``url`` (as :func:`choose_database` gives it) leads, for people: a SQLite
    file's path, else the URL without its password; the default and the environment
    variable are named as such."""
    try:
        resolved = resolve_database_url(url)
    except UsageError:
        return "(malformed database URL)"
    if resolved.get_backend_name() == "sqlite" and resolved.database:
        where = resolved.database
    else:
        where = resolved.render_as_string(hide_password=True)
    if url is None:
        origin = DATABASE_URL_ENV if os.environ.get(DATABASE_URL_ENV, "").strip() else "default"
        return f"{where} ({'$' + origin if origin != 'default' else 'default'})"
    return where


def describe_database(store: Store) -> str:
    """The store's location for a footer: a SQLite file's path, else its URL (no password)."""
    url = resolve_database_url(store.url)
    if url.get_backend_name() == "sqlite" and url.database:
        return url.database
    return store.url


def check_database_location(loaded: LoadedConfig) -> ConfigError | None:
    """A mistake in where the configuration puts its database, found without opening it.

    A SQLite file named by the configuration must be in a directory that exists (the
    daemon does not create one); a malformed URL is reported here too.

    Returns:
        The error naming ``database_url`` and its line, or ``None``.
    """
    from certvigil.config.loading import locate_field

    url = loaded.database_url
    if url is None:
        return None
    # Only a mistake needs the line: finding it parses the file again (a second of a
    # start-up for a configuration of 10,000 targets).
    line = locate_field(loaded)
    try:
        resolved = resolve_database_url(url)
    except UsageError as exc:
        return ConfigError(
            str(loaded.path), str(exc), location="database_url", line=line(("database_url",))
        )
    if resolved.get_backend_name() != "sqlite" or not resolved.database:
        return None
    path = Path(resolved.database)
    if path.parent.is_dir() or path.parent in creatable_database_directories():
        return None
    return ConfigError(
        str(loaded.path),
        f"{path}: the directory {path.parent} does not exist (certvigil does not create it)",
        location="database_url",
        line=line(("database_url",)),
    )
