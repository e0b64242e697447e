"""The pure half on recorded answers: odd answers, scope, time pinned either side of nextUpdate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp

from certvigil.analysis.revocation import judge_revocation, revocation_findings
from certvigil.analysis.revocation_checks import CLOCK_SKEW, check_crl, check_ocsp_response
from certvigil.analysis.revocation_model import RevocationStatus
from certvigil.demo.pki import KeySpec, ThrowawayPki
from certvigil.observed.revocation import (
    CertificateRevocationObservation,
    FetchFailure,
    FetchFailureKind,
    RevocationFetch,
    RevocationMethod,
    RevocationObservation,
)
from certvigil.probe.ocsp_fetch import build_ocsp_request
from tests.support.ocsp_responder import GOOD, OcspResponder, Revoked, build_crl, corrupt_signature

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _pki() -> ThrowawayPki:
    return ThrowawayPki.create(now_utc=NOW)


def test_crl_freshness_flips_one_second_after_the_skew() -> None:
    """A CRL is fresh up to nextUpdate + skew and stale one second later, in any time zone."""
    pki = _pki()
    leaf = pki.issue_leaf()
    next_update = NOW + timedelta(days=1)
    crl = build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=NOW - timedelta(days=6),
        next_update_utc=next_update,
    )
    edge = next_update + CLOCK_SKEW
    tokyo = timezone(timedelta(hours=9))
    for now, expected in (
        (edge, RevocationStatus.GOOD),
        (edge + timedelta(seconds=1), RevocationStatus.STALE_RESPONSE),
        (edge.astimezone(tokyo), RevocationStatus.GOOD),
        ((edge + timedelta(seconds=1)).astimezone(tokyo), RevocationStatus.STALE_RESPONSE),
    ):
        result = check_crl(crl, cert=leaf.certificate, issuer=pki.intermediate.certificate, now=now)
        assert result.status is expected, now


def test_crl_from_another_issuer_is_invalid() -> None:
    """A CRL issued by some other CA does not speak for the certificate."""
    pki, other = _pki(), _pki()
    leaf = pki.issue_leaf()
    crl = build_crl(
        issuer=other.intermediate.issued,
        this_update_utc=NOW - timedelta(hours=1),
        next_update_utc=NOW + timedelta(days=1),
    )
    result = check_crl(crl, cert=leaf.certificate, issuer=pki.intermediate.certificate, now=NOW)
    assert result.status is RevocationStatus.INVALID_RESPONSE


def test_crl_for_end_entities_does_not_cover_a_ca() -> None:
    """A CRL scoped to end-entity certificates cannot clear an intermediate."""
    pki = _pki()
    scope = x509.IssuingDistributionPoint(
        full_name=None,
        relative_name=None,
        only_contains_user_certs=True,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )
    crl = build_crl(
        issuer=pki.root.issued,
        this_update_utc=NOW - timedelta(hours=1),
        next_update_utc=NOW + timedelta(days=1),
        extensions=[scope],
    )
    result = check_crl(crl, cert=pki.intermediate.certificate, issuer=pki.root.certificate, now=NOW)
    assert result.status is RevocationStatus.INVALID_RESPONSE
    assert "end-entity" in result.detail


def test_garbage_and_unsuccessful_ocsp_answers_are_invalid() -> None:
    """Bytes that are not OCSP, and a 'tryLater' answer, are invalid responses."""
    pki = _pki()
    leaf = pki.issue_leaf()
    try_later = ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus.TRY_LATER
    ).public_bytes(Encoding.DER)
    for answer in (b"<html>not ocsp</html>", try_later):
        result = check_ocsp_response(
            answer, cert=leaf.certificate, issuer=pki.intermediate.certificate, now=NOW
        )
        assert result.status is RevocationStatus.INVALID_RESPONSE


def test_certificate_hold_on_a_stale_answer_is_not_revocation() -> None:
    """certificateHold can be lifted: a stale answer saying 'on hold' is only stale."""
    pki = _pki()
    leaf = pki.issue_leaf()
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=lambda: NOW)
    held = Revoked(revoked_at_utc=NOW - timedelta(days=1), reason=x509.ReasonFlags.certificate_hold)
    responder.statuses[leaf.certificate.serial_number] = held
    answer = responder.respond(build_ocsp_request(leaf.certificate, pki.intermediate.certificate))
    fresh = check_ocsp_response(
        answer, cert=leaf.certificate, issuer=pki.intermediate.certificate, now=NOW
    )
    later = check_ocsp_response(
        answer,
        cert=leaf.certificate,
        issuer=pki.intermediate.certificate,
        now=NOW + timedelta(days=30),
    )
    assert fresh.status is RevocationStatus.REVOKED
    assert fresh.revocation_reason == "certificate_hold"
    assert later.status is RevocationStatus.STALE_RESPONSE


def test_judgement_is_repeatable_from_the_record() -> None:
    """The same observation judged twice at the same time gives the same report."""
    pki = _pki()
    leaf = pki.issue_leaf(ocsp_urls=["http://127.0.0.1:9/ocsp"])
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=lambda: NOW)
    responder.statuses[leaf.certificate.serial_number] = GOOD
    answer = responder.respond(build_ocsp_request(leaf.certificate, pki.intermediate.certificate))
    obs = RevocationObservation(
        observed_at_utc=NOW,
        certificates=(
            CertificateRevocationObservation(
                cert_index=0,
                certificate_der=leaf.der,
                issuer_der=pki.intermediate.der,
                fetches=(
                    RevocationFetch(
                        method=RevocationMethod.CRL,
                        url="http://127.0.0.1:9/int.crl",
                        fetched_at_utc=NOW,
                        failure=FetchFailure(kind=FetchFailureKind.TIMEOUT, detail="slow"),
                    ),
                    RevocationFetch(
                        method=RevocationMethod.OCSP,
                        url="http://127.0.0.1:9/ocsp",
                        fetched_at_utc=NOW,
                        response_der=answer,
                    ),
                ),
            ),
        ),
    )
    first = judge_revocation(obs, now=NOW)
    assert first == judge_revocation(obs, now=NOW)
    assert first.certificates[0].status is RevocationStatus.GOOD
    assert [m.status for m in first.certificates[0].methods] == [
        RevocationStatus.UNREACHABLE,
        RevocationStatus.GOOD,
    ]
    # Judged a month later, the same recorded answer is stale and the CRL still unreachable.
    later = judge_revocation(obs, now=NOW + timedelta(days=30))
    assert later.certificates[0].status is RevocationStatus.STALE_RESPONSE
    codes = {f.code for f in revocation_findings(later)}
    assert {"ocsp_response_stale", "crl_unreachable"} <= codes


@pytest.mark.parametrize("key", [KeySpec.RSA_2048, KeySpec.EC_P384, KeySpec.ED25519])
def test_signatures_verify_for_each_key_kind(key: KeySpec) -> None:
    """OCSP answers and CRLs signed with RSA, ECDSA and Ed25519 issuer keys all verify."""
    pki = ThrowawayPki.create(now_utc=NOW, key=key)
    leaf = pki.issue_leaf()
    issuer = pki.intermediate.certificate
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=lambda: NOW)
    responder.statuses[leaf.certificate.serial_number] = GOOD
    answer = responder.respond(build_ocsp_request(leaf.certificate, issuer))
    crl = build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=NOW - timedelta(hours=1),
        next_update_utc=NOW + timedelta(days=1),
    )
    ocsp_result = check_ocsp_response(answer, cert=leaf.certificate, issuer=issuer, now=NOW)
    crl_result = check_crl(crl, cert=leaf.certificate, issuer=issuer, now=NOW)
    assert (ocsp_result.status, crl_result.status) == (RevocationStatus.GOOD,) * 2
    forged = corrupt_signature(answer, ocsp.load_der_ocsp_response(answer).signature)
    forged_result = check_ocsp_response(forged, cert=leaf.certificate, issuer=issuer, now=NOW)
    assert forged_result.status is RevocationStatus.INVALID_RESPONSE
