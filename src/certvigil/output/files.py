"""Output for ``certvigil cert``: the judgement on certificate files, in each format.

A file report is a ``ChainAnalysis`` (the same analysis a scan runs on a served chain)
with the file it came from. The JSON document has the scan document's head and tail,
with ``files`` in place of ``endpoints``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from certvigil.analysis.model import Severity
from certvigil.analysis.report import ChainAnalysis
from certvigil.output.json_doc import (
    SCHEMA_VERSION,
    CertificateModel,
    ChainModel,
    FindingModel,
    GeneratorModel,
    OutputModel,
    SummaryModel,
    TargetErrorModel,
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


class FileModel(OutputModel):
    """One analysed file in the ``cert`` JSON document."""

    source: str
    evaluated_at_utc: datetime
    expected_name: str | None
    verdict: Literal["ok", "info", "warning", "critical"]
    hostname_matches: bool | None
    certificates: tuple[CertificateModel, ...]
    chain: ChainModel | None
    findings: tuple[FindingModel, ...]

    @classmethod
    def build(cls, report: FileReport) -> FileModel:
        """From a FileReport."""
        analysis = report.analysis
        now = analysis.evaluated_at_utc
        return cls(
            source=report.source,
            evaluated_at_utc=now,
            expected_name=analysis.expected_name,
            verdict=analysis.verdict.value,
            hostname_matches=analysis.hostname_matches,
            certificates=tuple(
                CertificateModel.build(facts, index=index, now=now)
                for index, facts in enumerate(analysis.certificates)
            ),
            chain=ChainModel.build(analysis.chain) if analysis.chain else None,
            findings=tuple(FindingModel.build(f) for f in analysis.findings),
        )


class CertDocument(OutputModel):
    """The whole ``certvigil cert --json`` document."""

    schema_version: int
    generator: GeneratorModel
    command: Literal["cert"]
    started_at_utc: datetime
    files: tuple[FileModel, ...]
    target_errors: tuple[TargetErrorModel, ...]
    summary: SummaryModel
    finished_at_utc: datetime


def write_files_json(
    reports: list[FileReport],
    stream: TextIO,
    *,
    tally: Tally,
    version: str,
    started_at_utc: datetime,
    finished_at_utc: datetime,
) -> None:
    """Write the ``cert`` JSON document."""
    document = CertDocument(
        schema_version=SCHEMA_VERSION,
        generator=GeneratorModel(version=version),
        command="cert",
        started_at_utc=started_at_utc,
        files=tuple(FileModel.build(r) for r in reports),
        target_errors=tuple(TargetErrorModel.build(e) for e in tally.target_errors),
        summary=SummaryModel.build(tally),
        finished_at_utc=finished_at_utc,
    )
    # The stdlib's spacing, as in the streamed scan document.
    stream.write(json.dumps(document.model_dump(mode="json")) + "\n")


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
