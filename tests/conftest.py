"""Fixtures shared by every test package; area fixtures live in each sub-package.

Databases: ``db_url`` and ``store`` run a test twice, on SQLite in ``tmp_path`` and on
a real PostgreSQL that ``postgres_server`` starts once per session from Debian's
binaries (``/usr/lib/postgresql/*/bin``) on 127.0.0.1 and a free port, as the
``postgres`` user when the tests run as root. On PostgreSQL, ``db_url`` is a new
empty database per test (dropped afterwards) and ``store_url`` one migrated database
whose tables are emptied before each test.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from certvigil.store import Store, open_store
from certvigil.store.models import Base

_PG_DATABASES = itertools.count(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class PostgresServer:
    """A running throwaway PostgreSQL server.

    Attributes:
        host: Always 127.0.0.1.
        port: The TCP port it listens on.
        user: The superuser name (trust authentication on loopback).
    """

    host: str
    port: int
    user: str

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for one database on this server."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def admin(self, sql: str, *, database: str = "postgres") -> None:
        """Runs one statement outside a transaction (in the ``postgres`` database)."""
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname=database, autocommit=True
        ) as connection:
            connection.execute(sql.encode())

    def empty_tables(self, database: str) -> None:
        """Empties every certvigil table of a migrated database, much faster than a new one.

        Connections a previous test left behind are ended first, so none holds a lock.
        """
        self.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )
        tables = ", ".join(Base.metadata.tables)
        self.admin(f"TRUNCATE {tables} RESTART IDENTITY CASCADE", database=database)


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL on 127.0.0.1 for the whole session, removed at the end."""
    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); "
            "install Debian's postgresql package (scripts/install-system-deps.sh)"
        )
    workdir = Path(tempfile.mkdtemp(prefix="certvigil-pg-"))
    data = workdir / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(workdir, user="postgres")
        shutil.chown(data, user="postgres")
    port = _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 60}
    try:
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            **run,  # type: ignore[call-overload]
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={workdir} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        subprocess.run(
            _as_postgres(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(workdir / "server.log"),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            **run,  # type: ignore[call-overload]
        )
    except subprocess.CalledProcessError as exc:
        log = workdir / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr or exc.stdout}\n{tail}")
    server = PostgresServer(host="127.0.0.1", port=port, user="postgres")
    try:
        server.admin("CREATE DATABASE certvigil_empty")
        server.admin("CREATE DATABASE certvigil_migrated")
        open_store(server.url("certvigil_migrated")).close()
        yield server
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(workdir, ignore_errors=True)


def _postgres_database(server: PostgresServer, template: str) -> Iterator[str]:
    name = f"certvigil_test_{os.getpid()}_{next(_PG_DATABASES)}"
    server.admin(f"CREATE DATABASE {name} TEMPLATE {template}")
    try:
        yield server.url(name)
    finally:
        server.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh, empty (unmigrated) database: SQLite in tmp_path, then PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'certvigil.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    yield from _postgres_database(server, "certvigil_empty")


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to a fresh database with the schema at head, on SQLite then PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'certvigil.db'}"
        open_store(url).close()
        yield url
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    server.empty_tables("certvigil_migrated")
    yield server.url("certvigil_migrated")


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open Store on a fresh migrated database, on SQLite then PostgreSQL."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def open_another_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Opens more Stores on the same database as ``store`` (a second process's view)."""
    opened: list[Store] = []

    def _open() -> Store:
        handle = open_store(store_url)
        opened.append(handle)
        return handle

    yield _open
    for handle in opened:
        handle.close()
