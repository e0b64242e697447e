"""Builders of EndpointReports with synthetic certificate facts, for store tests."""

from __future__ import annotations

import hashlib
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
from certvigil.targets.target import Target

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def fake_der(name: str) -> bytes:
    """Stand-in DER bytes, unique per name (the store keys on their SHA-256)."""
    return b"0\x82fake-der:" + name.encode()


def facts(
    name: str,
    *,
    not_after_utc: datetime,
    issuer: str = "CN=Test CA,O=Example",
    is_ca: bool = False,
    san_dns: tuple[str, ...] = (),
) -> CertificateFacts:
    """Certificate facts for a certificate named ``name`` (its SHA-256 follows the name)."""
    der = fake_der(name)
    return CertificateFacts(
        subject=f"CN={name}",
        subject_cn=name,
        issuer=issuer,
        issuer_cn=issuer.split(",")[0].removeprefix("CN="),
        serial_hex=hashlib.sha1(der).hexdigest()[:16],
        not_before_utc=not_after_utc - timedelta(days=90),
        not_after_utc=not_after_utc,
        validity_days=90,
        sha256_hex=hashlib.sha256(der).hexdigest(),
        sha1_hex=hashlib.sha1(der).hexdigest(),
        san_dns=san_dns or (name,),
        key_type=KeyType.EC,
        key_bits=256,
        key_curve="secp256r1",
        signature_algorithm="ecdsa-with-SHA256",
        signature_hash="sha256",
        is_self_signed=False,
        is_ca=is_ca,
    )


def ok_report(
    target: Target,
    chain: tuple[CertificateFacts, ...],
    *,
    at: datetime = NOW,
    protocol: str = "TLSv1.3",
    is_trusted: bool = True,
    hostname_matches: bool = True,
    findings: tuple[Finding, ...] = (),
) -> EndpointReport:
    """A successful handshake serving ``chain`` (leaf first)."""
    observation = TlsObservation(
        target=target,
        peer_address="127.0.0.1",
        observed_at_utc=at,
        chain_der=tuple(fake_der(f.subject_cn or "") for f in chain),
        protocol=protocol,
        cipher="TLS_AES_128_GCM_SHA256",
        connect_s=0.001,
        handshake_s=0.004,
    )
    return EndpointReport(
        target=target,
        evaluated_at_utc=at,
        observation=observation,
        certificates=chain,
        chain=ChainReport(
            is_trusted=is_trusted,
            verified_path_sha256=tuple(f.sha256_hex for f in chain) if is_trusted else (),
            error=None if is_trusted else "unable to get local issuer certificate",
        ),
        hostname_matches=hostname_matches,
        findings=findings,
    )


def failed_report(
    target: Target, *, at: datetime = NOW, kind: FailureKind = FailureKind.CONNECTION_REFUSED
) -> EndpointReport:
    """A probe that failed with ``kind``."""
    return EndpointReport(
        target=target,
        evaluated_at_utc=at,
        failure=ProbeFailure(
            target=target,
            kind=kind,
            detail="[Errno 111] Connection refused",
            observed_at_utc=at,
            peer_address="127.0.0.1",
        ),
        findings=(
            Finding(code="unreachable", severity=Severity.CRITICAL, message="cannot connect"),
        ),
    )
