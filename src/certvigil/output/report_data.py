"""What ``certvigil report`` shows, for every format: rows, problems first, and chart data.

Pure: snapshots and ``now`` in, frozen values out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from certvigil.analysis.days_remaining import days_remaining
from certvigil.analysis.model import Severity
from certvigil.integrations.snapshot import EndpointSnapshot

WEEKS = 52
"""The expiry timeline's length, in weeks from the report's time."""
TOP_ISSUERS = 10
"""Issuers shown by name in the issuer chart; the rest are counted as "others"."""
EXPIRING_DAYS = 30
"""A leaf expiring within this many days counts as a problem."""
NOT_GRADED = "not graded"

_RANK = {"critical": 0, "unknown": 1, "warning": 2, "info": 3, "ok": 4}


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportRow:
    """One endpoint's line in the report.

    Attributes:
        endpoint: ``host:port`` with SNI and STARTTLS when set.
        tags: The endpoint's labels.
        status: ``critical``, ``unknown`` (not observed), ``warning``, ``info`` or ``ok``.
        problems: What is wrong, one sentence each, worst first (empty when nothing).
        subject: The leaf's subject common name (else its DN), ``None`` without a leaf.
        issuer: The leaf's issuer common name (else its DN), ``None`` without a leaf.
        not_after_utc: The leaf's expiry, ``None`` without a leaf.
        days_left: Whole days from the report's time to the expiry, ``None`` without a leaf.
        grade: The letter grade, ``None`` when not graded.
        protocol: The negotiated protocol, ``None`` when failed.
        observed_at_utc: When the endpoint was observed.
        sha256_hex: The leaf's fingerprint, ``None`` without a leaf.
    """

    endpoint: str
    tags: tuple[str, ...]
    status: str
    problems: tuple[str, ...]
    subject: str | None
    issuer: str | None
    not_after_utc: datetime | None
    days_left: int | None
    grade: str | None
    protocol: str | None
    observed_at_utc: datetime
    sha256_hex: str | None

    @property
    def has_problem(self) -> bool:
        """Whether the row belongs in the problems section."""
        return bool(self.problems)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportData:
    """Everything a report shows.

    Attributes:
        generated_at_utc: The report's ``now``.
        source: Where the data came from (a database, a scan file).
        rows: One per endpoint, problems first (worst, then soonest expiry).
        expired: Leaves already expired.
        expiry_by_week: Leaves expiring in each of the next 52 weeks (week 0 starts now).
        expiring_later: Leaves expiring after the timeline.
        grades: Endpoints per grade, best first, ``not graded`` last.
        issuers: Leaves per issuer, most first, at most 10 and then ``others``.
        counts: Endpoints per status (``critical`` ... ``ok``).
    """

    generated_at_utc: datetime
    source: str
    rows: tuple[ReportRow, ...]
    expired: int
    expiry_by_week: tuple[int, ...]
    expiring_later: int
    grades: tuple[tuple[str, int], ...]
    issuers: tuple[tuple[str, int], ...]
    counts: tuple[tuple[str, int], ...]

    @property
    def problems(self) -> tuple[ReportRow, ...]:
        """The rows with something wrong."""
        return tuple(row for row in self.rows if row.has_problem)


def _days(count: int) -> str:
    return f"{count} day" if count == 1 else f"{count} days"


def _problems(
    snapshot: EndpointSnapshot, days_left: int | None, *, is_expired: bool
) -> tuple[str, ...]:
    found: list[tuple[int, str]] = []
    if snapshot.is_failed:
        found.append((0, f"not observed: {snapshot.failure_kind or 'failed'}"))
    for finding in snapshot.findings:
        if finding.severity in (Severity.CRITICAL, Severity.WARNING):
            found.append((_RANK[finding.severity.value], finding.message))
    if days_left is not None and not any(f.code.startswith("expir") for f in snapshot.findings):
        if is_expired:
            found.append((0, f"expired {_days(-days_left)} ago" if days_left else "expired today"))
        elif days_left <= EXPIRING_DAYS:
            found.append((2, f"expires in {_days(days_left)}" if days_left else "expires today"))
    found.sort(key=lambda item: item[0])
    return tuple(dict.fromkeys(text for _, text in found))


def _status(snapshot: EndpointSnapshot, problems: tuple[str, ...], *, is_expired: bool) -> str:
    """The endpoint's status now: its verdict, raised when the leaf has expired since
    (critical) or is close to expiring (warning)."""
    if snapshot.is_failed:
        return "unknown"
    status = snapshot.verdict
    if is_expired:
        return "critical"
    if problems and status in ("ok", "info"):
        return "warning"
    return status


def _grade_order(grade: str) -> tuple[int, str]:
    order = ["A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M"]
    return (order.index(grade), grade) if grade in order else (len(order), grade)


def build_report(
    snapshots: Sequence[EndpointSnapshot], *, now: datetime, source: str
) -> ReportData:
    """The report over ``snapshots`` as of ``now``."""
    rows: list[ReportRow] = []
    weeks = [0] * WEEKS
    expired = later = 0
    grades: Counter[str] = Counter()
    issuers: Counter[str] = Counter()
    for snapshot in snapshots:
        leaf = snapshot.leaf
        days_left = days_remaining(leaf.not_after_utc, now=now) if leaf else None
        is_expired = leaf is not None and leaf.not_after_utc <= now
        problems = _problems(snapshot, days_left, is_expired=is_expired)
        grades[snapshot.grade or NOT_GRADED] += 1
        if leaf is not None:
            issuers[leaf.issuer_cn or leaf.issuer] += 1
            if leaf.not_after_utc <= now:
                expired += 1
            else:
                week = (leaf.not_after_utc - now) // timedelta(weeks=1)
                if week < WEEKS:
                    weeks[week] += 1
                else:
                    later += 1
        rows.append(
            ReportRow(
                endpoint=snapshot.endpoint,
                tags=snapshot.tags,
                status=_status(snapshot, problems, is_expired=is_expired),
                problems=problems,
                subject=(leaf.subject_cn or leaf.subject) if leaf else None,
                issuer=(leaf.issuer_cn or leaf.issuer) if leaf else None,
                not_after_utc=leaf.not_after_utc if leaf else None,
                days_left=days_left,
                grade=snapshot.grade,
                protocol=snapshot.protocol,
                observed_at_utc=snapshot.observed_at_utc,
                sha256_hex=leaf.sha256_hex if leaf else None,
            )
        )
    rows.sort(
        key=lambda r: (
            not r.has_problem,
            _RANK.get(r.status, 5),
            r.days_left if r.days_left is not None else -(10**9),
            r.endpoint,
        )
    )
    top = issuers.most_common()
    issuer_counts = top[:TOP_ISSUERS]
    if len(top) > TOP_ISSUERS:
        issuer_counts.append(("others", sum(count for _, count in top[TOP_ISSUERS:])))
    status_counts = Counter(row.status for row in rows)
    return ReportData(
        generated_at_utc=now,
        source=source,
        rows=tuple(rows),
        expired=expired,
        expiry_by_week=tuple(weeks),
        expiring_later=later,
        grades=tuple(sorted(grades.items(), key=lambda item: _grade_order(item[0]))),
        issuers=tuple(issuer_counts),
        counts=tuple((status, status_counts.get(status, 0)) for status in _RANK),
    )
