"""One daemon cycle against real TLS servers on loopback, recorded in SQLite, alerts delivered."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from certvigil.config import load_config
from certvigil.config.expand import expand_targets
from certvigil.daemon.runner import Daemon
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer, closed_port
from certvigil.scan.options import ScanOptions
from certvigil.store import Store, open_store
from tests.daemon.helpers import counting_receiver, expiring_leaf, write_config


def test_once_records_every_endpoint_and_delivers_each_alert_once(
    tmp_path: Path, pki: ThrowawayPki, store: Store
) -> None:
    """A cycle records each endpoint, opens expiry alerts and delivers each exactly once.

    Runs on SQLite and on PostgreSQL (the ``store`` fixture).
    """
    leaf = expiring_leaf(pki, days_left=5)
    with (
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server,
        closed_port() as closed,
        counting_receiver() as receiver,
    ):
        config = write_config(
            tmp_path,
            root_pem=pki.root.pem,
            endpoints=[
                ("127.0.0.1", server.port, None),
                ("localhost", server.port, None),
                ("127.0.0.1", closed.port, None),
            ],
            route_url=receiver.url(),
        )
        loaded = load_config(config)
        targets = expand_targets(loaded).targets
        options = ScanOptions(retries=0, fetch_missing_issuers=False)

        def run_once() -> None:
            daemon = Daemon(loaded, targets, store=store, scan_options=options)
            asyncio.run(daemon.run(once=True))

        run_once()
        endpoints = store.list_endpoints()
        assert len(endpoints) == 3
        histories = [store.endpoint_history(e.id) for e in endpoints]
        assert [len(h) for h in histories] == [1, 1, 1]
        statuses = sorted(h[0].status.value for h in histories)
        assert statuses == ["failed", "ok", "ok"]
        alerts = store.list_alerts()
        assert any(a.kind == "expiry_threshold" for a in alerts)
        deliveries = store.list_deliveries()
        assert deliveries
        assert {d.status.value for d in deliveries} == {"sent"}
        counts = receiver.counts()
        assert sorted(counts) == sorted(str(d.id) for d in deliveries)
        assert set(counts.values()) == {1}

        # A second cycle sees the same certificates: nothing is told twice.
        run_once()
        assert [len(store.endpoint_history(e.id)) for e in endpoints] == [2, 2, 2]
        assert receiver.counts() == counts


def test_run_once_command_logs_json_lines_and_exits_0(tmp_path: Path, pki: ThrowawayPki) -> None:
    """``certvigil run --once --log-format json`` writes one JSON object per log line."""
    leaf = expiring_leaf(pki, days_left=200)
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server:
        config = write_config(
            tmp_path, root_pem=pki.root.pem, endpoints=[("localhost", server.port, None)]
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "certvigil",
                "run",
                "--config",
                str(config),
                "--once",
                "--log-format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stderr.splitlines()]
    finished = [r for r in records if r["msg"] == "cycle finished"]
    assert len(finished) == 1
    assert (finished[0]["due"], finished[0]["recorded"], finished[0]["failed"]) == (1, 1, 0)
    assert all({"ts", "level", "logger", "msg"} <= set(r) for r in records)
    assert (tmp_path / "inventory.db").exists()


def test_run_with_invalid_config_exits_64(tmp_path: Path) -> None:
    """``certvigil run`` on a configuration with a mistake names it and exits 64."""
    config = tmp_path / "certvigil.yaml"
    config.write_text("targets:\n  - host: localhost\n    port: 0\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "certvigil", "run", "--config", str(config), "--once"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 64
    assert f"{config}:3: targets[0].port: must be 1..65535" in result.stderr


def test_each_endpoint_is_rescanned_after_its_own_interval(
    tmp_path: Path, pki: ThrowawayPki
) -> None:
    """With an injected monotonic clock, a 1-minute endpoint is rescanned before a 1-hour one."""
    leaf = expiring_leaf(pki, days_left=200)
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server:
        config = tmp_path / "certvigil.yaml"
        (tmp_path / "root.pem").write_bytes(pki.root.pem)
        config.write_text(
            "database_url: inventory.db\n"
            "trust: {public: false, ca_files: [root.pem]}\n"
            "scan: {interval: 1h}\n"
            "targets:\n"
            f"  - {{host: 127.0.0.1, port: {server.port}, interval: 1m}}\n"
            f"  - {{host: localhost, port: {server.port}}}\n",
            encoding="utf-8",
        )
        loaded = load_config(config)
        seconds = [1000.0]
        store = open_store(loaded.database_url)
        try:
            daemon = Daemon(
                loaded,
                expand_targets(loaded).targets,
                store=store,
                monotonic=lambda: seconds[0],
                scan_options=ScanOptions(retries=0, fetch_missing_issuers=False),
            )

            async def cycles() -> list[tuple[int, int]]:
                done = []
                for now_s in (1000.0, 1030.0, 1061.0, 4601.0):
                    seconds[0] = now_s
                    result = await daemon.run_cycle()
                    done.append((result.due, result.recorded))
                return done

            assert asyncio.run(cycles()) == [(2, 2), (0, 0), (1, 1), (2, 2)]
            histories = {
                e.target.host: len(store.endpoint_history(e.id)) for e in store.list_endpoints()
            }
            assert histories == {"127.0.0.1": 3, "localhost": 2}
        finally:
            store.close()


def test_per_target_thresholds_reach_the_alert_engine(tmp_path: Path, pki: ThrowawayPki) -> None:
    """A target's own thresholds replace the global ones for its alerts."""
    leaf = expiring_leaf(pki, days_left=5)
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server:
        config = tmp_path / "certvigil.yaml"
        (tmp_path / "root.pem").write_bytes(pki.root.pem)
        config.write_text(
            "database_url: inventory.db\n"
            "trust: {public: false, ca_files: [root.pem]}\n"
            "alerts: {thresholds: [30, 14, 7]}\n"
            "targets:\n"
            f"  - {{host: 127.0.0.1, port: {server.port}}}\n"
            f"  - {{host: localhost, port: {server.port}, thresholds: [3]}}\n",
            encoding="utf-8",
        )
        loaded = load_config(config)
        store = open_store(loaded.database_url)
        try:
            daemon = Daemon(
                loaded,
                expand_targets(loaded).targets,
                store=store,
                scan_options=ScanOptions(retries=0, fetch_missing_issuers=False),
            )
            asyncio.run(daemon.run_cycle())
            expiry = [a for a in store.list_alerts() if a.kind == "expiry_threshold"]
        finally:
            store.close()
    hosts = {a.target.host for a in expiry if a.target is not None}
    assert hosts == {"127.0.0.1"}
