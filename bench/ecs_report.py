"""ECS export, Elasticsearch shipping and report rendering over N endpoints in the store.

Fills a fresh SQLite store (a temporary file) with ``--n`` endpoints (default 10,000),
one observation each (one in ten with a critical finding, one in fifty failed), then
times, on the full store:

* export: the store's observations read a page at a time, turned into ECS documents
  and ``_bulk`` lines (``certvigil export ecs``'s path, in process), in documents per
  second; and the real command line as a child process, ``-o`` a temporary file
  (interpreter start-up included);
* ship: the same documents sent with ``ElasticsearchShipper`` to the loopback
  Elasticsearch stand-in of the tests (``tests/integrations/es_server.py``, a Python
  ``http.server`` that parses every line), batches of 500. The stand-in shares the two
  cores and is slower than a real cluster, so this is a floor for certvigil's side;
* report: every endpoint's latest observation read from the store and built into the
  report, then rendered as HTML, JSON, CSV and Markdown (``certvigil report``'s path).

    .venv/bin/python bench/ecs_report.py            # N = 10000
    .venv/bin/python bench/ecs_report.py --n 1000   # quicker

Figures taken on a shared or busy machine are indicative only.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.integrations.es_server import elasticsearch_standin

from certvigil.analysis.model import (
    CertificateFacts,
    ChainReport,
    EndpointReport,
    Finding,
    KeyType,
    Severity,
)
from certvigil.cli.report_cmd import store_state
from certvigil.cli.snapshot_source import ecs_documents, store_snapshots
from certvigil.integrations.ecs import bulk_lines
from certvigil.observed.handshake import (
    FailureKind,
    ProbeFailure,
    TlsObservation,
)
from certvigil.output.report_data import build_report
from certvigil.output.report_html import render_report_html
from certvigil.output.report_text import (
    render_report_csv,
    render_report_json,
    render_report_md,
)
from certvigil.sinks.elasticsearch import ElasticsearchShipper, ShipOptions
from certvigil.store import open_store
from certvigil.targets.target import Target

ISSUERS = ("CN=R11,O=Let's Encrypt", "CN=DigiCert Global G2,O=DigiCert", "CN=Internal CA,O=Ex")


def _report(index: int, now: datetime) -> EndpointReport:
    target = Target(host=f"ep{index}.bench.test", port=443)
    if index % 50 == 0:
        return EndpointReport(
            target=target,
            evaluated_at_utc=now,
            failure=ProbeFailure(
                target=target,
                kind=FailureKind.TIMEOUT,
                detail="timed out",
                observed_at_utc=now,
                peer_address="127.0.0.1",
            ),
        )
    der = f"bench-der-{index}".encode()
    issuer = ISSUERS[index % len(ISSUERS)]
    not_after = now + timedelta(days=(index * 7) % 400 - 10)
    facts = CertificateFacts(
        subject=f"CN={target.host}",
        subject_cn=target.host,
        issuer=issuer,
        issuer_cn=issuer.split(",")[0][3:],
        serial_hex=hashlib.sha1(der).hexdigest()[:16],
        not_before_utc=not_after - timedelta(days=90),
        not_after_utc=not_after,
        validity_days=90,
        sha256_hex=hashlib.sha256(der).hexdigest(),
        sha1_hex=hashlib.sha1(der).hexdigest(),
        san_dns=(target.host,),
        key_type=KeyType.EC,
        key_bits=256,
        key_curve="secp256r1",
        signature_algorithm="ecdsa-with-SHA256",
        signature_hash="sha256",
        is_self_signed=False,
        is_ca=False,
    )
    findings = (
        (Finding(code="untrusted", severity=Severity.CRITICAL, message="chain not trusted"),)
        if index % 10 == 0
        else ()
    )
    return EndpointReport(
        target=target,
        evaluated_at_utc=now,
        observation=TlsObservation(
            target=target,
            peer_address="127.0.0.1",
            observed_at_utc=now,
            chain_der=(der,),
            protocol="TLSv1.3",
            cipher="TLS_AES_128_GCM_SHA256",
            connect_s=0.001,
            handshake_s=0.002,
        ),
        certificates=(facts,),
        chain=ChainReport(is_trusted=index % 10 != 0, verified_path_sha256=()),
        hostname_matches=True,
        findings=findings,
    )


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def main() -> None:
    """Fill, time, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000, help="endpoints (default 10000)")
    args = parser.parse_args()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        store = open_store(f"sqlite:///{db}")
        fill_s, _ = _timed(
            lambda: [
                store.record_reports([_report(i, now) for i in range(s, min(s + 500, args.n))])
                for s in range(0, args.n, 500)
            ]
        )
        since = now - timedelta(hours=1)

        def export() -> int:
            sink = io.StringIO()
            count = 0
            for line in bulk_lines(ecs_documents(store_snapshots(store, since_utc=since))):
                sink.write(line)
                count += 1
            return count // 2

        export_s, documents = _timed(export)
        out = Path(folder) / "bulk.ndjson"
        cli_s, _ = _timed(
            lambda: subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "certvigil",
                    "export",
                    "ecs",
                    "--db",
                    str(db),
                    "--since",
                    "1h",
                    "-o",
                    str(out),
                ],
                check=True,
                capture_output=True,
            )
        )
        all_documents = list(ecs_documents(store_snapshots(store, since_utc=since)))
        with elasticsearch_standin() as (url, cluster):
            with ElasticsearchShipper(ShipOptions(url=url, max_batch_docs=500)) as shipper:
                ship_s, result = _timed(lambda: shipper.ship(all_documents))
            held = len(cluster.documents)
        read_s, (snapshots, _where) = _timed(
            lambda: store_state(str(db), None, host_glob=None, tag=None)
        )
        build_s, data = _timed(lambda: build_report(snapshots, now=now, source="bench"))
        renders = {}
        for name, render in (
            ("html", render_report_html),
            ("json", render_report_json),
            ("csv", render_report_csv),
            ("md", render_report_md),
        ):
            sink = io.StringIO()
            seconds, _ = _timed(lambda render=render, sink=sink: render(data, sink))
            renders[name] = (seconds, len(sink.getvalue()))
        store.close()

    print(f"endpoints: {args.n} (fill {fill_s:.1f} s); documents: {documents}")
    print(f"{'step':<44} {'seconds':>8} {'docs/s':>10}")
    print(f"{'export ecs, in process':<44} {export_s:8.2f} {documents / export_s:10.0f}")
    print(
        f"{'export ecs, command line (start-up incl.)':<44} {cli_s:8.2f} {documents / cli_s:10.0f}"
    )
    print(
        f"{'ship to loopback stand-in (batches of 500)':<44} {ship_s:8.2f} "
        f"{result.indexed / ship_s:10.0f}   indexed {result.indexed}, held {held}"
    )
    print(f"{'report: read latest state from the store':<44} {read_s:8.2f}")
    print(f"{'report: build (rows, bins, spreads)':<44} {build_s:8.2f}")
    for name, (seconds, size) in renders.items():
        print(f"{'report: render ' + name:<44} {seconds:8.2f}   {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
