"""Distributed scans end to end: a real Redis broker, PostgreSQL, two worker processes.

Every test runs ``certvigil run --distributed --once`` against loopback TLS servers and
counts what reached the store: each endpoint exactly once, whatever was killed.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import LoopbackServer, TlsServer
from certvigil.store.models import OBSERVATIONS
from tests.distributed.conftest import Cluster
from tests.support.redis_server import ThrowawayRedis

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]


class SilentServer(LoopbackServer):
    """Accepts and never answers: a scan of it waits for its handshake time-out."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()


def _config(
    database: str,
    redis: ThrowawayRedis,
    root: Path,
    targets: list[dict[str, Any]],
    **distributed: Any,
) -> dict[str, Any]:
    return {
        "database_url": database,
        "distributed": {
            "broker_url": redis.url,
            "shard_size": 4,
            "visibility_timeout": 4,
            **distributed,
        },
        "scan": {"timeout": 2, "deadline": 20, "per_ip": 2, "shutdown_grace": 60},
        "trust": {"public": False, "ca_files": [str(root)]},
        "checks": {"revocation": False, "protocols": False, "grade": False},
        "targets": targets,
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[ThrowawayPki, Path, Any]:
    pki = ThrowawayPki.create()
    root = tmp_path_factory.mktemp("pki") / "root.pem"
    root.write_bytes(pki.root.pem)
    leaf = pki.issue_leaf(dns_names=("*.example.test",))
    return pki, root, leaf


def _tls_servers(
    stack: ExitStack, served: tuple[ThrowawayPki, Path, Any], hosts: list[str], hold_s: float
) -> dict[str, tuple[TlsServer, int]]:
    pki, _root, leaf = served
    servers: dict[str, tuple[TlsServer, int]] = {}
    for host in hosts:
        server = TlsServer(
            chain=pki.served_chain_der(leaf),
            key_pem=leaf.key_pem,
            host=host,
            hold_before_handshake_s=hold_s,
        )
        servers[host] = (server, stack.enter_context(server).port)
    return servers


def _observations_per_endpoint(cluster: Cluster) -> list[int]:
    with cluster.store.read() as connection:
        rows = connection.execute(
            select(func.count()).select_from(OBSERVATIONS).group_by(OBSERVATIONS.c.endpoint_id)
        )
        return sorted(rows.scalars())


def _targets(servers: dict[str, tuple[TlsServer, int]], per_server: int) -> list[dict[str, Any]]:
    return [
        {"host": host, "port": port, "sni": f"n{i}.example.test"}
        for host, (_server, port) in servers.items()
        for i in range(per_server)
    ]


def test_two_workers_share_a_round_politely(
    cluster: Callable[[dict[str, Any]], Cluster],
    database: str,
    redis: ThrowawayRedis,
    served: tuple[ThrowawayPki, Path, Any],
) -> None:
    """Each endpoint is recorded once, both workers scan, and no server ever sees more
    than ``per_ip`` connections at once, though each has more endpoints than a shard."""
    with ExitStack() as stack:
        servers = _tls_servers(stack, served, ["127.0.0.2", "127.0.0.3", "127.0.0.4"], 0.3)
        targets = _targets(servers, 6)
        c = cluster(_config(database, redis, served[1], targets))
        names = [c.start_worker(), c.start_worker()]
        c.wait_for_workers(names)
        done = c.run_once()
        assert done.returncode == 0, done.stderr[-3000:]
        assert _observations_per_endpoint(c) == [1] * len(targets)
        shards = c.shards()
        assert {s.state for s in shards} == {"done"}
        assert sum(s.recorded for s in shards) == len(targets)
        assert {s.worker for s in shards} == set(names)
        for server, _port in servers.values():
            assert server.connections_accepted >= 6
            assert 2 <= server.max_overlapping() <= 2
        status = subprocess.run(
            [sys.executable, "-m", "certvigil", "workers", "status", "-c", str(c.path), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        reported = json.loads(status.stdout)["workers"]
        assert {w["name"] for w in reported} == set(names)
        assert sum(w["endpoints_done"] for w in reported) == len(targets)


def test_a_worker_killed_mid_shard_loses_nothing_and_doubles_nothing(
    cluster: Callable[[dict[str, Any]], Cluster],
    database: str,
    redis: ThrowawayRedis,
    served: tuple[ThrowawayPki, Path, Any],
) -> None:
    """SIGKILL while a shard is half recorded: another worker finishes it, skipping the
    endpoints already recorded."""
    with ExitStack() as stack:
        servers = _tls_servers(stack, served, ["127.0.0.5"], 0.4)
        targets = _targets(servers, 8)
        c = cluster(_config(database, redis, served[1], targets, shard_size=8))
        first = c.start_worker()
        c.wait_for_workers([first])
        scheduler = c.start_scheduler()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            shards = c.shards()
            if shards and shards[0].recorded >= 2:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"no progress: {c.log_of(first)}")
        c.kill(first)
        second = c.start_worker()
        _out, err = scheduler.communicate(timeout=120)
        assert scheduler.returncode == 0, err[-3000:]
        assert _observations_per_endpoint(c) == [1] * len(targets)
        (shard,) = c.shards()
        assert (shard.state, shard.attempts, shard.worker) == ("done", 2, second)
        assert shard.recorded == len(targets)


def test_an_endpoint_that_keeps_killing_workers_is_set_aside(
    cluster: Callable[[dict[str, Any]], Cluster],
    database: str,
    redis: ThrowawayRedis,
    served: tuple[ThrowawayPki, Path, Any],
) -> None:
    """A worker is killed whenever it scans the poison endpoint; after ``poison_after``
    deaths in careful mode the endpoint is recorded as set aside and the rest finish."""
    with ExitStack() as stack:
        servers = _tls_servers(stack, served, ["127.0.0.6"], 0.0)
        poison = SilentServer(host="127.0.0.6")
        poison_port = stack.enter_context(poison).port
        targets = [*_targets(servers, 3), {"host": "127.0.0.6", "port": poison_port}]
        c = cluster(_config(database, redis, served[1], targets, shard_size=8, poison_after=1))
        current = [c.start_worker()]
        c.wait_for_workers(current)
        stop = threading.Event()
        kills: list[str] = []

        def killer() -> None:
            seen = 0
            while not stop.is_set():
                if poison.connections_accepted > seen:
                    seen = poison.connections_accepted
                    c.kill(current[0])
                    kills.append(current[0])
                    current[0] = c.start_worker()
                time.sleep(0.01)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        try:
            done = c.run_once(timeout_s=200)
        finally:
            stop.set()
            thread.join(10)
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(kills) == 2  # first delivery, then one careful attempt
        assert _observations_per_endpoint(c) == [1] * len(targets)
        with c.store.read() as connection:
            failure = connection.execute(
                select(OBSERVATIONS.c.failure_kind, OBSERVATIONS.c.failure_detail).where(
                    OBSERVATIONS.c.status != "ok"
                )
            ).all()
        assert len(failure) == 1
        assert failure[0].failure_kind == "internal_error"
        assert "set aside" in failure[0].failure_detail


def test_a_broker_restart_that_loses_queued_shards_is_survived(
    cluster: Callable[[dict[str, Any]], Cluster],
    database: str,
    redis: ThrowawayRedis,
    served: tuple[ThrowawayPki, Path, Any],
) -> None:
    """Redis restarts without persistence while one shard waits in its queue: the
    scheduler sends the stalled shard again and the round completes, each endpoint once."""
    with ExitStack() as stack:
        servers = _tls_servers(stack, served, ["127.0.0.7", "127.0.0.8"], 0.4)
        targets = _targets(servers, 4)
        config = _config(database, redis, served[1], targets, shard_size=4)
        config["scan"]["per_ip"] = 1
        c = cluster(config)
        only = c.start_worker()
        c.wait_for_workers([only])
        scheduler = c.start_scheduler()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if any(s.recorded >= 1 for s in c.shards()):
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"no progress: {c.log_of(only)}")
        redis.restart()
        _out, err = scheduler.communicate(timeout=120)
        assert scheduler.returncode == 0, err[-3000:]
        assert "sending it again" in err
        assert _observations_per_endpoint(c) == [1] * len(targets)
        assert {s.state for s in c.shards()} == {"done"}
