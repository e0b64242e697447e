"""Daemon cycle cost per endpoint by checks: ``cert`` vs ``cert+revocation`` vs full.

Run: .venv/bin/python bench/daemon_checks_cost.py [--endpoints 2000] [--full-endpoints N]

A fleet of N endpoints under one CA on loopback: one TLS server telling the endpoints
apart by SNI, each with its own leaf naming the CA's OCSP responder and CRL, served by
one loopback OCSP/CRL server. For each set of checks, a fresh SQLite inventory and one
daemon run two cycles: the first with cold caches, the second an hour later (the
revocation answers still valid). Prints the wall time per endpoint of each cycle and
how often the CRL was downloaded and the OCSP responder asked: the daemon keeps both
until their nextUpdate, across endpoints and cycles, so the CRL is fetched once.

The full checks probe ~40 handshakes per endpoint; ``--full-endpoints`` runs them on
fewer endpoints. Figures on a loaded machine are indicative only.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certvigil.config import load_config
from certvigil.config.expand import expand_targets
from certvigil.daemon.runner import Daemon
from certvigil.demo.pki import KeySpec, ThrowawayPki, shared_key
from certvigil.demo.servers import ServedChain, TlsServer
from certvigil.scan.options import ScanOptions
from certvigil.store import open_store

# The test-only OCSP responder and CRL server live in tests/support/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.ocsp_responder import GOOD, OcspResponder, RevocationServer, build_crl

CHECKS = {
    "cert": "{revocation: false, protocols: false, grade: false}",
    "cert+revocation": "{revocation: {}, protocols: false, grade: false}",
    "full": "{revocation: {}, protocols: {interval: 1d}, grade: {interval: 1d}}",
}


@dataclass
class SteppedClock:
    """The daemon's monotonic clock: the second cycle comes an hour after the first."""

    now_s: float = 1000.0

    def __call__(self) -> float:
        return self.now_s


def utc_now() -> datetime:
    return datetime.now(UTC)


def run_mode(
    name: str,
    count: int,
    *,
    pki: ThrowawayPki,
    server_port: int,
    revocation: RevocationServer,
    concurrency: int,
) -> list[tuple[float, int, int, int]]:
    """Two cycles with the checks ``name``; per cycle (seconds, recorded, CRL downloads,
    OCSP requests)."""
    figures = []
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        (directory / "root.pem").write_bytes(pki.root.pem)
        lines = [
            "database_url: inventory.db",
            "trust: {public: false, ca_files: [root.pem]}",
            f"scan: {{concurrency: {concurrency}, jitter: 0, deadline: 120s}}",
            f"checks: {CHECKS[name]}",
            "targets:",
        ]
        lines += [
            f"  - {{host: 127.0.0.1, port: {server_port}, sni: e{i}.localhost}}"
            for i in range(count)
        ]
        (directory / "c.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        loaded = load_config(directory / "c.yaml")
        options = ScanOptions(
            concurrency=concurrency,
            per_ip_concurrency=concurrency,
            retries=0,
            fetch_missing_issuers=False,
            deadline_s=120.0,
        )
        clock = SteppedClock()
        store = open_store(loaded.database_url)
        loop = asyncio.new_event_loop()
        try:
            daemon = Daemon(
                loaded,
                expand_targets(loaded).targets,
                store=store,
                scan_options=options,
                monotonic=clock,
            )
            for _ in range(2):
                crl_before = _requests(revocation, "/int.crl")
                ocsp_before = _requests(revocation, "/ocsp")
                started = time.perf_counter()
                result = loop.run_until_complete(daemon.run_cycle())
                elapsed = time.perf_counter() - started
                figures.append(
                    (
                        elapsed,
                        result.recorded,
                        _requests(revocation, "/int.crl") - crl_before,
                        _requests(revocation, "/ocsp") - ocsp_before,
                    )
                )
                clock.now_s += 3600
        finally:
            loop.close()
            store.close()
    return figures


def _requests(server: RevocationServer, prefix: str) -> int:
    return sum(1 for _method, path in server.requests_seen if path.startswith(prefix))


def main() -> None:
    """Build the fleet, measure each set of checks, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=2000)
    parser.add_argument("--full-endpoints", type=int, help="Endpoints for the full checks.")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    pki = ThrowawayPki.create()
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=utc_now)
    key = shared_key(KeySpec.EC_P256)
    with RevocationServer(responder=responder) as revocation:
        now = utc_now()
        revocation.files["/int.crl"] = build_crl(
            issuer=pki.intermediate.issued,
            this_update_utc=now - timedelta(hours=1),
            next_update_utc=now + timedelta(days=7),
        )
        started = time.perf_counter()
        chains: dict[str, ServedChain] = {}
        for i in range(args.endpoints):
            leaf = pki.issue_leaf(
                dns_names=(f"e{i}.localhost",),
                key=key,
                ocsp_urls=[revocation.url("/ocsp")],
                crl_urls=[revocation.url("/int.crl")],
            )
            responder.statuses[leaf.certificate.serial_number] = GOOD
            chains[f"e{i}.localhost"] = ServedChain(
                chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem
            )
        first = chains["e0.localhost"]
        print(
            f"fleet of {args.endpoints} leaves under one CA built in "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
        with TlsServer(chain=first.chain, key_pem=first.key_pem, sni_chains=chains) as server:
            rows = []
            for name in CHECKS:
                count = args.endpoints
                if name == "full" and args.full_endpoints is not None:
                    count = min(args.full_endpoints, args.endpoints)
                print(f"[{name}] {count} endpoints ...", file=sys.stderr, flush=True)
                figures = run_mode(
                    name,
                    count,
                    pki=pki,
                    server_port=server.port,
                    revocation=revocation,
                    concurrency=args.concurrency,
                )
                rows.append((name, count, figures))
    print(f"daemon cycle cost by checks, concurrency {args.concurrency}")
    print(
        f"{'checks':17}{'endpoints':>10}{'cycle':>7}{'ms/endpoint':>13}{'recorded':>10}"
        f"{'CRL fetches':>13}{'OCSP asks':>11}"
    )
    for name, count, figures in rows:
        for cycle, (elapsed, recorded, crl, ocsp) in enumerate(figures, start=1):
            print(
                f"{name:17}{count:>10}{cycle:>7}{elapsed / count * 1000:>13.2f}{recorded:>10}"
                f"{crl:>13}{ocsp:>11}"
            )


if __name__ == "__main__":
    main()
