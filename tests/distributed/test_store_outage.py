"""The store goes away while workers hold shards, then comes back: nothing lost or doubled.

PostgreSQL is stopped (a fast shutdown, every session ended, connections refused) while
two worker processes are half-way through their shards, and started again on the same
port and data. The outage lasts ``CERTVIGIL_STORE_OUTAGE_S`` seconds (6 by default, so
the suite stays quick; ``CERTVIGIL_STORE_OUTAGE_S=60`` runs the issue's full minute):

    CERTVIGIL_STORE_OUTAGE_S=60 .venv/bin/pytest -q tests/distributed/test_store_outage.py
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.store import open_store
from certvigil.store.models import ALERTS, OBSERVATIONS
from tests.daemon.helpers import CountingReceiver, counting_receiver
from tests.distributed.conftest import Cluster
from tests.support.postgres import ThrowawayPostgres, postgres_bindir
from tests.support.redis_server import ThrowawayRedis

OUTAGE_S = float(os.environ.get("CERTVIGIL_STORE_OUTAGE_S", "6"))
"""How long the store stays away."""

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300 + 4 * OUTAGE_S)]

HOSTS = ("127.0.0.9", "127.0.0.10")
PER_HOST = 12
"""Endpoints per server: one shard each, so each worker holds one."""


@pytest.fixture
def own_postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL of this test's own, since the test stops it."""
    if postgres_bindir() is None:
        pytest.skip("PostgreSQL server binaries not found; install Debian's postgresql")
    with ThrowawayPostgres() as server:
        yield server


@pytest.fixture(scope="module")
def expiring(tmp_path_factory: pytest.TempPathFactory) -> tuple[ThrowawayPki, Path, Any]:
    """A PKI whose leaf expires in five days, so every scan of it raises an alert."""
    pki = ThrowawayPki.create()
    root = tmp_path_factory.mktemp("pki") / "root.pem"
    root.write_bytes(pki.root.pem)
    now = datetime.now(UTC)
    leaf = pki.issue_leaf(
        dns_names=("*.example.test",),
        not_before_utc=now - timedelta(days=60),
        not_after_utc=now + timedelta(days=5),
    )
    return pki, root, leaf


def _start(
    stack: ExitStack,
    cluster: Callable[[dict[str, Any]], Cluster],
    database: str,
    redis: ThrowawayRedis,
    expiring: tuple[ThrowawayPki, Path, Any],
    receiver: CountingReceiver,
    **distributed: Any,
) -> tuple[Cluster, list[dict[str, Any]]]:
    pki, root, leaf = expiring
    targets = []
    for host in HOSTS:
        server = TlsServer(
            chain=pki.served_chain_der(leaf),
            key_pem=leaf.key_pem,
            host=host,
            hold_before_handshake_s=1.0,
        )
        port = stack.enter_context(server).port
        targets += [
            {"host": host, "port": port, "sni": f"n{i}.example.test"} for i in range(PER_HOST)
        ]
    config = {
        "database_url": database,
        "distributed": {"broker_url": redis.url, "shard_size": PER_HOST, **distributed},
        "scan": {"timeout": 5, "deadline": 30, "per_ip": 2, "shutdown_grace": 60},
        "trust": {"public": False, "ca_files": [str(root)]},
        "checks": {"revocation": False, "protocols": False, "grade": False},
        "alerts": {"routes": [{"url": receiver.url(), "min_severity": "info"}]},
        "targets": targets,
    }
    return cluster(config), targets


def _wait_until_both_hold_a_half_recorded_shard(c: Cluster, names: list[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shards = c.shards()
        held = {s.worker for s in shards if s.state == "running" and s.recorded >= 1}
        if held == set(names) and all(s.recorded < s.targets for s in shards):
            return
        time.sleep(0.02)
    raise AssertionError(f"workers never held shards together: {c.shards()}")


def _outage(pg: ThrowawayPostgres, c: Cluster, scheduler: subprocess.Popen[str]) -> None:
    """Stop the store for ``OUTAGE_S``; every process must live through it."""
    pg.halt()
    try:
        time.sleep(OUTAGE_S)  # the outage itself, not a synchronisation
        for name, process in c.workers.items():
            assert process.poll() is None, f"worker {name} ended: {c.log_of(name)}"
        assert scheduler.poll() is None, scheduler.communicate()[1][-3000:]
    finally:
        pg.resume()


def _check_round(c: Cluster, targets: list[dict[str, Any]], receiver: CountingReceiver) -> None:
    with c.store.read() as connection:
        per_endpoint = sorted(
            connection.execute(
                select(func.count()).select_from(OBSERVATIONS).group_by(OBSERVATIONS.c.endpoint_id)
            ).scalars()
        )
        alerts = connection.execute(select(ALERTS.c.dedup_key, ALERTS.c.endpoint_id)).all()
    assert per_endpoint == [1] * len(targets)
    shards = c.shards()
    assert {s.state for s in shards} == {"done"}
    assert sum(s.recorded for s in shards) == len(targets)
    # One alert per endpoint (its certificate expires in five days), none twice, and
    # each notified exactly once.
    assert len({a.endpoint_id for a in alerts}) == len(alerts) == len(targets)
    assert sum(s.alert_events for s in shards) == len(alerts)
    assert len(receiver.key_counts()) == len(alerts)
    assert set(receiver.key_counts().values()) == {1}


def _status(c: Cluster) -> dict[str, dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-m", "certvigil", "workers", "status", "-c", str(c.path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr  # no worker went silent
    return {w["name"]: w for w in json.loads(done.stdout)["workers"]}


def test_workers_keep_their_shards_through_a_store_outage(
    own_postgres: ThrowawayPostgres,
    redis: ThrowawayRedis,
    cluster: Callable[[dict[str, Any]], Cluster],
    expiring: tuple[ThrowawayPki, Path, Any],
) -> None:
    """PostgreSQL stops while two workers hold half-recorded shards and starts again:
    each worker waits, keeps its shard and finishes it; every endpoint is recorded once,
    every alert raised and sent once, and ``workers status`` counts the waits."""
    database = own_postgres.create_database("outage")
    open_store(database).close()
    with ExitStack() as stack:
        receiver = stack.enter_context(counting_receiver())
        c, targets = _start(
            stack,
            cluster,
            database,
            redis,
            expiring,
            receiver,
            store_wait=OUTAGE_S + 60,
            visibility_timeout=4 * OUTAGE_S + 240,
        )
        names = [c.start_worker(), c.start_worker()]
        c.wait_for_workers(names)
        scheduler = c.start_scheduler()
        _wait_until_both_hold_a_half_recorded_shard(c, names)
        _outage(own_postgres, c, scheduler)
        _out, err = scheduler.communicate(timeout=120 + OUTAGE_S)
        assert scheduler.returncode == 0, err[-3000:]
        assert "store available again" in err
        _check_round(c, targets, receiver)
        # Each shard was delivered once: the workers kept them through the outage.
        assert {(s.attempts, s.worker) for s in c.shards()} == {(1, n) for n in names}
        status = _status(c)
        for name in names:
            assert c.workers[name].poll() is None
            assert status[name]["store_waits"] >= 1
            assert status[name]["store_waited_s"] >= OUTAGE_S / 2
        assert sum(status[n]["endpoints_done"] for n in names) == len(targets)
        table = subprocess.run(
            [sys.executable, "-m", "certvigil", "workers", "status", "-c", str(c.path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "COLUMNS": "80"},
        )
        assert table.returncode == 0, table.stderr
        assert "db waits" in table.stdout
        for name in names:
            (line,) = [row for row in table.stdout.splitlines() if row.startswith(name + " ")]
            assert re.search(rf" {status[name]['store_waits']} \(\d+s\)$", line.rstrip())
            assert "scanning" not in line and "silent" not in line


def test_a_store_away_longer_than_store_wait_gets_its_shards_handed_back(
    own_postgres: ThrowawayPostgres,
    redis: ThrowawayRedis,
    cluster: Callable[[dict[str, Any]], Cluster],
    expiring: tuple[ThrowawayPki, Path, Any],
) -> None:
    """With ``store_wait`` shorter than the outage the workers hand their shards back to
    the broker and take them again once the store answers: the second delivery skips
    what the first recorded, so still nothing is lost or doubled."""
    database = own_postgres.create_database("handback")
    open_store(database).close()
    with ExitStack() as stack:
        receiver = stack.enter_context(counting_receiver())
        c, targets = _start(
            stack,
            cluster,
            database,
            redis,
            expiring,
            receiver,
            store_wait=1,
            visibility_timeout=4 * OUTAGE_S + 240,
        )
        names = [c.start_worker(), c.start_worker()]
        c.wait_for_workers(names)
        scheduler = c.start_scheduler()
        _wait_until_both_hold_a_half_recorded_shard(c, names)
        _outage(own_postgres, c, scheduler)
        _out, err = scheduler.communicate(timeout=120 + OUTAGE_S)
        assert scheduler.returncode == 0, err[-3000:]
        _check_round(c, targets, receiver)
        assert all(s.attempts >= 2 for s in c.shards())
        logs = "".join((c.logs / f"{n}.log").read_text(errors="replace") for n in names)
        assert "shard handed back" in logs
        status = _status(c)
        assert all(c.workers[n].poll() is None for n in names)
        assert all(status[n]["store_waits"] >= 1 for n in names)


def test_a_careful_redelivery_cut_by_the_store_sets_nothing_aside(
    own_postgres: ThrowawayPostgres,
    redis: ThrowawayRedis,
    cluster: Callable[[dict[str, Any]], Cluster],
    expiring: tuple[ThrowawayPki, Path, Any],
) -> None:
    """A redelivered shard runs carefully, naming the endpoint in flight in its row; the
    store going away then is not taken for that endpoint killing the worker, even with
    ``poison_after: 1``: the worker's hand-back says so in the message it sends again."""
    database = own_postgres.create_database("careful")
    open_store(database).close()
    with ExitStack() as stack:
        receiver = stack.enter_context(counting_receiver())
        c, targets = _start(
            stack,
            cluster,
            database,
            redis,
            expiring,
            receiver,
            store_wait=1,
            poison_after=1,
            visibility_timeout=4 * OUTAGE_S + 240,
        )
        only = c.start_worker()
        c.wait_for_workers([only])
        scheduler = c.start_scheduler()

        def wait_for(attempt: int) -> None:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                running = [
                    s
                    for s in c.shards()
                    if s.state == "running" and s.attempts == attempt and s.recorded >= attempt
                ]
                if running and (attempt == 1 or running[0].current_index is not None):
                    return
                time.sleep(0.02)
            raise AssertionError(f"attempt {attempt} never got going: {c.shards()}")

        wait_for(1)
        _outage(own_postgres, c, scheduler)  # the first delivery is handed back
        wait_for(2)  # the second runs carefully
        _outage(own_postgres, c, scheduler)
        _out, err = scheduler.communicate(timeout=120 + OUTAGE_S)
        assert scheduler.returncode == 0, err[-3000:]
        _check_round(c, targets, receiver)
        with c.store.read() as connection:
            failed = connection.execute(
                select(func.count()).select_from(OBSERVATIONS).where(OBSERVATIONS.c.status != "ok")
            ).scalar_one()
        assert failed == 0
        shards = c.shards()
        assert all(s.suspect_crashes == 0 for s in shards), shards
        assert max(s.attempts for s in shards) >= 3, shards
