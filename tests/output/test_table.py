"""The table shows one row per endpoint with verdict and findings, then the problems."""

from __future__ import annotations

import io

from certvigil.output.table import render_table
from tests.output.reports import expired, expiring, good, refused


def test_table_has_a_row_per_endpoint_with_verdicts() -> None:
    """Each endpoint appears with its subject, days left, verdict and finding codes."""
    stream = io.StringIO()
    render_table([good(), expiring(), expired(), refused()], stream)
    text = stream.getvalue()
    lines = text.splitlines()
    row = next(line for line in lines if "soon.test:8443" in line)
    assert "warning" in row and "expires_soon" in row and " 5 " in row
    row = next(line for line in lines if "old.test:25 (starttls smtp)" in line)
    assert "critical" in row and "expired, untrusted" in row and "-2" in row
    row = next(line for line in lines if line.startswith("│ 127.0.0.1:9"))
    assert "failed" in row and "connection_refused" in row
    assert "\x1b[" not in text


def test_details_list_each_problem_in_a_sentence() -> None:
    """Below the table each failure and warning/critical finding is one line."""
    stream = io.StringIO()
    render_table([good(), expired(), refused()], stream)
    text = stream.getvalue()
    assert "old.test:25 (starttls smtp): critical: expired: CN=old.test expired 1 day ago" in text
    assert "127.0.0.1:9: not checked: connection_refused: [Errno 111] Connection refused" in text
    assert "good.test:443:" not in text


def test_details_can_be_left_out() -> None:
    """With details off only the table is printed."""
    stream = io.StringIO()
    render_table([expired()], stream, details=False)
    assert "expired 1 day ago" not in stream.getvalue()
