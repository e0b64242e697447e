"""One place that routes reports to the chosen format: table, streamed JSON, or CSV.

Every format keeps the input order. The table holds every report until the end anyway;
JSON and CSV stream through a bounded reorder window: a report is written as soon as
every target before it in the input has been written, and held until then. When more
than ``REORDER_WINDOW`` reports are held (a slow endpoint early in a long input), the
earliest held one is written at once, so memory stays bounded and order yields: a report
that arrives after later ones were written this way is written as it arrives.
"""

from __future__ import annotations

import heapq
from datetime import datetime
from enum import StrEnum
from typing import TextIO

from certvigil.analysis.model import EndpointReport
from certvigil.output.csv_rows import CsvWriter
from certvigil.output.json_doc import JsonDocumentWriter
from certvigil.output.summary import Tally
from certvigil.output.table import render_table

REORDER_WINDOW = 1000
"""Most reports JSON and CSV hold back to restore the input order."""


class OutputFormat(StrEnum):
    """What goes to stdout (or ``--output``)."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


class ReportSink:
    """Receives reports as they are produced and writes them in one format.

    JSON and CSV are written as reports arrive, in input order within a bounded window
    (memory does not grow with the number of endpoints); the table needs every row
    before it can size its columns, so table mode keeps the reports until ``finish``.
    """

    def __init__(
        self,
        output_format: OutputFormat,
        stream: TextIO,
        *,
        command: str,
        version: str,
        color: bool | None = None,
        reorder_window: int = REORDER_WINDOW,
        include_observation: bool = False,
    ) -> None:
        """Prepare a sink; nothing is written until ``begin``.

        Args:
            output_format: Table, JSON or CSV.
            stream: Where results go.
            command: The sub-command, recorded in the JSON document.
            version: certvigil's version, recorded in the JSON document.
            color: Table colours forced on/off; ``None`` asks the stream.
            reorder_window: Most reports JSON and CSV hold back to keep the input order.
            include_observation: JSON only: write each endpoint's observation and the
                CRLs they used (``scan --include-observation``).
        """
        self.format = output_format
        self.stream = stream
        self.tally = Tally()
        self._color = color
        # (input position, arrival number, report): a heap for JSON and CSV.
        self._held: list[tuple[int, int, EndpointReport]] = []
        self._arrivals = 0
        self._window = reorder_window
        self._next = 0  # the input position written next, when the order holds
        self._json = JsonDocumentWriter(
            stream, command=command, version=version, include_observation=include_observation
        )
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
            order: Where the target stood in the input (0-based, each position once);
                every format is written in this order, JSON and CSV within the
                reorder window.
        """
        self.tally.add(report)
        self._arrivals += 1
        if self.format is OutputFormat.TABLE:
            self._held.append((order, self._arrivals, report))
            return
        if order < self._next:  # its place was given up to the window's bound
            self._emit(report)
            return
        heapq.heappush(self._held, (order, self._arrivals, report))
        while self._held and (self._held[0][0] == self._next or len(self._held) > self._window):
            position, _arrival, held = heapq.heappop(self._held)
            self._next = max(self._next, position + 1)
            self._emit(held)

    def _emit(self, report: EndpointReport) -> None:
        if self.format is OutputFormat.JSON:
            self._json.write(report)
        else:
            self._csv.write(report)

    def _flush_held(self) -> None:
        """Write every held report, in input order (the ones before them never came)."""
        while self._held:
            position, _arrival, held = heapq.heappop(self._held)
            self._next = max(self._next, position + 1)
            self._emit(held)

    def finish(self, *, finished_at_utc: datetime) -> None:
        """Write whatever follows the last report (for the table: the table itself)."""
        if self.format is not OutputFormat.TABLE:
            self._flush_held()
        if self.format is OutputFormat.JSON:
            self._json.finish(self.tally, finished_at_utc=finished_at_utc)
        elif self.format is OutputFormat.TABLE:
            self._held.sort(key=lambda item: item[:2])
            if self._held:
                render_table(
                    (report for _, _, report in self._held), self.stream, color=self._color
                )
            self._held.clear()
