"""Store benchmark: fill the inventory, then time ingest and the two everyday queries.

Fills a fresh store with ``--certificates`` certificates (default 100,000) and
``--observations`` observations (default 1,000,000) on ``--endpoints`` endpoints
(default 20,000), each endpoint rotating through its certificates over time. The fill
uses bulk inserts (it is set-up, not the measured path). Then, on the full store:

* ingest through ``Store.record_report`` (one transaction per report: certificate
  upsert, endpoint upsert, observation, deployments), on a sample of ``--sample``
  reports, and through ``Store.record_reports`` in batches of 100 (one transaction
  per batch; the daemon writes the reports that arrive together this way);
* ingest with the alert rules, as the daemon records a cycle's reports: each batch of
  100 recorded and judged in one transaction, report by report
  (``AlertEngine.process_in`` after ``record_reports``, the path before batching) and
  batched (``daemon.runner.record_and_judge``: ``record_reports`` then
  ``AlertEngine.process_many_in``), with one alert route and the endpoints' tags;
* "certificates expiring within 30 days" (leaves currently deployed, mapped to
  records), median of ``--repeat`` runs, on a freshly opened store as
  ``certvigil inventory`` sees it;
* "history of one endpoint" (its latest 100 observations, mapped to records),
  median over ``--repeat`` different endpoints.

Every sampled report carries its full observation, as the daemon's do since the store
keeps them whole: the served chain (a leaf and an intermediate of realistic size, each
with the same bytes whenever it is served and its SHA-256 as fingerprint, both in the
report's certificates, as a scan gives them: the store keeps them once and the stored
observation names them), a stapled OCSP response, the revocation check (one OCSP answer
per endpoint and the CRL of the one issuing CA, which the store keeps once) and, for one
report in 24 (the daily checks of an hourly scan), the protocol and cipher probes. The
fill gives each historical observation a compressed observation of the same size (its
chain named by reference, as stored), so the table the queries run on is as large as
the daemon makes it. ``--bare`` measures reports
without observations, as before.

Runs on SQLite (a file in a temporary directory) and on PostgreSQL (a throwaway
server on 127.0.0.1 started with Debian's binaries, or ``--pg-url``), then prints a
table. Goal: at least 5,000 observations per second, both queries under 50 ms on
SQLite.

    .venv/bin/python bench/store_ingest.py                 # full size, both databases
    .venv/bin/python bench/store_ingest.py --scale 0.1     # a tenth, quicker
    .venv/bin/python bench/store_ingest.py --only sqlite
    .venv/bin/python bench/store_ingest.py --only sqlite --db /var/tmp/store.db   # fill once
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.routing import AlertRoute
from certvigil.analysis.model import (
    CertificateFacts,
    ChainReport,
    EndpointReport,
    Finding,
    KeyType,
    Severity,
)
from certvigil.daemon.runner import record_and_judge
from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.handshake import TlsObservation
from certvigil.observed.revocation import (
    CertificateRevocationObservation,
    RevocationFetch,
    RevocationMethod,
    RevocationObservation,
)
from certvigil.observed.tls_config import ProtocolSupport, TlsConfigObservation
from certvigil.store import Store, open_store
from certvigil.store.ingest import certificate_row, pack_observation, record_reports
from certvigil.store.models import (
    CERTIFICATES,
    DEPLOYMENTS,
    ENDPOINT_TAGS,
    ENDPOINTS,
    OBSERVATIONS,
)
from certvigil.targets.target import Target
from certvigil.tls.records import TlsProtocol

# The test-only servers live in tests/support/, beside this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.postgres import ThrowawayPostgres

NOW = datetime(2026, 6, 1, tzinfo=UTC)
FULL = [True]
"""Whether this run keeps full observations (set from ``--bare``)."""
CHUNK = 10_000
INTERMEDIATE = "CN=Bench Issuing CA,O=certvigil bench"


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    """Figures for one database."""

    database: str
    fill_s: float
    fill_rows: int
    single_per_s: float
    batch_per_s: float
    judge_single_per_s: float
    judge_batch_per_s: float
    expiring_ms: float
    expiring_best_ms: float
    expiring_rows: int
    history_ms: float
    history_best_ms: float
    history_rows: int


def _leaf_der(name: str, serial: int) -> bytes:
    """Stand-in DER of one leaf, the size of a real one: the same bytes each time the
    certificate is served (the store does not parse them; random, so compression does
    not flatter the figures)."""
    key = f"cert:{name}:{serial}".encode()
    return b"0\x82" + key + hashlib.shake_256(key).digest(1200)


@functools.cache
def _leaf_sha(name: str, serial: int) -> str:
    """The leaf's fingerprint: the SHA-256 of its DER, as for a real certificate."""
    return hashlib.sha256(_leaf_der(name, serial)).hexdigest()


def _facts(
    name: str,
    serial: int,
    not_after: datetime,
    *,
    sha256_hex: str | None = None,
    issuer: str = INTERMEDIATE,
    is_ca: bool = False,
) -> CertificateFacts:
    return CertificateFacts(
        subject=f"CN={name}",
        subject_cn=name,
        issuer=issuer,
        issuer_cn=issuer.split(",")[0].removeprefix("CN="),
        serial_hex=f"{serial:032x}",
        not_before_utc=not_after - timedelta(days=365),
        not_after_utc=not_after,
        validity_days=365,
        sha256_hex=sha256_hex or _leaf_sha(name, serial),
        sha1_hex=hashlib.sha1(f"{name}:{serial}".encode()).hexdigest(),
        san_dns=(name, f"www.{name}"),
        key_type=KeyType.RSA,
        key_bits=2048,
        signature_algorithm="sha256WithRSAEncryption",
        signature_hash="sha256",
        is_self_signed=False,
        is_ca=is_ca,
    )


def _host(index: int) -> str:
    zone = "internal" if index % 4 == 0 else "public"
    return f"host{index:06d}.{zone}.bench.test"


def _chunks(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def fill(
    store: Store,
    *,
    endpoints: int,
    certificates: int,
    observations: int,
    full: bool = True,
    now: datetime = NOW,
) -> int:
    """Bulk-loads the synthetic history up to ``now``; returns the number of rows written.

    Rows go in with executemany in one transaction per table kind (no ORM, no per-row
    statement), ids given, statistics refreshed at the end.
    """
    rng = random.Random(6962)
    # One typical stored observation, its size that of the daemon's (the CRL left out,
    # as the store keeps it apart).
    (typical,) = _sample_reports(1, 1, start=now, full=True)
    blob = None
    if full and typical.observed is not None and typical.observation is not None:
        # Stored as the store stores it: the served chain named by reference.
        digests = {der: hashlib.sha256(der).hexdigest() for der in typical.observation.chain_der}
        blob = pack_observation(typical.observed, {}, digests)
    certs_per_endpoint = max(1, certificates // endpoints)
    obs_per_endpoint = max(1, observations // endpoints)
    span = timedelta(days=365)
    step = span / obs_per_endpoint
    # The latest leaf of each endpoint expires somewhere between 5 days ago and a
    # year ahead, the spread of a fleet with yearly certificates.
    current_expiry = [now + timedelta(days=rng.uniform(-5, 365)) for _ in range(endpoints)]

    def cert_expiry(e: int, k: int) -> datetime:
        return current_expiry[e] - (certs_per_endpoint - 1 - k) * (span / certs_per_endpoint)

    def cert_rows() -> Iterator[dict[str, Any]]:
        yield certificate_row(INTERMEDIATE_FACTS, INTERMEDIATE_DER, now - span)
        for e in range(endpoints):
            for k in range(certs_per_endpoint):
                facts = _facts(_host(e), e * 1000 + k, cert_expiry(e, k))
                yield certificate_row(facts, None, now - span)

    def endpoint_rows() -> Iterator[dict[str, Any]]:
        for e in range(endpoints):
            yield {
                "id": e + 1,
                "host": _host(e),
                "port": 443,
                "sni": "",
                "starttls": "",
                "first_seen_utc": now - span,
                "last_seen_utc": now - step,
                "last_ok_utc": now - step,
                "last_status": "ok",
                "consecutive_failures": 0,
                "current_certificate_sha256": _leaf_sha(
                    _host(e), e * 1000 + certs_per_endpoint - 1
                ),
                "last_observation_id": (e + 1) * obs_per_endpoint,
                # As the latest observation says (below): checked for revocation, never
                # graded.
                "revocation_status": "good",
            }

    def tag_rows() -> Iterator[dict[str, Any]]:
        for e in range(endpoints):
            yield {"endpoint_id": e + 1, "tag": "prod" if e % 3 else "staging"}
            yield {"endpoint_id": e + 1, "tag": f"team-{e % 10}"}

    def deployment_rows() -> Iterator[dict[str, Any]]:
        for e in range(endpoints):
            yield {  # every endpoint serves the one intermediate after its leaf
                "endpoint_id": e + 1,
                "certificate_sha256": INTERMEDIATE_FACTS.sha256_hex,
                "chain_position": 1,
                "not_after_utc": INTERMEDIATE_FACTS.not_after_utc,
                "first_seen_utc": now - span,
                "last_seen_utc": now - step,
                "is_current": True,
            }
            for k in range(certs_per_endpoint):
                yield {
                    "endpoint_id": e + 1,
                    "certificate_sha256": _leaf_sha(_host(e), e * 1000 + k),
                    "chain_position": 0,
                    "not_after_utc": cert_expiry(e, k),
                    "first_seen_utc": now - span + k * (span / certs_per_endpoint),
                    "last_seen_utc": now - span + (k + 1) * (span / certs_per_endpoint),
                    "is_current": k == certs_per_endpoint - 1,
                }

    def observation_rows() -> Iterator[dict[str, Any]]:
        per_cert = max(1, obs_per_endpoint // certs_per_endpoint)
        observation_id = 0
        for e in range(endpoints):
            for i in range(obs_per_endpoint):
                observation_id += 1
                k = min(i // per_cert, certs_per_endpoint - 1)
                leaf = _leaf_sha(_host(e), e * 1000 + k)
                at = now - span + (i + 1) * step - step
                failed = i % 97 == 13
                yield {
                    "id": observation_id,
                    "endpoint_id": e + 1,
                    "observed_at_utc": at,
                    "evaluated_at_utc": at,
                    "status": "failed" if failed else "ok",
                    "failure_kind": "timeout" if failed else None,
                    "failure_detail": "timed out after 10 s" if failed else None,
                    "tls_alert": None,
                    "peer_address": "127.0.0.1",
                    "protocol": None if failed else "TLSv1.3",
                    "cipher": None if failed else "TLS_AES_256_GCM_SHA384",
                    "alpn": None,
                    "leaf_sha256": None if failed else leaf,
                    "chain_sha256": [] if failed else [leaf, INTERMEDIATE_FACTS.sha256_hex],
                    "is_trusted": None if failed else True,
                    "chain_error": None,
                    "hostname_matches": None if failed else True,
                    "verdict": "critical" if failed else "ok",
                    "findings": [],
                    "connect_s": None if failed else 0.002,
                    "handshake_s": None if failed else 0.011,
                    "checks": "cert,revocation",
                    "revocation_status": None if failed else "good",
                    "observation_z": blob,
                }

    written = 0
    with store.write() as connection:
        for table, rows in (
            (CERTIFICATES, cert_rows()),
            (ENDPOINTS, endpoint_rows()),
            (ENDPOINT_TAGS, tag_rows()),
            (DEPLOYMENTS, deployment_rows()),
            (OBSERVATIONS, observation_rows()),
        ):
            for batch in _chunks(rows):
                connection.execute(table.insert(), batch)
                written += len(batch)
        if store.dialect_name == "postgresql":
            # Explicit ids were inserted; move the sequences past them.
            for name in ("endpoints", "deployments", "observations"):
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                    f"(SELECT max(id) FROM {name}))"
                )
    with store.write() as connection:
        # Fresh statistics, as autovacuum (PostgreSQL) or a periodic ANALYZE would give.
        connection.exec_driver_sql("ANALYZE")
    if store.dialect_name == "sqlite":
        # The fill is one huge transaction; in steady state SQLite's automatic
        # checkpoints keep the WAL small, so start the measurements from there.
        with store.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return written


_NOISE = random.Random(1113)
INTERMEDIATE_DER = _NOISE.randbytes(1100)
"""Stand-ins with the size of real DER (the store does not parse them); random, so
compression does not flatter the figures."""
INTERMEDIATE_FACTS = _facts(
    "Bench Issuing CA",
    1,
    NOW + timedelta(days=1500),
    sha256_hex=hashlib.sha256(INTERMEDIATE_DER).hexdigest(),
    issuer="CN=Bench Root CA,O=certvigil bench",
    is_ca=True,
)
CRL_DER = _NOISE.randbytes(48 * 1024)
"""The issuing CA's CRL: one for the whole fleet."""


def _tls_config(target: Target, at: datetime) -> TlsConfigObservation:
    accepted = {TlsProtocol.TLS_1_2: (0xC02F, 0xC030, 0xCCA8), TlsProtocol.TLS_1_3: (0x1301,)}
    return TlsConfigObservation(
        target=target,
        peer_address="127.0.0.1",
        observed_at_utc=at,
        protocols=tuple(
            ProtocolSupport(
                protocol=protocol,
                is_accepted=protocol in accepted,
                cipher_suites=accepted.get(protocol, ()),
                server_enforces_order=True if protocol in accepted else None,
                rejection=None if protocol in accepted else "protocol_version",
            )
            for protocol in TlsProtocol
        ),
        tls13_groups=(29, 23),
        ecdh_groups=(29, 23, 24),
        fallback_scsv=True,
        secure_renegotiation=True,
        compression=False,
        heartbleed=False,
        handshake_count=38,
        elapsed_s=0.4,
    )


def full_observation(
    handshake: TlsObservation, *, rng: random.Random, with_tls_config: bool
) -> EndpointObservation:
    """Everything the daemon's probes see for one endpoint (see the module docstring)."""
    at = handshake.observed_at_utc
    ocsp = RevocationFetch(
        method=RevocationMethod.OCSP,
        url="http://ocsp.bench.test",
        fetched_at_utc=at,
        response_der=rng.randbytes(1500),
        elapsed_s=0.02,
        http_method="GET",
    )
    crl = RevocationFetch(
        method=RevocationMethod.CRL,
        url="http://crl.bench.test/issuing.crl",
        fetched_at_utc=at,
        response_der=CRL_DER,
        from_cache=True,
    )
    revocation = RevocationObservation(
        target=handshake.target,
        observed_at_utc=at,
        certificates=(
            CertificateRevocationObservation(
                cert_index=0,
                certificate_der=handshake.chain_der[0],
                issuer_der=INTERMEDIATE_DER,
                fetches=(crl, ocsp),
            ),
        ),
        staple_requested=True,
        staple_der=handshake.ocsp_staple_der,
    )
    return EndpointObservation(
        target=handshake.target,
        observed_at_utc=at,
        handshake=handshake,
        revocation=revocation,
        tls_config=_tls_config(handshake.target, at) if with_tls_config else None,
    )


def _sample_reports(
    count: int, endpoints: int, *, start: datetime, full: bool = True
) -> list[EndpointReport]:
    """Fresh scan results for existing endpoints; one in ten has rotated its leaf."""
    rng = random.Random(5280)
    reports = []
    for i in range(count):
        e = rng.randrange(endpoints)
        target = Target(host=_host(e), port=443)
        at = start + timedelta(seconds=i)
        serial = e * 1000 + (500 + i if i % 10 == 0 else 999)
        leaf = _facts(target.host, serial, NOW + timedelta(days=rng.uniform(1, 365)))
        observation = TlsObservation(
            target=target,
            peer_address="127.0.0.1",
            observed_at_utc=at,
            chain_der=(
                (_leaf_der(target.host, serial), INTERMEDIATE_DER)
                if full
                else (_leaf_der(target.host, serial),)
            ),
            protocol="TLSv1.3",
            cipher="TLS_AES_256_GCM_SHA384",
            alpn="h2" if full else None,
            ocsp_staple_der=rng.randbytes(1500) if full else None,
            connect_s=0.002,
            handshake_s=0.011,
        )
        observed = (
            full_observation(observation, rng=rng, with_tls_config=i % 24 == 0) if full else None
        )
        findings = (
            (Finding(code="expiring", severity=Severity.WARNING, message="soon", cert_index=0),)
            if i % 5 == 0
            else ()
        )
        reports.append(
            EndpointReport(
                target=target,
                evaluated_at_utc=at,
                observation=observation,
                certificates=(leaf, INTERMEDIATE_FACTS) if full else (leaf,),
                chain=ChainReport(is_trusted=True, verified_path_sha256=(leaf.sha256_hex,)),
                hostname_matches=True,
                findings=findings,
                observed=observed,
            )
        )
    return reports


def _median_ms(runs: list[float]) -> float:
    return statistics.median(runs) * 1000


def _time(call: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = call()
    return time.perf_counter() - start, value


def measure(
    name: str,
    url: str,
    *,
    endpoints: int,
    certificates: int,
    observations: int,
    sample: int,
    repeat: int,
    full: bool = True,
    reuse: bool = False,
) -> Result:
    """Fills a fresh store at ``url`` (or reuses a filled one) and measures it."""
    store = open_store(url)
    try:
        if reuse:
            with store.read() as connection:
                found = connection.exec_driver_sql("SELECT count(*) FROM observations").scalar_one()
            if found:
                print(f"[{name}] reusing {found:,} observations", file=sys.stderr, flush=True)
                return _measure_filled(
                    name,
                    store,
                    url,
                    0.0,
                    0,
                    endpoints=endpoints,
                    sample=sample,
                    repeat=repeat,
                    full=full,
                )
        print(
            f"[{name}] filling: {certificates:,} certificates, {observations:,} observations "
            f"on {endpoints:,} endpoints ...",
            file=sys.stderr,
            flush=True,
        )
        fill_s, rows = _time(
            lambda: fill(
                store,
                endpoints=endpoints,
                certificates=certificates,
                observations=observations,
                full=full,
            )
        )
        print(f"[{name}] filled {rows:,} rows in {fill_s:.1f} s", file=sys.stderr, flush=True)
        return _measure_filled(
            name,
            store,
            url,
            fill_s,
            rows,
            endpoints=endpoints,
            sample=sample,
            repeat=repeat,
            full=full,
        )
    finally:
        store.close()


def _measure_filled(
    name: str,
    store: Store,
    url: str,
    fill_s: float,
    rows: int,
    *,
    endpoints: int,
    sample: int,
    repeat: int,
    full: bool,
) -> Result:
    """Measures ingest and the queries on a filled store."""
    try:
        # The fill's gigabytes are still being written back by the kernel: an ingest
        # racing that writeback measures the disk, not the store.
        os.sync()
        # A reused file already holds earlier runs' reports: report after all of them,
        # as the next cycle would, not among them (a report older than what is stored
        # takes the alert engine's exact path, which is not the daemon's).
        base = max(NOW, _newest_observation(store) + timedelta(days=1))
        reports = _sample_reports(sample, endpoints, start=base, full=full)
        single_s, _ = _time(lambda: [store.record_report(r) for r in reports])
        batch_reports = _sample_reports(
            sample, endpoints, start=base + timedelta(days=1), full=full
        )
        batches = [batch_reports[i : i + 100] for i in range(0, len(batch_reports), 100)]
        batch_s, _ = _time(lambda: [store.record_reports(b) for b in batches])
        engine = AlertEngine(store, (AlertRoute(name="ops", url="json://127.0.0.1/hook"),))
        judge_single_s = _time_judged(
            store,
            engine,
            endpoints,
            sample,
            start=base + timedelta(days=2),
            full=full,
            batched=False,
        )
        judge_batch_s = _time_judged(
            store,
            engine,
            endpoints,
            sample,
            start=base + timedelta(days=3),
            full=full,
            batched=True,
        )
        print(f"[{name}] ingested {4 * sample:,} reports", file=sys.stderr, flush=True)
        store.close()
        # Let the kernel finish writing the fill's hundreds of megabytes back to disk
        # first: queries racing that writeback measure the disk, not the store.
        os.sync()
        # Time the queries in a fresh process, as `certvigil inventory` runs them,
        # not in this one with the fill's heap behind it.
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--time-queries",
                url,
                "--endpoints",
                str(endpoints),
                "--repeat",
                str(repeat),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        timings = json.loads(child.stdout)
        return Result(
            database=name,
            fill_s=fill_s,
            fill_rows=rows,
            single_per_s=sample / single_s,
            batch_per_s=sample / batch_s,
            judge_single_per_s=sample / judge_single_s,
            judge_batch_per_s=sample / judge_batch_s,
            expiring_ms=timings["expiring_ms"],
            expiring_best_ms=timings["expiring_best_ms"],
            history_best_ms=timings["history_best_ms"],
            expiring_rows=timings["expiring_rows"],
            history_ms=timings["history_ms"],
            history_rows=timings["history_rows"],
        )
    finally:
        store.close()


def _newest_observation(store: Store) -> datetime:
    """The newest stored observation's time (``NOW`` for an empty store)."""
    with store.read() as connection:
        newest = connection.exec_driver_sql(
            "SELECT max(observed_at_utc) FROM observations"
        ).scalar()
    if newest is None:
        return NOW
    if isinstance(newest, str):
        newest = datetime.fromisoformat(newest)
    return newest if newest.tzinfo else newest.replace(tzinfo=UTC)


def _bench_tags(target: Target) -> tuple[str, ...]:
    """The labels the fill gave the endpoint of ``target`` (so recording keeps them)."""
    e = int(target.host.split(".", 1)[0].removeprefix("host"))
    return tuple(sorted(("prod" if e % 3 else "staging", f"team-{e % 10}")))


def _time_judged(
    store: Store,
    engine: AlertEngine,
    endpoints: int,
    sample: int,
    *,
    start: datetime,
    full: bool,
    batched: bool,
) -> float:
    """Seconds to record and judge ``sample`` reports in batches of 100."""
    reports = _sample_reports(sample, endpoints, start=start, full=full)
    batches = [reports[i : i + 100] for i in range(0, len(reports), 100)]
    now = start + timedelta(hours=1)

    def run() -> None:
        for batch in batches:
            tags = [_bench_tags(report.target) for report in batch]
            with store.write() as connection:
                if batched:
                    record_and_judge(connection, engine, batch, tags, now)
                    continue
                ids = record_reports(
                    connection,
                    batch,
                    tags=dict(zip((r.target for r in batch), tags, strict=True)),
                )
                for report, observation_id in zip(batch, ids, strict=True):
                    engine.process_in(connection, report, now, observation_id=observation_id)

    elapsed, _ = _time(run)
    return elapsed


def time_queries(url: str, *, endpoints: int, repeat: int) -> dict[str, float]:
    """Opens the store and times the two queries; returns medians and row counts."""
    store = open_store(url)
    try:
        query_now = NOW + timedelta(days=2)
        store.expiring_certificates(now=query_now, within_days=30)  # warm the caches
        expiring_runs: list[float] = []
        expiring_rows = 0
        for _ in range(repeat):
            elapsed, rows_found = _time(
                partial(store.expiring_certificates, now=query_now, within_days=30)
            )
            expiring_runs.append(elapsed)
            expiring_rows = len(rows_found)
        rng = random.Random(1)
        history_runs: list[float] = []
        history_rows = 0
        for _ in range(repeat):
            endpoint_id = rng.randrange(endpoints) + 1
            elapsed, records = _time(partial(store.endpoint_history, endpoint_id, limit=100))
            history_runs.append(elapsed)
            history_rows = len(records)
    finally:
        store.close()
    return {
        "expiring_best_ms": min(expiring_runs) * 1000,
        "history_best_ms": min(history_runs) * 1000,
        "expiring_ms": _median_ms(expiring_runs),
        "expiring_rows": expiring_rows,
        "history_ms": _median_ms(history_runs),
        "history_rows": history_rows,
    }


def print_table(results: list[Result], *, certificates: int, observations: int) -> None:
    """Prints the figures, one column per database."""
    print(f"store benchmark: {certificates:,} certificates, {observations:,} observations")
    print(f"reports: {'full observations' if FULL[0] else 'bare (no observation kept)'}")
    header = f"{'':44}" + "".join(f"{r.database:>14}" for r in results)
    print(header)
    lines: list[tuple[str, Callable[[Result], str]]] = [
        (
            "bulk fill, rows/s (set-up, not the daemon path)",
            lambda r: f"{r.fill_rows / r.fill_s:,.0f}" if r.fill_s else "reused",
        ),
        ("ingest, record_report (1 txn each), obs/s", lambda r: f"{r.single_per_s:,.0f}"),
        ("ingest, record_reports (100 per txn), obs/s", lambda r: f"{r.batch_per_s:,.0f}"),
        ("record + alert rules, one by one, obs/s", lambda r: f"{r.judge_single_per_s:,.0f}"),
        ("record + alert rules, batched, obs/s", lambda r: f"{r.judge_batch_per_s:,.0f}"),
        ("expiring within 30 days, ms (median)", lambda r: f"{r.expiring_ms:.1f}"),
        ("  best run, ms", lambda r: f"{r.expiring_best_ms:.1f}"),
        ("  rows returned", lambda r: f"{r.expiring_rows:,}"),
        ("history of one endpoint, ms (median)", lambda r: f"{r.history_ms:.1f}"),
        ("  best run, ms", lambda r: f"{r.history_best_ms:.1f}"),
        ("  rows returned", lambda r: f"{r.history_rows:,}"),
    ]
    for label, cell in lines:
        print(f"{label:44}" + "".join(f"{cell(r):>14}" for r in results))
    sqlite = next((r for r in results if r.database == "sqlite"), None)
    if sqlite is not None:
        goals = [
            ("ingest >= 5,000 obs/s (batched)", sqlite.batch_per_s >= 5000),
            ("record + alert rules >= 5,000 obs/s (batched)", sqlite.judge_batch_per_s >= 5000),
            ("ingest >= 5,000 obs/s (one txn per report)", sqlite.single_per_s >= 5000),
            ("expiring query < 50 ms", sqlite.expiring_ms < 50),
            ("history query < 50 ms", sqlite.history_ms < 50),
        ]
        print(
            "goals on SQLite: " + "; ".join(f"{g}: {'met' if ok else 'NOT met'}" for g, ok in goals)
        )


def main() -> None:
    """Parses options, runs the benchmark on each database and prints the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="Multiply every size by this.")
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--endpoints", type=int, default=20_000)
    parser.add_argument("--sample", type=int, default=2_000, help="Reports per ingest run.")
    parser.add_argument("--repeat", type=int, default=9, help="Runs per query.")
    parser.add_argument("--only", choices=("sqlite", "postgresql"))
    parser.add_argument("--pg-url", help="Use this (empty) PostgreSQL database.")
    parser.add_argument(
        "--bare", action="store_true", help="Reports without their observations (before 0007)."
    )
    parser.add_argument(
        "--db",
        type=Path,
        help="SQLite file to fill once and reuse in later runs (else a temporary one).",
    )
    parser.add_argument("--time-queries", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_queries:
        timings = time_queries(args.time_queries, endpoints=args.endpoints, repeat=args.repeat)
        print(json.dumps(timings))
        return
    sizes = {
        "endpoints": max(1, int(args.endpoints * args.scale)),
        "certificates": max(1, int(args.certificates * args.scale)),
        "observations": max(1, int(args.observations * args.scale)),
    }
    common = {**sizes, "sample": args.sample, "repeat": args.repeat, "full": not args.bare}
    FULL[0] = not args.bare
    load_before = os.getloadavg()
    results: list[Result] = []
    if args.only in (None, "sqlite"):
        if args.db:
            results.append(measure("sqlite", f"sqlite:///{args.db}", **common, reuse=True))
        else:
            with tempfile.TemporaryDirectory(prefix="certvigil-bench-") as workdir:
                url = f"sqlite:///{Path(workdir) / 'bench.db'}"
                results.append(measure("sqlite", url, **common))
    if args.only in (None, "postgresql"):
        if args.pg_url:
            results.append(measure("postgresql", args.pg_url, **common))
        else:
            # Durable settings (fsync on), so the figures are those of a real server.
            with ThrowawayPostgres(durable=True) as server:
                url = server.create_database("certvigil_bench")
                results.append(measure("postgresql", url, **common))
    print_table(results, certificates=sizes["certificates"], observations=sizes["observations"])
    load_after = os.getloadavg()
    # Other work on the machine moves these figures; say how busy it was.
    print(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after)
    )


if __name__ == "__main__":
    main()
