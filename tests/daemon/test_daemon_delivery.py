"""Delivery seen from the daemon: failures are visible, one daemon per database, keys repeat."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.store import open_store
from tests.daemon.helpers import DaemonProcess, counting_receiver, expiring_leaf, write_config


def wait_until(condition: Callable[[], bool], *, what: str, timeout_s: float = 60.0) -> None:
    """Polls ``condition`` until it holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s} s")
        time.sleep(0.02)


def test_run_once_logs_each_failed_attempt_and_exits_75_while_a_delivery_fails(
    tmp_path: Path, pki: ThrowawayPki
) -> None:
    """A receiver answering 503: each attempt is logged with its details and --once exits 75."""
    leaf = expiring_leaf(pki, days_left=5)
    with (
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server,
        counting_receiver(status=503) as receiver,
    ):
        config = write_config(
            tmp_path,
            root_pem=pki.root.pem,
            endpoints=[("localhost", server.port, None)],
            route_url=receiver.url(),
        )
        daemon = DaemonProcess(config, "--once")
        try:
            code = daemon.wait(60)
        finally:
            daemon.kill()
    assert code == 75, daemon.records
    failures = daemon.messages("delivery failed")
    assert failures and len(failures) == len(receiver.ids)
    with open_store(str(tmp_path / "inventory.db")) as store:
        deliveries = {d.id: d for d in store.list_deliveries()}
    for record in failures:
        delivery = deliveries[record["delivery"]]
        assert record["level"] == "warning"
        assert record["alert"] == delivery.alert_id
        assert record["error"] == "HTTP 503 Service Unavailable"
        assert record["channel"] == f"webhook+http://127.0.0.1:{receiver.port}/…"
        assert record["next_attempt_at"] == delivery.next_attempt_at_utc.isoformat()
    (summary,) = daemon.messages("deliveries still failing at exit")
    assert summary["failing"] == len(deliveries)


def test_a_second_daemon_is_refused_and_no_delivery_is_sent_twice(
    tmp_path: Path, pki: ThrowawayPki
) -> None:
    """While a daemon sends to a slow receiver, a second one on its database exits with a message.

    Before the lock, the second daemon released the first one's in-flight claims at its
    start-up and sent them again.
    """
    leaf = expiring_leaf(pki, days_left=5)
    with (
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server,
        counting_receiver(delay_s=1.0) as receiver,
    ):
        config = write_config(
            tmp_path,
            root_pem=pki.root.pem,
            endpoints=[("127.0.0.1", server.port, f"e{i}.localhost") for i in range(4)],
            route_url=receiver.url(),
        )
        first = DaemonProcess(config)
        try:
            # The first daemon has requests in flight at the slow receiver.
            wait_until(lambda: bool(receiver.ids), what="a first request")
            second = subprocess.run(
                [sys.executable, "-m", "certvigil", "run", "--config", str(config), "--once"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode not in (0, 64), second.stderr
            assert "is in use by another certvigil daemon" in second.stderr
            assert f"process {first.process.pid} on host" in second.stderr
            with open_store(str(tmp_path / "inventory.db")) as store:
                total = len(store.list_deliveries())
                wait_until(
                    lambda: all(d.status.value == "sent" for d in store.list_deliveries()),
                    what="every delivery sent",
                )
            first.signal(signal.SIGTERM)
            assert first.wait(60) == 0
        finally:
            first.kill()
        # The lock went with the first daemon: a new one starts.
        third = DaemonProcess(config, "--once")
        try:
            assert third.wait(60) == 0, third.records
        finally:
            third.kill()
    counts = receiver.key_counts()
    assert len(counts) == total and set(counts.values()) == {1}
