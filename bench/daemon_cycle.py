"""One daemon cycle end to end: endpoints scanned, recorded and judged into SQLite per second.

Run: .venv/bin/python bench/daemon_cycle.py [--endpoints N] [--concurrency C]

N endpoints on one loopback TLS server (told apart by SNI), a leaf 5 days from expiry so
every endpoint opens alerts; a first cycle into an empty SQLite inventory, then a second
cycle (the steady state: history exists, nothing new to alert). Prints wall time and
endpoints per second for both, and where the time goes (scan-only for comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certvigil.config import load_config
from certvigil.config.expand import expand_targets
from certvigil.daemon.runner import Daemon
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.files.truststore import load_trust_store
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan_stream
from certvigil.store import open_store


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    now = datetime.now(UTC)
    pki = ThrowawayPki.create()
    leaf = pki.issue_leaf(
        dns_names=("localhost", "*.localhost"),
        ip_addresses=("127.0.0.1",),
        not_before_utc=now - timedelta(days=360),
        not_after_utc=now + timedelta(days=5),
    )
    options = ScanOptions(
        concurrency=args.concurrency,
        per_ip_concurrency=args.concurrency,
        retries=0,
        fetch_missing_issuers=False,
    )
    with (
        tempfile.TemporaryDirectory() as scratch,
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server,
    ):
        directory = Path(scratch)
        (directory / "root.pem").write_bytes(pki.root.pem)
        lines = [
            "database_url: inventory.db",
            "trust: {public: false, ca_files: [root.pem]}",
            f"scan: {{concurrency: {args.concurrency}}}",
            "targets:",
        ]
        lines += [
            f"  - {{host: 127.0.0.1, port: {server.port}, sni: e{i}.localhost}}"
            for i in range(args.endpoints)
        ]
        (directory / "c.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        loaded = load_config(directory / "c.yaml")
        targets = expand_targets(loaded).targets

        trust = load_trust_store(ca_files=(directory / "root.pem",), include_default=False)

        async def scan_only() -> int:
            feed = [s.target for s in targets]
            return len([r async for r in scan_stream(feed, options=options, trust=trust)])

        started = time.perf_counter()
        asyncio.run(scan_only())
        scan_s = time.perf_counter() - started

        store = open_store(loaded.database_url)
        try:
            daemon = Daemon(loaded, targets, store=store, scan_options=options)
            results = []
            for _ in range(2):
                daemon.schedule = type(daemon.schedule)(targets, start_s=0.0)
                results.append(asyncio.run(daemon.run_cycle()))
        finally:
            store.close()
    n = args.endpoints
    print(f"endpoints: {n}, concurrency: {args.concurrency}")
    print(f"scan only (no store):        {scan_s:6.2f} s  {n / scan_s:7.1f} endpoints/s")
    for label, result in zip(
        ("first cycle (empty store):", "second cycle (history):  "), results, strict=True
    ):
        rate = result.recorded / result.duration_s
        print(
            f"{label}   {result.duration_s:6.2f} s  {rate:7.1f} endpoints/s"
            f"  ({result.recorded} recorded, {result.alert_events} alert events)"
        )


if __name__ == "__main__":
    main()
