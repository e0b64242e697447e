"""Chains and certificates over OpenSSL's 100 KiB limit are captured, bounded, and reported."""

from __future__ import annotations

import asyncio
import ssl
import time

import pytest

from certvigil.analysis.model import Severity
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import StartTlsServer, TlsServer
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.probe.options import ProbeOptions
from certvigil.probe.tls import probe_tls
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan
from certvigil.targets.target import StartTLS, Target
from tests.hostile.servers import huge_leaf, long_chain

OPTIONS = ProbeOptions(connect_timeout_s=2.0, handshake_timeout_s=2.0, starttls_timeout_s=2.0)
SCAN = ScanOptions(
    connect_timeout_s=2.0,
    handshake_timeout_s=2.0,
    starttls_timeout_s=2.0,
    retries=0,
    retry_delay_s=0.0,
    fetch_missing_issuers=False,
)


@pytest.fixture(scope="module")
def big_leaf(pki: ThrowawayPki) -> IssuedCert:
    """A 130 KB leaf for localhost and 127.0.0.1."""
    return huge_leaf(pki, 130_000)


def test_300_certificate_chain_is_captured_and_reported(
    pki: ThrowawayPki, leaf: IssuedCert, trust: TrustStore
) -> None:
    """All 300 certificates are read, the path is trusted, and chain_oversized warns."""
    chain = long_chain(pki, leaf, 300)
    assert sum(map(len, chain)) > 102400
    with TlsServer(chain=chain, key_pem=leaf.key_pem) as at:
        (report,) = scan([Target(host=at.host, port=at.port)], options=SCAN, trust=trust)
    assert report.failure is None, report.failure
    assert report.observation is not None
    assert report.observation.chain_der == chain
    assert report.chain is not None and report.chain.is_trusted
    oversized = [f for f in report.findings if f.code == "chain_oversized"]
    assert len(oversized) == 1 and oversized[0].severity is Severity.WARNING
    assert "300 certificates" in oversized[0].message


def test_130_kb_certificate_is_captured_and_reported(
    pki: ThrowawayPki, big_leaf: IssuedCert, trust: TrustStore
) -> None:
    """A single 130 KB leaf is read whole and judged like any other, with chain_oversized."""
    chain = pki.served_chain_der(big_leaf)
    with TlsServer(chain=chain, key_pem=big_leaf.key_pem) as at:
        (report,) = scan([Target(host=at.host, port=at.port)], options=SCAN, trust=trust)
    assert report.failure is None, report.failure
    assert report.observation is not None and report.observation.chain_der == chain
    assert report.chain is not None and report.chain.is_trusted
    assert report.hostname_matches is True
    assert "chain_oversized" in {f.code for f in report.findings}


def test_oversized_chain_behind_starttls_is_captured(
    pki: ThrowawayPki, big_leaf: IssuedCert
) -> None:
    """The second connection speaks the STARTTLS dialogue again before its hello."""
    chain = pki.served_chain_der(big_leaf)
    with StartTlsServer(StartTLS.SMTP, chain=chain, key_pem=big_leaf.key_pem) as at:
        target = Target(host=at.host, port=at.port, starttls=StartTLS.SMTP)
        result = asyncio.run(probe_tls(target, address=at.host, options=OPTIONS))
    assert isinstance(result, TlsObservation), result
    assert result.chain_der == chain
    assert result.protocol == "TLSv1.2"


def test_tls13_only_server_with_oversized_chain_says_why(
    pki: ThrowawayPki, big_leaf: IssuedCert
) -> None:
    """Without TLS 1.2 the chain cannot be read in the clear: the failure says so, in time."""
    chain = pki.served_chain_der(big_leaf)
    with TlsServer(
        chain=chain, key_pem=big_leaf.key_pem, minimum_version=ssl.TLSVersion.TLSv1_3
    ) as at:
        started = time.perf_counter()
        result = asyncio.run(
            probe_tls(Target(host=at.host, port=at.port), address=at.host, options=OPTIONS)
        )
        elapsed = time.perf_counter() - started
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.HANDSHAKE_FAILURE
    assert "exceed OpenSSL's 100 KiB limit" in result.detail
    assert "protocol_version" in result.detail
    assert elapsed < 2 * OPTIONS.handshake_timeout_s


def test_chain_over_the_capture_limit_is_refused(pki: ThrowawayPki) -> None:
    """A certificate list over 1 MiB is not read: the failure names the limit."""
    giant = huge_leaf(pki, 1_100_000)
    with TlsServer(chain=pki.served_chain_der(giant), key_pem=giant.key_pem) as at:
        result = asyncio.run(
            probe_tls(Target(host=at.host, port=at.port), address=at.host, options=OPTIONS)
        )
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.HANDSHAKE_FAILURE
    assert "over the 1048576-byte limit" in result.detail
