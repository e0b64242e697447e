"""Database URLs and engines: the default SQLite path, SQLite pragmas, PostgreSQL via psycopg 3.

Where the inventory lives, in order of precedence:

1. the URL (or plain file path) given on the command line or to ``open_store``;
2. the ``CERTVIGIL_DATABASE_URL`` environment variable;
3. a SQLite file: ``/var/lib/certvigil/certvigil.db`` when running as root, else
   ``$XDG_DATA_HOME/certvigil/certvigil.db`` (``~/.local/share/certvigil/certvigil.db``
   when ``XDG_DATA_HOME`` is unset).

SQLite connections run in WAL mode with foreign keys on, ``synchronous=NORMAL`` (a
commit survives a process crash; only a power loss can drop the last commits, those
since the last checkpoint), a 30 s busy time-out, reads through a 256 MiB memory map
and a 32 MiB page cache. The write-ahead log is checkpointed into the database every
8,000 pages (about 32 MiB) rather than SQLite's default 1,000: a batch of reports
touches well over 1,000 pages scattered over the indexes, so the default checkpoint
(and its two fsyncs) ran on nearly every commit, and pages touched by several
commits were copied each time.
SQLAlchemy's pysqlite driver is told to leave transactions alone and certvigil issues
``BEGIN`` itself: ``BEGIN IMMEDIATE`` for writes, so two writers queue on the lock
instead of failing when a read transaction tries to become a write.
PostgreSQL sessions run with the time zone set to UTC, so times arrive in UTC.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from certvigil.errors import UsageError

DATABASE_URL_ENV = "CERTVIGIL_DATABASE_URL"
"""Environment variable naming the database when no URL is given."""

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a SQLite connection waits for another writer's lock before failing."""

SQLITE_MMAP_BYTES = 256 * 1024 * 1024
"""How much of a SQLite file is read through a memory map (address space, not RAM)."""

SQLITE_CACHE_KIB = 32 * 1024
"""SQLite page cache per connection."""

SQLITE_WAL_AUTOCHECKPOINT_PAGES = 8000
"""Write-ahead log size, in pages, at which a commit checkpoints it into the database."""

SQLITE_JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
"""A write-ahead log grown past this (a bulk load) is truncated back after a checkpoint."""

PG_CONNECT_TIMEOUT_S = 10
"""How long opening a PostgreSQL connection may take (libpq ``connect_timeout``)."""

WRITE_OPTION = "certvigil_write"
"""Execution option that makes a SQLite transaction start with ``BEGIN IMMEDIATE``."""


def default_database_path() -> Path:
    """The SQLite file used when no URL is configured.

    Returns:
        ``/var/lib/certvigil/certvigil.db`` for root, else the XDG data directory's
        ``certvigil/certvigil.db``.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/certvigil/certvigil.db")
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "certvigil" / "certvigil.db"


def creatable_database_directories() -> tuple[Path, ...]:
    """The directories certvigil creates for a SQLite file: those of the default paths.

    Any other directory a database is named in must exist: creating it would hide a
    typo behind an empty inventory.
    """
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return (Path("/var/lib/certvigil"), base / "certvigil")


def resolve_database_url(url: str | None) -> URL:
    """Turns what the user gave (URL, file path or nothing) into a SQLAlchemy URL.

    Args:
        url: A database URL (``sqlite:///path``, ``postgresql://user@host/db``), a
            plain path to a SQLite file, or ``None`` for the environment or default.

    Returns:
        The URL, with PostgreSQL URLs set to the psycopg 3 driver.

    Raises:
        UsageError: The URL cannot be parsed or names an unsupported database.
    """
    if url is None or not url.strip():
        url = os.environ.get(DATABASE_URL_ENV) or None
    if url is None:
        return URL.create("sqlite", database=str(default_database_path()))
    url = url.strip()
    if "://" not in url:
        return URL.create("sqlite", database=str(Path(url).expanduser().resolve()))
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UsageError(
            f"database URL {url!r}: cannot be parsed; write dialect://user@host/database "
            "or a file path"
        ) from exc
    # Split by hand: SQLAlchemy's get_driver_name() loads the dialect and knows no
    # "postgres" alias.
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise UsageError(
                f"database URL {parsed.render_as_string(hide_password=True)!r}: "
                f"driver {driver!r} is not supported; use postgresql+psycopg://"
            )
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise UsageError(
                f"database URL {url!r}: an in-memory SQLite database cannot be shared "
                "between connections; give a file path"
            )
        return parsed
    raise UsageError(
        f"database URL {parsed.render_as_string(hide_password=True)!r}: "
        f"unsupported database {backend!r}; use sqlite:/// or postgresql://"
    )


def create_store_engine(url: str | URL | None, *, echo: bool = False) -> Engine:
    """An engine for the inventory, with the pragmas and transaction handling set up.

    Does not connect; the first query does. Creates the directory of the default SQLite
    file; any other SQLite file's directory must exist.

    Args:
        url: As for :func:`resolve_database_url`, or an already resolved URL.
        echo: Log every SQL statement (debugging).

    Returns:
        The engine.

    Raises:
        UsageError: The URL is malformed or unsupported, or the SQLite file's directory
            does not exist (the default one: cannot be created).
    """
    resolved = url if isinstance(url, URL) else resolve_database_url(url)
    if resolved.get_backend_name() == "sqlite":
        return _sqlite_engine(resolved, echo=echo)
    return _postgresql_engine(resolved, echo=echo)


def _postgresql_engine(url: URL, *, echo: bool) -> Engine:
    # A server that accepts the TCP connection but never answers (stopped, or
    # behind a dead failover address) must not hold a caller forever; a
    # connect_timeout in the URL wins.
    connect_args = (
        {} if "connect_timeout" in url.query else {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    )
    engine = create_engine(url, echo=echo, pool_pre_ping=True, connect_args=connect_args)
    from certvigil.store.pg_text import register_nul_free_text

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Outside text may hold a NUL, which PostgreSQL's text cannot (pg_text).
        register_nul_free_text(dbapi_connection)
        # Sessions in UTC: psycopg then hands back times already in UTC
        # (datetime.UTC) instead of converting each through the server's zone, which
        # costs a third of loading the inventory's rows. Nothing certvigil runs
        # depends on the session's zone: times are stored and compared as timestamptz.
        cursor = dbapi_connection.cursor()
        cursor.execute("SET TIME ZONE 'UTC'")
        cursor.close()
        dbapi_connection.commit()

    return engine


def _sqlite_engine(url: URL, *, echo: bool) -> Engine:
    database = url.database or ""
    if not database.startswith("file:"):
        _check_sqlite_directory(Path(database))
    engine = create_engine(url, echo=echo, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Leave transaction control to the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        _enter_wal_mode(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Read through a memory map and keep more pages cached: inventory queries jump
        # between certificates, deployments and endpoints at random.
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_JOURNAL_SIZE_LIMIT_BYTES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        is_write = bool(connection.get_execution_options().get(WRITE_OPTION))
        connection.exec_driver_sql("BEGIN IMMEDIATE" if is_write else "BEGIN")

    return engine


def _check_sqlite_directory(path: Path) -> None:
    """Make sure a SQLite file can be created where it is named, without guessing.

    The directories of the default paths are created (``/var/lib/certvigil``, the XDG
    data directory's ``certvigil``); any other directory must exist, so that a typo
    (``/srv/certvigl/x.db``) is reported instead of silently starting an empty
    inventory somewhere new.

    Raises:
        UsageError: The directory does not exist (or is not a directory) and is not the
            default one, or the default one cannot be created.
    """
    directory = path.parent
    if directory.is_dir():
        return
    if directory in creatable_database_directories():
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or "cannot be created"
            raise UsageError(f"database directory {directory}: {reason.lower()}") from exc
        return
    what = "is not a directory" if directory.exists() else "does not exist"
    raise UsageError(
        f"database {path}: the directory {directory} {what}; create it or correct the database URL"
    )


def _enter_wal_mode(cursor: Any) -> None:
    """Switch a SQLite database to write-ahead logging (it stays so once switched).

    Switching needs the database to itself for a moment, and SQLite answers "database
    is locked" at once, without waiting out the busy time-out, when another connection
    is using it: processes or threads opening a new database together met that. The
    switch is retried until the busy time-out has passed; a database already in WAL
    mode is left as it is.
    """
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay_s = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + delay_s > deadline:
                raise
        time.sleep(delay_s)
        delay_s = min(delay_s * 2, 0.2)


def describe_url(engine: Engine) -> str:
    """The engine's URL with any password hidden, for messages."""
    return engine.url.render_as_string(hide_password=True)
