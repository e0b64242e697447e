"""Pure alert rules: an endpoint's history plus a new report become open/resolve events.

Nothing here reads the clock, the database or the network. The engine
(``certvigil.alerts.engine``) builds an :class:`EndpointHistory` from the store, calls
:func:`evaluate` and applies the events it returns.

Two kinds of rule live here:

* **Once-per-crossing rules** (expiry thresholds, expired, replaced, issuer changed) are
  keyed by certificate: their dedup key names the leaf's SHA-256, and the history says
  which keys were ever raised, so a crossing alerts once in a certificate's life however
  many cycles see it.
* **Condition rules** (not yet valid, untrusted, hostname mismatch, weak, revoked,
  unreachable) are keyed by endpoint: an alert opens when the condition starts to hold and
  no alert with that key is open, and resolves when a report shows the condition gone
  (recovery).

An alert names the root cause once. A leaf outside its validity period makes the chain
untrusted too; when the chain report says it is trusted apart from time
(``ChainReport.trusted_ignoring_validity``), that is a detail of the ``expired`` or
``not_yet_valid`` alert, not an ``untrusted`` alert of its own. ``untrusted`` opens only
for causes that renewing the leaf would not fix, and names them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from certvigil.analysis.codes import FindingCode
from certvigil.analysis.model import CertificateFacts, EndpointReport, Finding, Severity
from certvigil.output.safe_text import visible
from certvigil.targets.target import Target


class AlertKind(StrEnum):
    """What an alert is about; stable strings stored in the database and sent in webhooks."""

    EXPIRY_THRESHOLD = "expiry_threshold"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REPLACED = "replaced"
    ISSUER_CHANGED = "issuer_changed"
    UNTRUSTED = "untrusted"
    HOSTNAME_MISMATCH = "hostname_mismatch"
    WEAK = "weak"
    REVOKED = "revoked"
    UNREACHABLE = "unreachable"


CERT_BOUND_KINDS = frozenset(
    {AlertKind.EXPIRY_THRESHOLD, AlertKind.EXPIRED, AlertKind.REPLACED, AlertKind.ISSUER_CHANGED}
)
"""Kinds whose alert concerns one certificate and resolves when the endpoint stops serving it."""


class EventAction(StrEnum):
    """What an event asks the engine to do."""

    OPEN = "open"
    """Open an alert with this dedup key unless one is already open (or acknowledged)."""
    NOTIFY = "notify"
    """Record an informational alert as already resolved, and deliver it."""
    RESOLVE = "resolve"
    """Resolve the open (or acknowledged) alert with this dedup key."""


_THRESHOLD_RE = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>d|%)?\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiryThreshold:
    """A point before expiry at which a certificate alerts once.

    Exactly one of ``days`` and ``fraction`` is set.

    Attributes:
        days: Alert when at most this many days remain; ``None`` for a fractional threshold.
        fraction: Alert when at most this fraction of the certificate's lifetime
            (``not_after - not_before``) remains, in (0, 1); ``None`` for a days threshold.
        severity: The alert's severity.
    """

    days: float | None = None
    fraction: float | None = None
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        if (self.days is None) == (self.fraction is None):
            raise ValueError("an expiry threshold needs exactly one of days and fraction")
        if self.days is not None and self.days < 0:
            raise ValueError(f"threshold days must not be negative, not {self.days}")
        if self.fraction is not None and not 0 < self.fraction < 1:
            raise ValueError(f"threshold fraction must be in (0, 1), not {self.fraction}")

    @property
    def label(self) -> str:
        """The threshold as written in configuration and dedup keys: ``"30d"`` or ``"20%"``."""
        if self.days is not None:
            return f"{self.days:g}d"
        return f"{(self.fraction or 0) * 100:g}%"

    def remaining_limit(self, lifetime: timedelta) -> timedelta:
        """The remaining validity at or below which this threshold is crossed."""
        if self.days is not None:
            return timedelta(days=self.days)
        return lifetime * (self.fraction or 0)

    def applies_to(self, lifetime: timedelta, max_fraction: float | None) -> bool:
        """Whether the threshold means anything for a certificate of this lifetime.

        A days threshold longer than ``max_fraction`` of the lifetime is skipped: "30 days
        left" is routine for a 90-day ACME certificate awaiting renewal and always true of
        a 6-day one. Fractional thresholds always apply.
        """
        if self.days is None or max_fraction is None:
            return True
        return timedelta(days=self.days) <= lifetime * max_fraction


def parse_threshold(text: str, *, severity: Severity | None = None) -> ExpiryThreshold:
    """Read a threshold written as ``"30d"``, ``"30"`` (days) or ``"20%"`` (of lifetime).

    ``str()`` of a configuration threshold (``certvigil.config.Threshold``) reads back.

    Args:
        text: The threshold as written.
        severity: The alert severity; by default critical for 7 days or less (or 5% or
            less of the lifetime), warning otherwise.

    Raises:
        ValueError: ``text`` is not a positive number of days or a percentage below 100.
    """
    match = _THRESHOLD_RE.match(text)
    if match is None:
        raise ValueError(
            f'expiry threshold "{text}": expected days ("30d") or a percentage ("20%")'
        )
    value = float(match["value"])
    if match["unit"] == "%":
        fraction = value / 100
        if not 0 < fraction < 1:
            raise ValueError(f'expiry threshold "{text}": percentage must be in (0, 100)')
        default = Severity.CRITICAL if fraction <= 0.05 else Severity.WARNING
        return ExpiryThreshold(fraction=fraction, severity=severity or default)
    default = Severity.CRITICAL if value <= 7 else Severity.WARNING
    return ExpiryThreshold(days=value, severity=severity or default)


DEFAULT_THRESHOLDS: tuple[ExpiryThreshold, ...] = tuple(
    parse_threshold(text) for text in ("30d", "14d", "7d", "1d")
)
"""30/14/7/1 days, the last two critical; skipped for lifetimes they do not fit."""

_TIME_CODES = (FindingCode.EXPIRED, FindingCode.NOT_YET_VALID)

DEFAULT_WEAK_CODES: frozenset[str] = frozenset({FindingCode.WEAK_KEY, FindingCode.WEAK_SIGNATURE})
"""Finding codes that raise a "weak" alert (one alert per code and endpoint).

``weak_key`` covers small RSA and EC keys and DSA, ``weak_signature`` MD5 and SHA-1
signatures: the analysis emits no finer codes (``tests/analysis/test_codes.py``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertPolicy:
    """How findings become alerts.

    Attributes:
        thresholds: Global expiry thresholds.
        target_thresholds: Per-target thresholds, replacing the global ones for that target.
        day_threshold_max_fraction: A days threshold applies to a certificate only when it
            is at most this fraction of the certificate's lifetime; ``None`` applies every
            days threshold to every certificate.
        unreachable_after: Consecutive failed scans before an "unreachable" alert (K).
        unreachable_severity: Severity of the "unreachable" alert.
        weak_finding_codes: Finding codes that raise a "weak" alert.
        revoked_finding_codes: Finding codes that mean the leaf is revoked.
    """

    thresholds: tuple[ExpiryThreshold, ...] = DEFAULT_THRESHOLDS
    target_thresholds: Mapping[Target, tuple[ExpiryThreshold, ...]] = field(default_factory=dict)
    day_threshold_max_fraction: float | None = 0.25
    unreachable_after: int = 3
    unreachable_severity: Severity = Severity.WARNING
    weak_finding_codes: frozenset[str] = DEFAULT_WEAK_CODES
    revoked_finding_codes: frozenset[str] = frozenset({FindingCode.REVOKED})

    def __post_init__(self) -> None:
        if self.unreachable_after < 1:
            raise ValueError(f"unreachable_after must be at least 1, not {self.unreachable_after}")
        frac = self.day_threshold_max_fraction
        if frac is not None and not 0 < frac <= 1:
            raise ValueError(f"day_threshold_max_fraction must be in (0, 1], not {frac}")

    def thresholds_for(self, target: Target) -> tuple[ExpiryThreshold, ...]:
        """The thresholds that apply to ``target``."""
        return self.target_thresholds.get(target, self.thresholds)


@dataclass(frozen=True, slots=True, kw_only=True)
class KnownAlert:
    """An alert the store already holds for the endpoint.

    Attributes:
        dedup_key: The alert's dedup key.
        kind: What it is about.
        severity: Its severity.
        is_open: Open or acknowledged (not yet resolved).
        cert_sha256: The certificate it concerns, ``None`` for endpoint-level alerts.
        threshold: The expiry threshold label (``"14d"``), ``None`` for other kinds.
    """

    dedup_key: str
    kind: AlertKind
    severity: Severity
    is_open: bool
    cert_sha256: str | None = None
    threshold: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LeafSummary:
    """The few facts of a previously served leaf that change rules compare.

    Attributes:
        sha256_hex: Its SHA-256 fingerprint.
        issuer: Its RFC 4514 issuer DN.
        not_after_utc: Its expiry (aware UTC).
    """

    sha256_hex: str
    issuer: str
    not_after_utc: datetime

    @classmethod
    def of(cls, facts: CertificateFacts) -> LeafSummary:
        """The summary of a leaf's full facts."""
        return cls(
            sha256_hex=facts.sha256_hex, issuer=facts.issuer, not_after_utc=facts.not_after_utc
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointHistory:
    """What the store knew about an endpoint before the report being judged.

    Attributes:
        previous_leaf: The leaf of the last successful report, ``None`` if there was none.
        consecutive_failures: How many reports in a row just before this one failed.
        alerts: Every open alert of the endpoint, and every alert (in any state) about
            the certificate it now serves; once-per-crossing rules look here.
    """

    previous_leaf: LeafSummary | None = None
    consecutive_failures: int = 0
    alerts: tuple[KnownAlert, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertEvent:
    """One thing the engine must do: open, notify or resolve an alert.

    Attributes:
        action: Open, notify (informational, recorded resolved) or resolve.
        kind: What the alert is about.
        dedup_key: Identifies the alert across cycles (see :func:`dedup_key`).
        severity: The alert's severity (for a resolve, the resolved alert's).
        endpoint: ``str(target)`` of the endpoint.
        title: A short human line, used as e-mail subject and chat title.
        message: One or two human sentences naming the certificate or fact concerned.
        cert_sha256: The leaf concerned, ``None`` when none.
        threshold: The expiry threshold label for threshold alerts.
        occurred_at_utc: The ``now`` of the evaluation (aware UTC).
    """

    action: EventAction
    kind: AlertKind
    dedup_key: str
    severity: Severity
    endpoint: str
    title: str
    message: str
    cert_sha256: str | None = None
    threshold: str | None = None
    occurred_at_utc: datetime


def dedup_key(
    kind: AlertKind, endpoint: str, *, cert_sha256: str | None = None, detail: str | None = None
) -> str:
    """The dedup key of an alert: ``kind|endpoint[|sha256][|detail]``.

    Args:
        kind: What the alert is about.
        endpoint: ``str(target)``.
        cert_sha256: The certificate, for once-per-certificate kinds.
        detail: The threshold label or finding code that distinguishes alerts of one kind.
    """
    parts = [kind.value, endpoint]
    if cert_sha256 is not None:
        parts.append(cert_sha256)
    if detail is not None:
        parts.append(detail)
    return "|".join(parts)


_ORG_RE = re.compile(r"(?:^|(?<!\\),)\s*O=(?P<org>(?:\\.|[^,])*)")


def issuer_organization(issuer_dn: str) -> str:
    """The ``O=`` value of an RFC 4514 issuer DN, or the whole DN when it has none."""
    match = _ORG_RE.search(issuer_dn)
    return match["org"].strip() if match else issuer_dn


def _short(sha256_hex: str) -> str:
    return sha256_hex[:16]


def _cn(cert: CertificateFacts) -> str:
    return cert.subject_cn or (cert.san_dns[0] if cert.san_dns else cert.subject or "(no name)")


class _Builder:
    """Collects the events of one evaluation, with the shared fields filled in."""

    def __init__(self, endpoint: str, now: datetime, known: tuple[KnownAlert, ...]) -> None:
        self.endpoint = endpoint
        self.now = now
        self.known = known
        self.open_by_key = {a.dedup_key: a for a in known if a.is_open}
        self.ever_keys = {a.dedup_key for a in known}
        self.events: list[AlertEvent] = []
        self._resolved: set[str] = set()

    def open(
        self,
        kind: AlertKind,
        key: str,
        severity: Severity,
        title: str,
        message: str,
        *,
        cert: str | None = None,
        threshold: str | None = None,
        action: EventAction = EventAction.OPEN,
    ) -> None:
        self.events.append(
            AlertEvent(
                action=action,
                kind=kind,
                dedup_key=key,
                severity=severity,
                endpoint=self.endpoint,
                # Certificate fields and servers' messages are woven into these
                # texts: control, bidi and invisible characters become escapes.
                title=visible(title),
                message=visible(message),
                cert_sha256=cert,
                threshold=threshold,
                occurred_at_utc=self.now,
            )
        )

    def resolve(self, alert: KnownAlert, message: str) -> None:
        if alert.dedup_key in self._resolved or not alert.is_open:
            return
        self._resolved.add(alert.dedup_key)
        self.events.append(
            AlertEvent(
                action=EventAction.RESOLVE,
                kind=alert.kind,
                dedup_key=alert.dedup_key,
                severity=alert.severity,
                endpoint=self.endpoint,
                title=visible(f"Resolved: {alert.kind.value.replace('_', ' ')} on {self.endpoint}"),
                message=visible(message),
                cert_sha256=alert.cert_sha256,
                threshold=alert.threshold,
                occurred_at_utc=self.now,
            )
        )

    def condition(
        self,
        holds: bool,
        kind: AlertKind,
        key: str,
        severity: Severity,
        title: str,
        message: str,
        recovered: str,
        cert: str | None = None,
    ) -> None:
        """Open while ``holds`` and nothing is open under ``key``; resolve once it stops."""
        existing = self.open_by_key.get(key)
        if holds and existing is None:
            self.open(kind, key, severity, title, message, cert=cert)
        elif not holds and existing is not None:
            self.resolve(existing, recovered)


def evaluate(
    report: EndpointReport, history: EndpointHistory, policy: AlertPolicy, *, now: datetime
) -> tuple[AlertEvent, ...]:
    """Judge a new report against what was known and say which alerts open and resolve.

    Args:
        report: The new report on the endpoint.
        history: What the store knew before ``report``.
        policy: Thresholds, K for unreachable, finding codes.
        now: The evaluation time (aware UTC); expiry is measured from it.

    Returns:
        The events, resolves of superseded alerts before the opens that supersede them.
    """
    endpoint = str(report.target)
    b = _Builder(endpoint, now, history.alerts)
    unreachable_key = dedup_key(AlertKind.UNREACHABLE, endpoint)

    if report.failure is not None:
        failures = history.consecutive_failures + 1
        if failures >= policy.unreachable_after and unreachable_key not in b.open_by_key:
            failure = report.failure
            b.open(
                AlertKind.UNREACHABLE,
                unreachable_key,
                policy.unreachable_severity,
                f"Unreachable: {endpoint}",
                f"{endpoint} failed {failures} scans in a row; last: {failure.kind.value}: "
                f"{failure.detail}",
            )
        # A failed scan says nothing about the certificate: other alerts stay as they are.
        return tuple(b.events)

    down = b.open_by_key.get(unreachable_key)
    if down is not None:
        b.resolve(down, f"{endpoint} answers again.")
    leaf = report.leaf
    if leaf is None:
        return tuple(b.events)

    _certificate_change(b, history, leaf)
    _expiry(b, policy.thresholds_for(report.target), policy, leaf, now, report)
    _conditions(b, report, policy, leaf)
    return tuple(b.events)


def _certificate_change(b: _Builder, history: EndpointHistory, leaf: CertificateFacts) -> None:
    """Replacement: resolve alerts about the old certificate, then say what replaced it."""
    for alert in history.alerts:
        if (
            alert.kind in CERT_BOUND_KINDS
            and alert.cert_sha256 is not None
            and alert.cert_sha256 != leaf.sha256_hex
        ):
            b.resolve(
                alert,
                f"{b.endpoint} now serves another certificate ({_short(leaf.sha256_hex)}).",
            )
    previous = history.previous_leaf
    if previous is None or previous.sha256_hex == leaf.sha256_hex:
        return
    old_org = issuer_organization(previous.issuer)
    new_org = issuer_organization(leaf.issuer)
    expires = leaf.not_after_utc.date().isoformat()
    if old_org != new_org:
        key = dedup_key(AlertKind.ISSUER_CHANGED, b.endpoint, cert_sha256=leaf.sha256_hex)
        if key not in b.ever_keys:
            b.open(
                AlertKind.ISSUER_CHANGED,
                key,
                Severity.WARNING,
                f"Issuer changed: {b.endpoint}",
                f"{b.endpoint} now serves {_cn(leaf)} issued by {leaf.issuer} (was "
                f"{previous.issuer}); expires {expires}.",
                cert=leaf.sha256_hex,
            )
        return
    key = dedup_key(AlertKind.REPLACED, b.endpoint, cert_sha256=leaf.sha256_hex)
    if key not in b.ever_keys:
        b.open(
            AlertKind.REPLACED,
            key,
            Severity.INFO,
            f"Certificate replaced: {b.endpoint}",
            f"{b.endpoint} now serves {_cn(leaf)} ({_short(leaf.sha256_hex)}), "
            f"expires {expires}; the previous one ({_short(previous.sha256_hex)}) expired "
            f"{previous.not_after_utc.date().isoformat()}.",
            cert=leaf.sha256_hex,
            action=EventAction.NOTIFY,
        )


def _expiry(
    b: _Builder,
    thresholds: tuple[ExpiryThreshold, ...],
    policy: AlertPolicy,
    leaf: CertificateFacts,
    now: datetime,
    report: EndpointReport,
) -> None:
    """Expired, or the most urgent threshold crossed and not alerted before for this leaf."""
    sha = leaf.sha256_hex
    remaining = leaf.not_after_utc - now
    lifetime = leaf.not_after_utc - leaf.not_before_utc
    mine = [
        a
        for a in b.open_by_key.values()
        if a.kind is AlertKind.EXPIRY_THRESHOLD and a.cert_sha256 == sha
    ]
    if remaining <= timedelta(0):
        key = dedup_key(AlertKind.EXPIRED, b.endpoint, cert_sha256=sha)
        for alert in mine:
            b.resolve(alert, f"Superseded: the certificate on {b.endpoint} has expired.")
        if key not in b.ever_keys:
            b.open(
                AlertKind.EXPIRED,
                key,
                Severity.CRITICAL,
                f"Certificate expired: {b.endpoint}",
                f"{_cn(leaf)} ({_short(sha)}) on {b.endpoint} expired "
                f"{leaf.not_after_utc.isoformat()}. {_time_consequence(report, expired=True)}",
                cert=sha,
            )
        return
    crossed = [
        t
        for t in thresholds
        if t.applies_to(lifetime, policy.day_threshold_max_fraction)
        and remaining <= t.remaining_limit(lifetime)
    ]
    if not crossed:
        return
    urgent = min(crossed, key=lambda t: t.remaining_limit(lifetime))
    limit = urgent.remaining_limit(lifetime)
    if any(t.remaining_limit(lifetime) <= limit for t in _alerted_thresholds(b.known, sha)):
        return  # this crossing, or a more urgent one, was already alerted for this leaf
    for alert in mine:
        b.resolve(alert, f"Superseded by the {urgent.label} threshold.")
    days_left = remaining.total_seconds() / 86400
    b.open(
        AlertKind.EXPIRY_THRESHOLD,
        dedup_key(AlertKind.EXPIRY_THRESHOLD, b.endpoint, cert_sha256=sha, detail=urgent.label),
        urgent.severity,
        f"Certificate expires in {days_left:.1f} days: {b.endpoint}",
        f"{_cn(leaf)} ({_short(sha)}) on {b.endpoint} expires {leaf.not_after_utc.isoformat()} "
        f"({days_left:.1f} days left; threshold {urgent.label}).",
        cert=sha,
        threshold=urgent.label,
    )


def _alerted_thresholds(known: tuple[KnownAlert, ...], sha256_hex: str) -> list[ExpiryThreshold]:
    """Thresholds already alerted (in any state) for the certificate ``sha256_hex``."""
    found = []
    for alert in known:
        if (
            alert.kind is AlertKind.EXPIRY_THRESHOLD
            and alert.cert_sha256 == sha256_hex
            and alert.threshold is not None
        ):
            try:
                found.append(parse_threshold(alert.threshold))
            except ValueError:
                continue  # a label from an older, unreadable configuration: ignore it
    return found


def _untrusted_reasons(
    report: EndpointReport, policy: AlertPolicy, leaf: CertificateFacts
) -> tuple[str, ...] | None:
    """Why the chain is untrusted, leaving out the causes that raise alerts of their own.

    ``None`` when the chain is trusted (or unknown). Otherwise the sentences of the
    root-cause findings (``ChainReport.untrusted_causes``) that no other alert tells: an
    expired or not yet valid leaf has its own alert, a weak signature the ``weak`` alert.
    An empty result means every cause is alerted elsewhere, so no ``untrusted`` alert
    opens. A report without causes (from an older analysis) falls back to
    ``ChainReport.error``.
    """
    chain = report.chain
    if chain is None or chain.is_trusted:
        return None
    now = report.evaluated_at_utc
    if chain.trusted_ignoring_validity and not leaf.not_before_utc <= now <= leaf.not_after_utc:
        return ()  # renewing the leaf fixes it: the expired / not_yet_valid alert says so
    causes = [
        f
        for f in report.findings
        if f.code in chain.untrusted_causes
        # an expired certificate the path does not need is a warning, not a cause
        and not (f.code in _TIME_CODES and f.severity is not Severity.CRITICAL)
    ]
    if not causes:
        return (chain.error,) if chain.error else ("",)
    return tuple(f.message for f in causes if not _alerted_elsewhere(f, policy))


def _alerted_elsewhere(finding: Finding, policy: AlertPolicy) -> bool:
    if finding.code in _TIME_CODES:
        return finding.cert_index == 0
    return finding.code in policy.weak_finding_codes


def _time_consequence(report: EndpointReport, *, expired: bool) -> str:
    """The consequence sentence of an expired or not yet valid leaf, for its alert."""
    chain = report.chain
    if chain is not None and chain.trusted_ignoring_validity:
        if expired:
            return (
                "Clients refuse it as untrusted; the chain is otherwise trusted, so renewing "
                "the certificate fixes it."
            )
        return "Clients refuse it as untrusted until then; the chain is otherwise trusted."
    return "Clients refuse it as untrusted."


def _conditions(
    b: _Builder, report: EndpointReport, policy: AlertPolicy, leaf: CertificateFacts
) -> None:
    """Not yet valid, untrusted, hostname mismatch, weak and revoked: open while true,
    resolve on recovery."""
    ep = b.endpoint
    not_yet_valid = report.evaluated_at_utc < leaf.not_before_utc
    b.condition(
        not_yet_valid,
        AlertKind.NOT_YET_VALID,
        dedup_key(AlertKind.NOT_YET_VALID, ep),
        Severity.CRITICAL,
        f"Certificate not yet valid: {ep}",
        f"{_cn(leaf)} ({_short(leaf.sha256_hex)}) on {ep} is not valid before "
        f"{leaf.not_before_utc.isoformat()}. {_time_consequence(report, expired=False)}",
        f"The certificate served by {ep} is valid now.",
        cert=leaf.sha256_hex,
    )
    reasons = _untrusted_reasons(report, policy, leaf)
    told = "; ".join(r for r in reasons or () if r)
    why = f": {told}" if told else ""
    b.condition(
        bool(reasons),
        AlertKind.UNTRUSTED,
        dedup_key(AlertKind.UNTRUSTED, ep),
        Severity.CRITICAL,
        f"Untrusted certificate: {ep}",
        f"The chain served by {ep} for {_cn(leaf)} does not verify{why}.",
        f"The chain served by {ep} verifies again.",
        cert=leaf.sha256_hex,
    )
    b.condition(
        report.hostname_matches is False,
        AlertKind.HOSTNAME_MISMATCH,
        dedup_key(AlertKind.HOSTNAME_MISMATCH, ep),
        Severity.CRITICAL,
        f"Hostname mismatch: {ep}",
        f"{_cn(leaf)} served by {ep} does not cover {report.target.expected_name}.",
        f"The certificate served by {ep} covers {report.target.expected_name} again.",
        cert=leaf.sha256_hex,
    )
    codes = {f.code: f for f in report.findings}
    # Open weak alerts for codes dropped from the policy still resolve on recovery.
    still_open = {
        a.dedup_key.rsplit("|", 1)[-1] for a in b.open_by_key.values() if a.kind is AlertKind.WEAK
    }
    for code in sorted(policy.weak_finding_codes | still_open):
        finding = codes.get(code)
        b.condition(
            finding is not None,
            AlertKind.WEAK,
            dedup_key(AlertKind.WEAK, ep, detail=code),
            finding.severity
            if finding is not None and finding.severity.rank >= 2
            else Severity.WARNING,
            f"Weak certificate ({code.replace('_', ' ')}): {ep}",
            finding.message if finding is not None else "",
            f"{ep} no longer shows {code.replace('_', ' ')}.",
            cert=leaf.sha256_hex,
        )
    b.condition(
        _is_revoked(report, policy),
        AlertKind.REVOKED,
        dedup_key(AlertKind.REVOKED, ep),
        Severity.CRITICAL,
        f"Certificate revoked: {ep}",
        next(
            (f.message for f in report.findings if f.code in policy.revoked_finding_codes),
            f"A certificate served by {ep} for {_cn(leaf)} is revoked.",
        )
        + "; clients that check revocation refuse it as untrusted.",
        f"{ep} no longer serves a revoked certificate.",
        cert=leaf.sha256_hex,
    )


def _is_revoked(report: EndpointReport, policy: AlertPolicy) -> bool:
    """A revoked finding, or a revocation verdict saying so (when analysis provides one)."""
    if any(f.code in policy.revoked_finding_codes for f in report.findings):
        return True
    verdict = getattr(report, "revocation", None)
    if verdict is None:
        return False
    status = getattr(verdict, "status", None)
    if status is not None and str(getattr(status, "value", status)).lower() == "revoked":
        return True
    return getattr(verdict, "is_revoked", False) is True
