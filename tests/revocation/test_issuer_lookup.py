"""The issuer a revocation check needs is found by name and key identifier in what was
served, whether or not the chain verifies (loopback OCSP responder and CRL publisher)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from certvigil.analysis.revocation_findings import revocation_findings
from certvigil.analysis.revocation_model import RevocationStatus
from certvigil.demo.pki import CertificateAuthority, KeySpec, ThrowawayPki
from certvigil.observed.revocation import RevocationMethod
from tests.revocation.helpers import check, issue, utc_now
from tests.support.ocsp_responder import OcspResponder, RevocationServer, build_crl


@pytest.fixture(scope="module")
def rsa_pki() -> ThrowawayPki:
    """An RSA root and intermediate: only RSA issuers can make SHA-1 signatures."""
    return ThrowawayPki.create(now_utc=utc_now(), key=KeySpec.RSA_2048)


@pytest.fixture
def rsa_server(rsa_pki: ThrowawayPki) -> Iterator[RevocationServer]:
    """An OCSP responder for the RSA intermediate's leaves, and its CRL."""
    responder = OcspResponder(issuer=rsa_pki.intermediate.issued, clock=utc_now)
    with RevocationServer(responder=responder) as running:
        yield running


def test_sha1_signed_leaf_is_checked_against_the_served_intermediate(
    rsa_pki: ThrowawayPki, rsa_server: RevocationServer
) -> None:
    """A SHA-1-signed leaf served with its intermediate is checked over OCSP and decided
    good, not `unverifiable` with `revocation_issuer_missing`."""
    leaf = issue(rsa_pki, rsa_server, signature_hash="sha1")
    report = check(rsa_pki.served_chain_der(leaf))
    (leaf_verdict,) = [c for c in report.certificates if c.cert_index == 0]
    assert leaf_verdict.status is RevocationStatus.GOOD, leaf_verdict
    assert leaf_verdict.decided_by is RevocationMethod.OCSP
    codes = {f.code for f in revocation_findings(report)}
    assert "revocation_issuer_missing" not in codes


def test_sha1_signed_leaf_crl_is_verified_with_the_served_intermediate(
    rsa_pki: ThrowawayPki, rsa_server: RevocationServer
) -> None:
    """The same leaf with only a CRL is decided by the CRL the served intermediate signed."""
    leaf = issue(rsa_pki, rsa_server, ocsp=False, crl=True, signature_hash="sha1")
    now = utc_now()
    rsa_server.files["/int.crl"] = build_crl(
        issuer=rsa_pki.intermediate.issued,
        this_update_utc=now - timedelta(hours=1),
        next_update_utc=now + timedelta(days=7),
        revoked=(),
    )
    report = check(rsa_pki.served_chain_der(leaf))
    (leaf_verdict,) = [c for c in report.certificates if c.cert_index == 0]
    assert leaf_verdict.status is RevocationStatus.GOOD, leaf_verdict
    assert leaf_verdict.decided_by is RevocationMethod.CRL


def test_a_namesake_ca_with_another_key_is_not_taken_for_the_issuer(
    rsa_pki: ThrowawayPki, rsa_server: RevocationServer
) -> None:
    """A CA with the issuer's name but another key (its key identifier differs) served in
    place of the real intermediate is not used: the SHA-1 leaf's revocation stays
    unverifiable rather than checked against the wrong key."""
    leaf = issue(rsa_pki, rsa_server, signature_hash="sha1")
    impostor = CertificateAuthority.root(
        common_name="certvigil Test Intermediate CA", key=KeySpec.RSA_2048
    )
    report = check((leaf.der, impostor.der))
    (leaf_verdict,) = [c for c in report.certificates if c.cert_index == 0]
    assert leaf_verdict.status is not RevocationStatus.GOOD
