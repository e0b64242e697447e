"""The human output: a rich table, one row per endpoint, then what is wrong in sentences.

Every string from outside (names, certificate fields, servers' and libraries' messages)
goes through ``certvigil.output.safe_text``: shown literally, never as markup, control
and bidi characters as escapes. The table fits the terminal (``certvigil.output.columns``);
when the screen is too narrow, these give way first to last (``SCAN_TABLE_STEPS``): the
issuer, the TLS facts, the time of expiry (the date stays), the revocation status, the
expiry date, the subject, the grade, then the findings (the sentences below the table
still name every warning and critical finding). The endpoint, the days left and the
verdict always stay; an address, a date or a number is never broken (an endpoint's
``(sni …)`` note may go to a line of its own).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from certvigil.analysis.model import CertificateFacts, EndpointReport, Severity
from certvigil.output.columns import (
    WIDTH_WHEN_NOT_A_TERMINAL,
    Column,
    Fit,
    Step,
    drop,
    fit_table,
    results_console,
    shorten,
)
from certvigil.output.safe_text import cell, visible
from certvigil.output.summary import days_remaining

_STYLE = {
    Severity.OK: "green",
    Severity.INFO: "cyan",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
}
_FAILED_STYLE = "magenta"

SCAN_TABLE_STEPS: tuple[Step, ...] = (
    drop("Issuer"),
    drop("TLS"),
    shorten("Expires (UTC)"),
    drop("Revocation"),
    drop("Expires (UTC)"),
    drop("Subject"),
    drop("Grade"),
    drop("Findings"),
)
"""What the scan table gives up, first to last, on a narrow screen."""


class LeafColumns:
    """The columns a table gives a leaf certificate: subject, issuer, expiry, days left.

    Shared by the scan table and ``cert``'s, so both show a leaf the same way.
    """

    def __init__(self) -> None:
        """Empty columns; :meth:`add` fills one row at a time."""
        self.subject = Column(header="Subject", fit=Fit.CLIP, min_width=12)
        self.issuer = Column(header="Issuer", fit=Fit.CLIP, min_width=12)
        self._short_expires: list[Text] = []
        self.expires = Column(
            header="Expires (UTC)", short_header="Expires", short_cells=self._short_expires
        )
        self.days = Column(header="Days", justify="right")

    def add(self, leaf: CertificateFacts | None, *, now: datetime) -> None:
        """One row's cells: the leaf's, or empty ones when there is no leaf."""
        if leaf is None:
            for column in (self.subject, self.issuer, self.expires, self.days):
                column.cells.append(Text())
            self._short_expires.append(Text())
            return
        self.subject.cells.append(cell(leaf.subject_cn or leaf.subject or "(empty subject)"))
        self.issuer.cells.append(cell(leaf.issuer_cn or leaf.issuer))
        self.expires.cells.append(Text(leaf.not_after_utc.strftime("%Y-%m-%d %H:%M")))
        self._short_expires.append(Text(leaf.not_after_utc.strftime("%Y-%m-%d")))
        self.days.cells.append(Text(str(days_remaining(leaf.not_after_utc, now=now))))


def _verdict_cell(report: EndpointReport) -> Text:
    if report.is_failed:
        return Text("failed", style=_FAILED_STYLE)
    verdict = report.verdict
    return Text(verdict.value, style=_STYLE[verdict])


def _findings_cell(report: EndpointReport) -> Text:
    text = Text()
    if report.failure is not None:
        text.append(report.failure.kind.value, style=_FAILED_STYLE)
    for finding in report.findings:
        if finding.severity is Severity.OK:
            continue
        if text:
            text.append(", ")
        text.append(visible(finding.code), style=_STYLE[finding.severity])
    return text


def _tls_cell(report: EndpointReport) -> str:
    """Key TLS facts of a deep assessment: protocols, forward secrecy, AEAD."""
    if report.deep is None:
        return ""
    config = report.deep.tls_config
    versions = " ".join(p.value.removeprefix("TLSv") for p in config.protocols)
    return (
        f"{versions}; FS {config.forward_secrecy}; AEAD {'yes' if config.supports_aead else 'no'}"
    )


def _revocation_cell(report: EndpointReport) -> str:
    """The leaf's revocation status and the method that decided it: ``good (ocsp)``."""
    revocation = report.revocation
    if revocation is None:
        return ""
    leaf = next((c for c in revocation.certificates if c.cert_index == 0), None)
    if leaf is None:
        return "revoked" if revocation.is_revoked else "not checked (self-signed)"
    status = "revoked" if revocation.is_revoked else leaf.status.value
    return f"{status} ({leaf.decided_by.value})" if leaf.decided_by else status


def scan_columns(reports: Iterable[EndpointReport]) -> list[Column]:
    """The scan table's columns, every cell made safe to show.

    Args:
        reports: The reports, in the order to show.

    Returns:
        Endpoint, subject, issuer, expiry, days left, verdict, findings; after
        ``scan --deep`` also the grade and key TLS facts, and after a revocation check
        the leaf's status and the method that decided it.
    """
    reports = list(reports)
    graded = any(report.deep is not None for report in reports)
    revocation_checked = any(report.revocation is not None for report in reports)
    # An endpoint wraps only between its address and its notes ("(sni …)",
    # "(starttls smtp)"): host:port itself is one word and never breaks.
    endpoint = Column(header="Endpoint", fit=Fit.WRAP, min_width=8)
    leaf_columns = LeafColumns()
    subject, issuer, expires, days = (
        leaf_columns.subject,
        leaf_columns.issuer,
        leaf_columns.expires,
        leaf_columns.days,
    )
    verdict = Column(header="Verdict")
    grade = Column(header="Grade")
    tls = Column(header="TLS", fit=Fit.WRAP, min_width=12)
    revocation = Column(header="Revocation", fit=Fit.WRAP, min_width=12)
    findings = Column(header="Findings", fit=Fit.WRAP, min_width=20)
    for report in reports:
        leaf = report.leaf
        endpoint.cells.append(cell(str(report.target)))
        leaf_columns.add(leaf, now=report.evaluated_at_utc)
        verdict.cells.append(_verdict_cell(report))
        grade.cells.append(Text(report.deep.grade.grade if report.deep else ""))
        tls.cells.append(Text(_tls_cell(report)))
        revocation.cells.append(Text(_revocation_cell(report)))
        findings.cells.append(_findings_cell(report))
    return [
        endpoint,
        subject,
        issuer,
        expires,
        days,
        verdict,
        *((grade, tls) if graded else ()),
        *((revocation,) if revocation_checked else ()),
        findings,
    ]


def build_table(
    reports: Iterable[EndpointReport], *, width: int = WIDTH_WHEN_NOT_A_TERMINAL
) -> Table:
    """The table, fitted to ``width`` (see ``SCAN_TABLE_STEPS``).

    Args:
        reports: The reports, in the order to show.
        width: The screen's width.

    Returns:
        A rich Table ready to print.
    """
    return fit_table(scan_columns(reports), width=width, steps=SCAN_TABLE_STEPS)


def problem_lines(reports: Iterable[EndpointReport]) -> list[Text]:
    """Each failure and each warning or critical finding, as one sentence per line."""
    lines: list[Text] = []
    for report in reports:
        target = visible(str(report.target))
        if report.failure is not None:
            line = Text(f"{target}: ")
            line.append("not checked", style=_FAILED_STYLE)
            line.append(f": {report.failure.kind.value}: {visible(report.failure.detail)}")
            lines.append(line)
        for finding in report.findings:
            if finding.severity.rank < Severity.WARNING.rank:
                continue
            line = Text(f"{target}: ")
            line.append(finding.severity.value, style=_STYLE[finding.severity])
            line.append(f": {visible(finding.code)}: {visible(finding.message)}")
            lines.append(line)
    return lines


def render_table(
    reports: Iterable[EndpointReport],
    stream: TextIO,
    *,
    details: bool = True,
    color: bool | None = None,
) -> None:
    """Print the table and, below it, each problem in a sentence.

    Args:
        reports: The reports to show (all are held while the table is built).
        stream: Where to print (stdout or an ``--output`` file).
        details: Also list failures and warning/critical findings as sentences.
        color: Force colour on (True) or off (False); ``None`` asks the stream.
    """
    collected = list(reports)
    console: Console = results_console(stream, color=color)
    console.print(build_table(collected, width=console.width))
    if not details:
        return
    for line in problem_lines(collected):
        console.print(line, soft_wrap=True)
