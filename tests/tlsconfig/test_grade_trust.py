"""Certificate grades as SSL Labs gives them, from deep scans of real servers on 127.0.0.1:
expiry is a trust issue (T) with the grade the server would get once it is fixed, and a
chain completed from its AIA URL is trusted but capped at B."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certvigil.analysis.grade import GradeReport
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.trust import TrustStore
from certvigil.demo.endpoints import LegacyTlsServer
from certvigil.demo.pki import CertificateAuthority, IssuedCert, KeySpec, ThrowawayPki
from certvigil.demo.servers import HttpFileServer, TlsServer
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan
from certvigil.targets.target import Target

DEEP = ScanOptions(deep=True, retries=0, handshake_timeout_s=2.0, connect_timeout_s=2.0)
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def old_pki() -> ThrowawayPki:
    """CAs issued a year ago, so leaves from any time in that year chain to them."""
    return ThrowawayPki.create(now_utc=NOW - timedelta(days=365))


@pytest.fixture(scope="module")
def old_trust(old_pki: ThrowawayPki) -> TrustStore:
    """A trust store holding only that PKI's root."""
    return TrustStore.from_certificates([old_pki.root.certificate], source="test root")


def _deep_scan(
    chain: tuple[bytes, ...], leaf: IssuedCert, trust: TrustStore, *, legacy: bool = False
) -> EndpointReport:
    """Serve ``chain`` on loopback (PEM for ``legacy``: SHA-1 needs a lower security level)
    and scan it deep."""
    server = (LegacyTlsServer if legacy else TlsServer)(chain=chain, key_pem=leaf.key_pem)
    with server as (host, port):
        (report,) = scan([Target(host=host, port=port, sni="localhost")], options=DEEP, trust=trust)
    assert report.deep is not None, report.failure
    return report


def _grade(report: EndpointReport) -> GradeReport:
    assert report.deep is not None
    return report.deep.grade


def _codes(grade: GradeReport) -> set[str]:
    return {r.code for r in grade.rules}


def test_expired_certificate_is_graded_t_with_the_grade_once_renewed(
    old_pki: ThrowawayPki, old_trust: TrustStore
) -> None:
    """An expired leaf under an otherwise trusted chain is T (not F) for one reason,
    `certificate_expired`, and `grade_if_trusted` is the letter the configuration earns."""
    leaf = old_pki.issue_leaf(
        dns_names=("localhost",),
        not_before_utc=NOW - timedelta(days=100),
        not_after_utc=NOW - timedelta(days=3),
    )
    grade = _grade(_deep_scan(old_pki.served_chain_der(leaf), leaf, old_trust))
    assert grade.grade == "T"
    assert "certificate_expired" in _codes(grade)
    assert "certificate_not_trusted" not in _codes(grade)
    assert grade.grade_if_trusted == grade.grade_ignoring_certificate
    assert grade.grade_if_trusted in ("A+", "A", "A-", "B")


def test_not_yet_valid_certificate_has_its_own_rule(
    old_pki: ThrowawayPki, old_trust: TrustStore
) -> None:
    """A leaf valid only from tomorrow is T under `certificate_not_yet_valid`, not
    `certificate_expired`."""
    leaf = old_pki.issue_leaf(
        dns_names=("localhost",),
        not_before_utc=NOW + timedelta(days=1),
        not_after_utc=NOW + timedelta(days=90),
    )
    grade = _grade(_deep_scan(old_pki.served_chain_der(leaf), leaf, old_trust))
    assert grade.grade == "T"
    assert "certificate_not_yet_valid" in _codes(grade)
    assert "certificate_expired" not in _codes(grade)
    assert grade.grade_if_trusted is not None


def test_untrusted_and_mismatched_grades_say_the_grade_once_fixed(
    pki: ThrowawayPki, leaf: IssuedCert
) -> None:
    """T for an unknown root and M for a wrong name each carry `grade_if_trusted`."""
    stranger = TrustStore.from_certificates(
        [ThrowawayPki.create().root.certificate], source="another root"
    )
    untrusted = _grade(_deep_scan(pki.served_chain_der(leaf), leaf, stranger))
    assert untrusted.grade == "T"
    assert untrusted.grade_if_trusted == untrusted.grade_ignoring_certificate
    other = pki.issue_leaf(dns_names=("other.test",))
    trust = TrustStore.from_certificates([pki.root.certificate], source="test root")
    mismatch = _grade(_deep_scan(pki.served_chain_der(other), other, trust))
    assert mismatch.grade == "M"
    assert mismatch.grade_if_trusted == mismatch.grade_ignoring_certificate


def test_chain_completed_from_aia_is_trusted_and_capped_at_b(
    pki: ThrowawayPki, trust: TrustStore
) -> None:
    """A server that leaves out the intermediate its AIA URL supplies is graded as SSL Labs
    does: trusted with chain issues, capped at B by `incomplete_chain`, not T."""
    http = HttpFileServer({})
    with http as web:
        url = web.url("/issuers/intermediate.der")
        http.files["/issuers/intermediate.der"] = (pki.intermediate.der, "application/pkix-cert")
        leaf = pki.issue_leaf(dns_names=("localhost",), ca_issuer_urls=(url,))
        report = _deep_scan((leaf.der,), leaf, trust)
    assert report.chain is not None and report.chain.would_verify_with_fetched
    grade = _grade(report)
    assert grade.grade == "B"
    assert "incomplete_chain" in _codes(grade)
    assert "certificate_not_trusted" not in _codes(grade)
    assert grade.grade_if_trusted is None


def test_sha1_leaf_is_graded_by_its_signature_alone() -> None:
    """A chain broken only by the leaf's SHA-1 signature is T under `sha1_signature`,
    without a second `certificate_not_trusted` rule for the same cause."""
    root = CertificateAuthority.root(key=KeySpec.RSA_2048)
    issuer = root.intermediate(key=KeySpec.RSA_2048)
    leaf = issuer.issue_leaf(dns_names=("localhost",), signature_hash="sha1")
    trust = TrustStore.from_certificates([root.certificate], source="rsa root")
    grade = _grade(_deep_scan((leaf.pem, issuer.pem), leaf, trust, legacy=True))
    assert grade.grade == "T"
    assert "sha1_signature" in _codes(grade)
    assert "certificate_not_trusted" not in _codes(grade)
    assert grade.grade_if_trusted is not None
