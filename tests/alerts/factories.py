"""Builders of certificate facts and reports for alert tests, and a tiny replay loop."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from certvigil.alerts.rules import (
    AlertEvent,
    AlertPolicy,
    EndpointHistory,
    EventAction,
    KnownAlert,
    LeafSummary,
    evaluate,
)
from certvigil.analysis.model import (
    CertificateFacts,
    ChainReport,
    EndpointReport,
    Finding,
    KeyType,
)
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.targets.target import Target

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TARGET = Target(host="www.example.test", port=443)


def leaf(
    name: str,
    *,
    not_before: datetime,
    lifetime: timedelta,
    issuer: str = "CN=R10,O=Let's Encrypt,C=US",
) -> CertificateFacts:
    """Facts of a leaf valid from ``not_before`` for ``lifetime``; ``name`` makes it unique."""
    sha = hashlib.sha256(f"{name}{not_before.isoformat()}".encode()).hexdigest()
    return CertificateFacts(
        subject=f"CN={TARGET.host}",
        subject_cn=TARGET.host,
        issuer=issuer,
        issuer_cn=issuer.split(",")[0].removeprefix("CN="),
        serial_hex=sha[:16],
        not_before_utc=not_before,
        not_after_utc=not_before + lifetime,
        validity_days=lifetime.days,
        sha256_hex=sha,
        sha1_hex=sha[:40],
        san_dns=(TARGET.host,),
        key_type=KeyType.EC,
        key_bits=256,
        key_curve="secp256r1",
        signature_algorithm="ecdsa-with-SHA256",
        signature_hash="sha256",
        is_self_signed=False,
        is_ca=False,
    )


def report(
    cert: CertificateFacts | None,
    now: datetime,
    *,
    trusted: bool = True,
    hostname_matches: bool = True,
    findings: tuple[Finding, ...] = (),
    target: Target = TARGET,
) -> EndpointReport:
    """A successful report serving ``cert`` (or a failed one when ``cert`` is None)."""
    if cert is None:
        failure = ProbeFailure(
            target=target,
            kind=FailureKind.CONNECTION_REFUSED,
            detail="connection refused",
            observed_at_utc=now,
        )
        return EndpointReport(target=target, evaluated_at_utc=now, failure=failure)
    observation = TlsObservation(
        target=target,
        peer_address="127.0.0.1",
        observed_at_utc=now,
        chain_der=(b"not-a-real-der:" + cert.sha256_hex.encode(),),
        protocol="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
        connect_s=0.001,
        handshake_s=0.002,
    )
    return EndpointReport(
        target=target,
        evaluated_at_utc=now,
        observation=observation,
        certificates=(cert,),
        chain=ChainReport(is_trusted=trusted, error=None if trusted else "unable to get issuer"),
        hostname_matches=hostname_matches,
        findings=findings,
    )


@dataclass
class Replay:
    """Applies rule events to an in-memory alert table, as the engine does to the store."""

    policy: AlertPolicy = field(default_factory=AlertPolicy)
    alerts: dict[str, KnownAlert] = field(default_factory=dict)
    previous_leaf: LeafSummary | None = None
    failures: int = 0
    events: list[AlertEvent] = field(default_factory=list)

    def step(self, rep: EndpointReport, now: datetime) -> tuple[AlertEvent, ...]:
        """Evaluate ``rep`` against the replayed history and apply what it returns."""
        history = EndpointHistory(
            previous_leaf=self.previous_leaf,
            consecutive_failures=self.failures,
            alerts=tuple(self.alerts.values()),
        )
        out = evaluate(rep, history, self.policy, now=now)
        for ev in out:
            current = self.alerts.get(ev.dedup_key)
            if ev.action is EventAction.RESOLVE:
                if current is not None:
                    self.alerts[ev.dedup_key] = replace(current, is_open=False)
            elif current is None or not current.is_open:
                self.alerts[ev.dedup_key] = KnownAlert(
                    dedup_key=ev.dedup_key,
                    kind=ev.kind,
                    severity=ev.severity,
                    is_open=ev.action is EventAction.OPEN,
                    cert_sha256=ev.cert_sha256,
                    threshold=ev.threshold,
                )
        if rep.failure is None:
            self.failures = 0
            self.previous_leaf = LeafSummary.of(rep.leaf) if rep.leaf else None
        else:
            self.failures += 1
        self.events.extend(out)
        return out

    def opened(self) -> list[AlertEvent]:
        """Every open or notify event so far."""
        return [e for e in self.events if e.action is not EventAction.RESOLVE]
