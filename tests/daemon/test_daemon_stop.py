"""Stopping a daemon whose endpoint never answers: the grace time bounds the wait."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from certvigil.config import load_config
from certvigil.config.expand import expand_targets
from certvigil.daemon.runner import Daemon
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.scan.options import ScanOptions
from certvigil.store import open_store
from tests.daemon.helpers import expiring_leaf
from tests.support.fault_servers import SilentServer


def test_grace_time_cancels_a_silent_endpoint_and_keeps_what_was_recorded(
    tmp_path: Path,
) -> None:
    """After a stop, an endpoint that never answers is cancelled when the grace time ends."""
    pki = ThrowawayPki.create()
    leaf = expiring_leaf(pki, days_left=100)
    with (
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as answering,
        SilentServer() as silent,
    ):
        (tmp_path / "root.pem").write_bytes(pki.root.pem)
        config = tmp_path / "certvigil.yaml"
        config.write_text(
            "database_url: inventory.db\n"
            "trust: {public: false, ca_files: [root.pem]}\n"
            "scan: {timeout: 60s, shutdown_grace: 1s}\n"
            "targets:\n"
            f"  - {{host: 127.0.0.1, port: {silent.port}}}\n"
            f"  - {{host: localhost, port: {answering.port}}}\n",
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

            async def run_then_stop() -> float:
                running = asyncio.create_task(daemon.run())
                while not store.list_endpoints():
                    await asyncio.sleep(0.05)
                stopped_at = time.monotonic()
                daemon.request_stop()
                await asyncio.wait_for(running, timeout=30)
                return time.monotonic() - stopped_at

            stop_s = asyncio.run(run_then_stop())
            endpoints = store.list_endpoints()
        finally:
            store.close()
    # The answering endpoint was recorded; the silent one was cancelled, not recorded.
    assert [e.target.host for e in endpoints] == ["localhost"]
    assert 1.0 <= stop_s < 10.0
