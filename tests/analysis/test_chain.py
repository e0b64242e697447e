"""Chain verdicts on real chains with their anchors and on generated broken chains."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from certvigil.analysis.certificate import parse_certificate
from certvigil.analysis.chain import ChainProblemKind, humanise_error, judge_chain
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import CertificateAuthority, KeySpec, ThrowawayPki, self_signed_leaf

from .conftest import CERTS, NOW, load

SITES = sorted(
    p.name.removesuffix(".chain.pem") for p in (CERTS / "real-sites").glob("*.chain.pem")
)


def _trust_of(*relatives: str) -> TrustStore:
    anchors = [parse_certificate(d).certificate for r in relatives for d in load(r)]
    return TrustStore.from_certificates(anchors, source=", ".join(relatives))


def _kinds(verdict: object) -> list[ChainProblemKind]:
    return [p.kind for p in verdict.problems]  # type: ignore[attr-defined]


@pytest.mark.parametrize("site", SITES)
def test_real_site_chain_verifies(site: str) -> None:
    """Each real site's served chain verifies to its root, in order, with nothing extra."""
    chain = load(f"real-sites/{site}.chain.pem")
    trust = _trust_of(f"real-sites/{site}.root.pem")
    leaf = parse_certificate(chain[0]).facts
    verdict = judge_chain(chain, now=leaf.not_before_utc + timedelta(days=3), trust=trust)
    report = verdict.report
    assert report.is_trusted, report.error
    assert report.is_complete and report.is_ordered
    assert report.unneeded_sha256 == ()
    assert report.verified_path_sha256[0] == leaf.sha256_hex
    assert report.verified_path_sha256[-1] in trust.anchor_sha256
    assert report.anchor_subject == trust.anchors[0].subject.rfc4514_string()
    assert verdict.problems == ()
    assert verdict.path_served_indexes == tuple(range(len(chain)))


def test_real_chain_untrusted_after_expiry() -> None:
    """The same real chain fails one second after the leaf's notAfter."""
    chain = load("real-sites/cloudflare.com.chain.pem")
    trust = _trust_of("real-sites/cloudflare.com.root.pem")
    leaf = parse_certificate(chain[0]).facts
    ok = judge_chain(chain, now=leaf.not_after_utc, trust=trust)
    assert ok.report.is_trusted
    late = judge_chain(chain, now=leaf.not_after_utc + timedelta(seconds=1), trust=trust)
    assert not late.report.is_trusted
    assert _kinds(late) == [ChainProblemKind.NOT_VALID_NOW]
    assert late.problems[0].cert_index == 0


def test_real_missing_intermediate_completed_by_fetch() -> None:
    """stackoverflow.com's leaf alone names E8 and its AIA URL; the fetched E8 completes it."""
    chain = load("real-sites/stackoverflow.com.chain.pem")
    trust = _trust_of("letsencrypt/isrgrootx1.pem", "letsencrypt/isrg-root-x2.pem")
    now = parse_certificate(chain[0]).facts.not_before_utc + timedelta(days=1)
    alone = judge_chain(chain[:1], now=now, trust=trust)
    assert not alone.report.is_trusted
    assert not alone.report.is_complete
    assert alone.report.missing_issuer == "CN=E8,O=Let's Encrypt,C=US"
    assert alone.report.missing_issuer_urls == ("http://e8.i.lencr.org/",)
    assert _kinds(alone) == [ChainProblemKind.MISSING_INTERMEDIATE]
    fetched = load("letsencrypt/2024_e8.pem")
    completed = judge_chain(chain[:1], now=now, trust=trust, fetched_der=fetched)
    assert completed.report.would_verify_with_fetched
    assert not completed.report.is_trusted
    assert completed.report.fetched_issuers_sha256 == (
        parse_certificate(fetched[0]).facts.sha256_hex,
    )
    assert completed.report.anchor_subject is not None
    assert "ISRG Root X2" in completed.report.anchor_subject


def test_served_anchor_is_unneeded() -> None:
    """A server that also sends the root gets a root_served problem, still trusted."""
    chain = load("real-sites/facebook.com.chain.pem")
    root = load("real-sites/facebook.com.root.pem")
    trust = _trust_of("real-sites/facebook.com.root.pem")
    now = parse_certificate(chain[0]).facts.not_before_utc + timedelta(days=1)
    verdict = judge_chain((*chain, *root), now=now, trust=trust)
    assert verdict.report.is_trusted
    assert verdict.report.unneeded_sha256 == (parse_certificate(root[0]).facts.sha256_hex,)
    assert _kinds(verdict) == [ChainProblemKind.ROOT_SERVED]


def test_generated_good_chain(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A leaf plus intermediate verifies to the throwaway root."""
    leaf = pki.issue_leaf(dns_names=("good.example.test",))
    verdict = judge_chain(pki.served_chain_der(leaf), now=NOW, trust=trust)
    assert verdict.report.is_trusted
    assert len(verdict.report.verified_path_sha256) == 3
    assert verdict.anchor_is_public is False


def test_wrong_host_is_not_untrusted(pki: ThrowawayPki, trust: TrustStore) -> None:
    """Chain verification ignores the scanned name; wildcard and IP-only leaves verify."""
    wildcard = pki.issue_leaf(dns_names=("*.example.test",))
    assert judge_chain(pki.served_chain_der(wildcard), now=NOW, trust=trust).report.is_trusted
    ip_only = pki.issue_leaf(dns_names=(), ip_addresses=("127.0.0.1",))
    assert judge_chain(pki.served_chain_der(ip_only), now=NOW, trust=trust).report.is_trusted


def test_leaf_without_san_verifies_as_chain(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A SAN-less leaf is judged on its chain alone (the SAN finding is separate)."""
    leaf = pki.issue_leaf(dns_names=("legacy.test",), include_san=False)
    assert judge_chain(pki.served_chain_der(leaf), now=NOW, trust=trust).report.is_trusted


def test_client_only_eku_fails(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A leaf whose EKU lacks serverAuth does not verify, and the reason says so in words;
    the verifier's wording is kept apart."""
    for include_san in (True, False):
        leaf = pki.issue_leaf(
            extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH,), include_san=include_san
        )
        verdict = judge_chain(pki.served_chain_der(leaf), now=NOW, trust=trust)
        assert not verdict.report.is_trusted
        assert _kinds(verdict) == [ChainProblemKind.NOT_FOR_SERVERS]
        assert "not for TLS servers" in (verdict.report.error or "")
        assert "clientAuth" in (verdict.report.error or "")
        assert "serverAuth" in (verdict.report.error_detail or "")


def test_self_signed_leaf(trust: TrustStore) -> None:
    """A self-signed leaf is named as such, not as a missing issuer."""
    leaf = self_signed_leaf(dns_names=("appliance.test",), now_utc=NOW)
    verdict = judge_chain((leaf.der,), now=NOW, trust=trust)
    assert not verdict.report.is_trusted
    assert _kinds(verdict) == [ChainProblemKind.SELF_SIGNED_LEAF]
    assert verdict.report.is_complete


def test_pinned_self_signed_leaf_is_trusted() -> None:
    """A self-signed leaf that is itself in the trust store (--ca-file) is trusted."""
    leaf = self_signed_leaf(dns_names=("appliance.test",), now_utc=NOW)
    trust = TrustStore.from_certificates([leaf.certificate], source="pinned")
    verdict = judge_chain((leaf.der,), now=NOW, trust=trust)
    assert verdict.report.is_trusted
    assert verdict.problems == ()


def test_untrusted_root(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A chain to another root names that root."""
    other = ThrowawayPki.create(now_utc=NOW, root_name="Stranger Root")
    leaf = other.issue_leaf()
    verdict = judge_chain(leaf.chain_der(other.intermediate, other.root), now=NOW, trust=trust)
    assert not verdict.report.is_trusted
    assert _kinds(verdict) == [ChainProblemKind.UNTRUSTED_ROOT]
    assert "Stranger Root" in verdict.problems[0].message
    assert verdict.problems[0].cert_index == 2


def test_missing_intermediate_names_issuer_and_url() -> None:
    """A leaf served alone: the missing issuer's DN and the leaf's AIA URL are given."""
    root = CertificateAuthority.root(now_utc=NOW, common_name="Missing Test Root")
    intermediate = root.intermediate(common_name="Missing Test Intermediate")
    store = TrustStore.from_certificates([root.certificate], source="test")
    leaf = intermediate.issue_leaf(ca_issuer_urls=("http://127.0.0.1:8080/int.der",))
    verdict = judge_chain((leaf.der,), now=NOW, trust=store)
    report = verdict.report
    assert not report.is_complete
    assert report.missing_issuer == "CN=Missing Test Intermediate,O=certvigil test PKI"
    assert report.missing_issuer_urls == ("http://127.0.0.1:8080/int.der",)
    assert "http://127.0.0.1:8080/int.der" in verdict.problems[0].message
    fixed = judge_chain((leaf.der,), now=NOW, trust=store, fetched_der=(intermediate.der,))
    assert fixed.report.would_verify_with_fetched
    assert fixed.report.fetched_issuers_sha256 == (intermediate.issued.sha256_hex,)
    assert _kinds(fixed) == [ChainProblemKind.MISSING_INTERMEDIATE]
    useless = judge_chain((leaf.der,), now=NOW, trust=store, fetched_der=(root.der,))
    assert not useless.report.would_verify_with_fetched
    assert "did not complete" in useless.problems[0].message


def test_wrong_order() -> None:
    """Two intermediates served in reverse still verify but are reported misordered."""
    root = CertificateAuthority.root(now_utc=NOW)
    first = root.intermediate(common_name="First Level CA", path_length=1)
    second = first.intermediate(common_name="Second Level CA", path_length=0)
    store = TrustStore.from_certificates([root.certificate], source="two-level")
    leaf = second.issue_leaf()
    good = judge_chain(leaf.chain_der(second, first), now=NOW, trust=store)
    assert good.report.is_ordered and good.problems == ()
    swapped = judge_chain(leaf.chain_der(first, second), now=NOW, trust=store)
    assert swapped.report.is_trusted
    assert not swapped.report.is_ordered
    assert _kinds(swapped) == [ChainProblemKind.MISORDERED]


def test_path_length_violation(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A CA below a pathLen=0 intermediate breaks the chain; the reason names the
    constraint (the verifier says only that no issuer's signature matched)."""
    second = pki.intermediate.intermediate(common_name="Too Deep CA", path_length=None)
    verdict = judge_chain(
        second.issue_leaf().chain_der(second, pki.intermediate), now=NOW, trust=trust
    )
    assert not verdict.report.is_trusted
    assert _kinds(verdict) == [ChainProblemKind.PATH_TOO_LONG]
    assert verdict.problems[0].cert_index == 2
    assert "allows 0 intermediate CA(s) below it" in (verdict.report.error or "")
    assert verdict.report.error_detail


def test_unneeded_and_duplicate(pki: ThrowawayPki, trust: TrustStore) -> None:
    """Stray and repeated certificates are unneeded; the served root is named as such."""
    stray = ThrowawayPki.create(now_utc=NOW, root_name="Stray Root").intermediate
    leaf = pki.issue_leaf()
    served = leaf.chain_der(pki.intermediate, pki.intermediate, stray, pki.root)
    verdict = judge_chain(served, now=NOW, trust=trust)
    assert verdict.report.is_trusted
    assert _kinds(verdict) == [
        ChainProblemKind.DUPLICATE_CERTIFICATE,
        ChainProblemKind.UNNEEDED_CERTIFICATE,
        ChainProblemKind.ROOT_SERVED,
    ]
    assert [p.cert_index for p in verdict.problems] == [2, 3, 4]
    assert len(verdict.report.unneeded_sha256) == 3


def test_expired_intermediate(trust: TrustStore, pki: ThrowawayPki) -> None:
    """An expired intermediate is named at its position."""
    old = pki.root.intermediate(
        common_name="Old CA",
        not_before_utc=NOW - timedelta(days=400),
        not_after_utc=NOW - timedelta(days=1),
    )
    leaf = old.issue_leaf(not_before_utc=NOW - timedelta(days=30))
    verdict = judge_chain(leaf.chain_der(old), now=NOW, trust=trust)
    assert not verdict.report.is_trusted
    assert _kinds(verdict) == [ChainProblemKind.NOT_VALID_NOW]
    assert verdict.problems[0].cert_index == 1
    assert "Old CA" in verdict.problems[0].message


def test_sha1_intermediate_rejected() -> None:
    """A SHA-1-signed intermediate makes the chain fail with a readable reason."""
    root = CertificateAuthority.root(now_utc=NOW, key=KeySpec.RSA_2048)
    intermediate = root.intermediate(signature_hash="sha1")
    store = TrustStore.from_certificates([root.certificate], source="rsa root")
    leaf = intermediate.issue_leaf()
    verdict = judge_chain(leaf.chain_der(intermediate), now=NOW, trust=store)
    assert not verdict.report.is_trusted
    assert _kinds(verdict) == [ChainProblemKind.FORBIDDEN_SIGNATURE]
    assert 'certificate 1 "CN=certvigil Test Intermediate CA' in (verdict.report.error or "")
    assert "sha1WithRSAEncryption" in (verdict.report.error or "")
    assert "forbidden algorithm" in (verdict.report.error_detail or "")


def test_humanise_error() -> None:
    """Verifier debug text becomes a clause naming the certificate."""
    raw = (
        "validation failed: cert is not valid at validation time (encountered processing "
        "<Certificate(subject=<Name(CN=a.test)>, ...)>)"
    )
    assert humanise_error(raw) == "a certificate is not valid at this time (at CN=a.test)"


def test_empty_chain_refused(trust: TrustStore) -> None:
    """Judging nothing is a programming error with a clear message."""
    with pytest.raises(ValueError, match="at least the leaf"):
        judge_chain((), now=NOW, trust=trust)


def _fresh_pki() -> tuple[ThrowawayPki, TrustStore]:
    pki = ThrowawayPki.create(now_utc=NOW)
    return pki, TrustStore.from_certificates([pki.root.certificate], source="fresh")


def test_reused_upper_path_gives_the_same_verdicts() -> None:
    """After one full verification, later leaves under the same CA get exact verdicts."""
    pki, trust = _fresh_pki()
    first = pki.issue_leaf(dns_names=("a.example.test",))
    verdict = judge_chain(pki.served_chain_der(first), now=NOW, trust=trust)
    assert verdict.report.is_trusted
    assert len(trust.verified_upper_paths) == 1
    second = pki.issue_leaf(dns_names=("b.example.test",))
    again = judge_chain(pki.served_chain_der(second), now=NOW, trust=trust)
    assert again.report.is_trusted
    assert again.report.verified_path_sha256[1:] == verdict.report.verified_path_sha256[1:]
    expired = pki.issue_leaf(not_before_utc=NOW - timedelta(days=10), valid_days=5)
    assert not judge_chain(pki.served_chain_der(expired), now=NOW, trust=trust).report.is_trusted
    client_only = pki.issue_leaf(extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH,))
    assert not judge_chain(
        pki.served_chain_der(client_only), now=NOW, trust=trust
    ).report.is_trusted
    stranger = ThrowawayPki.create(now_utc=NOW).issue_leaf()
    foreign = judge_chain(stranger.chain_der(pki.intermediate), now=NOW, trust=trust)
    assert not foreign.report.is_trusted


def test_reuse_respects_upper_validity() -> None:
    """Outside the upper path's validity the full verification decides (and refuses)."""
    pki, trust = _fresh_pki()
    leaf = pki.issue_leaf(valid_days=20000)
    assert judge_chain(pki.served_chain_der(leaf), now=NOW, trust=trust).report.is_trusted
    later = NOW + timedelta(days=365 * 6)  # past the intermediate's five years
    verdict = judge_chain(pki.served_chain_der(leaf), now=later, trust=trust)
    assert not verdict.report.is_trusted
    assert verdict.problems[0].cert_index == 1


def test_name_constraints_are_never_skipped() -> None:
    """Under a name-constrained CA each leaf's names are checked, cached path or not."""
    root = CertificateAuthority.root(now_utc=NOW)
    trust = TrustStore.from_certificates([root.certificate], source="constrained")
    constrained = root.intermediate(
        name_constraints=x509.NameConstraints(
            permitted_subtrees=[x509.DNSName("corp.example")], excluded_subtrees=None
        )
    )
    inside = constrained.issue_leaf(dns_names=("www.corp.example",))
    assert judge_chain(inside.chain_der(constrained), now=NOW, trust=trust).report.is_trusted
    outside = constrained.issue_leaf(dns_names=("www.elsewhere.example",))
    verdict = judge_chain(outside.chain_der(constrained), now=NOW, trust=trust)
    assert not verdict.report.is_trusted
    assert trust.verified_upper_paths == {}


def test_cross_signed_anchor_copy_is_named() -> None:
    """A served cross-sign of the trusted root is named as such, not as a stray."""
    root = CertificateAuthority.root(now_utc=NOW, common_name="New Root")
    old_root = CertificateAuthority.root(now_utc=NOW, common_name="Old Root")
    cross = old_root.intermediate(common_name="New Root", key=root.private_key, path_length=None)
    intermediate = root.intermediate()
    leaf = intermediate.issue_leaf()
    trust = TrustStore.from_certificates([root.certificate], source="new root")
    verdict = judge_chain(leaf.chain_der(intermediate, cross), now=NOW, trust=trust)
    assert verdict.report.is_trusted
    assert _kinds(verdict) == [ChainProblemKind.UNNEEDED_CERTIFICATE]
    assert "cross-signed copy of the trust anchor" in verdict.problems[0].message
    old_trust = TrustStore.from_certificates([old_root.certificate], source="old root")
    via_cross = judge_chain(leaf.chain_der(intermediate, cross), now=NOW, trust=old_trust)
    assert via_cross.report.is_trusted
    assert via_cross.problems == ()


def test_chain_error_names_the_cause_and_keeps_the_verifier_text_apart() -> None:
    """A self-signed leaf's error says "self-signed" and an untrusted root's names the root
    and the trust store; the verifier's own words are kept in ``error_detail``."""
    pki = ThrowawayPki.create(now_utc=NOW)
    trust = TrustStore.from_certificates([pki.root.certificate], source="the test root")
    alone = self_signed_leaf(now_utc=NOW)
    report = judge_chain(alone.chain_der(), now=NOW, trust=trust).report
    assert report.error is not None and "self-signed" in report.error
    assert "2.5.29.35" not in report.error
    assert report.error_detail is not None and "2.5.29.35" in report.error_detail
    other = ThrowawayPki.create(now_utc=NOW, root_name="Stranger Root")
    leaf = other.issue_leaf()
    served = (*other.served_chain_der(leaf), other.root.der)
    report = judge_chain(served, now=NOW, trust=trust).report
    assert report.error is not None
    assert 'root "CN=Stranger Root,O=certvigil test PKI"' in report.error
    assert "not in the trust store" in report.error
    assert "path length" not in report.error
    assert report.error_detail is not None and report.error_detail != report.error


def test_trust_is_reported_apart_from_time() -> None:
    """An expired leaf under a trusted chain is `trusted_ignoring_validity` (renewal alone
    fixes it) and its error says when it expired; the same leaf under an unknown root, or
    a trusted chain, say what they are."""
    pki = ThrowawayPki.create(now_utc=NOW - timedelta(days=365))
    trust = TrustStore.from_certificates([pki.root.certificate], source="test")
    expired = pki.issue_leaf(
        not_before_utc=NOW - timedelta(days=100), not_after_utc=NOW - timedelta(days=2)
    )
    report = judge_chain(pki.served_chain_der(expired), now=NOW, trust=trust).report
    assert not report.is_trusted
    assert report.trusted_ignoring_validity
    assert report.error is not None and "expired on" in report.error
    early = pki.issue_leaf(
        not_before_utc=NOW + timedelta(days=2), not_after_utc=NOW + timedelta(days=90)
    )
    early_report = judge_chain(pki.served_chain_der(early), now=NOW, trust=trust).report
    assert early_report.trusted_ignoring_validity
    assert early_report.error is not None and "not valid before" in early_report.error
    stranger = TrustStore.from_certificates(
        [ThrowawayPki.create(now_utc=NOW).root.certificate], source="another root"
    )
    report = judge_chain(pki.served_chain_der(expired), now=NOW, trust=stranger).report
    assert not report.trusted_ignoring_validity
    good = pki.issue_leaf(not_before_utc=NOW - timedelta(days=1))
    assert judge_chain(
        pki.served_chain_der(good), now=NOW, trust=trust
    ).report.trusted_ignoring_validity


def test_unknown_root_not_served_is_named_as_the_issuer_outside_the_store() -> None:
    """Leaf and intermediate served under a root the store lacks: the error says which
    certificate is issued by which name, which is not in the trust store."""
    other = ThrowawayPki.create(now_utc=NOW, root_name="Private Root")
    trust = TrustStore.from_certificates(
        [ThrowawayPki.create(now_utc=NOW).root.certificate], source="test"
    )
    leaf = other.issue_leaf()
    report = judge_chain(other.served_chain_der(leaf), now=NOW, trust=trust).report
    assert report.error is not None
    assert (
        '"CN=certvigil Test Intermediate CA,O=certvigil test PKI" is issued by '
        '"CN=Private Root,O=certvigil test PKI", which is neither served nor in the trust store'
    ) in report.error
    assert "candidates exhausted" not in report.error
