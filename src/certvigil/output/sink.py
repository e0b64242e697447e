"""One place that routes reports to the chosen format: table, streamed JSON, or CSV."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TextIO

from certvigil.analysis.model import EndpointReport
from certvigil.output.csv_rows import CsvWriter
from certvigil.output.json_doc import JsonDocumentWriter
from certvigil.output.summary import Tally
from certvigil.output.table import render_table


class OutputFormat(StrEnum):
    """What goes to stdout (or ``--output``)."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


class ReportSink:
    """Receives reports as they are produced and writes them in one format.

    JSON and CSV are written as each report arrives (memory does not grow with the
    number of endpoints); the table needs every row before it can size its columns,
    so table mode keeps the reports until ``finish``.
    """

    def __init__(
        self,
        output_format: OutputFormat,
        stream: TextIO,
        *,
        command: str,
        version: str,
        color: bool | None = None,
    ) -> None:
        """Prepare a sink; nothing is written until ``begin``.

        Args:
            output_format: Table, JSON or CSV.
            stream: Where results go.
            command: The sub-command, recorded in the JSON document.
            version: certvigil's version, recorded in the JSON document.
            color: Table colours forced on/off; ``None`` asks the stream.
        """
        self.format = output_format
        self.stream = stream
        self.tally = Tally()
        self._color = color
        self._held: list[tuple[int, EndpointReport]] = []
        self._json = JsonDocumentWriter(stream, command=command, version=version)
        self._csv = CsvWriter(stream)

    def begin(self, *, started_at_utc: datetime) -> None:
        """Write whatever precedes the first report."""
        if self.format is OutputFormat.JSON:
            self._json.begin(started_at_utc=started_at_utc)
        elif self.format is OutputFormat.CSV:
            self._csv.begin()

    def write(self, report: EndpointReport, *, order: int = 0) -> None:
        """Take one report.

        Args:
            report: The report.
            order: Where the target stood in the input; the table is sorted by it
                (JSON and CSV keep arrival order).
        """
        self.tally.add(report)
        if self.format is OutputFormat.JSON:
            self._json.write(report)
        elif self.format is OutputFormat.CSV:
            self._csv.write(report)
        else:
            self._held.append((order, report))

    def finish(self, *, finished_at_utc: datetime) -> None:
        """Write whatever follows the last report (for the table: the table itself)."""
        if self.format is OutputFormat.JSON:
            self._json.finish(self.tally, finished_at_utc=finished_at_utc)
        elif self.format is OutputFormat.TABLE:
            self._held.sort(key=lambda item: item[0])
            if self._held:
                render_table((report for _, report in self._held), self.stream, color=self._color)
            self._held.clear()
