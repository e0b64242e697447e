"""A real Redis broker, a real PostgreSQL store, worker processes and loopback TLS servers."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from certvigil.store import Store, open_store
from certvigil.store.distributed_models import SCAN_SHARDS, SCAN_WORKERS
from tests.support.postgres import ThrowawayPostgres
from tests.support.redis_server import ThrowawayRedis, redis_binary

pytestmark = pytest.mark.postgres

_DATABASES = itertools.count()


@pytest.fixture(scope="module")
def redis() -> Iterator[ThrowawayRedis]:
    if redis_binary() is None:
        pytest.skip("redis-server not found; install Debian's redis-server")
    server = ThrowawayRedis().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database(postgres_server: ThrowawayPostgres) -> Iterator[str]:
    name = f"certvigil_dist_{os.getpid()}_{next(_DATABASES)}"
    url = postgres_server.create_database(name)
    open_store(url).close()
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


class Cluster:
    """A configuration file, the workers started on it, and a view of the store."""

    def __init__(self, directory: Path, config: dict[str, Any]) -> None:
        self.path = directory / "certvigil.yaml"
        self.path.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.store: Store = open_store(config["database_url"])
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.logs = directory
        self._names = itertools.count(1)

    def start_worker(self) -> str:
        name = f"w{next(self._names)}"
        with (self.logs / f"{name}.log").open("wb") as log:
            self.workers[name] = subprocess.Popen(
                [sys.executable, "-m", "certvigil", "worker", "-c", str(self.path), "--name", name],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return name

    def kill(self, name: str) -> None:
        process = self.workers[name]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def wait_for_workers(self, names: list[str], timeout_s: float = 60.0) -> None:
        """Until each named worker has written its heartbeat row."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self.store.read() as connection:
                seen = set(connection.execute(select(SCAN_WORKERS.c.name)).scalars())
            if set(names) <= seen:
                return
            for name in names:
                if self.workers[name].poll() is not None:
                    raise AssertionError(f"worker {name} exited: {self.log_of(name)}")
            time.sleep(0.1)
        raise AssertionError(f"workers {names} did not report within {timeout_s}s")

    def log_of(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def run_once(self, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "certvigil",
                "run",
                "-c",
                str(self.path),
                "--once",
                "--distributed",
                "--log-format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def start_scheduler(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "certvigil",
                "run",
                "-c",
                str(self.path),
                "--once",
                "--distributed",
                "--log-format",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def shards(self) -> list[Any]:
        with self.store.read() as connection:
            return list(connection.execute(select(SCAN_SHARDS)))

    def stop(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self.store.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Cluster]]:
    made: list[Cluster] = []

    def make(config: dict[str, Any]) -> Cluster:
        made.append(Cluster(tmp_path, config))
        return made[-1]

    try:
        yield make
    finally:
        for c in made:
            c.stop()
