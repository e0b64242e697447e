"""SIGHUP reloads the configuration: new endpoints are scanned, a broken file is refused."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from tests.daemon.helpers import DaemonProcess, write_config


def observed_ports(database: Path) -> list[int]:
    """The port of every observation in the store, oldest first."""
    with sqlite3.connect(database) as connection:
        rows = connection.execute(
            "SELECT e.port FROM observations o JOIN endpoints e ON e.id = o.endpoint_id"
            " ORDER BY o.id"
        ).fetchall()
    return [port for (port,) in rows]


def test_sighup_reloads_a_valid_configuration_and_keeps_the_running_one_otherwise(
    tmp_path: Path, pki: ThrowawayPki
) -> None:
    """A reload scans the added endpoint at once and not the kept one; a file with a
    mistake is logged with its line and the daemon goes on; SIGTERM then exits 0."""
    leaf = pki.issue_leaf(dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    with (
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as first,
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as second,
    ):
        one = [("127.0.0.1", first.port, None)]
        config = write_config(tmp_path, root_pem=pki.root.pem, endpoints=one)
        daemon = DaemonProcess(config)
        try:
            daemon.wait_for("cycle finished")
            both = [*one, ("127.0.0.1", second.port, None)]
            write_config(tmp_path, root_pem=pki.root.pem, endpoints=both)
            daemon.signal(signal.SIGHUP)
            daemon.wait_for("configuration reloaded")
            daemon.wait_for("cycle finished", count=2)
            (reloaded,) = daemon.messages("configuration reloaded")
            assert reloaded["endpoints"] == 2

            config.write_text(config.read_text() + "  - host: 127.0.0.1\n    port: 70000\n")
            daemon.signal(signal.SIGHUP)
            daemon.wait_for("configuration not reloaded; the running one is kept")
            (refused,) = daemon.messages("configuration not reloaded; the running one is kept")
            assert "port" in refused["error"] and "certvigil.yaml:" in refused["error"]

            daemon.signal(signal.SIGTERM)
            assert daemon.wait(30) == 0
        finally:
            daemon.kill()
    # The first cycle scanned the first endpoint; after the reload only the added one
    # was due (the first is not due again for an hour).
    assert observed_ports(tmp_path / "inventory.db") == [first.port, second.port]
    assert len(daemon.messages("configuration reloaded")) == 1
    assert daemon.messages("daemon stopped")


def test_reloads_in_quick_succession_do_not_cancel_endpoints_in_flight(
    tmp_path: Path, pki: ThrowawayPki
) -> None:
    """Two SIGHUPs while slow endpoints are in flight: the endpoints are finished and
    recorded (not cancelled, as a second stop request would), then the newer file runs."""
    leaf = pki.issue_leaf(dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    with TlsServer(
        chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem, hold_before_handshake_s=0.6
    ) as server:
        slow = [("127.0.0.1", server.port, f"e{i}.localhost") for i in range(4)]
        config = write_config(tmp_path, root_pem=pki.root.pem, endpoints=slow, concurrency=4)
        daemon = DaemonProcess(config)
        try:
            daemon.wait_for("cycle started")
            daemon.signal(signal.SIGHUP)
            daemon.wait_for("reload requested: finishing endpoints in flight")
            daemon.signal(signal.SIGHUP)
            daemon.wait_for("configuration reloaded")
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(30) == 0
        finally:
            daemon.kill()
    assert not daemon.messages("second stop request: cancelling endpoints in flight")
    assert not daemon.messages("cancelling endpoints still in flight")
    first_cycle = daemon.messages("cycle finished")[0]
    assert first_cycle["recorded"] == 4
    assert len(daemon.messages("configuration reloaded")) == 1
