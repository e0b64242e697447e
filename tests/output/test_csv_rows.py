"""The CSV output has its header and one parseable row per endpoint."""

from __future__ import annotations

import csv
import io

from certvigil.output.csv_rows import COLUMNS, CsvWriter
from tests.output.reports import expired, good, refused


def test_csv_has_header_and_one_row_per_endpoint() -> None:
    """The header comes first and each report adds one row with its facts."""
    stream = io.StringIO()
    writer = CsvWriter(stream)
    writer.begin()
    for report in (good(), expired(), refused()):
        writer.write(report)
    rows = list(csv.DictReader(io.StringIO(stream.getvalue())))
    assert tuple(rows[0]) == COLUMNS
    assert [r["endpoint"] for r in rows] == ["good.test:443", "old.test:25", "127.0.0.1:9"]
    assert rows[0]["days_remaining"] == "60"
    assert rows[0]["is_trusted"] == "true"
    assert rows[1]["findings"] == "expired;untrusted"
    assert rows[1]["starttls"] == "smtp"
    assert rows[1]["verdict"] == "critical"
    assert rows[2]["status"] == "failed"
    assert rows[2]["verdict"] == "unknown"
    assert rows[2]["failure_kind"] == "connection_refused"
    assert rows[2]["subject"] == ""


def test_csv_header_only_when_nothing_scanned() -> None:
    """With no report the output is just the header line."""
    stream = io.StringIO()
    CsvWriter(stream).begin()
    assert stream.getvalue().strip() == ",".join(COLUMNS)
