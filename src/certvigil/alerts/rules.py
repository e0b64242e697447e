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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import partial

from certvigil.analysis.codes import FindingCode
from certvigil.analysis.model import CertificateFacts, EndpointReport, Finding, Severity
from certvigil.analysis.thresholds import (
    DEFAULT_THRESHOLDS,
    ExpiryThreshold,
    most_urgent_crossed,
    parse_threshold,
)
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
    WEAK_PROTOCOL = "weak_protocol"
    WEAK_CIPHER = "weak_cipher"
    GRADE_DROPPED = "grade_dropped"
    MUST_STAPLE_MISSING = "must_staple_missing"
    REVOCATION_UNCHECKED = "revocation_unchecked"
    # Raised by the CT watch (certvigil.ct.watch), about certificates seen in CT logs and
    # about the logs themselves rather than about an endpoint.
    UNAUTHORIZED_CA = "unauthorized_ca"
    NEW_SUBDOMAIN = "new_subdomain"
    WILDCARD_CERTIFICATE = "wildcard_certificate"
    SHORT_LIVED_CERTIFICATE = "short_lived_certificate"
    CERTIFICATE_EXPIRING = "certificate_expiring"
    TYPOSQUAT_DETECTED = "typosquat_detected"
    LOOKALIKE_DETECTED = "lookalike_detected"
    CT_LOG_BEHIND = "ct_log_behind"
    CT_LOG_STALLED = "ct_log_stalled"
    CT_LOG_FAULT = "ct_log_fault"


CERT_BOUND_KINDS = frozenset(
    {AlertKind.EXPIRY_THRESHOLD, AlertKind.EXPIRED, AlertKind.REPLACED, AlertKind.ISSUER_CHANGED}
)
"""Kinds whose alert concerns one certificate and resolves when the endpoint stops serving it."""

CT_KINDS = frozenset(
    {
        AlertKind.UNAUTHORIZED_CA,
        AlertKind.NEW_SUBDOMAIN,
        AlertKind.WILDCARD_CERTIFICATE,
        AlertKind.SHORT_LIVED_CERTIFICATE,
        AlertKind.CERTIFICATE_EXPIRING,
        AlertKind.TYPOSQUAT_DETECTED,
        AlertKind.LOOKALIKE_DETECTED,
        AlertKind.CT_LOG_BEHIND,
        AlertKind.CT_LOG_STALLED,
        AlertKind.CT_LOG_FAULT,
    }
)
"""Kinds the CT watch raises; their alerts belong to no endpoint."""


class EventAction(StrEnum):
    """What an event asks the engine to do."""

    OPEN = "open"
    """Open an alert with this dedup key unless one is already open (or acknowledged)."""
    NOTIFY = "notify"
    """Record an informational alert as already resolved, and deliver it."""
    RESOLVE = "resolve"
    """Resolve the open (or acknowledged) alert with this dedup key."""


DEFAULT_WEAK_CODES: frozenset[str] = frozenset({FindingCode.WEAK_KEY, FindingCode.WEAK_SIGNATURE})
"""Finding codes that raise a "weak" alert (one alert per code and endpoint).

``weak_key`` covers small RSA and EC keys and DSA keys, and ``weak_signature`` SHA-1,
MD5, MD4 and MD2 signatures; each finding's message names which. Separate codes per key
type or hash (``rsa_key_too_small``, ``sha1_signature`` …), which earlier versions
listed here but no analysis emitted, would only raise a second alert for one cause.
"""

WEAK_PROTOCOL_FIXES: dict[str, tuple[str, str]] = {
    FindingCode.PROTOCOL_SSLV2: ("SSLv2", "disable SSLv2"),
    FindingCode.PROTOCOL_SSLV3: ("SSLv3", "disable SSLv3"),
    FindingCode.PROTOCOL_TLS10: ("TLS 1.0", "disable TLS 1.0 and 1.1"),
    FindingCode.PROTOCOL_TLS11: ("TLS 1.1", "disable TLS 1.1"),
}
"""Protocol finding codes that raise a "weak protocol" alert: the protocol and the fix."""

WEAK_CIPHER_CODES: frozenset[str] = frozenset(
    {
        FindingCode.CIPHER_NULL,
        FindingCode.CIPHER_ANONYMOUS,
        FindingCode.CIPHER_EXPORT,
        FindingCode.CIPHER_RC4,
        FindingCode.CIPHER_RC2,
        FindingCode.CIPHER_DES,
        FindingCode.CIPHER_3DES,
        FindingCode.CIPHER_MD5_MAC,
    }
)
"""Suite finding codes that raise a "weak cipher" alert."""

GRADE_ORDER: tuple[str, ...] = ("A+", "A", "A-", "B", "C", "D", "E", "F", "T", "M")
"""Grades best first; ``T`` (not trusted) and ``M`` (name mismatch) rank below F."""

UNDECIDED_REVOCATION: frozenset[str] = frozenset(
    {"unreachable", "unverifiable", "stale_response", "invalid_response", "unknown"}
)
"""Leaf revocation statuses that mean "could not check" (``no_info`` is a property of
the certificate, not an outage, and ``not_checked`` a choice)."""


def grade_rank(grade: str) -> int:
    """The grade's place in :data:`GRADE_ORDER` (0 best); unknown grades rank last."""
    return GRADE_ORDER.index(grade) if grade in GRADE_ORDER else len(GRADE_ORDER)


_TIME_CODES = (FindingCode.EXPIRED, FindingCode.NOT_YET_VALID)


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
        revocation_unchecked_after: Consecutive revocation checks that could not
            decide (OCSP and CRL unreachable, stale or invalid) before a warning (K).
    """

    thresholds: tuple[ExpiryThreshold, ...] = DEFAULT_THRESHOLDS
    target_thresholds: Mapping[Target, tuple[ExpiryThreshold, ...]] = field(default_factory=dict)
    day_threshold_max_fraction: float | None = 0.25
    unreachable_after: int = 3
    unreachable_severity: Severity = Severity.WARNING
    weak_finding_codes: frozenset[str] = DEFAULT_WEAK_CODES
    revoked_finding_codes: frozenset[str] = frozenset({FindingCode.REVOKED})
    revocation_unchecked_after: int = 3

    def __post_init__(self) -> None:
        if self.revocation_unchecked_after < 1:
            raise ValueError(
                "revocation_unchecked_after must be at least 1, "
                f"not {self.revocation_unchecked_after}"
            )
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
        previous_grade: The grade of the last graded report, ``None`` if none was.
        revocation_undecided: How many revocation checks in a row, just before this
            report, could not decide (counted up to K).
    """

    previous_leaf: LeafSummary | None = None
    consecutive_failures: int = 0
    alerts: tuple[KnownAlert, ...] = ()
    previous_grade: str | None = None
    revocation_undecided: int = 0


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
    key = f"{kind.value}|{endpoint}"
    if cert_sha256 is not None:
        key = f"{key}|{cert_sha256}"
    if detail is not None:
        key = f"{key}|{detail}"
    return key


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
        texts: Callable[[], tuple[str, str]],
        recovered: Callable[[], str],
        cert: str | None = None,
    ) -> None:
        """Open while ``holds`` and nothing is open under ``key``; resolve once it stops.

        The title and message (``texts``) and the recovery note (``recovered``) are
        written only when an event is made: most reports change nothing, and the
        sentences are most of a rule's cost.
        """
        existing = self.open_by_key.get(key)
        if holds and existing is None:
            title, message = texts()
            self.open(kind, key, severity, title, message, cert=cert)
        elif not holds and existing is not None:
            self.resolve(existing, recovered())


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
    _revocation(b, report, history, policy, leaf)
    if report.deep is not None:
        # Protocols and the grade are probed less often than the certificate: a
        # report without them leaves their alerts as they are.
        _tls_configuration(b, report, history, leaf)
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
    urgent = most_urgent_crossed(
        thresholds,
        remaining=remaining,
        lifetime=lifetime,
        max_fraction=policy.day_threshold_max_fraction,
    )
    if urgent is None:
        return
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
    # A condition that does not hold changes nothing unless an alert is open for it:
    # with none open (most reports), its key and texts are not even built.
    watching = bool(b.open_by_key)

    def consider(
        holds: bool,
        kind: AlertKind,
        detail: str | None,
        severity: Severity,
        texts: Callable[[], tuple[str, str]],
        recovered: Callable[[], str],
    ) -> None:
        if holds or watching:
            key = dedup_key(kind, ep, detail=detail)
            b.condition(holds, kind, key, severity, texts, recovered, cert=leaf.sha256_hex)

    not_yet_valid = report.evaluated_at_utc < leaf.not_before_utc
    consider(
        not_yet_valid,
        AlertKind.NOT_YET_VALID,
        None,
        Severity.CRITICAL,
        lambda: (
            f"Certificate not yet valid: {ep}",
            f"{_cn(leaf)} ({_short(leaf.sha256_hex)}) on {ep} is not valid before "
            f"{leaf.not_before_utc.isoformat()}. {_time_consequence(report, expired=False)}",
        ),
        lambda: f"The certificate served by {ep} is valid now.",
    )
    reasons = _untrusted_reasons(report, policy, leaf)

    def untrusted() -> tuple[str, str]:
        told = "; ".join(r for r in reasons or () if r)
        why = f": {told}" if told else ""
        return (
            f"Untrusted certificate: {ep}",
            f"The chain served by {ep} for {_cn(leaf)} does not verify{why}.",
        )

    consider(
        bool(reasons),
        AlertKind.UNTRUSTED,
        None,
        Severity.CRITICAL,
        untrusted,
        lambda: f"The chain served by {ep} verifies again.",
    )
    consider(
        report.hostname_matches is False,
        AlertKind.HOSTNAME_MISMATCH,
        None,
        Severity.CRITICAL,
        lambda: (
            f"Hostname mismatch: {ep}",
            f"{_cn(leaf)} served by {ep} does not cover {report.target.expected_name}.",
        ),
        lambda: f"The certificate served by {ep} covers {report.target.expected_name} again.",
    )
    codes = {f.code: f for f in report.findings}
    # Open weak alerts for codes dropped from the policy still resolve on recovery.
    still_open = {
        a.dedup_key.rsplit("|", 1)[-1] for a in b.open_by_key.values() if a.kind is AlertKind.WEAK
    }
    for code in sorted(policy.weak_finding_codes | still_open):
        finding = codes.get(code)
        if finding is None and not watching:
            continue
        consider(
            finding is not None,
            AlertKind.WEAK,
            code,
            finding.severity
            if finding is not None and finding.severity.rank >= 2
            else Severity.WARNING,
            partial(_weak_texts, ep, code, finding),
            partial(_weak_recovered, ep, code),
        )
    consider(
        _is_revoked(report, policy),
        AlertKind.REVOKED,
        None,
        Severity.CRITICAL,
        lambda: (
            f"Certificate revoked: {ep}",
            next(
                (f.message for f in report.findings if f.code in policy.revoked_finding_codes),
                f"A certificate served by {ep} for {_cn(leaf)} is revoked.",
            )
            + "; clients that check revocation refuse it as untrusted. Fix: install a newly "
            "issued certificate (and a new key if the old one may be compromised).",
        ),
        lambda: f"{ep} no longer serves a revoked certificate.",
    )
    must_staple = codes.get(FindingCode.MUST_STAPLE_NOT_STAPLED)
    consider(
        must_staple is not None,
        AlertKind.MUST_STAPLE_MISSING,
        None,
        Severity.CRITICAL,
        lambda: (
            f"Must-staple certificate without a staple: {ep}",
            f"{_cn(leaf)} on {ep} demands OCSP stapling (TLS feature status_request) but "
            "the server sent no OCSP response; clients that honour must-staple refuse the "
            "connection. Fix: turn OCSP stapling on (nginx ssl_stapling on; Apache "
            "SSLUseStapling on) and make sure the server can reach the OCSP responder.",
        ),
        lambda: f"{ep} staples an OCSP response again.",
    )


def _weak_texts(ep: str, code: str, finding: Finding | None) -> tuple[str, str]:
    return (
        f"Weak certificate ({code.replace('_', ' ')}): {ep}",
        finding.message if finding is not None else "",
    )


def _weak_recovered(ep: str, code: str) -> str:
    return f"{ep} no longer shows {code.replace('_', ' ')}."


def _protocol_texts(ep: str, name: str, fix: str, finding: Finding | None) -> tuple[str, str]:
    return (
        f"{name} enabled: {ep}",
        f"{ep} accepts {name} ({finding.message if finding is not None else ''}). "
        f"Fix: {fix} in the server's TLS configuration (nginx ssl_protocols "
        "TLSv1.2 TLSv1.3; Apache SSLProtocol -all +TLSv1.2 +TLSv1.3).",
    )


def _protocol_recovered(ep: str, name: str) -> str:
    return f"{ep} no longer accepts {name}."


def _cipher_texts(ep: str, code: str, finding: Finding | None) -> tuple[str, str]:
    return (
        f"Weak cipher suites enabled ({code.removeprefix('cipher_')}): {ep}",
        f"{ep}: {finding.message if finding is not None else code}. Fix: remove these "
        "suites from the server's cipher list (e.g. Mozilla's intermediate "
        "configuration).",
    )


def _cipher_recovered(ep: str, code: str) -> str:
    return f"{ep} no longer accepts {code.removeprefix('cipher_')} suites."


def _revocation(
    b: _Builder,
    report: EndpointReport,
    history: EndpointHistory,
    policy: AlertPolicy,
    leaf: CertificateFacts,
) -> None:
    """Revocation that could not be checked for K checks in a row: a warning of its own,
    never a silent pass. Resolves once a check decides (good or revoked)."""
    verdict = report.revocation
    if verdict is None:
        return  # not checked this time: the streak and the alert stay as they are
    status = "revoked" if verdict.is_revoked else verdict.leaf_status
    undecided = status is not None and str(status) in UNDECIDED_REVOCATION
    streak = history.revocation_undecided + 1 if undecided else 0
    key = dedup_key(AlertKind.REVOCATION_UNCHECKED, b.endpoint)
    why = ""
    for cert in verdict.certificates:
        if cert.cert_index == 0:
            why = "; ".join(
                f"{m.method.value} {m.url or ''}: {m.status.value}"
                + (f" ({m.detail})" if m.detail else "")
                for m in cert.methods
            )
    b.condition(
        streak >= policy.revocation_unchecked_after,
        AlertKind.REVOCATION_UNCHECKED,
        key,
        Severity.WARNING,
        lambda: (
            f"Revocation not checkable: {b.endpoint}",
            f"Could not check whether {_cn(leaf)} on {b.endpoint} is revoked for {streak} "
            f"checks in a row (status {status}){': ' + why if why else ''}. A revoked "
            "certificate would go unnoticed. Fix: let the monitor reach the OCSP responder "
            "and CRL distribution points the certificate names (firewall, proxy), or ask "
            "the CA about its responder.",
        ),
        lambda: f"Revocation of the certificate on {b.endpoint} can be checked again ({status}).",
        cert=leaf.sha256_hex,
    )


def _tls_configuration(
    b: _Builder, report: EndpointReport, history: EndpointHistory, leaf: CertificateFacts
) -> None:
    """Weak protocols and suites offered, and a grade lower than the last one."""
    deep = report.deep
    if deep is None:
        return
    ep = b.endpoint
    offered = {f.code: f for f in deep.tls_config.findings}
    open_protocols = {
        a.dedup_key.rsplit("|", 1)[-1]
        for a in b.open_by_key.values()
        if a.kind is AlertKind.WEAK_PROTOCOL
    }
    for code in sorted(set(WEAK_PROTOCOL_FIXES) | open_protocols):
        name, fix = WEAK_PROTOCOL_FIXES.get(code, (code, "disable it"))
        b.condition(
            code in offered,
            AlertKind.WEAK_PROTOCOL,
            dedup_key(AlertKind.WEAK_PROTOCOL, ep, detail=code),
            Severity.WARNING,
            partial(_protocol_texts, ep, name, fix, offered.get(code)),
            partial(_protocol_recovered, ep, name),
        )
    open_ciphers = {
        a.dedup_key.rsplit("|", 1)[-1]
        for a in b.open_by_key.values()
        if a.kind is AlertKind.WEAK_CIPHER
    }
    for code in sorted(WEAK_CIPHER_CODES | open_ciphers):
        finding = offered.get(code)
        b.condition(
            finding is not None,
            AlertKind.WEAK_CIPHER,
            dedup_key(AlertKind.WEAK_CIPHER, ep, detail=code),
            Severity.WARNING,
            partial(_cipher_texts, ep, code, finding),
            partial(_cipher_recovered, ep, code),
        )
    grade = deep.grade.grade
    open_drop = next((a for a in b.open_by_key.values() if a.kind is AlertKind.GRADE_DROPPED), None)
    if open_drop is not None:
        was = open_drop.dedup_key.rsplit("|", 1)[-1]
        if grade_rank(grade) <= grade_rank(was):
            b.resolve(open_drop, f"{ep} grades {grade} again (was {was} before it dropped).")
        return
    previous = history.previous_grade
    if previous is None or grade_rank(grade) <= grade_rank(previous):
        return
    capping = [r for r in deep.grade.rules if r.grade == grade] or [
        r for r in deep.grade.rules if grade_rank(r.grade) >= grade_rank(grade)
    ]
    cause = "; ".join(f"{r.code}: {r.reason}" for r in capping) or "a lower score"
    b.open(
        AlertKind.GRADE_DROPPED,
        dedup_key(AlertKind.GRADE_DROPPED, ep, detail=previous),
        Severity.WARNING,
        f"Grade dropped {previous} \u2192 {grade}: {ep}",
        f"{ep} now grades {grade} (was {previous}), capped by {cause}. Fix: undo the "
        "configuration change behind it; the rule names what to change (docs/grading.md).",
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
