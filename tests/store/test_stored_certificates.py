"""Certificates a batch finds stored are not looked up again by later batches, on both
databases; what a rolled-back transaction saw or wrote is not taken as stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from certvigil.analysis.model import EndpointReport
from certvigil.analysis.report import analyse_endpoint
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.observed.handshake import TlsObservation
from certvigil.store import Store
from certvigil.store.ingest import record_reports
from certvigil.targets.target import Target

NOW = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki() -> ThrowawayPki:
    return ThrowawayPki.create(now_utc=NOW)


def _report(pki: ThrowawayPki, host: str) -> EndpointReport:
    """A judged handshake serving a new leaf for ``host`` and the intermediate."""
    leaf = pki.issue_leaf(dns_names=(host,))
    observation = TlsObservation(
        target=Target(host=host, port=443),
        peer_address="127.0.0.1",
        observed_at_utc=NOW,
        chain_der=pki.served_chain_der(leaf),
        protocol="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
        connect_s=0.001,
        handshake_s=0.002,
    )
    trust = TrustStore.from_certificates([pki.root.certificate], source="test root")
    return analyse_endpoint(observation, now=NOW, trust=trust)


@pytest.fixture
def lookups(store: Store) -> Iterator[list[str]]:
    """The statements that look certificates up, as the database receives them."""
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "certificates.der IS NOT NULL" in statement:  # the lookup by digests
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", before)


def _stored_with_bytes(store: Store) -> int:
    with store.read() as connection:
        count = connection.exec_driver_sql(
            "SELECT count(*) FROM certificates WHERE der IS NOT NULL"
        ).scalar_one()
    return int(count)


def test_a_certificate_found_or_written_is_not_looked_up_again(
    store: Store, pki: ThrowawayPki, lookups: list[str]
) -> None:
    first = _report(pki, "a.example.test")
    store.record_report(first)
    assert len(lookups) == 1
    store.record_report(first)
    store.record_report(first)
    assert len(lookups) == 1
    # A new leaf under the same intermediate: asked about the leaf alone.
    store.record_report(_report(pki, "b.example.test"))
    assert len(lookups) == 2
    assert _stored_with_bytes(store) == 3


def test_what_a_rolled_back_transaction_wrote_is_looked_up_and_written_again(
    store: Store, pki: ThrowawayPki, lookups: list[str]
) -> None:
    report = _report(pki, "c.example.test")
    with pytest.raises(RuntimeError, match="abandoned"), store.write() as connection:
        record_reports(connection, [report])
        raise RuntimeError("abandoned")
    assert _stored_with_bytes(store) == 0
    # Another batch commits on the same connection first: it must not vouch for them.
    store.record_report(_report(pki, "d.example.test"))
    store.record_report(report)
    assert _stored_with_bytes(store) == 3
    assert len(lookups) == 3
