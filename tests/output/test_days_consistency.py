"""The expiry finding, the table, CSV and JSON agree on the days an expired certificate has."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.report import analyse_endpoint
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.observed.handshake import TlsObservation
from certvigil.output.sink import OutputFormat, ReportSink
from certvigil.targets.target import Target

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _render(output: OutputFormat, report: object) -> str:
    stream = io.StringIO()
    sink = ReportSink(output, stream, command="scan", version="test", color=False)
    sink.begin(started_at_utc=NOW)
    sink.write(report, order=0)  # type: ignore[arg-type]
    sink.finish(finished_at_utc=NOW)
    return stream.getvalue()


@pytest.mark.parametrize(
    ("expired_for", "days"),
    [
        (timedelta(days=3, hours=1), 3),
        (timedelta(days=3, hours=23), 3),
        (timedelta(days=4, seconds=1), 4),
        (timedelta(hours=5), 0),
    ],
)
def test_expired_days_agree_everywhere(expired_for: timedelta, days: int) -> None:
    """Pinned either side of whole days: the message's "N days ago" is -N in every output."""
    pki = ThrowawayPki.create(now_utc=NOW - timedelta(days=30))
    leaf = pki.issue_leaf(not_before_utc=NOW - timedelta(days=20), not_after_utc=NOW - expired_for)
    target = Target(host="localhost", port=443)
    observation = TlsObservation(
        target=target,
        peer_address="127.0.0.1",
        observed_at_utc=NOW,
        chain_der=tuple(pki.served_chain_der(leaf)),
        protocol="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
        connect_s=0.001,
        handshake_s=0.001,
    )
    trust = TrustStore.from_certificates([pki.root.certificate], source="lab")
    report = analyse_endpoint(observation, now=NOW, trust=trust, policy=AnalysisPolicy())
    message = next(f.message for f in report.findings if f.code == "expired")
    said = 0 if "expired today" in message else int(re.search(r"expired (\d+) day", message)[1])  # type: ignore[index]
    assert said == days
    row = next(csv.DictReader(io.StringIO(_render(OutputFormat.CSV, report))))
    assert int(row["days_remaining"]) == -days
    document = json.loads(_render(OutputFormat.JSON, report))
    leaf_json = document["endpoints"][0]["certificates"][0]
    assert leaf_json["days_remaining"] == -days
    table = _render(OutputFormat.TABLE, report)
    assert re.search(rf"(?<![\d-]){-days}(?!\d)", table), table
