"""Stopping the daemon: SIGTERM mid-cycle, and SIGKILL mid-cycle and mid-delivery, then restart."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import ServerAddress, TlsServer
from certvigil.store import Store, open_store
from tests.daemon.helpers import DaemonProcess, counting_receiver, expiring_leaf, write_config

ENDPOINTS = 10
HOLD_S = 0.5


@pytest.fixture
def slow_server(pki: ThrowawayPki) -> Iterator[ServerAddress]:
    """A TLS server that waits before each handshake; its leaf expires in 5 days."""
    leaf = expiring_leaf(pki, days_left=5)
    with TlsServer(
        chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem, hold_before_handshake_s=HOLD_S
    ) as address:
        yield address


def slow_endpoints(server: ServerAddress) -> list[tuple[str, int, str | None]]:
    """Ten endpoints on one server, told apart by SNI."""
    return [("127.0.0.1", server.port, f"e{i}.localhost") for i in range(ENDPOINTS)]


def observation_ids(database: Path) -> set[int]:
    with sqlite3.connect(database) as connection:
        return {row[0] for row in connection.execute("SELECT id FROM observations")}


def integrity(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def wait_until_one_unsent(database: Path, timeout_s: float = 30.0) -> None:
    """Wait until every delivery but one is marked sent."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with sqlite3.connect(database) as connection:
            statuses = [row[0] for row in connection.execute("SELECT status FROM deliveries")]
        if len(statuses) > 1 and statuses.count("sent") == len(statuses) - 1:
            return
        time.sleep(0.02)
    raise AssertionError(f"deliveries never reached one unsent: {statuses}")


def open_inventory(directory: Path) -> Store:
    return open_store(str(directory / "inventory.db"))


def test_sigterm_finishes_in_flight_endpoints_and_exits_0(
    tmp_path: Path, pki: ThrowawayPki, slow_server: ServerAddress
) -> None:
    """SIGTERM mid-cycle starts nothing new, records what was in flight, and exits 0."""
    config = write_config(
        tmp_path, root_pem=pki.root.pem, endpoints=slow_endpoints(slow_server), concurrency=2
    )
    daemon = DaemonProcess(config)
    try:
        daemon.wait_for("recorded")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        daemon.kill()
    # Then: every logged report is in the store, nothing else is, and the cycle stopped short.
    recorded = {r["observation"] for r in daemon.messages("recorded")}
    database = tmp_path / "inventory.db"
    assert observation_ids(database) == recorded
    assert 0 < len(recorded) < ENDPOINTS
    (finished,) = daemon.messages("cycle finished")
    assert finished["interrupted"] is True
    assert daemon.messages("stop requested: finishing endpoints in flight")
    assert daemon.messages("daemon stopped")
    assert integrity(database) == "ok"


def test_sigkill_mid_cycle_loses_no_observation_or_alert(
    tmp_path: Path, pki: ThrowawayPki, slow_server: ServerAddress
) -> None:
    """After SIGKILL mid-cycle and a restart, every alert is delivered exactly once."""
    with counting_receiver() as receiver:
        config = write_config(
            tmp_path,
            root_pem=pki.root.pem,
            endpoints=slow_endpoints(slow_server),
            concurrency=2,
            route_url=receiver.url(),
        )
        # Given: a daemon killed with SIGKILL after a few reports were recorded.
        first = DaemonProcess(config)
        try:
            first.wait_for("recorded", count=3)
            first.signal(signal.SIGKILL)
            assert first.wait(30) == -signal.SIGKILL
        finally:
            first.kill()
        before_kill = {r["observation"] for r in first.messages("recorded")}
        database = tmp_path / "inventory.db"
        assert integrity(database) == "ok"
        assert before_kill <= observation_ids(database)
        with open_inventory(tmp_path) as store:
            alerts_before = {a.id: a.dedup_key for a in store.list_alerts()}
        assert alerts_before, "the expiring leaf opened alerts before the kill"

        # When: the daemon runs again.
        second = DaemonProcess(config, "--once")
        try:
            assert second.wait(60) == 0
        finally:
            second.kill()

        # Then: every endpoint is observed, the alerts opened before the kill are kept,
        # each alert is open once, and each delivery reached the receiver exactly once.
        with open_inventory(tmp_path) as store:
            endpoints = store.list_endpoints()
            assert len(endpoints) == ENDPOINTS
            assert all(store.endpoint_history(e.id) for e in endpoints)
            alerts = store.list_alerts()
            assert {a.id: a.dedup_key for a in alerts if a.id in alerts_before} == alerts_before
            keys = [a.dedup_key for a in alerts]
            assert len(keys) == len(set(keys))
            deliveries = store.list_deliveries()
        assert {d.alert_id for d in deliveries} == {a.id for a in alerts}
        assert {d.status.value for d in deliveries} == {"sent"}
        counts = receiver.counts()
        assert sorted(counts) == sorted(str(d.id) for d in deliveries)
        assert set(counts.values()) == {1}


def test_sigkill_mid_delivery_resends_only_the_unacknowledged_one(
    tmp_path: Path, pki: ThrowawayPki
) -> None:
    """A kill while a delivery awaits its answer re-sends that one, same id, and no other."""
    leaf = expiring_leaf(pki, days_left=5)
    with (
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server,
        counting_receiver(hold_first=True) as receiver,
    ):
        config = write_config(
            tmp_path,
            root_pem=pki.root.pem,
            endpoints=[("127.0.0.1", server.port, None), ("localhost", server.port, None)],
            route_url=receiver.url(),
        )
        # Given: a daemon killed while the receiver holds the first delivery unanswered
        # (the others were answered and marked sent).
        first = DaemonProcess(config, "--once")
        try:
            assert receiver.holding.wait(60), first.records
            wait_until_one_unsent(tmp_path / "inventory.db")
            first.signal(signal.SIGKILL)
            assert first.wait(30) == -signal.SIGKILL
        finally:
            first.kill()
        receiver.release.set()
        held_id = receiver.ids[0]
        with open_inventory(tmp_path) as store:
            alerts_before = {a.id for a in store.list_alerts()}
            unsent = [d for d in store.list_deliveries() if d.status.value != "sent"]
        assert [(str(d.id), d.status.value) for d in unsent] == [(held_id, "sending")]

        # When: the daemon runs again.
        second = DaemonProcess(config, "--once")
        try:
            assert second.wait(60) == 0
        finally:
            second.kill()

        # Then: no alert was lost or opened twice, every delivery is sent, and the only
        # request the receiver saw twice is the one whose answer the kill cut off; it
        # carries the same delivery id, so the receiver can tell it is not a new alert.
        with open_inventory(tmp_path) as store:
            alerts = store.list_alerts()
            deliveries = store.list_deliveries()
        assert {a.id for a in alerts} == alerts_before
        assert {d.status.value for d in deliveries} == {"sent"}
        counts = receiver.counts()
        assert sorted(counts) == sorted(str(d.id) for d in deliveries)
        assert counts[held_id] == 2
        assert all(n == 1 for delivery_id, n in counts.items() if delivery_id != held_id)
        # Both copies carry the delivery's idempotency key: a receiver keeping the keys
        # it has seen drops the repeat.
        held = next(d for d in deliveries if str(d.id) == held_id)
        assert receiver.key_counts()[held.idempotency_key] == 2
        assert len(receiver.key_counts()) == len(deliveries)
