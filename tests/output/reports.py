"""Hand-built EndpointReports covering each shape the renderers meet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from certvigil.analysis.model import (
    CertificateFacts,
    ChainReport,
    EndpointReport,
    Finding,
    KeyType,
    Severity,
)
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.targets.target import StartTLS, Target

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def facts(*, cn: str, not_after_utc: datetime, issuer_cn: str = "Test CA") -> CertificateFacts:
    """Certificate facts for a leaf named ``cn``."""
    return CertificateFacts(
        subject=f"CN={cn}",
        subject_cn=cn,
        issuer=f"CN={issuer_cn},O=Test",
        issuer_cn=issuer_cn,
        serial_hex="0a1b",
        not_before_utc=not_after_utc - timedelta(days=90),
        not_after_utc=not_after_utc,
        validity_days=90,
        sha256_hex="ab" * 32,
        sha1_hex="cd" * 20,
        san_dns=(cn, f"www.{cn}"),
        san_ip=("127.0.0.1",),
        key_type=KeyType.EC,
        key_bits=256,
        key_curve="secp256r1",
        signature_algorithm="ecdsa-with-SHA256",
        signature_hash="sha256",
        is_self_signed=False,
        is_ca=False,
    )


def observed(
    host: str,
    port: int,
    *,
    not_after_utc: datetime,
    findings: tuple[Finding, ...] = (),
    trusted: bool = True,
    starttls: StartTLS | None = None,
) -> EndpointReport:
    """A report for an endpoint whose handshake succeeded."""
    target = Target(host=host, port=port, starttls=starttls)
    return EndpointReport(
        target=target,
        evaluated_at_utc=NOW,
        observation=TlsObservation(
            target=target,
            peer_address="127.0.0.1",
            observed_at_utc=NOW,
            chain_der=(b"leaf", b"intermediate"),
            protocol="TLSv1.3",
            cipher="TLS_AES_128_GCM_SHA256",
            connect_s=0.001,
            handshake_s=0.004,
        ),
        certificates=(facts(cn=host, not_after_utc=not_after_utc),),
        chain=ChainReport(
            is_trusted=trusted,
            verified_path_sha256=("ab" * 32, "ef" * 32) if trusted else (),
            error=None if trusted else "unable to get local issuer certificate",
            anchor_subject="CN=Test CA,O=Test" if trusted else None,
        ),
        hostname_matches=True,
        findings=findings,
    )


def failed(
    host: str, port: int, kind: FailureKind = FailureKind.CONNECTION_REFUSED
) -> EndpointReport:
    """A report for an endpoint that could not be observed."""
    target = Target(host=host, port=port)
    return EndpointReport(
        target=target,
        evaluated_at_utc=NOW,
        failure=ProbeFailure(
            target=target,
            kind=kind,
            detail="[Errno 111] Connection refused",
            observed_at_utc=NOW,
            peer_address="127.0.0.1",
        ),
    )


def good() -> EndpointReport:
    """A healthy endpoint: 60 days left, trusted."""
    return observed("good.test", 443, not_after_utc=NOW + timedelta(days=60, hours=1))


def expiring() -> EndpointReport:
    """An endpoint whose leaf expires in 5 days (warning)."""
    return observed(
        "soon.test",
        8443,
        not_after_utc=NOW + timedelta(days=5, hours=3),
        findings=(
            Finding(
                code="expires_soon",
                severity=Severity.WARNING,
                message="CN=soon.test expires in 5 days",
                cert_index=0,
            ),
        ),
    )


def expired() -> EndpointReport:
    """An endpoint whose leaf expired two days ago (critical) and is untrusted."""
    return observed(
        "old.test",
        25,
        starttls=StartTLS.SMTP,
        not_after_utc=NOW - timedelta(days=1, hours=12),
        trusted=False,
        findings=(
            Finding(
                code="expired",
                severity=Severity.CRITICAL,
                message="CN=old.test expired 1 day ago",
                cert_index=0,
            ),
            Finding(code="untrusted", severity=Severity.CRITICAL, message="no path to a root"),
        ),
    )


def refused() -> EndpointReport:
    """An endpoint with nothing listening."""
    return failed("127.0.0.1", 9)
