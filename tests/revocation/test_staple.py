"""OCSP stapling, captured by the scan's handshake probe from a real ``openssl s_server``."""

from __future__ import annotations

import asyncio
import socket
from datetime import timedelta
from pathlib import Path

from certvigil.analysis.revocation import judge_revocation, revocation_findings
from certvigil.analysis.revocation_model import RevocationReport, RevocationStatus
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import StartTlsServer
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.observed.revocation import (
    CertificateRevocationObservation,
    RevocationMethod,
    RevocationObservation,
)
from certvigil.probe.ocsp_fetch import build_ocsp_request
from certvigil.probe.options import ProbeOptions
from certvigil.probe.tls import probe_tls
from certvigil.targets.target import StartTLS, Target
from tests.revocation.helpers import utc_now
from tests.revocation.openssl_tools import openssl_stapling_server
from tests.support.ocsp_responder import GOOD, OcspResponder, ResponseMode, Revoked

OPTIONS = ProbeOptions(connect_timeout_s=2.0, handshake_timeout_s=5.0)


def _staple_for(pki: ThrowawayPki, leaf: IssuedCert, mode: ResponseMode, status: object) -> bytes:
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=utc_now, mode=mode)
    responder.statuses[leaf.certificate.serial_number] = status  # type: ignore[assignment]
    return responder.respond(build_ocsp_request(leaf.certificate, pki.intermediate.certificate))


def _staple_of(result: TlsObservation | ProbeFailure) -> bytes | ProbeFailure | None:
    return result if isinstance(result, ProbeFailure) else result.ocsp_staple_der


def _served_staple(
    tmp_path: Path, pki: ThrowawayPki, leaf: IssuedCert, staple: bytes | None
) -> bytes | None:
    with openssl_stapling_server(
        tmp_path,
        cert_pem=leaf.pem,
        chain_pem=pki.intermediate.pem,
        key_pem=leaf.key_pem,
        staple_der=staple,
    ) as port:
        target = Target(host="127.0.0.1", port=port, sni="localhost")
        result = _staple_of(asyncio.run(probe_tls(target, address="127.0.0.1", options=OPTIONS)))
    if isinstance(result, ProbeFailure):
        raise AssertionError(f"the handshake failed: {result.kind}: {result.detail}")
    return result


def _judge(pki: ThrowawayPki, leaf: IssuedCert, staple: bytes | None) -> RevocationReport:
    obs = RevocationObservation(
        observed_at_utc=utc_now(),
        certificates=(
            CertificateRevocationObservation(
                cert_index=0, certificate_der=leaf.der, issuer_der=pki.intermediate.der
            ),
        ),
        staple_requested=True,
        staple_der=staple,
    )
    return judge_revocation(obs, now=utc_now())


def test_good_staple_is_captured_and_decides(tmp_path: Path, pki: ThrowawayPki) -> None:
    """The staple a server sends arrives byte for byte and makes the leaf good."""
    leaf = pki.issue_leaf()
    staple = _staple_for(pki, leaf, ResponseMode.NORMAL, GOOD)
    captured = _served_staple(tmp_path, pki, leaf, staple)
    assert captured == staple
    assert isinstance(captured, bytes)
    report = _judge(pki, leaf, captured)
    assert report.staple is not None
    assert report.staple.is_present
    assert report.staple.status is RevocationStatus.GOOD
    assert report.staple.is_for_leaf is True
    assert report.certificates[0].status is RevocationStatus.GOOD
    assert report.certificates[0].decided_by is RevocationMethod.OCSP_STAPLE


def test_no_staple_is_none(tmp_path: Path, pki: ThrowawayPki) -> None:
    """A server that staples nothing yields ``None``; without must-staple that is no finding."""
    leaf = pki.issue_leaf(crl_urls=["http://127.0.0.1:9/none.crl"])
    captured = _served_staple(tmp_path, pki, leaf, None)
    assert captured is None
    report = _judge(pki, leaf, captured)
    assert report.staple is not None
    assert not report.staple.is_present
    assert "must_staple_without_staple" not in {f.code for f in revocation_findings(report)}


def test_must_staple_leaf_without_staple_is_critical(tmp_path: Path, pki: ThrowawayPki) -> None:
    """A must-staple leaf served without a staple gives a critical finding."""
    leaf = pki.issue_leaf(must_staple=True)
    captured = _served_staple(tmp_path, pki, leaf, None)
    assert captured is None
    findings = revocation_findings(_judge(pki, leaf, captured))
    must = [f for f in findings if f.code == "must_staple_without_staple"]
    assert len(must) == 1
    assert must[0].severity.value == "critical"


def test_revoked_staple_revokes(tmp_path: Path, pki: ThrowawayPki) -> None:
    """A server stapling a 'revoked' answer about its own leaf is revoked by the staple."""
    leaf = pki.issue_leaf()
    revoked = Revoked(revoked_at_utc=utc_now() - timedelta(days=1), reason=None)
    captured = _served_staple(
        tmp_path, pki, leaf, _staple_for(pki, leaf, ResponseMode.NORMAL, revoked)
    )
    report = _judge(pki, leaf, captured)
    assert report.certificates[0].status is RevocationStatus.REVOKED
    assert report.certificates[0].decided_by is RevocationMethod.OCSP_STAPLE


def test_expired_staple_is_stale(tmp_path: Path, pki: ThrowawayPki) -> None:
    """An old staple the server keeps sending is stale, with a warning."""
    leaf = pki.issue_leaf()
    captured = _served_staple(
        tmp_path, pki, leaf, _staple_for(pki, leaf, ResponseMode.EXPIRED, GOOD)
    )
    report = _judge(pki, leaf, captured)
    assert report.staple is not None
    assert report.staple.status is RevocationStatus.STALE_RESPONSE
    assert "ocsp_staple_stale" in {f.code for f in revocation_findings(report)}


def test_staple_for_another_certificate_is_invalid(tmp_path: Path, pki: ThrowawayPki) -> None:
    """A staple about some other certificate does not vouch for the served leaf."""
    leaf = pki.issue_leaf()
    other = pki.issue_leaf(dns_names=("other.localhost",))
    captured = _served_staple(
        tmp_path, pki, leaf, _staple_for(pki, other, ResponseMode.NORMAL, GOOD)
    )
    report = _judge(pki, leaf, captured)
    assert report.staple is not None
    assert report.staple.is_for_leaf is False
    assert report.staple.status is RevocationStatus.INVALID_RESPONSE
    assert "ocsp_staple_invalid" in {f.code for f in revocation_findings(report)}


def test_closed_port_is_a_probe_failure() -> None:
    """Nothing listening gives a classified failure, not an exception."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        result = asyncio.run(
            probe_tls(Target(host="127.0.0.1", port=port), address="127.0.0.1", options=OPTIONS)
        )
    assert isinstance(result, ProbeFailure)
    assert result.kind is FailureKind.CONNECTION_REFUSED


def test_staple_probe_speaks_starttls_first(pki: ThrowawayPki) -> None:
    """The staple probe upgrades an SMTP connection before its handshake (no staple sent)."""
    leaf = pki.issue_leaf()
    server = StartTlsServer(StartTLS.SMTP, chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)
    with server as address:
        target = Target(host="127.0.0.1", port=address.port, starttls=StartTLS.SMTP)
        result = _staple_of(asyncio.run(probe_tls(target, address="127.0.0.1", options=OPTIONS)))
    assert result is None
    assert server.connections_accepted == 1


def test_refused_starttls_is_a_probe_failure(pki: ThrowawayPki) -> None:
    """A server that declines STARTTLS gives a starttls_failure, not an exception."""
    leaf = pki.issue_leaf()
    server = StartTlsServer(
        StartTLS.IMAP, chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem, refuse=True
    )
    with server as address:
        target = Target(host="127.0.0.1", port=address.port, starttls=StartTLS.IMAP)
        result = _staple_of(asyncio.run(probe_tls(target, address="127.0.0.1", options=OPTIONS)))
    assert isinstance(result, ProbeFailure)
    assert result.kind is FailureKind.STARTTLS_FAILURE
