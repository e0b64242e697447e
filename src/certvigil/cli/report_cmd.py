"""``certvigil report``: the inventory (or a scan) as one HTML, JSON, CSV or Markdown report.

Exit codes, as ``scan``'s: 0 nothing to act on, 1 warnings, 2 something critical (an
expired certificate, an untrusted chain...), 3 some endpoints were not observed and
nothing is critical; 64 for a bad option, configuration or scan file, 74 when the
database cannot be read.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer

from certvigil.cli.app import app
from certvigil.cli.exitcodes import ExitCode
from certvigil.cli.options import (
    OUTPUT_PANEL,
    DatabaseOption,
    DebugOption,
    HostGlobOption,
    OutputOption,
    StoreConfigOption,
    TagOption,
)
from certvigil.cli.snapshot_source import FromScanOption, read_scan_document, write_output
from certvigil.cli.store_access import describe_database, open_existing_store
from certvigil.errors import UsageError
from certvigil.integrations.snapshot import EndpointSnapshot, snapshot_from_record
from certvigil.output.report_data import ReportData, build_report
from certvigil.output.report_html import render_report_html
from certvigil.output.report_text import render_report_csv, render_report_json, render_report_md
from certvigil.store.exports import certificate_facts, current_state


class ReportFormat(StrEnum):
    """The report's formats."""

    HTML = "html"
    JSON = "json"
    CSV = "csv"
    MD = "md"


_RENDERERS = {
    ReportFormat.HTML: render_report_html,
    ReportFormat.JSON: render_report_json,
    ReportFormat.CSV: render_report_csv,
    ReportFormat.MD: render_report_md,
}


def store_state(
    db: str | None, config: Path | None, *, host_glob: str | None, tag: str | None
) -> tuple[tuple[EndpointSnapshot, ...], str]:
    """Each endpoint's latest observation in the store, and where the store is."""
    with open_existing_store(db, config) as store:
        where = describe_database(store)
        with store.read() as connection:
            state = current_state(connection, host_glob=host_glob, tag=tag)
            facts = certificate_facts(
                connection, {obs.leaf_sha256 for _, obs in state if obs.leaf_sha256}
            )
    snapshots = tuple(
        snapshot_from_record(
            observation,
            facts.get(observation.leaf_sha256) if observation.leaf_sha256 else None,
            tags=endpoint.tags,
        )
        for endpoint, observation in state
    )
    return snapshots, where


def report_exit_code(data: ReportData) -> ExitCode:
    """The exit code for a report: its worst endpoint, as ``scan`` counts."""
    counts = dict(data.counts)
    if counts.get("critical"):
        return ExitCode.CRITICAL
    if counts.get("unknown"):
        return ExitCode.UNKNOWN
    if counts.get("warning"):
        return ExitCode.WARNING
    return ExitCode.OK


def _write(data: ReportData, output_format: ReportFormat, stream: TextIO) -> None:
    _RENDERERS[output_format](data, stream)


REPORT_EXAMPLES = """[bold]Examples[/bold]
certvigil report -c /etc/certvigil/certvigil.yaml -o certificates.html
certvigil report --format md --tag prod > certificates.md
certvigil report --format csv -o certificates.csv
certvigil report --from-scan scan.json --format json"""


@app.command("report", epilog=REPORT_EXAMPLES)
def report_command(
    output_format: Annotated[
        ReportFormat,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            help="html (one self-contained file), json, csv or md.",
            rich_help_panel=OUTPUT_PANEL,
        ),
    ] = ReportFormat.HTML,
    output: OutputOption = None,
    from_scan: FromScanOption = None,
    host: HostGlobOption = None,
    tag: TagOption = None,
    db: DatabaseOption = None,
    config: StoreConfigOption = None,
    debug: DebugOption = False,
) -> None:
    """Report on the inventory (or a scan): problems first, expiry, grades, issuers.

    The HTML report is one file with its styles and charts: it loads nothing.

    It prints cleanly and reads on a phone.
    """
    del debug  # read from argv by certvigil.cli.app.main
    now = datetime.now(UTC)
    if from_scan is not None:
        if host is not None or tag is not None:
            raise UsageError("--host and --tag filter the database, not --from-scan")
        snapshots = read_scan_document(from_scan)
        source = f"scan {from_scan}"
    else:
        snapshots, where = store_state(db, config, host_glob=host, tag=tag)
        source = f"inventory {where}"
    data = build_report(snapshots, now=now, source=source)
    write_output(output, lambda stream: _write(data, output_format, stream), encoding="utf-8")
    if output is not None:
        sys.stderr.write(
            f"{len(data.rows)} endpoints, {len(data.problems)} with problems: wrote {output}\n"
        )
    raise typer.Exit(report_exit_code(data))
