"""A throwaway Zabbix 6.0 (Debian's server and PHP frontend) on loopback, for tests.

``ThrowawayZabbix`` loads Zabbix's own schema and data into a database of a running
:class:`~tests.support.postgres.ThrowawayPostgres`, serves a hard-linked copy of the
frontend (``/usr/share/zabbix``) with PHP's built-in web server for the JSON-RPC API,
and can start ``zabbix_server`` in the foreground with an external-scripts directory.
Debian's frontend reads its configuration from ``/etc/zabbix/zabbix.conf.php``; the
copy's ``CConfigFile.php`` is rewritten to read the copy's own file instead, so no
file outside the temporary directory is touched.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.support.postgres import ThrowawayPostgres

FRONTEND = Path("/usr/share/zabbix")
SQL = Path("/usr/share/zabbix-server-pgsql")
SERVER = shutil.which("zabbix_server") or "/usr/sbin/zabbix_server"
PHP = shutil.which("php")


def zabbix_missing() -> str | None:
    """Why a real Zabbix cannot run here, ``None`` when it can."""
    if PHP is None:
        return "php is missing (Debian package php-cli)"
    if not (FRONTEND / "api_jsonrpc.php").exists():
        return "the Zabbix frontend is missing (Debian package zabbix-frontend-php)"
    if not (SQL / "schema.sql.gz").exists() or not Path(SERVER).exists():
        return "the Zabbix server is missing (Debian package zabbix-server-pgsql)"
    check = subprocess.run([PHP, "-m"], capture_output=True, text=True, check=False)
    if "pgsql" not in check.stdout:
        return "PHP has no PostgreSQL driver (Debian package php-pgsql)"
    return None


def _free_port() -> int:
    """A free loopback port for PHP's server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _free_low_port() -> int:
    """A free loopback port in 1024-32767, below the kernel's ephemeral range, since
    zabbix_server takes no other for its own."""
    for port in random.sample(range(20000, 32768), 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError("no free port in 20000-32767")


class ZabbixApiError(Exception):
    """The API answered with an error."""


class ThrowawayZabbix:
    """Zabbix's database, API and (on request) server, removed on exit."""

    def __init__(self, postgres: ThrowawayPostgres) -> None:
        """Use ``postgres`` for the ``zabbix`` database; nothing starts until entered."""
        self._postgres = postgres
        self._workdir = Path(tempfile.mkdtemp(prefix="certvigil-zabbix-"))
        self._database = f"zabbix_{os.getpid()}"
        self._php: subprocess.Popen[bytes] | None = None
        self._server: subprocess.Popen[bytes] | None = None
        self._token: str | None = None
        self.api_url = ""

    def __enter__(self) -> ThrowawayZabbix:
        try:
            self._load_database()
            self._start_frontend()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in (self._server, self._php):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
        self._postgres.drop_database(self._database)
        shutil.rmtree(self._workdir, ignore_errors=True)

    @property
    def workdir(self) -> Path:
        """The temporary directory holding the frontend copy, logs and scripts."""
        return self._workdir

    def _load_database(self) -> None:
        import psycopg

        self._postgres.admin(f"CREATE DATABASE {self._database} ENCODING 'UTF8'")
        with psycopg.connect(
            host=self._postgres.host,
            port=self._postgres.port,
            user=self._postgres.user,
            dbname=self._database,
            autocommit=True,
        ) as connection:
            for part in ("schema", "images", "data"):
                # One message per file (the simple query protocol): psql's statement-
                # by-statement round trips take minutes for data.sql's 130,000 rows.
                script = gzip.decompress((SQL / f"{part}.sql.gz").read_bytes())
                connection.execute(script)

    def _start_frontend(self) -> None:
        assert PHP is not None
        root = self._workdir / "frontend"
        shutil.copytree(FRONTEND, root, copy_function=os.link, symlinks=True)
        config = root / "conf" / "zabbix.conf.php"
        pg = self._postgres
        config.write_text(
            "<?php\n"
            "$DB['TYPE'] = 'POSTGRESQL';\n"
            f"$DB['SERVER'] = '{pg.host}';\n"
            f"$DB['PORT'] = '{pg.port}';\n"
            f"$DB['DATABASE'] = '{self._database}';\n"
            f"$DB['USER'] = '{pg.user}';\n"
            "$DB['PASSWORD'] = '';\n$DB['SCHEMA'] = '';\n$DB['ENCRYPTION'] = false;\n"
            "$DB['KEY_FILE'] = '';\n$DB['CERT_FILE'] = '';\n$DB['CA_FILE'] = '';\n"
            "$DB['VERIFY_HOST'] = false;\n$DB['CIPHER_LIST'] = '';\n$DB['VAULT_URL'] = '';\n"
            "$DB['VAULT_DB_PATH'] = '';\n$DB['VAULT_TOKEN'] = '';\n"
            "$DB['DOUBLE_IEEE754'] = true;\n"
            "$ZBX_SERVER = '127.0.0.1';\n$ZBX_SERVER_PORT = '1';\n"
            "$ZBX_SERVER_NAME = 'certvigil-test';\n"
            "$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;\n"
        )
        # A new file, not a write through the hard link to the system's copy.
        loader = root / "include" / "classes" / "core" / "CConfigFile.php"
        text = loader.read_text().replace("/etc/zabbix/zabbix.conf.php", str(config))
        loader.unlink()
        loader.write_text(text)
        port = _free_port()
        with (self._workdir / "php.log").open("wb") as errors:
            self._php = subprocess.Popen(
                [PHP, "-S", f"127.0.0.1:{port}", "-t", str(root)],
                stdout=subprocess.DEVNULL,
                stderr=errors,
            )
        self.api_url = f"http://127.0.0.1:{port}/api_jsonrpc.php"
        deadline = time.monotonic() + 30
        while True:
            try:
                self.call("apiinfo.version", {})
                break
            except OSError:
                if time.monotonic() > deadline or self._php.poll() is not None:
                    raise
                time.sleep(0.2)
        self._token = self.call("user.login", {"username": "Admin", "password": "zabbix"})

    def call(self, method: str, params: Any) -> Any:
        """One JSON-RPC call; its ``result``.

        Raises:
            ZabbixApiError: The API answered with an error.
        """
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
        if self._token is not None and method not in ("apiinfo.version", "user.login"):
            body["auth"] = self._token
        request = urllib.request.Request(
            self.api_url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json-rpc"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        if "error" in answer:
            error = answer["error"]
            raise ZabbixApiError(f"{method}: {error.get('message')} {error.get('data')}")
        return answer["result"]

    def start_server(self, external_scripts: Path) -> None:
        """Run ``zabbix_server`` in the foreground on this database.

        It re-reads its configuration every second, so hosts and items created
        through the API are polled at once.
        """
        pg = self._postgres
        conf = self._workdir / "zabbix_server.conf"
        conf.write_text(
            "\n".join(
                [
                    f"LogFile={self._workdir / 'zabbix_server.log'}",
                    f"PidFile={self._workdir / 'zabbix_server.pid'}",
                    f"SocketDir={self._workdir}",
                    f"DBHost={pg.host}",
                    f"DBPort={pg.port}",
                    f"DBName={self._database}",
                    f"DBUser={pg.user}",
                    f"ListenPort={_free_low_port()}",
                    "ListenIP=127.0.0.1",
                    f"ExternalScripts={external_scripts}",
                    "Timeout=30",
                    "CacheUpdateFrequency=1",
                    "AllowRoot=1",
                    "StartPollers=2",
                    "StartPollersUnreachable=1",
                    "StartTrappers=1",
                    "StartPingers=0",
                    "StartDiscoverers=0",
                    "StartHTTPPollers=0",
                    "StartAlerters=1",
                    "StartEscalators=1",
                    "StartLLDProcessors=1",
                    "StartPreprocessors=1",
                    "StartHistoryPollers=1",
                    "StartTimers=1",
                    "HousekeepingFrequency=0",
                    "LogSlowQueries=0",
                    "",
                ]
            )
        )
        with (self._workdir / "zabbix_server.err").open("wb") as errors:
            self._server = subprocess.Popen(
                [SERVER, "-f", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=errors
            )

    def server_log(self) -> str:
        """The server's log so far (for failure messages)."""
        parts = []
        for name in ("zabbix_server.err", "zabbix_server.log"):
            log = self._workdir / name
            if log.exists():
                parts.append(log.read_text(errors="replace")[-4000:])
        return "\n".join(parts) or "(no log)"

    def server_running(self) -> bool:
        """Whether the server process is still alive."""
        return self._server is not None and self._server.poll() is None
