"""Counting reports as they stream past, and the exit code they add up to."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

# Re-exported: output modules import it from here; the one definition is in analysis.
from certvigil.analysis.days_remaining import days_remaining as days_remaining
from certvigil.analysis.model import EndpointReport, Severity
from certvigil.cli.exitcodes import ExitCode
from certvigil.errors import TargetError


@dataclass(slots=True)
class Tally:
    """Running counts over a stream of reports and target errors.

    Attributes:
        endpoints: Reports seen.
        failed: Reports whose probe failed.
        by_verdict: Reports that were observed, per worst-finding severity.
        worst: The worst finding severity over every report, failed ones included.
        target_errors: Malformed targets, in the order met.
        interrupted_by: The signal that stopped the run (``SIGINT``, ``SIGTERM``), or
            ``None`` when it ran to the end.
        not_scanned: Targets read but not judged when the run was stopped, plus the
            rest of the input when it could be counted.
        input_read_to_end: Whether ``not_scanned`` counts every target of the input
            (``False`` when standard input was not read to the end, for instance).
    """

    endpoints: int = 0
    failed: int = 0
    by_verdict: dict[Severity, int] = field(default_factory=lambda: dict.fromkeys(Severity, 0))
    worst: Severity = Severity.OK
    target_errors: list[TargetError] = field(default_factory=list)
    interrupted_by: signal.Signals | None = None
    not_scanned: int = 0
    input_read_to_end: bool = True

    def interrupt(self, by: signal.Signals, *, not_scanned: int, input_read_to_end: bool) -> None:
        """Record that the run was stopped by ``by`` with ``not_scanned`` targets left."""
        self.interrupted_by = by
        self.not_scanned = not_scanned
        self.input_read_to_end = input_read_to_end

    def add(self, report: EndpointReport) -> None:
        """Count one report."""
        self.add_verdict(report.verdict, is_failed=report.is_failed)

    def add_verdict(self, verdict: Severity, *, is_failed: bool = False) -> None:
        """Count one judged item (an endpoint, a certificate file) by its verdict."""
        self.endpoints += 1
        if is_failed:
            self.failed += 1
        else:
            self.by_verdict[verdict] += 1
        if verdict.rank > self.worst.rank:
            self.worst = verdict

    def add_target_error(self, error: TargetError) -> None:
        """Count one malformed target."""
        self.target_errors.append(error)

    @property
    def exit_code(self) -> ExitCode:
        """The process exit code these results call for.

        Critical findings win (2); then anything that could not be checked, a failed
        probe or a malformed target (3); then warnings (1); else 0. A run in which
        every target was malformed, so nothing at all was checked, is a usage error (64).
        A run stopped by a signal exits 128 + its number (130 for SIGINT, 143 for
        SIGTERM), whatever was found before.
        """
        if self.interrupted_by is signal.SIGINT:
            return ExitCode.INTERRUPTED
        if self.interrupted_by is signal.SIGTERM:
            return ExitCode.TERMINATED
        if self.target_errors and self.endpoints == 0:
            return ExitCode.USAGE
        if self.worst is Severity.CRITICAL:
            return ExitCode.CRITICAL
        if self.failed or self.target_errors:
            return ExitCode.UNKNOWN
        if self.worst is Severity.WARNING:
            return ExitCode.WARNING
        return ExitCode.OK

    def describe(self) -> str:
        """One line for stderr: ``12 endpoints: 9 ok, 1 warning, 1 critical, 1 failed``."""
        parts = [
            f"{self.by_verdict[severity]} {severity.value}"
            for severity in (Severity.OK, Severity.INFO, Severity.WARNING, Severity.CRITICAL)
            if self.by_verdict[severity]
        ]
        if self.failed:
            parts.append(f"{self.failed} not checked")
        if self.target_errors:
            count = len(self.target_errors)
            parts.append(f"{count} malformed target{'' if count == 1 else 's'}")
        noun = "endpoint" if self.endpoints == 1 else "endpoints"
        line = f"{self.endpoints} {noun}: " + (", ".join(parts) if parts else "nothing to report")
        if self.interrupted_by is not None:
            left = f"{self.not_scanned}{'' if self.input_read_to_end else ' or more'}"
            line = f"interrupted by {self.interrupted_by.name}: {left} not scanned; " + line
        return line
