"""Revocation planning and judging over certificates and CRLs with defects; no network."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from certvigil.analysis.revocation import judge_revocation
from certvigil.analysis.revocation_checks import check_crl
from certvigil.analysis.revocation_model import RevocationStatus
from certvigil.analysis.revocation_plan import plan_revocation
from certvigil.demo.pki import ThrowawayPki
from certvigil.observed.revocation import CertificateRevocationObservation, RevocationObservation
from tests.support.crafted import ODDITIES, craft, resign
from tests.support.ocsp_responder import build_crl

NOW = datetime.now(UTC)
_URLS = {"ocsp_urls": ("http://127.0.0.1:9/ocsp",), "crl_urls": ("http://127.0.0.1:9/crl",)}


@pytest.mark.parametrize("name", sorted(ODDITIES))
def test_revocation_is_planned_and_judged_from_what_could_be_read(
    pki: ThrowawayPki, name: str
) -> None:
    """Planning finds the issuer and URLs; judging without answers says why, never raises."""
    der = craft(name, pki.intermediate, **_URLS).der
    plan = plan_revocation((der, pki.intermediate.der), extra_issuers_der=(pki.root.der,))
    loads = name != "bad_printable_string"
    assert [c.cert_index for c in plan] == ([0, 1] if loads else [1])
    if loads:
        assert plan[0].issuer is not None
        assert plan[0].issuer.der == pki.intermediate.der
        assert plan[0].ocsp_urls == _URLS["ocsp_urls"]
        assert plan[0].crl_urls == _URLS["crl_urls"]
    observation = RevocationObservation(
        observed_at_utc=NOW,
        certificates=tuple(
            CertificateRevocationObservation(
                cert_index=c.cert_index,
                certificate_der=c.certificate.der,
                issuer_der=c.issuer.der if c.issuer is not None else None,
            )
            for c in plan
        ),
        staple_requested=True,
    )
    report = judge_revocation(observation, now=NOW)
    assert [c.cert_index for c in report.certificates] == [c.cert_index for c in plan]


def test_judging_an_unreadable_certificate_says_so() -> None:
    """An observation holding bytes that are not a certificate gives an unverifiable entry."""
    observation = RevocationObservation(
        observed_at_utc=NOW,
        certificates=(CertificateRevocationObservation(cert_index=0, certificate_der=b"\x30\x00"),),
    )
    (entry,) = judge_revocation(observation, now=NOW).certificates
    assert entry.status.value == "unverifiable"
    assert "cannot be read" in entry.methods[0].detail


def test_crl_with_a_duplicated_extension_is_an_invalid_answer(pki: ThrowawayPki) -> None:
    """A CRL carrying two CRLNumber extensions is an invalid answer, not an exception."""
    leaf = pki.issue_leaf(crl_urls=("http://127.0.0.1:9/crl",))
    stand_in = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.99"), b"\x02\x01\x07")
    crl_der = build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=NOW - timedelta(hours=1),
        next_update_utc=NOW + timedelta(days=1),
        extensions=(stand_in,),
    )
    crl = x509.load_der_x509_crl(crl_der)
    tbs = crl.tbs_certlist_bytes
    assert tbs.count(b"\x06\x03\x55\x1d\x63") == 1
    doubled = resign(
        crl_der, tbs.replace(b"\x06\x03\x55\x1d\x63", b"\x06\x03\x55\x1d\x14"), pki.intermediate
    )
    result = check_crl(doubled, cert=leaf.certificate, issuer=pki.intermediate.certificate, now=NOW)
    assert result.status is RevocationStatus.INVALID_RESPONSE
    assert "the CRL cannot be read" in result.detail
    assert "Duplicate 2.5.29.20 extension" in result.detail
