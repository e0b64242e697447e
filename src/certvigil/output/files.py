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

from rich.console import Console
from rich.table import Table
from rich.text import Text

from certvigil.analysis.model import Severity
from certvigil.analysis.report import ChainAnalysis
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
from certvigil.output.summary import Tally, days_remaining

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
"""The ``cert --csv`` header; cells follow the scan CSV conventions."""


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
        writer.writerow(row)


def render_files_table(reports: list[FileReport], stream: TextIO) -> None:
    """Print one row per file, then each warning or critical finding as a sentence."""
    console = Console(file=stream, highlight=False)
    if not console.is_terminal:
        console = Console(file=stream, width=200, no_color=True, highlight=False)
    table = Table(header_style="bold")
    for name in ("File", "Subject", "Issuer", "Expires (UTC)", "Days", "Verdict", "Findings"):
        table.add_column(name, overflow="fold", justify="right" if name == "Days" else "left")
    for report in reports:
        analysis = report.analysis
        subject = issuer = expires = days = ""
        if analysis.certificates:
            leaf = analysis.certificates[0]
            subject = leaf.subject_cn or leaf.subject or "(empty subject)"
            issuer = leaf.issuer_cn or leaf.issuer
            expires = leaf.not_after_utc.strftime("%Y-%m-%d %H:%M")
            days = str(days_remaining(leaf.not_after_utc, now=analysis.evaluated_at_utc))
        findings = Text()
        for finding in analysis.findings:
            if finding.severity is Severity.OK:
                continue
            if findings:
                findings.append(", ")
            findings.append(finding.code, style=_STYLE[finding.severity])
        verdict = analysis.verdict
        table.add_row(
            report.source,
            subject,
            issuer,
            expires,
            days,
            Text(verdict.value, style=_STYLE[verdict]),
            findings,
        )
    console.print(table)
    for report in reports:
        for finding in report.analysis.findings:
            if finding.severity.rank >= Severity.WARNING.rank:
                line = Text(f"{report.source}: ")
                line.append(finding.severity.value, style=_STYLE[finding.severity])
                line.append(f": {finding.code}: {finding.message}")
                console.print(line, soft_wrap=True)
