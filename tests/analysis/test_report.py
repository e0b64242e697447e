"""Endpoint reports from recorded observations: every finding rule, without sockets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from certvigil.analysis.certificate import parse_certificate
from certvigil.analysis.model import EndpointReport, Severity
from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.report import analyse_chain_der, analyse_endpoint, issuer_urls_to_fetch
from certvigil.analysis.thresholds import thresholds_from_days
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import CertificateAuthority, KeySpec, ThrowawayPki, self_signed_leaf
from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.targets.target import Target

from .conftest import NOW, load, observation

HOST = "www.example.test"


def _codes(report: EndpointReport) -> list[str]:
    return [f.code for f in report.findings]


def _finding(report: EndpointReport, code: str) -> tuple[Severity, int | None, str]:
    (found,) = [f for f in report.findings if f.code == code]
    return found.severity, found.cert_index, found.message


def test_good_endpoint(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A well-served, valid, matching chain yields no findings and verdict OK."""
    leaf = pki.issue_leaf(dns_names=(HOST,))
    report = analyse_endpoint(observation(pki.served_chain_der(leaf)), now=NOW, trust=trust)
    assert report.findings == ()
    assert report.verdict is Severity.OK
    assert report.hostname_matches is True
    assert report.chain is not None and report.chain.is_trusted
    assert [c.sha256_hex for c in report.certificates] == [
        leaf.sha256_hex,
        pki.intermediate.issued.sha256_hex,
    ]
    assert report.evaluated_at_utc == NOW


def test_probe_failure_gives_failed_report(trust: TrustStore) -> None:
    """A probe failure becomes a report with the failure and no findings."""
    failure = ProbeFailure(
        target=Target(host=HOST, port=443),
        kind=FailureKind.TIMEOUT,
        detail="timed out after 5 s",
        observed_at_utc=NOW,
    )
    report = analyse_endpoint(failure, now=NOW, trust=trust)
    assert report.is_failed
    assert report.failure is failure
    assert report.findings == () and report.certificates == () and report.chain is None


@pytest.mark.parametrize("garbage", [b"", b"\x30\x82\xff\xff", b"not a certificate at all"])
def test_garbage_leaf_is_a_finding(trust: TrustStore, garbage: bytes) -> None:
    """Garbage in place of the leaf gives malformed_certificate, never an exception."""
    report = analyse_endpoint(observation([garbage]), now=NOW, trust=trust)
    assert _codes(report) == ["malformed_certificate"]
    assert report.verdict is Severity.CRITICAL
    assert report.chain is None and report.hostname_matches is None


def test_garbage_intermediate_keeps_positions(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A broken certificate in the middle is reported at its served position."""
    leaf = pki.issue_leaf(dns_names=(HOST,))
    served = (leaf.der, b"\x00garbage", pki.intermediate.der, pki.root.der)
    report = analyse_endpoint(observation(served), now=NOW, trust=trust)
    assert _finding(report, "malformed_certificate")[1] == 1
    assert _finding(report, "root_served")[1] == 3
    assert report.chain is not None and report.chain.is_trusted


def test_empty_chain(trust: TrustStore) -> None:
    """A handshake without certificates yields no_certificate."""
    report = analyse_endpoint(observation([]), now=NOW, trust=trust)
    assert _codes(report) == ["no_certificate"]


@pytest.mark.parametrize(
    "zone", [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
)
def test_expiry_one_second_either_side(
    pki: ThrowawayPki, trust: TrustStore, zone: timezone
) -> None:
    """At notAfter the leaf is valid (critical expires_soon); one second later it is expired."""
    leaf = pki.issue_leaf(dns_names=(HOST,))
    end = leaf.certificate.not_valid_after_utc.astimezone(zone)
    chain = pki.served_chain_der(leaf)
    at_end = analyse_endpoint(observation(chain), now=end, trust=trust)
    assert "expired" not in _codes(at_end)
    assert _finding(at_end, "expires_soon")[0] is Severity.CRITICAL
    after = analyse_endpoint(observation(chain), now=end + timedelta(seconds=1), trust=trust)
    severity, index, message = _finding(after, "expired")
    assert (severity, index) == (Severity.CRITICAL, 0)
    assert "expired today" in message
    assert "untrusted" not in _codes(after)


def test_not_yet_valid(pki: ThrowawayPki, trust: TrustStore) -> None:
    """One second before notBefore the leaf is not yet valid; at notBefore it is fine."""
    start = NOW + timedelta(days=2)
    leaf = pki.issue_leaf(dns_names=(HOST,), not_before_utc=start)
    chain = pki.served_chain_der(leaf)
    early = analyse_endpoint(observation(chain), now=start - timedelta(seconds=1), trust=trust)
    assert _finding(early, "not_yet_valid")[:2] == (Severity.CRITICAL, 0)
    on_time = analyse_endpoint(observation(chain), now=start, trust=trust)
    assert on_time.findings == ()


@pytest.mark.parametrize(
    ("days_left", "severity", "threshold"),
    [
        (30, Severity.WARNING, 30),
        (14, Severity.WARNING, 14),
        (10, Severity.WARNING, 14),
        (7, Severity.CRITICAL, 7),
        (1, Severity.CRITICAL, 1),
    ],
)
def test_expiry_thresholds(
    pki: ThrowawayPki, trust: TrustStore, days_left: int, severity: Severity, threshold: int
) -> None:
    """Each threshold is crossed at exactly N days left; within 7 days it is critical."""
    leaf = pki.issue_leaf(dns_names=(HOST,))
    now = leaf.certificate.not_valid_after_utc - timedelta(days=days_left)
    report = analyse_endpoint(observation(pki.served_chain_der(leaf)), now=now, trust=trust)
    found_severity, _, message = _finding(report, "expires_soon")
    assert found_severity is severity
    assert f"within the {threshold}-day threshold" in message
    outside = analyse_endpoint(
        observation(pki.served_chain_der(leaf)),
        now=now - timedelta(days=31 - days_left, seconds=1),
        trust=trust,
    )
    assert "expires_soon" not in _codes(outside)


def test_custom_thresholds(pki: ThrowawayPki, trust: TrustStore) -> None:
    """Configured thresholds replace the defaults."""
    leaf = pki.issue_leaf(dns_names=(HOST,))
    now = leaf.certificate.not_valid_after_utc - timedelta(days=45)
    policy = AnalysisPolicy(expiry_thresholds=thresholds_from_days((60, 3), critical_within_days=3))
    report = analyse_endpoint(
        observation(pki.served_chain_der(leaf)), now=now, trust=trust, policy=policy
    )
    assert _finding(report, "expires_soon")[0] is Severity.WARNING


def test_intermediate_expiring_soon(trust: TrustStore) -> None:
    """An intermediate close to expiry is reported at its position."""
    root = CertificateAuthority.root(now_utc=NOW)
    store = TrustStore.from_certificates([root.certificate], source="r")
    intermediate = root.intermediate(not_after_utc=NOW + timedelta(days=5))
    leaf = intermediate.issue_leaf(dns_names=(HOST,), not_after_utc=NOW + timedelta(days=4))
    report = analyse_endpoint(observation(leaf.chain_der(intermediate)), now=NOW, trust=store)
    assert [(f.code, f.cert_index) for f in report.findings] == [
        ("expires_soon", 0),
        ("expires_soon", 1),
    ]


def test_self_signed(trust: TrustStore) -> None:
    """A self-signed leaf is critical self_signed, not a missing intermediate."""
    leaf = self_signed_leaf(dns_names=(HOST,), now_utc=NOW)
    report = analyse_endpoint(observation([leaf.der]), now=NOW, trust=trust)
    assert _codes(report) == ["self_signed"]


def test_real_self_signed_badssl(trust: TrustStore) -> None:
    """badssl's real self-signed wildcard is self_signed and matches its own name."""
    der = load("sslyze/self-signed.badssl.com.pem")[0]
    now = parse_certificate(der).facts.not_before_utc + timedelta(days=1)
    report = analyse_endpoint(
        observation([der], host="self-signed.badssl.com"), now=now, trust=trust
    )
    assert "self_signed" in _codes(report)
    assert report.hostname_matches is True


def test_untrusted_root(trust: TrustStore) -> None:
    """A chain to an unknown root: untrusted_root, naming it."""
    other = ThrowawayPki.create(now_utc=NOW, root_name="Unknown Corp Root")
    leaf = other.issue_leaf(dns_names=(HOST,))
    served = leaf.chain_der(other.intermediate, other.root)
    report = analyse_endpoint(observation(served), now=NOW, trust=trust)
    severity, index, message = _finding(report, "untrusted_root")
    assert (severity, index) == (Severity.CRITICAL, 2)
    assert "Unknown Corp Root" in message


def test_wrong_host_is_only_a_mismatch(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A certificate for another host is a hostname mismatch; the chain stays trusted."""
    leaf = pki.issue_leaf(dns_names=("other.example.test",))
    report = analyse_endpoint(observation(pki.served_chain_der(leaf)), now=NOW, trust=trust)
    assert _codes(report) == ["hostname_mismatch"]
    assert "other.example.test" in report.findings[0].message
    assert report.hostname_matches is False
    assert report.chain is not None and report.chain.is_trusted


def test_sni_override_is_matched(pki: ThrowawayPki, trust: TrustStore) -> None:
    """With an SNI override the certificate is matched against it, not the address."""
    leaf = pki.issue_leaf(dns_names=("api.example.test",))
    served = pki.served_chain_der(leaf)
    by_sni = analyse_endpoint(
        observation(served, host="127.0.0.1", sni="api.example.test"), now=NOW, trust=trust
    )
    assert by_sni.hostname_matches is True
    by_ip = analyse_endpoint(observation(served, host="127.0.0.1"), now=NOW, trust=trust)
    assert by_ip.hostname_matches is False


def test_ip_san_endpoint(pki: ThrowawayPki, trust: TrustStore) -> None:
    """Scanning an IP matches the IP SAN (v6 too)."""
    leaf = pki.issue_leaf(dns_names=(), ip_addresses=("127.0.0.1", "::1"))
    for host in ("127.0.0.1", "::1"):
        report = analyse_endpoint(
            observation(pki.served_chain_der(leaf), host=host), now=NOW, trust=trust
        )
        assert report.findings == ()


def test_idn_sni(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A U-label SNI matches the A-label SAN."""
    leaf = pki.issue_leaf(dns_names=("bücher.example",))
    report = analyse_endpoint(
        observation(pki.served_chain_der(leaf), host="127.0.0.1", sni="bücher.example"),
        now=NOW,
        trust=trust,
    )
    assert report.hostname_matches is True


def test_missing_intermediate_fetch_cycle(pki: ThrowawayPki, trust: TrustStore) -> None:
    """Leaf alone: critical incomplete_chain and a URL; with the fetched issuer a warning."""
    url = "http://127.0.0.1:8080/intermediate.der"
    leaf = pki.issue_leaf(dns_names=(HOST,), ca_issuer_urls=(url,))
    first = analyse_endpoint(observation([leaf.der]), now=NOW, trust=trust)
    assert _finding(first, "incomplete_chain")[0] is Severity.CRITICAL
    assert issuer_urls_to_fetch(first) == (url,)
    second = analyse_endpoint(
        observation([leaf.der]), now=NOW, trust=trust, fetched_issuers_der=[pki.intermediate.der]
    )
    assert _codes(second) == ["incomplete_chain"]
    assert _finding(second, "incomplete_chain")[0] is Severity.WARNING
    assert issuer_urls_to_fetch(second) == ()
    good = analyse_endpoint(observation(pki.served_chain_der(leaf)), now=NOW, trust=trust)
    assert issuer_urls_to_fetch(good) == ()


def test_fetched_garbage_is_ignored(pki: ThrowawayPki, trust: TrustStore) -> None:
    """Fetched bytes that are not a certificate change nothing."""
    leaf = pki.issue_leaf(dns_names=(HOST,), ca_issuer_urls=("http://127.0.0.1:1/x",))
    report = analyse_endpoint(
        observation([leaf.der]), now=NOW, trust=trust, fetched_issuers_der=[b"<html>"]
    )
    assert _finding(report, "incomplete_chain")[0] is Severity.CRITICAL


def test_wrong_order_unneeded_and_served_root(pki: ThrowawayPki, trust: TrustStore) -> None:
    """Misorder is a warning; a stray certificate and the served root are info."""
    stray = self_signed_leaf(dns_names=("stray.test",), now_utc=NOW)
    leaf = pki.issue_leaf(dns_names=(HOST,))
    served = (leaf.der, pki.root.der, stray.der, pki.intermediate.der)
    report = analyse_endpoint(observation(served), now=NOW, trust=trust)
    assert _codes(report) == ["chain_misordered", "root_served", "unneeded_certificate"]
    assert [f.severity for f in report.findings] == [
        Severity.WARNING,
        Severity.INFO,
        Severity.INFO,
    ]


def test_weak_key_and_sha1_signature() -> None:
    """RSA-1024 and a SHA-1 signature are critical; a SHA-1 self-signed root is not."""
    root = CertificateAuthority.root(now_utc=NOW, key=KeySpec.RSA_2048, signature_hash="sha1")
    store = TrustStore.from_certificates([root.certificate], source="old root")
    leaf = root.issue_leaf(dns_names=(HOST,), key=KeySpec.RSA_1024, signature_hash="sha1")
    report = analyse_endpoint(observation(leaf.chain_der(root)), now=NOW, trust=store)
    assert _finding(report, "weak_key")[:2] == (Severity.CRITICAL, 0)
    assert _finding(report, "weak_signature")[:2] == (Severity.CRITICAL, 0)
    assert [f.cert_index for f in report.findings if f.code == "weak_signature"] == [0]
    # The signature is the root cause; the untrusted chain is not a finding of its own.
    assert "untrusted" not in _codes(report)
    assert report.chain is not None and report.chain.untrusted_causes == ("weak_signature",)


def test_weak_ec_key_by_policy(pki: ThrowawayPki, trust: TrustStore) -> None:
    """EC keys below the policy minimum are weak; P-384 passes a 384-bit minimum."""
    policy = AnalysisPolicy(min_ec_bits=384)
    small = pki.issue_leaf(dns_names=(HOST,), key=KeySpec.EC_P256)
    big = pki.issue_leaf(dns_names=(HOST,), key=KeySpec.EC_P384)
    chain_small = (small.der,)
    assert "weak_key" in [
        f.code
        for f in analyse_chain_der(
            chain_small, now=NOW, trust=trust, policy=policy, expected_name=HOST
        ).findings
    ]
    big_report = analyse_endpoint(
        observation(pki.served_chain_der(big)), now=NOW, trust=trust, policy=policy
    )
    assert [(f.code, f.cert_index) for f in big_report.findings] == [("weak_key", 1)]


def test_validity_too_long_public_and_private(pki: ThrowawayPki) -> None:
    """Over-long validity warns under a public anchor and informs under a private one."""
    leaf = pki.issue_leaf(dns_names=(HOST,), valid_days=399)
    served = pki.served_chain_der(leaf)
    private = TrustStore.from_certificates([pki.root.certificate], source="private")
    public = TrustStore.from_certificates([], source="public", public=[pki.root.certificate])
    private_report = analyse_endpoint(observation(served), now=NOW, trust=private)
    assert _finding(private_report, "validity_too_long")[0] is Severity.INFO
    public_report = analyse_endpoint(observation(served), now=NOW, trust=public)
    severity, _, message = _finding(public_report, "validity_too_long")
    assert severity is Severity.WARNING
    assert "at most 398 days" in message
    # RFC 5280 validity is inclusive: 398 days end one second before start + 398 days.
    start = NOW - timedelta(days=1)
    ok = pki.issue_leaf(
        dns_names=(HOST,),
        not_before_utc=start,
        not_after_utc=start + timedelta(days=398, seconds=-1),
    )
    ok_report = analyse_endpoint(observation(pki.served_chain_der(ok)), now=NOW, trust=public)
    assert "validity_too_long" not in _codes(ok_report)
    # Ballot SC-081: from 2026-03-15 the limit is 200 days.
    later = pki.issue_leaf(
        dns_names=(HOST,), not_before_utc=datetime(2026, 3, 20, tzinfo=UTC), valid_days=250
    )
    later_report = analyse_endpoint(
        observation(pki.served_chain_der(later)),
        now=datetime(2026, 4, 1, tzinfo=UTC),
        trust=public,
    )
    assert "at most 200 days" in _finding(later_report, "validity_too_long")[2]


def test_no_san_and_legacy_cn(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A SAN-less leaf matched by CN gives no_san and hostname_legacy_cn warnings."""
    leaf = pki.issue_leaf(dns_names=(HOST,), include_san=False)
    report = analyse_endpoint(observation(pki.served_chain_der(leaf)), now=NOW, trust=trust)
    assert sorted(_codes(report)) == ["hostname_legacy_cn", "no_san"]
    assert "legacy CN" in _finding(report, "hostname_legacy_cn")[2]


def test_leaf_is_ca_and_eku(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A CA-flagged leaf warns; a clientAuth-only leaf is critical, named once (not again
    as `untrusted`), and does not verify."""
    ca_leaf = pki.issue_leaf(dns_names=(HOST,), is_ca=True)
    report = analyse_endpoint(observation(pki.served_chain_der(ca_leaf)), now=NOW, trust=trust)
    assert "leaf_is_ca" in _codes(report)
    client = pki.issue_leaf(
        dns_names=(HOST,), extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH,)
    )
    report = analyse_endpoint(observation(pki.served_chain_der(client)), now=NOW, trust=trust)
    assert _codes(report) == ["missing_server_auth_eku"]
    assert _finding(report, "missing_server_auth_eku")[0] is Severity.CRITICAL
    assert report.chain is not None and not report.chain.is_trusted
    assert report.chain.untrusted_causes == ("missing_server_auth_eku",)


def test_must_staple(pki: ThrowawayPki, trust: TrustStore) -> None:
    """Must-staple without a staple is critical; with a staple it is not reported."""
    leaf = pki.issue_leaf(dns_names=(HOST,), must_staple=True)
    served = pki.served_chain_der(leaf)
    bare = analyse_endpoint(observation(served), now=NOW, trust=trust)
    assert _codes(bare) == ["must_staple_not_stapled"]
    stapled = analyse_endpoint(
        observation(served, staple=b"\x30\x03\x0a\x01\x00"), now=NOW, trust=trust
    )
    assert stapled.findings == ()
    offline = analyse_chain_der(served, now=NOW, trust=trust, expected_name=HOST)
    assert offline.findings == ()


def test_precertificate_served() -> None:
    """A served CT precertificate is critical."""
    der = load("ct-related/navigli2025h2_precert_idx0_rsa.pem")[0]
    trust = TrustStore.from_certificates(
        [parse_certificate(load("letsencrypt/isrgrootx1.pem")[0]).certificate], source="x1"
    )
    now = parse_certificate(der).facts.not_before_utc + timedelta(days=1)
    analysis = analyse_chain_der([der], now=now, trust=trust)
    assert "precertificate_served" in [f.code for f in analysis.findings]


def test_no_embedded_sct_for_public_chains() -> None:
    """A publicly trusted leaf without SCTs gets an info finding; real leaves have SCTs."""
    root = CertificateAuthority.root(now_utc=NOW)
    public = TrustStore.from_certificates([], source="public", public=[root.certificate])
    leaf = root.issue_leaf(dns_names=(HOST,))
    analysis = analyse_chain_der([leaf.der], now=NOW, trust=public, expected_name=HOST)
    assert [f.code for f in analysis.findings] == ["no_embedded_sct"]
    chain = load("real-sites/google.com.chain.pem")
    real_trust = TrustStore.from_certificates(
        [],
        source="gts",
        public=[parse_certificate(load("real-sites/google.com.root.pem")[0]).certificate],
    )
    now = parse_certificate(chain[0]).facts.not_before_utc + timedelta(days=1)
    real = analyse_chain_der(chain, now=now, trust=real_trust, expected_name="www.google.com")
    assert real.findings == ()
    assert real.verdict is Severity.OK


def test_findings_most_severe_first(trust: TrustStore) -> None:
    """Findings are ordered critical, warning, info."""
    other = ThrowawayPki.create(now_utc=NOW)
    leaf = other.issue_leaf(dns_names=("elsewhere.test",), include_san=True, is_ca=True)
    served = (leaf.der, other.root.der, other.intermediate.der)
    report = analyse_endpoint(observation(served), now=NOW, trust=trust)
    ranks = [f.severity.rank for f in report.findings]
    assert ranks == sorted(ranks, reverse=True)
    assert report.verdict is Severity.CRITICAL


def test_naive_now_refused(trust: TrustStore, pki: ThrowawayPki) -> None:
    """A naive ``now`` is refused with the rule."""
    with pytest.raises(ValueError, match="timezone-aware"):
        analyse_chain_der(
            [pki.intermediate.der],
            now=datetime(2026, 1, 1),  # noqa: DTZ001  (the naive value under test)
            trust=trust,
        )


def test_expired_leaf_sentence_says_renewal_alone_fixes_it() -> None:
    """An expired leaf under an otherwise trusted chain gives one critical sentence, which
    says clients refuse it and that renewing it fixes it; under an unknown root it does not
    promise that."""
    pki = ThrowawayPki.create(now_utc=NOW - timedelta(days=365))
    trust = TrustStore.from_certificates([pki.root.certificate], source="test")
    leaf = pki.issue_leaf(
        dns_names=(HOST,),
        not_before_utc=NOW - timedelta(days=100),
        not_after_utc=NOW - timedelta(days=2),
    )
    report = analyse_endpoint(observation(pki.served_chain_der(leaf)), now=NOW, trust=trust)
    critical = [f for f in report.findings if f.severity is Severity.CRITICAL]
    assert [f.code for f in critical] == ["expired"]
    assert "renewing it fixes it" in critical[0].message
    assert report.chain is not None and report.chain.trusted_ignoring_validity
    other = TrustStore.from_certificates([CertificateAuthority.root().certificate], source="x")
    report = analyse_endpoint(observation(pki.served_chain_der(leaf)), now=NOW, trust=other)
    assert "renewing" not in _finding(report, "expired")[2]
