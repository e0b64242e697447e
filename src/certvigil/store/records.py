"""Frozen records the store returns: rows mapped back to plain dataclasses.

ORM rows never leave ``certvigil.store``; the analysis, alert and output layers see
only these.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from certvigil.analysis.model import Finding, Severity
from certvigil.observed.handshake import FailureKind
from certvigil.targets.target import Target

ObservationId = int
"""The primary key of an observation row."""


class ObservationStatus(StrEnum):
    """Whether an endpoint answered with a TLS handshake."""

    OK = "ok"
    FAILED = "failed"


class AlertState(StrEnum):
    """An alert's lifecycle: open, then optionally acknowledged, then resolved."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class DeliveryStatus(StrEnum):
    """Where a queued notification stands.

    ``pending`` waits for ``next_attempt_at_utc``; ``sending`` is claimed by a sender
    until ``lease_until_utc`` (after which a crashed sender's claim lapses and it is
    due again); ``sent`` is done; ``failed`` was given up on.
    """

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointRecord:
    """What the store knows about one endpoint.

    Attributes:
        id: Row id.
        target: The endpoint as a Target.
        tags: Its labels, sorted.
        first_seen_utc: First observation time.
        last_seen_utc: Latest observation time (successful or not).
        last_ok_utc: Latest successful handshake, ``None`` if never.
        last_status: Status of the latest observation.
        consecutive_failures: Failed observations since the last success.
        current_certificate_sha256: Leaf served at the latest success, ``None`` if never.
        last_observation_id: Latest observation row, ``None`` if none is kept.
    """

    id: int
    target: Target
    tags: tuple[str, ...]
    first_seen_utc: datetime
    last_seen_utc: datetime
    last_ok_utc: datetime | None
    last_status: ObservationStatus
    consecutive_failures: int
    current_certificate_sha256: str | None
    last_observation_id: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class InventoryRow:
    """A certificate as currently deployed at one endpoint.

    Attributes:
        endpoint_id: The endpoint's row id.
        target: The endpoint.
        tags: The endpoint's labels, sorted.
        chain_position: 0 for the leaf, 1.. for the certificates sent after it.
        sha256_hex: The certificate's SHA-256 fingerprint.
        subject: RFC 4514 subject.
        subject_cn: Subject common name, ``None`` when absent.
        issuer: RFC 4514 issuer.
        issuer_cn: Issuer common name, ``None`` when absent.
        serial_hex: Serial number, lower-case hex.
        not_before_utc: Start of validity.
        not_after_utc: End of validity.
        key_type: Public key algorithm (``KeyType`` value).
        key_bits: Key size in bits.
        san_dns: DNS subjectAltNames.
        deployed_since_utc: First time this endpoint was seen serving it.
        last_seen_utc: Latest time this endpoint was seen serving it.
        grade: The endpoint's latest grade, ``None`` until graded.
        revocation_status: Its latest revocation status (``good``, ``revoked``,
            ``unreachable`` ...), ``None`` until checked.
        protocols: The protocols it accepted when last probed, oldest first; ``None``
            until probed.
    """

    endpoint_id: int
    target: Target
    tags: tuple[str, ...]
    chain_position: int
    sha256_hex: str
    subject: str
    subject_cn: str | None
    issuer: str
    issuer_cn: str | None
    serial_hex: str
    not_before_utc: datetime
    not_after_utc: datetime
    key_type: str
    key_bits: int
    san_dns: tuple[str, ...]
    deployed_since_utc: datetime
    last_seen_utc: datetime
    grade: str | None = None
    revocation_status: str | None = None
    protocols: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeploymentRecord:
    """Where a certificate is or was served.

    Attributes:
        endpoint_id: The endpoint's row id.
        target: The endpoint.
        chain_position: Its position in the served chain at the latest sighting.
        first_seen_utc: First sighting there.
        last_seen_utc: Latest sighting there.
        is_current: The endpoint's latest successful handshake still served it.
    """

    endpoint_id: int
    target: Target
    chain_position: int
    first_seen_utc: datetime
    last_seen_utc: datetime
    is_current: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservationRecord:
    """One stored observation (a scan result of one endpoint at one time).

    Attributes:
        id: Row id.
        endpoint_id: The endpoint's row id.
        target: The endpoint.
        observed_at_utc: When the handshake (or failure) happened.
        evaluated_at_utc: The ``now`` the analysis used.
        status: ok or failed.
        failure_kind: Why it failed, ``None`` when ok.
        failure_detail: Failure detail text, ``None`` when ok.
        tls_alert: The TLS alert the server sent, if any.
        peer_address: The address connected to, ``None`` when DNS failed.
        protocol: Negotiated protocol, ``None`` when failed.
        cipher: Negotiated cipher suite, ``None`` when failed.
        alpn: Negotiated ALPN protocol, ``None`` when none.
        leaf_sha256: SHA-256 of the served leaf, ``None`` when none.
        leaf_issuer: The leaf's issuer DN, ``None`` when no leaf.
        leaf_not_after_utc: The leaf's expiry, ``None`` when no leaf.
        chain_sha256: SHA-256 of each served certificate, server's order.
        is_trusted: The chain verified, ``None`` when nothing was served.
        chain_error: The verifier's reason when it did not verify.
        hostname_matches: The leaf covers the expected name, ``None`` without a leaf.
        verdict: Worst finding severity.
        findings: The findings, as recorded.
        connect_s: TCP (and STARTTLS) connect time, ``None`` when failed.
        handshake_s: TLS handshake time, ``None`` when failed.
        checks: The checks that ran (``cert,revocation``), ``None`` before revision 0007.
        grade: The grade, ``None`` when not graded.
        protocols: Accepted protocols, ``None`` when not probed.
        revocation_status: ``revoked`` or the leaf's status, ``None`` when not checked.
    """

    id: int
    endpoint_id: int
    target: Target
    observed_at_utc: datetime
    evaluated_at_utc: datetime
    status: ObservationStatus
    failure_kind: FailureKind | None
    failure_detail: str | None
    tls_alert: str | None
    peer_address: str | None
    protocol: str | None
    cipher: str | None
    alpn: str | None
    leaf_sha256: str | None
    leaf_issuer: str | None
    leaf_not_after_utc: datetime | None
    chain_sha256: tuple[str, ...]
    is_trusted: bool | None
    chain_error: str | None
    hostname_matches: bool | None
    verdict: Severity
    findings: tuple[Finding, ...]
    connect_s: float | None
    handshake_s: float | None
    checks: str | None = None
    grade: str | None = None
    protocols: tuple[str, ...] | None = None
    revocation_status: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRecord:
    """One alert and where it stands.

    Attributes:
        id: Row id.
        dedup_key: What makes two alerts the same condition (at most one is active).
        kind: The rule that raised it (``"expiry"``, ``"chain_broke"``...).
        severity: How much it matters (a ``Severity`` value).
        state: open, acknowledged or resolved.
        endpoint_id: The endpoint concerned, ``None`` when none (or deleted).
        target: That endpoint, ``None`` when none.
        certificate_sha256: The certificate concerned, ``None`` when none.
        observation_id: The observation that raised it, ``None`` when none is kept.
        summary: One human sentence.
        details: Free-form JSON details for channels and the API.
        opened_at_utc: When it was opened.
        acknowledged_at_utc: When it was acknowledged, ``None`` if not.
        acknowledged_by: Who acknowledged it, ``None`` if not.
        resolved_at_utc: When it was resolved, ``None`` while active.
    """

    id: int
    dedup_key: str
    kind: str
    severity: Severity
    state: AlertState
    endpoint_id: int | None
    target: Target | None
    certificate_sha256: str | None
    observation_id: int | None
    summary: str
    details: dict[str, Any]
    opened_at_utc: datetime
    acknowledged_at_utc: datetime | None
    acknowledged_by: str | None
    resolved_at_utc: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryRecord:
    """One queued notification of an alert event through one route.

    Attributes:
        id: Row id.
        alert_id: The alert.
        event: What happened to the alert (``"opened"``, ``"resolved"``...).
        route: The channel or route name it goes through.
        status: Where it stands.
        attempts: Claims so far (each claim counts as an attempt).
        created_at_utc: When it was queued.
        next_attempt_at_utc: When it is next due.
        lease_until_utc: While ``sending``, when the claim lapses.
        last_error: The latest failure's text, ``None`` if none.
        sent_at_utc: When it was delivered, ``None`` until then.
        claimed_by: While ``sending``, the worker holding the claim.
        idempotency_key: The key sent with every attempt, the same across retries.
    """

    id: int
    alert_id: int
    event: str
    route: str
    status: DeliveryStatus
    attempts: int
    created_at_utc: datetime
    next_attempt_at_utc: datetime
    lease_until_utc: datetime | None
    last_error: str | None
    sent_at_utc: datetime | None
    claimed_by: str | None = None
    idempotency_key: str = ""
