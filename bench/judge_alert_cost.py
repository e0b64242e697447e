"""CPU per reported observation of the server's judging and of the alert rules.

The server's ingest path (``POST /api/v1/reports``) decodes each item, judges it
(``analysis.judge.judge``), records it and runs the alert rules on it. This measures
the two pure parts alone, in CPU time of this process, on the observation documents
``bench/server_api.py`` sends (batches of 100 distinct endpoints; ``--leaves`` distinct
leaves per batch, 20 by default as there; 100 makes every endpoint's leaf its own):

* judge, first sight: every batch's leaves are new to the process (parse and verify);
* judge, reported again: the same observations an hour later, as an agent reports its
  endpoints every cycle (the chain verdicts of the first pass can be reused);
* alert rules, first report: ``alerts.rules.evaluate`` against an empty history;
* alert rules, reported again: against the history the first report left (its alerts
  open, its leaf the previous one), which is what a fleet sends most of the time;
* ingest: ``server.ingest.judge_items`` + ``store_batch`` (decoding, judging, recording,
  alert engine with its SQL) on a fresh SQLite store, observations per second.

    .venv/bin/python bench/judge_alert_cost.py                 # 20 batches of 100
    .venv/bin/python bench/judge_alert_cost.py --batches 5 --leaves 100

On a shared machine the figures are indicative: compare runs made side by side.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_api import observation_items_of, served_chains

from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.rules import (
    AlertPolicy,
    EndpointHistory,
    EventAction,
    KnownAlert,
    LeafSummary,
    evaluate,
)
from certvigil.analysis.certificate import forget_certificates, keep_certificates
from certvigil.analysis.judge import judge
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.server.ingest import AgentInfo, judge_items, store_batch
from certvigil.server.trust import TrustDocument, trust_store_for
from certvigil.server.wire import observation_from_item
from certvigil.store import open_store


def _cpu_us(count: int, work: Callable[[], object]) -> float:
    started = time.process_time()
    work()
    return (time.process_time() - started) / count * 1e6


def _history_after(report: EndpointReport, policy: AlertPolicy, now: datetime) -> EndpointHistory:
    """The history a report leaves: its opened alerts open, its leaf the previous one."""
    known = tuple(
        KnownAlert(
            dedup_key=e.dedup_key,
            kind=e.kind,
            severity=e.severity,
            is_open=e.action is EventAction.OPEN,
            cert_sha256=e.cert_sha256,
            threshold=e.threshold,
        )
        for e in evaluate(report, EndpointHistory(), policy, now=now)
        if e.action is not EventAction.RESOLVE
    )
    leaf = report.leaf
    return EndpointHistory(
        previous_leaf=LeafSummary.of(leaf) if leaf is not None else None,
        alerts=known,
        previous_grade=report.deep.grade.grade if report.deep is not None else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="batches of 100 (20)")
    parser.add_argument("--leaves", type=int, default=20, help="distinct leaves a batch (20)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (3)")
    parser.add_argument(
        "--kept",
        type=int,
        default=100_000,
        help="certificates kept between judgements (100000, the server's default)",
    )
    args = parser.parse_args()
    if not 1 <= args.leaves <= 100:
        parser.error("--leaves: 1 to 100")
    keep_certificates(args.kept)

    pki = ThrowawayPki.create()
    root = pki.root.certificate.public_bytes(Encoding.PEM).decode()
    policy = AlertPolicy()
    items = [_items(pki, args.leaves, b) for b in range(args.batches)]
    observations = [[observation_from_item(i) for i in batch] for batch in items]
    # Built here, but each batch's leaves are new to the judging below.
    count = sum(len(b) for b in observations)
    start = datetime.now(UTC)

    def judge_all(trust: TrustStore, base: datetime) -> list[list[EndpointReport]]:
        # One ``now`` per batch, as the server takes it per request.
        return [
            [judge(o, base + timedelta(seconds=n), trust) for o in batch]
            for n, batch in enumerate(observations)
        ]

    first = second = float("inf")
    reports: list[list[EndpointReport]] = []
    again: list[list[EndpointReport]] = []
    for run in range(args.repeat):
        # Every run starts cold: a new trust store (its verdict caches are its own) and
        # no parsed certificate kept from the run before.
        forget_certificates()
        trust = TrustStore.from_certificates([pki.root.certificate], source="bench")
        base = start + timedelta(days=run)
        started = time.process_time()
        reports = judge_all(trust, base)
        first = min(first, (time.process_time() - started) / count * 1e6)
        started = time.process_time()
        again = judge_all(trust, base + timedelta(hours=1))
        second = min(second, (time.process_time() - started) / count * 1e6)

    flat = [r for batch in reports for r in batch]
    flat_again = [r for batch in again for r in batch]
    histories = [_history_after(r, policy, r.evaluated_at_utc) for r in flat]
    rules_first = rules_again = float("inf")
    for _ in range(args.repeat):
        rules_first = min(
            rules_first,
            _cpu_us(
                count,
                lambda: [
                    evaluate(r, EndpointHistory(), policy, now=r.evaluated_at_utc) for r in flat
                ],
            ),
        )
        rules_again = min(
            rules_again,
            _cpu_us(
                count,
                lambda: [
                    evaluate(r, h, policy, now=r.evaluated_at_utc)
                    for r, h in zip(flat_again, histories, strict=True)
                ],
            ),
        )
    rate = _ingest_rate(items, root)

    print(f"{count} observations, {args.leaves} distinct leaves per batch of 100")
    print(f"judge, first sight          {first:7.1f} µs CPU per observation")
    print(f"judge, reported again       {second:7.1f} µs CPU per observation")
    print(f"alert rules, first report   {rules_first:7.1f} µs CPU per observation")
    print(f"alert rules, reported again {rules_again:7.1f} µs CPU per observation")
    print(f"ingest (SQLite, in process) {rate:7.0f} observations/s (decode, judge, record, alerts)")


def _items(pki: ThrowawayPki, leaves: int, batch: int) -> list[dict[str, Any]]:
    """``bench/server_api.py``'s documents, with ``leaves`` distinct leaves per batch."""
    return observation_items_of(
        served_chains(pki, leaves), 100, offset=batch * 100, now=datetime.now(UTC)
    )


def _ingest_rate(items: list[list[dict[str, Any]]], root: str) -> float:
    forget_certificates()
    trust = trust_store_for(TrustDocument(public=False, ca_pem=[root]))
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{folder}/bench.db")
        engine = AlertEngine(store)
        agent = AgentInfo(name="bench", version="bench", tags=("bench",))
        started = time.perf_counter()
        for batch in items:
            now = datetime.now(UTC)
            judged, rejected = judge_items(batch, now=now, trust=trust)
            store_batch(
                store,
                engine,
                report_id=uuid.uuid4().hex,
                agent=agent,
                api_key_id=None,
                judged=judged,
                rejected=rejected,
                now=now,
            )
        elapsed = time.perf_counter() - started
        store.close()
    return sum(len(b) for b in items) / elapsed


if __name__ == "__main__":
    main()
