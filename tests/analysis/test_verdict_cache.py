"""The analysis caches: a verdict reused at another ``now`` equals a fresh judgement.

Each case judges with one trust store whose cache is warm (earlier judgements at other
times) and compares with a trust store built from the same anchors that has never seen
the chain: every field of the verdict and of the whole report must be equal.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from certvigil.analysis import hostname
from certvigil.analysis.certificate import parse_certificate
from certvigil.analysis.chain import judge_chain
from certvigil.analysis.findings import certificate_findings
from certvigil.analysis.hostname import match_hostname
from certvigil.analysis.judge import judge
from certvigil.analysis.model import CertificateFacts
from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.report import analyse_chain_der
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import CertificateAuthority, ThrowawayPki
from certvigil.observed.endpoint import EndpointObservation

from .conftest import NOW, observation

SECOND = timedelta(seconds=1)


def _fresh(trust: TrustStore) -> TrustStore:
    """A store with the same anchors and empty caches."""
    public = [a for a in trust.anchors if _sha256(a) in trust.public_anchor_sha256]
    others = [a for a in trust.anchors if _sha256(a) not in trust.public_anchor_sha256]
    return TrustStore.from_certificates(others, source=trust.source, public=public)


def _sha256(certificate: x509.Certificate) -> str:
    return certificate.fingerprint(hashes.SHA256()).hex()


def _moments(*instants: datetime) -> list[datetime]:
    """Each instant, one second before it and one second after it."""
    return [t + d for t in instants for d in (-SECOND, timedelta(0), SECOND)]


def _assert_same_everywhere(
    chain: Sequence[bytes], trust: TrustStore, moments: Sequence[datetime], name: str
) -> None:
    for now in moments:
        # The warm store has seen the chain at every earlier moment (and at NOW).
        cached = analyse_chain_der(chain, now=now, trust=trust, expected_name=name)
        fresh = analyse_chain_der(chain, now=now, trust=_fresh(trust), expected_name=name)
        assert cached == fresh, now
        assert judge_chain(chain, now=now, trust=trust) == judge_chain(
            chain, now=now, trust=_fresh(trust)
        )


def test_time_moving_past_the_leaf_validity_gives_fresh_verdicts() -> None:
    """Before, at and after the leaf's notBefore and notAfter, cached equals fresh."""
    pki = ThrowawayPki.create(now_utc=NOW)
    leaf = pki.issue_leaf(
        dns_names=("a.example.test",), not_before_utc=NOW + timedelta(days=1), valid_days=30
    )
    trust = TrustStore.from_certificates([pki.root.certificate], source="pki")
    chain = pki.served_chain_der(leaf)
    judge_chain(chain, now=NOW, trust=trust)
    not_before = leaf.certificate.not_valid_before_utc
    not_after = leaf.certificate.not_valid_after_utc
    moments = _moments(NOW, not_before, not_before + timedelta(days=10), not_after)
    _assert_same_everywhere(chain, trust, moments, "a.example.test")
    verdicts = {now: judge_chain(chain, now=now, trust=trust).report.is_trusted for now in moments}
    # The chain is trusted exactly inside the leaf's validity period.
    assert verdicts == {now: not_before <= now <= not_after for now in moments}


def test_either_side_of_each_boundary_from_any_first_instant_gives_fresh_verdicts() -> None:
    """A kept verdict holds for the instants at which every certificate and anchor is in
    its state, earlier ones included: notBefore and notAfter are both inside the
    period, a second out is out, whichever instant the verdict was first reached at."""
    pki = ThrowawayPki.create(now_utc=NOW)
    leaf = pki.issue_leaf(
        dns_names=("g.example.test",), not_before_utc=NOW + timedelta(days=1), valid_days=30
    )
    chain = pki.served_chain_der(leaf)
    tick = SECOND  # the verifier reads the time to the second
    not_before = leaf.certificate.not_valid_before_utc
    not_after = leaf.certificate.not_valid_after_utc
    edges = [t + d for t in (not_before, not_after) for d in (-tick, timedelta(0), tick)]
    for start in edges:
        trust = TrustStore.from_certificates([pki.root.certificate], source="pki")
        judge_chain(chain, now=start, trust=trust)
        for now in edges:
            warm = judge_chain(chain, now=now, trust=trust)
            assert warm == judge_chain(chain, now=now, trust=_fresh(trust)), (start, now)
            assert warm.report.is_trusted is (not_before <= now <= not_after)


def test_time_moving_past_the_intermediate_and_the_anchor_gives_fresh_verdicts() -> None:
    """The expiry of the intermediate (served) and of the root (an anchor) both count."""
    root = CertificateAuthority.root(
        now_utc=NOW, not_before_utc=NOW - timedelta(days=5), not_after_utc=NOW + timedelta(days=90)
    )
    intermediate = root.intermediate(not_after_utc=NOW + timedelta(days=60))
    leaf = intermediate.issue_leaf(dns_names=("b.example.test",), valid_days=200)
    trust = TrustStore.from_certificates([root.certificate], source="short root")
    chain = leaf.chain_der(intermediate)
    assert judge_chain(chain, now=NOW, trust=trust).report.is_trusted
    moments = _moments(
        NOW,
        intermediate.certificate.not_valid_after_utc,
        root.certificate.not_valid_after_utc,
    )
    _assert_same_everywhere(chain, trust, moments, "b.example.test")
    after_root = root.certificate.not_valid_after_utc + SECOND
    assert not judge_chain(chain, now=after_root, trust=trust).report.is_trusted


def test_an_expired_anchor_not_on_the_path_still_counts() -> None:
    """Another anchor changing state is a reason to judge again, and gives the same."""
    pki = ThrowawayPki.create(now_utc=NOW)
    other = CertificateAuthority.root(
        common_name="Other Root", now_utc=NOW, not_after_utc=NOW + timedelta(days=3)
    )
    trust = TrustStore.from_certificates(
        [pki.root.certificate, other.certificate], source="two roots"
    )
    chain = pki.served_chain_der(pki.issue_leaf(dns_names=("c.example.test",)))
    first = judge_chain(chain, now=NOW, trust=trust)
    later = NOW + timedelta(days=4)
    again = judge_chain(chain, now=later, trust=trust)
    assert again == judge_chain(chain, now=later, trust=_fresh(trust))
    assert again == first


def test_a_verdict_is_reused_while_nothing_changes_state() -> None:
    """An hour later the same verdict object is returned: the cache is in use."""
    pki = ThrowawayPki.create(now_utc=NOW)
    trust = TrustStore.from_certificates([pki.root.certificate], source="pki")
    chain = pki.served_chain_der(pki.issue_leaf(dns_names=("d.example.test",)))
    first = judge_chain(chain, now=NOW, trust=trust)
    assert judge_chain(chain, now=NOW + timedelta(hours=1), trust=trust) is first
    assert len(trust.chain_verdicts) == 1


def test_another_trust_store_never_sees_the_verdict() -> None:
    """A chain trusted under one store is judged afresh, and untrusted, under another."""
    pki = ThrowawayPki.create(now_utc=NOW)
    stranger = ThrowawayPki.create(now_utc=NOW, root_name="Stranger Root")
    mine = TrustStore.from_certificates([pki.root.certificate], source="mine")
    theirs = TrustStore.from_certificates([stranger.root.certificate], source="theirs")
    chain = pki.served_chain_der(pki.issue_leaf(dns_names=("e.example.test",)))
    assert judge_chain(chain, now=NOW, trust=mine).report.is_trusted
    verdict = judge_chain(chain, now=NOW, trust=theirs)
    assert not verdict.report.is_trusted
    assert verdict == judge_chain(chain, now=NOW, trust=_fresh(theirs))
    assert judge_chain(chain, now=NOW, trust=mine).report.is_trusted


@pytest.mark.parametrize(
    "name", ["f.example.test", "other.example.test", "F.EXAMPLE.TEST.", "127.0.0.1"]
)
def test_another_hostname_is_matched_afresh(name: str) -> None:
    """The verdict is shared; the hostname check and its findings are per name."""
    pki = ThrowawayPki.create(now_utc=NOW)
    trust = TrustStore.from_certificates([pki.root.certificate], source="pki")
    chain = pki.served_chain_der(pki.issue_leaf(dns_names=("f.example.test",)))
    analyse_chain_der(chain, now=NOW, trust=trust, expected_name="f.example.test")
    cached = analyse_chain_der(chain, now=NOW + SECOND, trust=trust, expected_name=name)
    fresh = analyse_chain_der(chain, now=NOW + SECOND, trust=_fresh(trust), expected_name=name)
    assert cached == fresh
    assert cached.hostname_matches is (name.lower().rstrip(".") == "f.example.test")


def test_whole_reports_match_across_a_threshold_and_expiry() -> None:
    """``judge`` on one observation at many times: warm and cold stores agree."""
    pki = ThrowawayPki.create(now_utc=NOW)
    leaf = pki.issue_leaf(dns_names=("www.example.test",), valid_days=40)
    trust = TrustStore.from_certificates([pki.root.certificate], source="pki")
    handshake = observation(pki.served_chain_der(leaf))
    seen = EndpointObservation(target=handshake.target, observed_at_utc=NOW, handshake=handshake)
    not_after = leaf.certificate.not_valid_after_utc
    moments = [NOW, NOW + timedelta(days=15), *_moments(not_after - timedelta(days=7), not_after)]
    for now in moments:
        warm = judge(seen, now, trust)
        cold = judge(seen, now, _fresh(trust))
        assert warm == cold, now
    codes = [f.code for f in judge(seen, not_after + SECOND, trust).findings]
    assert "expired" in codes


@pytest.mark.parametrize(
    ("sans", "cn", "names"),
    [
        (
            ("*.example.test", "example.test"),
            None,
            ["a.example.test", "A.Example.Test.", "a.b.example.test", "example.test"],
        ),
        (("xn--bcher-kva.example",), None, ["bücher.example", "BÜCHER.example", "buecher.example"]),
        ((), "legacy.example.test", ["legacy.example.test", "other.example.test"]),
    ],
)
def test_hostname_answers_kept_equal_fresh_ones(
    sans: tuple[str, ...], cn: str | None, names: list[str]
) -> None:
    """Asked twice, with the same leaf or another, the kept answer is the computed one."""
    pki = ThrowawayPki.create(now_utc=NOW)
    leaf = pki.issue_leaf(dns_names=sans, common_name=cn, include_san=bool(sans))
    other = pki.issue_leaf(dns_names=("unrelated.example.test",))
    facts = parse_certificate(leaf.der).facts
    other_facts = parse_certificate(other.der).facts
    for name in [*names, *names]:
        for f in (facts, other_facts):
            computed = hostname._match(name, f.san_dns, f.san_ip, f.subject_cn)
            assert match_hostname(f, name) == computed
    assert match_hostname(facts, names[0]).matches
    assert not match_hostname(other_facts, names[0]).matches


def test_kept_certificate_findings_follow_the_policy_and_the_facts() -> None:
    """The time-free findings kept per certificate change with the policy, the staple,
    and with facts that differ under the same fingerprint."""
    pki = ThrowawayPki.create(now_utc=NOW)
    leaf = parse_certificate(pki.issue_leaf(must_staple=True).der).facts
    lenient, strict = AnalysisPolicy(), AnalysisPolicy(min_ec_bits=384)

    def codes(
        facts: CertificateFacts, policy: AnalysisPolicy, staple: bool | None = None
    ) -> list[str]:
        found = certificate_findings(
            [facts],
            now=NOW,
            policy=policy,
            path_indexes=(0,),
            is_public=False,
            has_ocsp_staple=staple,
        )
        return [f.code for f in found]

    for _ in range(2):
        assert "weak_key" not in codes(leaf, lenient)
        assert "weak_key" in codes(leaf, strict)
        assert "must_staple_not_stapled" in codes(leaf, lenient, staple=False)
        assert "must_staple_not_stapled" not in codes(leaf, lenient, staple=True)
    small = dataclasses.replace(leaf, key_bits=160)
    assert "weak_key" in codes(small, lenient)
    assert "weak_key" not in codes(leaf, lenient)
