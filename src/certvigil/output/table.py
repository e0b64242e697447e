"""The human output: a rich table, one row per endpoint, then what is wrong in sentences."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from rich.console import Console
from rich.table import Table
from rich.text import Text

from certvigil.analysis.model import EndpointReport, Severity
from certvigil.output.summary import days_remaining

_STYLE = {
    Severity.OK: "green",
    Severity.INFO: "cyan",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
}
_FAILED_STYLE = "magenta"
_WIDTH_WHEN_NOT_A_TERMINAL = 200


class _ResultsConsole(Console):
    """A console that lets a closed pipe surface as ``BrokenPipeError``.

    rich's own handling exits with status 1; the command decides the status instead.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def _console(stream: TextIO, *, color: bool | None) -> Console:
    console = _ResultsConsole(file=stream, no_color=color is False, force_terminal=color or None)
    if not console.is_terminal:
        # A pipe or file has no width; keep rows on one line where they fit.
        console = _ResultsConsole(
            file=stream, width=_WIDTH_WHEN_NOT_A_TERMINAL, no_color=True, highlight=False
        )
    return console


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
        text.append(finding.code, style=_STYLE[finding.severity])
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


def build_table(reports: Iterable[EndpointReport]) -> Table:
    """The table: endpoint, subject, issuer, expiry, days left, verdict, findings.

    After ``scan --deep`` it also shows each endpoint's grade and key TLS facts, and
    after a revocation check the leaf's status and the method that decided it.

    Args:
        reports: The reports, in the order to show.

    Returns:
        A rich Table ready to print.
    """
    reports = list(reports)
    graded = any(report.deep is not None for report in reports)
    revocation_checked = any(report.revocation is not None for report in reports)
    table = Table(show_lines=False, header_style="bold")
    table.add_column("Endpoint", overflow="fold")
    table.add_column("Subject", overflow="fold")
    table.add_column("Issuer", overflow="fold")
    table.add_column("Expires (UTC)", no_wrap=True)
    table.add_column("Days", justify="right", no_wrap=True)
    table.add_column("Verdict", no_wrap=True)
    if graded:
        table.add_column("Grade", no_wrap=True)
        table.add_column("TLS", overflow="fold")
    if revocation_checked:
        table.add_column("Revocation", overflow="fold")
    table.add_column("Findings", overflow="fold")
    for report in reports:
        leaf = report.leaf
        subject = issuer = expires = days = ""
        if leaf is not None:
            subject = leaf.subject_cn or leaf.subject or "(empty subject)"
            issuer = leaf.issuer_cn or leaf.issuer
            expires = leaf.not_after_utc.strftime("%Y-%m-%d %H:%M")
            days = str(days_remaining(leaf.not_after_utc, now=report.evaluated_at_utc))
        table.add_row(
            str(report.target),
            subject,
            issuer,
            expires,
            days,
            _verdict_cell(report),
            *(
                (report.deep.grade.grade if report.deep else "", _tls_cell(report))
                if graded
                else ()
            ),
            *((_revocation_cell(report),) if revocation_checked else ()),
            _findings_cell(report),
        )
    return table


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
    console = _console(stream, color=color)
    console.print(build_table(collected))
    if not details:
        return
    lines: list[Text] = []
    for report in collected:
        if report.failure is not None:
            line = Text(f"{report.target}: ")
            line.append("not checked", style=_FAILED_STYLE)
            line.append(f": {report.failure.kind.value}: {report.failure.detail}")
            lines.append(line)
        for finding in report.findings:
            if finding.severity.rank < Severity.WARNING.rank:
                continue
            line = Text(f"{report.target}: ")
            line.append(finding.severity.value, style=_STYLE[finding.severity])
            line.append(f": {finding.code}: {finding.message}")
            lines.append(line)
    for line in lines:
        console.print(line, soft_wrap=True)
