"""The report sink writes every format in input order, holding back a bounded number."""

from __future__ import annotations

import csv
import io
import json

import pytest

from certvigil.output.sink import OutputFormat, ReportSink
from tests.output.reports import NOW, failed


def endpoints_written(output_format: OutputFormat, text: str) -> list[str]:
    """The endpoints in the order the sink wrote them."""
    if output_format is OutputFormat.JSON:
        return [e["endpoint"] for e in json.loads(text)["endpoints"]]
    return [row["endpoint"] for row in csv.DictReader(io.StringIO(text))]


@pytest.mark.parametrize("output_format", [OutputFormat.JSON, OutputFormat.CSV])
def test_reports_arriving_out_of_order_are_written_in_input_order(
    output_format: OutputFormat,
) -> None:
    """Each report waits for the ones before it in the input, and then goes out at once."""
    stream = io.StringIO()
    sink = ReportSink(output_format, stream, command="scan", version="0")
    sink.begin(started_at_utc=NOW)
    reports = [failed("127.0.0.1", port) for port in range(1, 6)]
    sink.write(reports[2], order=2)
    sink.write(reports[1], order=1)
    assert "127.0.0.1:2" not in stream.getvalue()  # position 0 has not come yet
    sink.write(reports[0], order=0)
    assert "127.0.0.1:3" in stream.getvalue()  # 0, 1 and 2 are out now
    sink.write(reports[4], order=4)
    sink.write(reports[3], order=3)
    sink.finish(finished_at_utc=NOW)
    written = endpoints_written(output_format, stream.getvalue())
    assert written == [f"127.0.0.1:{port}" for port in range(1, 6)]


@pytest.mark.parametrize("output_format", [OutputFormat.JSON, OutputFormat.CSV])
def test_reorder_window_bounds_what_is_held(output_format: OutputFormat) -> None:
    """Past the window, the earliest held report goes out; a late one is written on arrival."""
    stream = io.StringIO()
    sink = ReportSink(output_format, stream, command="scan", version="0", reorder_window=2)
    sink.begin(started_at_utc=NOW)
    for port in (2, 3, 4):
        sink.write(failed("127.0.0.1", port), order=port - 1)
    # Three held, the window is two: the earliest went out, and those right after it.
    assert "127.0.0.1:4" in stream.getvalue()
    sink.write(failed("127.0.0.1", 1), order=0)
    sink.finish(finished_at_utc=NOW)
    written = endpoints_written(output_format, stream.getvalue())
    assert written == ["127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4", "127.0.0.1:1"]


def test_held_reports_are_written_by_finish_when_earlier_ones_never_came() -> None:
    """An interrupted scan still writes what it held, in input order."""
    stream = io.StringIO()
    sink = ReportSink(OutputFormat.CSV, stream, command="scan", version="0")
    sink.begin(started_at_utc=NOW)
    sink.write(failed("127.0.0.1", 3), order=2)
    sink.write(failed("127.0.0.1", 2), order=1)
    assert endpoints_written(OutputFormat.CSV, stream.getvalue()) == []
    sink.finish(finished_at_utc=NOW)
    assert endpoints_written(OutputFormat.CSV, stream.getvalue()) == [
        "127.0.0.1:2",
        "127.0.0.1:3",
    ]
