"""Output for ``certvigil cert``: the judgement on certificate files, in each format.

A file report is a ``ChainAnalysis`` (the same analysis a scan runs on a served chain)
with the file it came from. The JSON document has the scan document's head and tail,
with ``files`` in place of ``endpoints``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from rich.text import Text

from certvigil.analysis.model import Severity
from certvigil.analysis.report import ChainAnalysis
from certvigil.output.columns import Column, Fit, Step, drop, fit_table, results_console, shorten
from certvigil.output.json_doc import (
    SCHEMA_VERSION,
    JsonObject,
    certificates_json,
    chain_json,
    dumps,
    finding_json,
    generator_json,
    summary_json,
    target_error_json,
    utc_text,
)
from certvigil.output.safe_text import cell, safe_csv_row, visible
from certvigil.output.summary import Tally, days_remaining
from certvigil.output.table import LeafColumns

_STYLE = {
    Severity.OK: "green",
    Severity.INFO: "cyan",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FileReport:
    """The analysis of one certificate file (or of one certificate in it).

    Attributes:
        source: The file name, with ``#N`` (1-based) when one certificate of a
            bundle was judged on its own.
        analysis: The judgement.
    """

    source: str
    analysis: ChainAnalysis


def file_json(report: FileReport) -> JsonObject:
    """One analysed file in the ``cert`` JSON document (``json_schema.FileModel``)."""
    analysis = report.analysis
    now = analysis.evaluated_at_utc
    return {
        "source": report.source,
        "evaluated_at_utc": utc_text(now),
        "expected_name": analysis.expected_name,
        "verdict": analysis.verdict.value,
        "hostname_matches": analysis.hostname_matches,
        "certificates": certificates_json(analysis.certificates, now=now),
        "chain": chain_json(analysis.chain) if analysis.chain else None,
        "findings": [finding_json(f) for f in analysis.findings],
    }


def write_files_json(
    reports: list[FileReport],
    stream: TextIO,
    *,
    tally: Tally,
    version: str,
    started_at_utc: datetime,
    finished_at_utc: datetime,
) -> None:
    """Write the ``cert`` JSON document (``json_schema.CertDocument``)."""
    document = {
        "schema_version": SCHEMA_VERSION,
        "generator": generator_json(version),
        "command": "cert",
        "started_at_utc": utc_text(started_at_utc),
        "files": [file_json(r) for r in reports],
        "target_errors": [target_error_json(e) for e in tally.target_errors],
        "summary": summary_json(tally),
        "finished_at_utc": utc_text(finished_at_utc),
    }
    stream.write(dumps(document) + "\n")


FILE_COLUMNS: tuple[str, ...] = (
    "source",
    "verdict",
    "subject",
    "issuer",
    "not_before_utc",
    "not_after_utc",
    "days_remaining",
    "key",
    "signature_algorithm",
    "sha256",
    "san_dns",
    "is_trusted",
    "hostname_matches",
    "findings",
    "evaluated_at_utc",
)
"""The ``cert --csv`` header; cells follow the scan CSV conventions (a text cell that
would start a spreadsheet formula gets a leading ``'``)."""

_NUMBER_COLUMNS = frozenset({"days_remaining"})


def _bool(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def write_files_csv(reports: list[FileReport], stream: TextIO) -> None:
    """Write the header and one row per file report."""
    writer = csv.DictWriter(stream, fieldnames=FILE_COLUMNS)
    writer.writeheader()
    for report in reports:
        analysis = report.analysis
        row = dict.fromkeys(FILE_COLUMNS, "")
        row.update(
            source=report.source,
            verdict=analysis.verdict.value,
            hostname_matches=_bool(analysis.hostname_matches),
            findings=";".join(f.code for f in analysis.findings),
            evaluated_at_utc=analysis.evaluated_at_utc.isoformat(),
        )
        if analysis.chain is not None:
            row["is_trusted"] = _bool(analysis.chain.is_trusted)
        if analysis.certificates:
            leaf = analysis.certificates[0]
            row.update(
                subject=leaf.subject,
                issuer=leaf.issuer,
                not_before_utc=leaf.not_before_utc.isoformat(),
                not_after_utc=leaf.not_after_utc.isoformat(),
                days_remaining=str(
                    days_remaining(leaf.not_after_utc, now=analysis.evaluated_at_utc)
                ),
                key=f"{leaf.key_type.value}-{leaf.key_curve or leaf.key_bits}",
                signature_algorithm=leaf.signature_algorithm,
                sha256=leaf.sha256_hex,
                san_dns=";".join(leaf.san_dns),
            )
        writer.writerow(safe_csv_row(row, numbers=_NUMBER_COLUMNS))


FILES_TABLE_STEPS: tuple[Step, ...] = (
    drop("Issuer"),
    shorten("Expires (UTC)"),
    drop("Expires (UTC)"),
    drop("Subject"),
    drop("Findings"),
)
"""What the ``cert`` table gives up, first to last, on a narrow screen."""


def files_columns(reports: list[FileReport]) -> list[Column]:
    """The ``cert`` table's columns, every outside string made safe to show."""
    source = Column(header="File", fit=Fit.CLIP, min_width=24)
    leaf_columns = LeafColumns()
    verdict = Column(header="Verdict")
    findings = Column(header="Findings", fit=Fit.WRAP, min_width=20)
    for report in reports:
        analysis = report.analysis
        source.cells.append(cell(report.source))
        leaf = analysis.certificates[0] if analysis.certificates else None
        leaf_columns.add(leaf, now=analysis.evaluated_at_utc)
        text = Text()
        for finding in analysis.findings:
            if finding.severity is Severity.OK:
                continue
            if text:
                text.append(", ")
            text.append(visible(finding.code), style=_STYLE[finding.severity])
        findings.cells.append(text)
        verdict.cells.append(Text(analysis.verdict.value, style=_STYLE[analysis.verdict]))
    cols = leaf_columns
    return [source, cols.subject, cols.issuer, cols.expires, cols.days, verdict, findings]


def render_files_table(
    reports: list[FileReport], stream: TextIO, *, color: bool | None = None
) -> None:
    """Print one row per file, then each warning or critical finding as a sentence.

    The table fits the screen (``FILES_TABLE_STEPS``); file names and certificate
    fields are shown literally, control and bidi characters as escapes.
    """
    console = results_console(stream, color=color)
    console.print(fit_table(files_columns(reports), width=console.width, steps=FILES_TABLE_STEPS))
    for report in reports:
        source = visible(report.source)
        for finding in report.analysis.findings:
            if finding.severity.rank >= Severity.WARNING.rank:
                line = Text(f"{source}: ")
                line.append(finding.severity.value, style=_STYLE[finding.severity])
                line.append(f": {visible(finding.code)}: {visible(finding.message)}")
                console.print(line, soft_wrap=True)
