"""A throwaway PostgreSQL server on 127.0.0.1, for the test suite and the store benchmark.

It runs Debian's server binaries (``/usr/lib/postgresql/<version>/bin``) on a data
directory in a temporary folder, as the ``postgres`` user when the caller is root
(``initdb`` and ``postgres`` refuse to run as root), with durability switched off
since the data is thrown away (unless asked to keep it, as the benchmark does).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from certvigil.errors import StoreError


def postgres_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, ``None`` when not installed."""
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


class ThrowawayPostgres:
    """Starts a PostgreSQL server on 127.0.0.1 and a free port; removes it on ``stop``.

    Use as a context manager. Authentication is ``trust`` for the ``postgres``
    superuser on loopback only.
    """

    def __init__(
        self, *, bindir: Path | None = None, max_connections: int = 200, durable: bool = False
    ) -> None:
        """Prepares the server; ``start`` runs it.

        Args:
            bindir: Where ``initdb`` and ``pg_ctl`` are; found automatically if ``None``.
            max_connections: The server's connection limit.
            durable: Keep PostgreSQL's default fsync settings (for benchmarks); off by
                default, since the data is thrown away.
        """
        self._durable = durable
        self.host = "127.0.0.1"
        self.user = "postgres"
        self.port = 0
        self._bindir = bindir
        self._max_connections = max_connections
        self._workdir: Path | None = None
        self._options = ""

    def _as_postgres(self, argv: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return argv

    def _run(self, argv: list[str]) -> None:
        try:
            subprocess.run(
                self._as_postgres(argv), check=True, capture_output=True, text=True, timeout=120
            )
        except subprocess.CalledProcessError as exc:
            log = self._workdir / "server.log" if self._workdir else None
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise StoreError(
                f"{Path(argv[0]).name} failed: {(exc.stderr or exc.stdout).strip()}\n{tail}"
            ) from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StoreError(f"{Path(argv[0]).name} could not run: {exc}") from exc

    def start(self) -> ThrowawayPostgres:
        """Creates the cluster and starts the server.

        Raises:
            StoreError: The binaries are missing or the server did not start.
        """
        bindir = self._bindir or postgres_bindir()
        if bindir is None:
            raise StoreError("PostgreSQL server binaries not found (install postgresql)")
        self._bindir = bindir
        self._workdir = Path(tempfile.mkdtemp(prefix="certvigil-pg-"))
        data = self._workdir / "data"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self._workdir, user="postgres")
            shutil.chown(data, user="postgres")
        self.port = _free_port()
        try:
            self._run(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    self.user,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
            options = (
                f"-c listen_addresses={self.host} -p {self.port} "
                f"-c unix_socket_directories={self._workdir} "
                f"-c max_connections={self._max_connections}"
            )
            if not self._durable:
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            self._options = options
            self._pg_ctl_start()
        except StoreError:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None
            raise
        return self

    def _pg_ctl_start(self) -> None:
        if self._workdir is None or self._bindir is None:
            raise StoreError("the PostgreSQL server was never started")
        self._run(
            [
                str(self._bindir / "pg_ctl"),
                "-D",
                str(self._workdir / "data"),
                "-o",
                self._options,
                "-l",
                str(self._workdir / "server.log"),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    def halt(self) -> None:
        """Stops the server (fast shutdown: every session is ended), keeping its data.

        Until :meth:`resume`, connecting is refused: the store is unavailable.
        """
        if self._workdir is None or self._bindir is None:
            raise StoreError("the PostgreSQL server was never started")
        pg_ctl = str(self._bindir / "pg_ctl")
        self._run([pg_ctl, "-D", str(self._workdir / "data"), "-m", "fast", "-w", "stop"])

    def resume(self) -> None:
        """Starts a halted server again, on the same port and data directory."""
        self._pg_ctl_start()

    def stop(self) -> None:
        """Stops the server at once and deletes its files."""
        if self._workdir is None or self._bindir is None:
            return
        subprocess.run(
            self._as_postgres(
                [
                    str(self._bindir / "pg_ctl"),
                    "-D",
                    str(self._workdir / "data"),
                    "-m",
                    "immediate",
                    "stop",
                ]
            ),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(self._workdir, ignore_errors=True)
        self._workdir = None

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def data_directory(self) -> Path | None:
        """The server's data directory while it exists."""
        return self._workdir / "data" if self._workdir else None

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

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Creates a database (optionally cloned from ``template``) and returns its URL."""
        clause = f" TEMPLATE {template}" if template else ""
        self.admin(f"CREATE DATABASE {name}{clause}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drops a database, ending any connection to it."""
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def empty_tables(self, database: str, tables: list[str]) -> None:
        """Empties ``tables`` of a database, after ending every other connection to it."""
        self.admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        )
        self.admin(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE", database=database)
