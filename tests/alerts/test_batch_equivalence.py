"""Judging a batch (AlertEngine.process_many_in) equals judging its reports one by one.

Two stores receive the same batches of random reports: one judges each report with
``process_in`` (the exact per-report queries), the other the whole batch with
``process_many_in``. Their alerts, deliveries and returned events must be identical.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.routing import AlertRoute
from certvigil.alerts.rules import AlertPolicy, EventAction
from certvigil.analysis.deep_assessment import assess_tls
from certvigil.analysis.grade import CertificateVerdicts
from certvigil.analysis.model import EndpointReport, Finding, KeyType, Severity
from certvigil.analysis.revocation_model import (
    CertificateRevocation,
    RevocationReport,
    RevocationStatus,
)
from certvigil.observed.tls_config import ProtocolSupport, TlsConfigObservation
from certvigil.store import Store, open_store
from certvigil.store.alert_queries import record_for_judging
from certvigil.store.ingest import record_reports
from certvigil.store.models import ALERTS, DELIVERIES
from certvigil.targets.target import Target
from certvigil.tls.records import TlsProtocol

from .factories import T0, leaf, report

TARGETS = (
    Target(host="a.example.test", port=443),
    Target(host="b.example.test", port=443),
    Target(host="b.example.test", port=8443),
)
LEAVES = (
    leaf("one", not_before=T0 - timedelta(days=80), lifetime=timedelta(days=90)),
    leaf("two", not_before=T0 - timedelta(days=10), lifetime=timedelta(days=90)),
    leaf(
        "three",
        not_before=T0 - timedelta(days=100),
        lifetime=timedelta(days=90),
        issuer="CN=Other CA,O=Other,C=US",
    ),
    leaf("four", not_before=T0 - timedelta(days=300), lifetime=timedelta(days=398)),
)
GOOD_CERT = CertificateVerdicts(
    is_trusted=True,
    hostname_matches=True,
    key_type=KeyType.RSA,
    key_bits=2048,
    signature_hash="sha256",
)
ROUTES = (
    AlertRoute(name="all", url="json://127.0.0.1/all", min_severity=Severity.INFO),
    AlertRoute(name="critical", url="json://127.0.0.1/critical", min_severity=Severity.CRITICAL),
    AlertRoute(
        name="prod-opens",
        url="json://127.0.0.1/prod",
        tags=frozenset({"prod"}),
        actions=frozenset({EventAction.OPEN}),
    ),
)
POLICY = AlertPolicy(unreachable_after=2, revocation_unchecked_after=2)


def _deep(target: Target, at: datetime, legacy: bool) -> Any:
    accepted = {TlsProtocol.TLS_1_2: (0xC02F, 0xC030), TlsProtocol.TLS_1_3: (0x1301,)}
    if legacy:
        accepted[TlsProtocol.TLS_1_0] = (0xC013,)
    observation = TlsConfigObservation(
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
        tls13_groups=(29,),
        ecdh_groups=(29, 23),
        fallback_scsv=True,
        secure_renegotiation=True,
        compression=False,
        heartbleed=False,
        handshake_count=10,
        elapsed_s=0.1,
    )
    return assess_tls(observation, GOOD_CERT)


_REVOCATION = (None, RevocationStatus.GOOD, RevocationStatus.REVOKED, RevocationStatus.UNREACHABLE)

# One report: (endpoint, leaf or None for a failure, trusted, hostname matches, weak
# key, revocation choice, deep choice (0 none, 1 modern, 2 with TLS 1.0), minutes after
# the batch's start (ties and earlier times make out-of-order reports)).
_REPORT = st.tuples(
    st.integers(0, len(TARGETS) - 1),
    st.one_of(st.none(), st.integers(0, len(LEAVES) - 1)),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(0, len(_REVOCATION) - 1),
    st.integers(0, 2),
    st.integers(-90, 50),
)
_BATCHES = st.lists(st.lists(_REPORT, min_size=1, max_size=6), min_size=1, max_size=5)


def _report(spec: tuple[Any, ...], start: datetime) -> EndpointReport:
    target_i, leaf_i, trusted, matches, weak, revocation_i, deep_i, minutes = spec
    target = TARGETS[target_i]
    at = start + timedelta(minutes=minutes)
    if leaf_i is None:
        return report(None, at, target=target)
    cert = LEAVES[leaf_i]
    findings = (
        (Finding(code="weak_key", severity=Severity.WARNING, message="RSA 1024", cert_index=0),)
        if weak
        else ()
    )
    base = report(
        cert, at, trusted=trusted, hostname_matches=matches, findings=findings, target=target
    )
    status = _REVOCATION[revocation_i]
    revocation = (
        None
        if status is None
        else RevocationReport(
            evaluated_at_utc=at,
            certificates=(
                CertificateRevocation(
                    cert_index=0, subject=cert.subject, serial_hex=cert.serial_hex, status=status
                ),
            ),
        )
    )
    deep = _deep(target, at, legacy=deep_i == 2) if deep_i else None
    return replace(base, revocation=revocation, deep=deep)


def _state(store: Store) -> tuple[list[Any], list[Any]]:
    with store.read() as connection:
        alerts = [
            tuple(row)
            for row in connection.execute(
                select(
                    ALERTS.c.id,
                    ALERTS.c.dedup_key,
                    ALERTS.c.kind,
                    ALERTS.c.severity,
                    ALERTS.c.state,
                    ALERTS.c.endpoint_id,
                    ALERTS.c.certificate_sha256,
                    ALERTS.c.observation_id,
                    ALERTS.c.summary,
                    ALERTS.c.details,
                    ALERTS.c.opened_at_utc,
                    ALERTS.c.resolved_at_utc,
                ).order_by(ALERTS.c.id)
            ).all()
        ]
        deliveries = sorted(
            tuple(row)
            for row in connection.execute(
                select(
                    DELIVERIES.c.alert_id,
                    DELIVERIES.c.event,
                    DELIVERIES.c.route,
                    DELIVERIES.c.status,
                    DELIVERIES.c.next_attempt_at_utc,
                )
            ).all()
        )
    return alerts, deliveries


_TEMPLATE: list[Path] = []


def _fresh_sqlite(path: Path) -> str:
    """A migrated empty SQLite database at ``path`` (copied: migrating takes a second)."""
    if not _TEMPLATE:
        directory = tempfile.mkdtemp(prefix="certvigil-equivalence-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        template = Path(directory) / "empty.db"
        open_store(f"sqlite:///{template}").close()
        _TEMPLATE.append(template)
    shutil.copyfile(_TEMPLATE[0], path)
    return f"sqlite:///{path}"


def _run(
    batches: Sequence[Sequence[tuple[Any, ...]]],
    directory: Path,
    *,
    batched: bool,
    url: str | None = None,
    recorded_endpoints: bool = True,
) -> tuple[list[Any], tuple[list[Any], list[Any]]]:
    """Records and judges ``batches``: one report at a time, or a batch at a time as
    the daemon, the workers and the server do (the endpoints handed over by the
    recording, ``record_for_judging``) or, without ``recorded_endpoints``, with the
    engine reading them itself."""
    name = "batched.db" if batched else "single.db"
    store = open_store(url or _fresh_sqlite(directory / name))
    engine = AlertEngine(store, ROUTES, POLICY)
    returned: list[Any] = []
    try:
        for number, batch in enumerate(batches):
            start = T0 + timedelta(hours=2 * number)
            now = start + timedelta(hours=1)
            reports = [_report(spec, start) for spec in batch]
            tags = {TARGETS[0]: ("prod",)} if number == 0 else None
            with store.write() as connection:
                if batched and recorded_endpoints:
                    ids, endpoints = record_for_judging(connection, reports, tags=tags)
                    returned.append(
                        engine.process_many_in(connection, reports, ids, now, endpoints=endpoints)
                    )
                    continue
                ids = record_reports(connection, reports, tags=tags)
                if batched:
                    returned.append(engine.process_many_in(connection, reports, ids, now))
                else:
                    returned.append(
                        [
                            engine.process_in(connection, r, now, observation_id=i)
                            for r, i in zip(reports, ids, strict=True)
                        ]
                    )
        return returned, _state(store)
    finally:
        store.close()


def _assert_same(batches: Sequence[Sequence[tuple[Any, ...]]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        single = _run(batches, Path(directory), batched=False)
        batched = _run(batches, Path(directory), batched=True)
    assert batched[0] == single[0]
    assert batched[1] == single[1]


# A leaf rotation, a failure streak and recovery, and an old report arriving late.
_SCENARIO = [
    [(0, 0, True, True, False, 1, 1, 0), (0, 1, True, True, True, 3, 2, 5)],
    [(0, None, True, True, False, 0, 0, 0), (0, None, True, True, False, 0, 0, 1)],
    [(0, 2, False, False, False, 3, 0, 0), (1, 3, True, True, False, 2, 1, 0)],
    [(0, 2, True, True, False, 3, 1, -200), (0, 1, True, True, False, 1, 0, 2)],
]


@settings(max_examples=60)
@given(batches=_BATCHES)
@example(batches=_SCENARIO)
def test_a_batch_is_judged_as_its_reports_one_by_one(
    batches: list[list[tuple[Any, ...]]],
) -> None:
    """process_many_in gives the alerts, deliveries and events of process_in per report."""
    _assert_same(batches)


def test_the_scenario_judged_with_the_engine_reading_the_endpoints_itself() -> None:
    """Without the endpoints from the recording (nothing known to be new), the batch
    still gives what report-by-report judging gives."""
    with tempfile.TemporaryDirectory() as directory:
        single = _run(_SCENARIO, Path(directory), batched=False)
        batched = _run(_SCENARIO, Path(directory), batched=True, recorded_endpoints=False)
    assert batched == single


def test_the_scenario_raises_alerts_at_all() -> None:
    """The pinned scenario exercises opens, notices, resolves and deliveries (so the
    equivalence above compares something)."""
    with tempfile.TemporaryDirectory() as directory:
        returned, (alerts, deliveries) = _run(_SCENARIO, Path(directory), batched=True)
    actions = {event.action for batch in returned for events in batch for event in events}
    assert actions == {EventAction.OPEN, EventAction.NOTIFY, EventAction.RESOLVE}
    assert {row[4] for row in alerts} == {"open", "resolved"}
    assert {row[1] for row in deliveries} >= {"opened", "resolved", "notice"}


def test_the_scenario_batched_on_each_database_equals_sqlite_one_by_one(
    store_url: str, tmp_path: Path
) -> None:
    """On PostgreSQL too, the batch gives what report-by-report judging gives."""
    single = _run(_SCENARIO, tmp_path, batched=False)
    batched = _run(_SCENARIO, tmp_path, batched=True, url=store_url)
    assert batched[0] == single[0]
    assert batched[1][1] == single[1][1]
    # Endpoint ids differ between the databases (a PostgreSQL upsert takes a sequence
    # value even when it updates), so alerts are compared without them.
    assert [a[:5] + a[6:] for a in batched[1][0]] == [a[:5] + a[6:] for a in single[1][0]]


@pytest.mark.parametrize("batched", [False, True])
def test_an_unrecorded_endpoint_is_refused(store: Store, batched: bool) -> None:
    """Judging a report whose endpoint was never recorded raises, batched or not."""
    from certvigil.errors import StoreError

    engine = AlertEngine(store, ROUTES, POLICY)
    lone = report(LEAVES[0], T0, target=TARGETS[2])
    with store.write() as connection, pytest.raises(StoreError, match="record the report"):
        if batched:
            engine.process_many_in(connection, [lone], [None], T0)
        else:
            engine.process_in(connection, lone, T0)


def test_a_batch_wider_than_one_statement_is_judged_whole(tmp_path: Path) -> None:
    """A batch over more endpoints than one history statement reads (500) still judges
    each endpoint against its own history: the second failure in a row opens
    "unreachable" on every endpoint, the first on none."""
    store = open_store(f"sqlite:///{tmp_path / 'wide.db'}")
    engine = AlertEngine(store, ROUTES, POLICY)
    targets = [Target(host=f"h{i:04d}.example.test", port=443) for i in range(600)]
    reports = [report(None, T0 + timedelta(seconds=s), target=t) for s in (0, 1) for t in targets]
    try:
        with store.write() as connection:
            ids = record_reports(connection, reports)
            events = engine.process_many_in(connection, reports, ids, T0 + timedelta(hours=1))
    finally:
        store.close()
    assert all(found == () for found in events[:600])
    assert [[e.kind.value for e in found] for found in events[600:]] == [["unreachable"]] * 600
