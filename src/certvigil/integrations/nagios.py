"""One endpoint report as a Nagios/Icinga plugin result: status line, perfdata, long output.

Pure: the caller scans and passes the report (whose ``evaluated_at_utc`` is the ``now``
of every day count) and the thresholds; :func:`judge_report` returns a
:class:`CheckResult` whose :meth:`~CheckResult.render` is exactly what the plugin prints.

The plugin guidelines this follows (Nagios plugin API, monitoring-plugins guidelines):

* the first line is ``CERTVIGIL STATE - summary | perfdata``; a ``|`` anywhere in the
  text would start the perfdata, and a newline would end the status line, so every
  piece of outside text (certificate fields, server messages, host names) goes through
  :func:`plugin_text`, which writes them as ``\\x7c`` and ``\\x0a``;
* perfdata is ``'label'=value[UOM];[warn];[crit];[min];[max]``;
* further lines are the long output (one line per finding here);
* the exit code is the state: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.

Probe failures: a time-out (``-t``) and certvigil's own internal errors are UNKNOWN
(the state of the service could not be determined); a refused or reset connection, a
name that does not resolve, a peer that does not speak TLS or fails the handshake are
CRITICAL, as in check_ssl_cert: the service is not offering a usable certificate, which
is what the check is there to catch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import IntEnum

from certvigil.analysis.codes import FindingCode
from certvigil.analysis.days_remaining import days_remaining
from certvigil.analysis.model import EndpointReport, Finding, Severity
from certvigil.observed.handshake import FailureKind

__all__ = [
    "GRADE_ORDER",
    "CheckResult",
    "CheckThresholds",
    "NagiosState",
    "judge_report",
    "plugin_text",
    "unknown_result",
]

GRADE_ORDER: tuple[str, ...] = ("A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M")
"""Grades from best to worst (T and M, untrusted and mismatched, rank below F)."""

_TEXT_LIMIT = 200
"""Longest piece of outside text in one place (a subject, a message), in characters."""
_SUMMARY_LIMIT = 600
"""Longest summary on the status line (Nagios 4 keeps 8 KiB of output in all)."""
_DETAIL_LINES = 60
"""Most long-output lines."""
_UNKNOWN_FAILURES = frozenset({FailureKind.TIMEOUT, FailureKind.INTERNAL_ERROR})


class NagiosState(IntEnum):
    """A plugin's state and exit code."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


_FROM_SEVERITY = {
    Severity.OK: NagiosState.OK,
    Severity.INFO: NagiosState.OK,
    Severity.WARNING: NagiosState.WARNING,
    Severity.CRITICAL: NagiosState.CRITICAL,
}
# UNKNOWN sorts between WARNING and CRITICAL when choosing the overall state, as the
# plugin guidelines' "worst state" rule has it: CRITICAL > UNKNOWN > WARNING > OK.
_STATE_RANK = {
    NagiosState.OK: 0,
    NagiosState.WARNING: 1,
    NagiosState.UNKNOWN: 2,
    NagiosState.CRITICAL: 3,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckThresholds:
    """What the check demands of the endpoint (check_ssl_cert's options).

    Attributes:
        warning_days: WARNING when a served certificate expires within this many days.
        critical_days: CRITICAL when one expires within this many days.
        issuer_pattern: CRITICAL when the leaf's issuer DN does not match (``re.search``).
        forbid_tls10: CRITICAL when the endpoint accepts TLS 1.0 (needs the deep probe).
        forbid_tls11: CRITICAL when the endpoint accepts TLS 1.1 (needs the deep probe).
        grade_below: CRITICAL when the grade is worse than this letter.
    """

    warning_days: float = 20.0
    critical_days: float = 15.0
    issuer_pattern: re.Pattern[str] | None = None
    forbid_tls10: bool = False
    forbid_tls11: bool = False
    grade_below: str | None = None

    def __post_init__(self) -> None:
        if self.warning_days < 0 or self.critical_days < 0:
            raise ValueError("warning and critical days must not be negative")
        if self.grade_below is not None and self.grade_below not in GRADE_ORDER:
            raise ValueError(f"grade must be one of {', '.join(GRADE_ORDER)}")

    @property
    def needs_deep_probe(self) -> bool:
        """Whether the protocol and cipher probes must run."""
        return self.forbid_tls10 or self.forbid_tls11 or self.grade_below is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Problem:
    state: NagiosState
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """A plugin result, ready to print.

    Attributes:
        state: The overall state, also the exit code.
        summary: The status line's text after ``CERTVIGIL STATE - `` (already escaped).
        perfdata: Performance data items (``days=12;20;15;;``).
        details: Long-output lines (already escaped).
    """

    state: NagiosState
    summary: str
    perfdata: tuple[str, ...] = ()
    details: tuple[str, ...] = ()

    def render(self) -> str:
        """The plugin's whole output, ending in a newline."""
        line = f"CERTVIGIL {self.state.name} - {self.summary}"
        if self.perfdata:
            line += " | " + " ".join(self.perfdata)
        return "\n".join((line, *self.details)) + "\n"


def plugin_text(text: str, limit: int = _TEXT_LIMIT) -> str:
    """``text`` safe for plugin output: one line, no ``|``, no control characters.

    ``|`` (perfdata separator), ``\\`` (the escape itself) and every character Python
    does not call printable (control and format characters, line and paragraph
    separators, spaces other than U+0020, unassigned code points) are written as
    ``\\xNN`` or ``\\uNNNN``; printable text, non-ASCII included, is kept. Longer
    than ``limit`` characters is cut and marked with ``...``.

    Args:
        text: Outside text (a certificate field, a server message).
        limit: Most characters kept before escaping.

    Returns:
        The escaped text.
    """
    cut = len(text) > limit
    out: list[str] = []
    for char in text[:limit] if cut else text:
        if char == "\\":
            out.append("\\\\")
        elif char == "|" or not char.isprintable():
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out) + ("..." if cut else "")


def _number(value: float) -> str:
    return f"{value:g}"


def unknown_result(reason: str, *, target: str | None = None) -> CheckResult:
    """An UNKNOWN result (time-out, bad usage, unreadable trust file)."""
    where = f"{plugin_text(target)}: " if target else ""
    return CheckResult(state=NagiosState.UNKNOWN, summary=where + plugin_text(reason, 400))


def _worst(states: list[NagiosState]) -> NagiosState:
    return max(states, key=_STATE_RANK.__getitem__, default=NagiosState.OK)


def _finding_state(finding: Finding, thresholds: CheckThresholds) -> NagiosState:
    forbidden: dict[str, bool] = {
        FindingCode.PROTOCOL_TLS10: thresholds.forbid_tls10,
        FindingCode.PROTOCOL_TLS11: thresholds.forbid_tls11,
    }
    if forbidden.get(finding.code):
        return NagiosState.CRITICAL
    return _FROM_SEVERITY[finding.severity]


def _expiry_problems(report: EndpointReport, thresholds: CheckThresholds) -> list[_Problem]:
    """WARNING/CRITICAL for served certificates expiring within -w/-c days.

    Certificates already expired are left to the analysis' ``expired`` finding, which
    knows whether they are on the verified path; self-signed CA certificates after the
    leaf (a root sent needlessly) are skipped, as no client checks their dates.
    """
    problems: list[_Problem] = []
    now = report.evaluated_at_utc
    for index, cert in enumerate(report.certificates):
        if index > 0 and cert.is_self_signed:
            continue
        left_s = (cert.not_after_utc - now).total_seconds()
        if left_s < 0:
            continue
        left_days = left_s / 86400
        if left_days <= thresholds.critical_days:
            state = NagiosState.CRITICAL
        elif left_days <= thresholds.warning_days:
            state = NagiosState.WARNING
        else:
            continue
        which = "certificate" if index == 0 else f"chain certificate {index}"
        name = plugin_text(cert.subject_cn or cert.subject or "(empty subject)")
        problems.append(
            _Problem(
                state=state,
                text=f"{which} {name} expires in {days_remaining(cert.not_after_utc, now=now)} "
                f"days ({cert.not_after_utc:%Y-%m-%d %H:%M} UTC)",
            )
        )
    return problems


def _deep_problems(report: EndpointReport, thresholds: CheckThresholds) -> list[_Problem]:
    if not thresholds.needs_deep_probe:
        return []
    if report.deep is None:
        why = [f.message for f in report.findings if f.code == FindingCode.TLS_CONFIG_NOT_ASSESSED]
        reason = why[0] if why else "the protocol probes did not run"
        return [_Problem(state=NagiosState.UNKNOWN, text=f"not assessed: {plugin_text(reason)}")]
    grade = report.deep.grade.grade
    limit = thresholds.grade_below
    if limit is not None and GRADE_ORDER.index(grade) > GRADE_ORDER.index(limit):
        return [_Problem(state=NagiosState.CRITICAL, text=f"grade {grade} is below {limit}")]
    return []


def _perfdata(report: EndpointReport, thresholds: CheckThresholds) -> tuple[str, ...]:
    items: list[str] = []
    leaf = report.leaf
    if leaf is not None:
        days = days_remaining(leaf.not_after_utc, now=report.evaluated_at_utc)
        w, c = _number(thresholds.warning_days), _number(thresholds.critical_days)
        items.append(f"days={days};{w};{c};;")
    if report.observation is not None:
        items.append(f"connect_time={report.observation.connect_s:.6f}s;;;0;")
        items.append(f"handshake_time={report.observation.handshake_s:.6f}s;;;0;")
    items.append(f"chain_length={len(report.certificates)};;;0;")
    return tuple(items)


def _details(report: EndpointReport) -> list[str]:
    lines: list[str] = []
    for finding in report.findings:
        if finding.code == FindingCode.EXPIRES_SOON:  # judged against -w/-c on the status line
            continue
        where = "" if finding.cert_index is None else f" (certificate {finding.cert_index})"
        lines.append(
            f"{finding.severity.value}: {finding.code}{where}: {plugin_text(finding.message)}"
        )
    for index, cert in enumerate(report.certificates):
        lines.append(
            f"certificate {index}: subject {plugin_text(cert.subject or '(empty)')}; issuer "
            f"{plugin_text(cert.issuer or '(empty)')}; not after "
            f"{cert.not_after_utc:%Y-%m-%d %H:%M:%S} UTC; sha256 {cert.sha256_hex}"
        )
    observation = report.observation
    if observation is not None:
        lines.append(
            f"connection: {plugin_text(observation.peer_address)}, "
            f"{plugin_text(observation.protocol)}, {plugin_text(observation.cipher)}"
        )
    if report.chain is not None and report.chain.is_trusted:
        anchor = plugin_text(report.chain.anchor_subject or "?")
        lines.append(f"chain: trusted, anchor {anchor}")
    if report.deep is not None:
        lines.append(f"grade: {report.deep.grade.grade} (score {report.deep.grade.score})")
    if len(lines) > _DETAIL_LINES:
        lines = [*lines[: _DETAIL_LINES - 1], f"... {len(lines) - _DETAIL_LINES + 1} more lines"]
    return lines


def _join(problems: list[_Problem]) -> str:
    ordered = sorted(problems, key=lambda p: -_STATE_RANK[p.state])
    text = "; ".join(p.text for p in ordered)
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 3] + "..."


def judge_report(report: EndpointReport, thresholds: CheckThresholds) -> CheckResult:
    """The plugin result for one scanned endpoint.

    Args:
        report: The scan's report (with revocation and deep assessment when asked).
        thresholds: What the check demands.

    Returns:
        State, summary, perfdata and long output.
    """
    target = plugin_text(str(report.target))
    failure = report.failure
    if failure is not None:
        state = NagiosState.UNKNOWN if failure.kind in _UNKNOWN_FAILURES else NagiosState.CRITICAL
        detail = f"{failure.kind.value}: {failure.detail}"
        if failure.tls_alert:
            detail += f" (alert {failure.tls_alert})"
        return CheckResult(state=state, summary=f"{target}: {plugin_text(detail, 400)}")
    problems = _expiry_problems(report, thresholds)
    for finding in report.findings:
        if finding.code == FindingCode.EXPIRES_SOON:  # judged above against -w/-c instead
            continue
        state = _finding_state(finding, thresholds)
        if state is not NagiosState.OK:
            problems.append(_Problem(state=state, text=plugin_text(finding.message)))
    leaf = report.leaf
    pattern = thresholds.issuer_pattern
    if pattern is not None and leaf is not None and pattern.search(leaf.issuer) is None:
        problems.append(
            _Problem(
                state=NagiosState.CRITICAL,
                text=f"issuer {plugin_text(leaf.issuer)} does not match "
                f"{plugin_text(pattern.pattern)}",
            )
        )
    problems += _deep_problems(report, thresholds)
    state = _worst([p.state for p in problems])
    if problems:
        summary = f"{target}: {_join(problems)}"
    elif leaf is not None:
        days = days_remaining(leaf.not_after_utc, now=report.evaluated_at_utc)
        name = plugin_text(leaf.subject_cn or leaf.subject or "(empty subject)")
        summary = (
            f"{target}: {name} expires in {days} days ({leaf.not_after_utc:%Y-%m-%d}), "
            "chain trusted, name matches"
        )
        if report.deep is not None:
            summary += f", grade {report.deep.grade.grade}"
    else:  # pragma: no cover - an observed endpoint without a leaf gets a finding
        summary = f"{target}: no certificate"
    return CheckResult(
        state=state,
        summary=summary,
        perfdata=_perfdata(report, thresholds),
        details=tuple(_details(report)),
    )
