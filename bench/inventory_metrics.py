"""``/metrics`` from the store: render time of the inventory's metrics at 10,000 endpoints.

Fills a fresh store through the real ingest path (``Store.record_reports`` in batches
of 500) with ``--endpoints`` endpoints (default 10,000): leaf and intermediate each,
expiries spread over a year, a finding or two on a third of them (expiry, protocol,
revocation), 5 % failing, plus 200 open alerts and 50 failed deliveries. Then times,
median of ``--repeat`` runs:

* the read (``inventory_state``: one snapshot, six statements);
* writing the exposition text (``inventory_exposition``);
* the whole ``/metrics`` answer of a running ``certvigil exporter --db`` over HTTP.

On SQLite (a file in a temporary directory) and PostgreSQL (a throwaway server from
Debian's binaries), unless ``--only`` names one.

    .venv/bin/python bench/inventory_metrics.py
    .venv/bin/python bench/inventory_metrics.py --endpoints 1000 --repeat 3 --only sqlite
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from certvigil.analysis.model import (
    CertificateFacts,
    ChainReport,
    EndpointReport,
    Finding,
    KeyType,
    Severity,
)
from certvigil.integrations.prometheus_store import inventory_exposition
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.store import Store, open_store
from certvigil.store.metrics_state import inventory_state
from certvigil.targets.target import Target

# The test-only servers live in tests/support/, beside this folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.postgres import ThrowawayPostgres

SRC = Path(__file__).resolve().parents[1] / "src"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def _facts(name: str, not_after: datetime, *, is_ca: bool = False) -> CertificateFacts:
    der = f"bench:{name}:{not_after.isoformat()}".encode()
    return CertificateFacts(
        subject=f"CN={name}",
        subject_cn=name,
        issuer="CN=Bench CA,O=Example",
        issuer_cn="Bench CA",
        serial_hex=hashlib.sha1(der).hexdigest()[:16],
        not_before_utc=not_after - timedelta(days=90),
        not_after_utc=not_after,
        validity_days=90,
        sha256_hex=hashlib.sha256(der).hexdigest(),
        sha1_hex=hashlib.sha1(der).hexdigest(),
        san_dns=(name,),
        key_type=KeyType.EC,
        key_bits=256,
        key_curve="secp256r1",
        signature_algorithm="ecdsa-with-SHA256",
        signature_hash="sha256",
        is_self_signed=False,
        is_ca=is_ca,
    )


_FINDINGS = (
    (),
    (Finding(code="expires_soon", severity=Severity.WARNING, message="soon", cert_index=0),),
    (
        Finding(code="protocol_tls10", severity=Severity.WARNING, message="TLS 1.0"),
        Finding(code="protocol_tls11", severity=Severity.WARNING, message="TLS 1.1"),
    ),
    (Finding(code="revoked", severity=Severity.CRITICAL, message="revoked", cert_index=0),),
)


def _reports(count: int) -> Iterator[EndpointReport]:
    ca = _facts("Bench CA", NOW + timedelta(days=3000), is_ca=True)
    for index in range(count):
        host = f"host{index:05d}.bench.example"
        target = Target(host=host, port=443 if index % 7 else 8443)
        if index % 20 == 0:
            yield EndpointReport(
                target=target,
                evaluated_at_utc=NOW,
                failure=ProbeFailure(
                    target=target,
                    kind=FailureKind.TIMEOUT if index % 40 else FailureKind.CONNECTION_REFUSED,
                    detail="bench",
                    observed_at_utc=NOW,
                    peer_address="127.0.0.1",
                ),
            )
            continue
        leaf = _facts(host, NOW + timedelta(days=index % 365 - 5))
        chain = (leaf, ca)
        yield EndpointReport(
            target=target,
            evaluated_at_utc=NOW,
            observation=TlsObservation(
                target=target,
                peer_address="127.0.0.1",
                observed_at_utc=NOW,
                chain_der=(b"leaf", b"ca"),
                protocol="TLSv1.3" if index % 3 else "TLSv1.2",
                cipher="TLS_AES_128_GCM_SHA256",
                connect_s=0.001,
                handshake_s=0.004,
            ),
            certificates=chain,
            chain=ChainReport(
                is_trusted=index % 50 != 1,
                verified_path_sha256=tuple(f.sha256_hex for f in chain),
            ),
            hostname_matches=index % 60 != 2,
            findings=_FINDINGS[index % 3] if index % 90 else _FINDINGS[3],
        )


def fill(store: Store, endpoints: int) -> float:
    """Fill the store; seconds it took."""
    started = time.perf_counter()
    batch: list[EndpointReport] = []
    for report in _reports(endpoints):
        batch.append(report)
        if len(batch) == 500:
            store.record_reports(batch)
            batch = []
    if batch:
        store.record_reports(batch)
    for index in range(200):
        store.open_alert_if_absent(
            dedup_key=f"bench-{index}",
            kind="expiry",
            severity=Severity.WARNING if index % 2 else Severity.CRITICAL,
            summary="bench",
            now=NOW,
            routes=("ops",) if index < 50 else (),
        )
    for delivery in store.claim_due_deliveries(now=NOW, limit=50):
        store.mark_failed(delivery.id, next_attempt_at=NOW, error="bench", give_up=True)
    return time.perf_counter() - started


def _median_ms(call: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, result


@contextmanager
def _exporter(url: str, tmp: Path) -> Iterator[str]:
    config = tmp / "certvigil.yaml"
    config.write_text("targets:\n  - host: localhost:1\n")
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "certvigil", "exporter", "--config", str(config)),
            *("--listen", "127.0.0.1:0", "--db", url),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    try:
        assert process.stderr is not None
        match = re.search(r"(http://\S+)/", process.stderr.readline())
        assert match, "the exporter did not start"
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(10)


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        body: bytes = response.read()
        return body


def measure(name: str, url: str, *, endpoints: int, repeat: int, tmp: Path) -> None:
    """Fill the database at ``url`` and print the timings."""
    with open_store(url) as store:
        fill_s = fill(store, endpoints)

        def read() -> Any:
            with store.read() as connection:
                return inventory_state(connection)

        read_ms, state = _median_ms(read, repeat)
        render_ms, text = _median_ms(lambda: inventory_exposition(state, now=NOW), repeat)
    with _exporter(url, tmp) as base:
        _http_get(f"{base}/metrics")  # warm-up: imports, first connection
        http_ms, body = _median_ms(lambda: _http_get(f"{base}/metrics"), repeat)
    samples = sum(1 for line in text.splitlines() if not line.startswith("#"))
    print(
        f"{name:<11} {len(state.endpoints):>6} endpoints  fill {fill_s:6.1f} s  "
        f"read {read_ms:7.1f} ms  render {render_ms:6.1f} ms  "
        f"/metrics over HTTP {http_ms:7.1f} ms  "
        f"({samples} samples, {len(body) / 1024:.0f} KiB)"
    )


def main() -> None:
    """Run the benchmark and print one line per database."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoints", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; median of {args.repeat} runs")
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        if args.only in (None, "sqlite"):
            url = f"sqlite:///{tmp / 'bench.db'}"
            measure("SQLite", url, endpoints=args.endpoints, repeat=args.repeat, tmp=tmp)
        if args.only in (None, "postgresql"):
            with ThrowawayPostgres(durable=True) as server:
                url = server.create_database("bench")
                measure("PostgreSQL", url, endpoints=args.endpoints, repeat=args.repeat, tmp=tmp)


if __name__ == "__main__":
    main()
