"""judge(): one observation, judged whole in one pass, the same again from its JSON form."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certvigil.analysis.codes import FindingCode
from certvigil.analysis.judge import judge
from certvigil.analysis.model import Severity
from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.report import analyse_endpoint
from certvigil.analysis.revocation_plan import plan_issuer_fetches
from certvigil.analysis.thresholds import thresholds_from_days
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.observed.codec import observation_from_json, observation_to_json
from certvigil.observed.endpoint import EndpointObservation, ObservedStep
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.observed.issuers import IssuerFetch
from certvigil.observed.revocation import (
    CertificateRevocationObservation,
    RevocationFetch,
    RevocationMethod,
    RevocationObservation,
)
from certvigil.observed.tls_config import ProtocolSupport, TlsConfigObservation
from certvigil.tls.records import TlsProtocol
from tests.support.ocsp_responder import Revoked, build_crl

from .conftest import NOW, observation

HOST = "www.example.test"
CRL_URL = "http://127.0.0.1:8080/int.crl"


def observed(handshake: TlsObservation | ProbeFailure, **parts: object) -> EndpointObservation:
    """An endpoint observation around ``handshake``."""
    return EndpointObservation(
        target=handshake.target,
        observed_at_utc=handshake.observed_at_utc,
        handshake=handshake,
        **parts,  # type: ignore[arg-type]
    )


def crl_revocation(
    pki: ThrowawayPki, leaf_der: bytes, *, revoked_serial: int | None
) -> RevocationObservation:
    """The leaf checked over a real CRL of the intermediate (listing the serial if given)."""
    crl = build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=NOW - timedelta(hours=1),
        next_update_utc=NOW + timedelta(days=7),
        revoked=[(revoked_serial, Revoked(revoked_at_utc=NOW - timedelta(days=1)))]
        if revoked_serial is not None
        else [],
    )
    fetch = RevocationFetch(
        method=RevocationMethod.CRL, url=CRL_URL, fetched_at_utc=NOW, response_der=crl
    )
    return RevocationObservation(
        observed_at_utc=NOW,
        staple_requested=True,
        certificates=(
            CertificateRevocationObservation(
                cert_index=0,
                certificate_der=leaf_der,
                issuer_der=pki.intermediate.der,
                fetches=(fetch,),
            ),
        ),
    )


def tls10_config(handshake: TlsObservation) -> TlsConfigObservation:
    """Protocol probes that found TLS 1.0 and 1.2 accepted, with one good suite each."""
    accepted = {TlsProtocol.TLS_1_0, TlsProtocol.TLS_1_2}
    return TlsConfigObservation(
        target=handshake.target,
        peer_address=handshake.peer_address,
        observed_at_utc=NOW,
        protocols=tuple(
            ProtocolSupport(
                protocol=p,
                is_accepted=p in accepted,
                cipher_suites=(0xC02F,)
                if p is TlsProtocol.TLS_1_2
                else (0xC013,) * (p in accepted),
                rejection=None if p in accepted else "protocol_version",
            )
            for p in TlsProtocol
        ),
        fallback_scsv=True,
        secure_renegotiation=True,
        compression=False,
    )


def test_a_handshake_alone_is_judged_as_the_certificate_analysis_judges_it(
    pki: ThrowawayPki, trust: TrustStore
) -> None:
    """With nothing beyond the handshake, judge() says what analyse_endpoint says."""
    leaf = pki.issue_leaf(dns_names=("other.example.test",))
    handshake = observation(pki.served_chain_der(leaf), host=HOST)

    report = judge(observed(handshake), NOW, trust)
    basic = analyse_endpoint(handshake, now=NOW, trust=trust)

    assert report.findings == basic.findings
    assert [f.code for f in report.findings] == [FindingCode.HOSTNAME_MISMATCH]
    assert report.certificates == basic.certificates and report.chain == basic.chain
    assert report.observed is not None and report.observed.handshake is handshake


def test_a_failed_handshake_gives_a_failed_report_that_keeps_the_observation(
    trust: TrustStore,
) -> None:
    """A failure is carried, not judged, and the observation stays with it."""
    failure = ProbeFailure(
        target=observation([]).target,
        kind=FailureKind.CONNECTION_REFUSED,
        detail="refused",
        observed_at_utc=NOW,
    )
    obs = observed(failure)

    report = judge(obs, NOW, trust)

    assert report.is_failed and report.findings == () and report.observed is obs


def test_revocation_protocols_and_grade_are_judged_in_the_same_pass(
    pki: ThrowawayPki, trust: TrustStore
) -> None:
    """A revoked leaf on a server that accepts TLS 1.0: revoked and protocol_tls10 in one
    report, sorted once, and the grade is F because the revocation reached it."""
    leaf = pki.issue_leaf(dns_names=(HOST,), crl_urls=(CRL_URL,))
    handshake = observation(pki.served_chain_der(leaf), host=HOST)
    obs = observed(
        handshake,
        revocation=crl_revocation(pki, leaf.der, revoked_serial=leaf.certificate.serial_number),
        tls_config=tls10_config(handshake),
        steps=(ObservedStep.REVOCATION, ObservedStep.TLS_CONFIG),
    )

    report = judge(obs, NOW, trust)
    codes = [f.code for f in report.findings]

    assert FindingCode.REVOKED in codes and FindingCode.PROTOCOL_TLS10 in codes
    assert report.revocation is not None and report.revocation.is_revoked
    assert report.deep is not None and report.deep.grade.grade == "F"
    ranks = [f.severity.rank for f in report.findings]
    assert ranks == sorted(ranks, reverse=True)


def test_a_good_crl_grades_the_configuration_alone(pki: ThrowawayPki, trust: TrustStore) -> None:
    """The same server with a CRL that does not list the leaf: not revoked, graded on the
    protocols (TLS 1.0 caps it below A)."""
    leaf = pki.issue_leaf(dns_names=(HOST,), crl_urls=(CRL_URL,))
    handshake = observation(pki.served_chain_der(leaf), host=HOST)
    obs = observed(
        handshake,
        revocation=crl_revocation(pki, leaf.der, revoked_serial=None),
        tls_config=tls10_config(handshake),
    )

    report = judge(obs, NOW, trust)

    assert report.revocation is not None and not report.revocation.is_revoked
    assert FindingCode.REVOKED not in [f.code for f in report.findings]
    assert report.deep is not None and report.deep.grade.grade not in ("A", "A+", "F")


def test_rejudging_the_stored_form_gives_the_same_report(
    pki: ThrowawayPki, trust: TrustStore
) -> None:
    """Observation -> JSON -> observation -> judge equals judging the original."""
    leaf = pki.issue_leaf(dns_names=(HOST,), crl_urls=(CRL_URL,))
    handshake = observation(pki.served_chain_der(leaf), host=HOST)
    obs = observed(
        handshake,
        revocation=crl_revocation(pki, leaf.der, revoked_serial=leaf.certificate.serial_number),
        tls_config=tls10_config(handshake),
    )

    again = observation_from_json(observation_to_json(obs))

    assert judge(again, NOW, trust) == judge(obs, NOW, trust)


def test_rejudging_with_a_new_trust_store_trusts_an_internal_ca(pki: ThrowawayPki) -> None:
    """An endpoint untrusted under one store is trusted after its root is added."""
    leaf = pki.issue_leaf(dns_names=(HOST,))
    obs = observed(observation(pki.served_chain_der(leaf), host=HOST))
    other = ThrowawayPki.create(now_utc=NOW)

    before = judge(obs, NOW, TrustStore.from_certificates([other.root.certificate], source="x"))
    after = judge(
        obs,
        NOW,
        TrustStore.from_certificates(
            [other.root.certificate, pki.root.certificate], source="x + internal"
        ),
    )

    assert before.chain is not None and not before.chain.is_trusted
    assert after.chain is not None and after.chain.is_trusted and after.findings == ()


def test_the_policy_passed_in_decides_the_expiry_finding(
    pki: ThrowawayPki, trust: TrustStore
) -> None:
    """A leaf 20 days from expiry: a finding under 30-day thresholds, none under 14."""
    leaf = pki.issue_leaf(dns_names=(HOST,), not_before_utc=NOW - timedelta(days=70), valid_days=90)
    obs = observed(observation(pki.served_chain_der(leaf), host=HOST))

    wide = judge(obs, NOW, trust, AnalysisPolicy(expiry_thresholds=thresholds_from_days((30, 7))))
    narrow = judge(obs, NOW, trust, AnalysisPolicy(expiry_thresholds=thresholds_from_days((14, 7))))

    assert [f.code for f in wide.findings] == [FindingCode.EXPIRES_SOON]
    assert narrow.findings == ()


def test_cut_steps_and_failed_probes_are_said(pki: ThrowawayPki, trust: TrustStore) -> None:
    """A step the deadline cut gets its note; protocol probes that failed get theirs."""
    leaf = pki.issue_leaf(dns_names=(HOST,))
    handshake = observation(pki.served_chain_der(leaf), host=HOST)
    cut = observed(
        handshake,
        steps=(ObservedStep.REVOCATION, ObservedStep.TLS_CONFIG),
        cut_steps=(ObservedStep.REVOCATION, ObservedStep.TLS_CONFIG),
        deadline_s=3.0,
    )
    failed = observed(
        handshake,
        tls_config=ProbeFailure(
            target=handshake.target,
            kind=FailureKind.HANDSHAKE_FAILURE,
            detail="no protocol accepted",
            observed_at_utc=NOW,
        ),
    )

    notes = [(f.code, f.severity, f.message) for f in judge(cut, NOW, trust).findings]
    (note,) = judge(failed, NOW, trust).findings

    assert notes == [
        (
            FindingCode.DEADLINE_REACHED,
            Severity.INFO,
            "the revocation check not finished within the endpoint's deadline of 3 s (--deadline)",
        ),
        (
            FindingCode.TLS_CONFIG_NOT_ASSESSED,
            Severity.INFO,
            "protocols and ciphers not finished within the endpoint's deadline of 3 s (--deadline)",
        ),
    ]
    assert note.code == FindingCode.TLS_CONFIG_NOT_ASSESSED
    assert note.message.endswith("handshake_failure: no protocol accepted")


def test_fetched_issuers_complete_the_chain(pki: ThrowawayPki, trust: TrustStore) -> None:
    """The plan names the AIA URL of a leaf served alone; with the fetch in the
    observation the judgement completes the chain and the plan asks for nothing more."""
    url = "http://127.0.0.1:8080/intermediate.der"
    leaf = pki.issue_leaf(dns_names=(HOST,), ca_issuer_urls=(url,))
    handshake = observation([leaf.der], host=HOST)

    assert plan_issuer_fetches(handshake.chain_der, now=NOW, trust=trust) == (url,)
    assert plan_issuer_fetches(handshake.chain_der, now=NOW, trust=trust, tried_urls={url}) == ()
    fetched = (pki.intermediate.der,)
    assert plan_issuer_fetches(handshake.chain_der, now=NOW, trust=trust, fetched_der=fetched) == ()

    report = judge(
        observed(handshake, issuer_fetches=(IssuerFetch(url=url, certificates_der=fetched),)),
        NOW,
        trust,
    )

    assert report.chain is not None and report.chain.would_verify_with_fetched
    (finding,) = report.findings
    assert (finding.code, finding.severity) == (FindingCode.INCOMPLETE_CHAIN, Severity.WARNING)


def test_an_unreadable_leaf_plans_no_fetch(trust: TrustStore) -> None:
    """Bytes that are not a certificate give an empty plan, not an exception."""
    assert plan_issuer_fetches((b"not a certificate",), now=NOW, trust=trust) == ()
    assert plan_issuer_fetches((), now=NOW, trust=trust) == ()


def test_a_naive_now_is_refused(pki: ThrowawayPki, trust: TrustStore) -> None:
    """judge() states the rule rather than comparing naive and aware times."""
    obs = observed(observation(pki.served_chain_der(pki.issue_leaf(dns_names=(HOST,)))))

    with pytest.raises(ValueError, match="timezone-aware"):
        judge(obs, NOW.replace(tzinfo=None), trust)
