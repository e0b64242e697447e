"""OCSP checking against a real responder on loopback: statuses, freshness, signers."""

from __future__ import annotations

from datetime import timedelta

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from certvigil.analysis.revocation import judge_revocation, revocation_findings
from certvigil.analysis.revocation_model import (
    CertificateRevocation,
    RevocationReport,
    RevocationStatus,
)
from certvigil.demo.pki import CertificateAuthority, ThrowawayPki
from certvigil.demo.servers import closed_port
from certvigil.observed.revocation import FetchFailureKind, RevocationMethod
from certvigil.probe.ocsp_fetch import GET_MAX_ENCODED_BYTES, ocsp_get_url
from certvigil.probe.revocation import RevocationOptions
from tests.revocation.helpers import check, issue, observe, utc_now
from tests.support.ocsp_responder import OcspResponder, ResponseMode, RevocationServer, Revoked


def _leaf_verdict(report: RevocationReport) -> CertificateRevocation:
    return next(c for c in report.certificates if c.cert_index == 0)


def test_good_leaf_is_good_by_ocsp(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A leaf the responder calls good is good, decided by OCSP, signed by the issuer."""
    leaf = issue(pki, server)
    verdict = _leaf_verdict(check(pki.served_chain_der(leaf)))
    assert verdict.status is RevocationStatus.GOOD
    assert verdict.decided_by is RevocationMethod.OCSP
    assert verdict.methods[0].signed_by == "issuer"
    assert ("GET", "/ocsp") not in server.requests_seen  # GET carries the request in the path
    assert server.requests_seen[0][0] == "GET"


def test_revoked_leaf_carries_time_and_reason(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A revoked leaf is revoked with the responder's time and reason, a critical finding."""
    leaf = issue(pki, server, good=False)
    revoked_at = (utc_now() - timedelta(days=3)).replace(microsecond=0)
    assert server.responder is not None
    server.responder.statuses[leaf.certificate.serial_number] = Revoked(
        revoked_at_utc=revoked_at, reason=x509.ReasonFlags.key_compromise
    )
    report = check(pki.served_chain_der(leaf))
    verdict = _leaf_verdict(report)
    assert verdict.status is RevocationStatus.REVOKED
    assert verdict.revoked_at_utc == revoked_at
    assert verdict.revocation_reason == "key_compromise"
    assert report.is_revoked
    findings = revocation_findings(report)
    assert findings[0].code == "revoked"
    assert findings[0].severity.value == "critical"


def test_unknown_serial_is_unknown_not_good(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A serial the responder does not know is reported unknown, with a warning."""
    leaf = issue(pki, server, good=False)
    report = check(pki.served_chain_der(leaf))
    assert _leaf_verdict(report).status is RevocationStatus.UNKNOWN
    assert "ocsp_status_unknown" in {f.code for f in revocation_findings(report)}


def test_expired_response_is_stale(pki: ThrowawayPki, server: RevocationServer) -> None:
    """An answer whose nextUpdate has passed is stale, never good."""
    leaf = issue(pki, server)
    assert server.responder is not None
    server.responder.mode = ResponseMode.EXPIRED
    report = check(pki.served_chain_der(leaf))
    assert _leaf_verdict(report).status is RevocationStatus.STALE_RESPONSE
    assert "ocsp_response_stale" in {f.code for f in revocation_findings(report)}


def test_response_from_the_future_is_stale(pki: ThrowawayPki, server: RevocationServer) -> None:
    """An answer whose thisUpdate lies beyond the allowed clock skew is stale."""
    leaf = issue(pki, server)
    assert server.responder is not None
    server.responder.mode = ResponseMode.FUTURE
    assert _leaf_verdict(check(pki.served_chain_der(leaf))).status is (
        RevocationStatus.STALE_RESPONSE
    )


def test_response_without_next_update_ages_out(pki: ThrowawayPki, server: RevocationServer) -> None:
    """Without nextUpdate an answer is fresh for a week after thisUpdate, then stale."""
    leaf = issue(pki, server)
    assert server.responder is not None
    server.responder.mode = ResponseMode.NO_NEXT_UPDATE
    server.responder.age = timedelta(days=1)
    assert _leaf_verdict(check(pki.served_chain_der(leaf))).status is RevocationStatus.GOOD
    server.responder.age = timedelta(days=8)
    assert _leaf_verdict(check(pki.served_chain_der(leaf))).status is (
        RevocationStatus.STALE_RESPONSE
    )


def test_bad_signature_is_invalid(pki: ThrowawayPki, server: RevocationServer) -> None:
    """An answer whose signature does not verify is invalid, never good."""
    leaf = issue(pki, server)
    assert server.responder is not None
    server.responder.mode = ResponseMode.BAD_SIGNATURE
    report = check(pki.served_chain_der(leaf))
    verdict = _leaf_verdict(report)
    assert verdict.status is RevocationStatus.INVALID_RESPONSE
    assert "signature" in verdict.methods[0].detail
    assert "ocsp_response_invalid" in {f.code for f in revocation_findings(report)}


def test_authorised_delegated_responder_is_accepted(pki: ThrowawayPki) -> None:
    """A responder certificate issued by the issuer with id-kp-OCSPSigning may sign."""
    delegate = pki.intermediate.issue_leaf(
        dns_names=(),
        common_name="certvigil OCSP responder",
        extended_key_usage=(ExtendedKeyUsageOID.OCSP_SIGNING,),
    )
    responder = OcspResponder(issuer=pki.intermediate.issued, signer=delegate, clock=utc_now)
    with RevocationServer(responder=responder) as server:
        leaf = issue(pki, server)
        verdict = _leaf_verdict(check(pki.served_chain_der(leaf)))
    assert verdict.status is RevocationStatus.GOOD
    assert verdict.methods[0].signed_by == "delegated_responder"


def test_delegated_responder_by_name_is_accepted(pki: ThrowawayPki) -> None:
    """A delegated responder identified by name rather than key hash is found too."""
    delegate = pki.intermediate.issue_leaf(
        dns_names=(),
        common_name="certvigil OCSP responder by name",
        extended_key_usage=(ExtendedKeyUsageOID.OCSP_SIGNING,),
    )
    responder = OcspResponder(
        issuer=pki.intermediate.issued, signer=delegate, clock=utc_now, responder_id_by_name=True
    )
    with RevocationServer(responder=responder) as server:
        leaf = issue(pki, server)
        verdict = _leaf_verdict(check(pki.served_chain_der(leaf)))
    assert verdict.status is RevocationStatus.GOOD


def test_delegate_without_ocsp_signing_is_refused(pki: ThrowawayPki) -> None:
    """A responder certificate from the issuer but without id-kp-OCSPSigning may not sign."""
    delegate = pki.intermediate.issue_leaf(
        dns_names=(),
        common_name="not a responder",
        extended_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    responder = OcspResponder(issuer=pki.intermediate.issued, signer=delegate, clock=utc_now)
    with RevocationServer(responder=responder) as server:
        leaf = issue(pki, server)
        verdict = _leaf_verdict(check(pki.served_chain_der(leaf)))
    assert verdict.status is RevocationStatus.INVALID_RESPONSE
    assert "OCSPSigning" in verdict.methods[0].detail


def test_delegate_from_another_ca_is_refused(pki: ThrowawayPki) -> None:
    """A responder certificate with the right purpose but from another CA may not sign."""
    other = CertificateAuthority.root(common_name="Some Other CA", now_utc=utc_now())
    delegate = other.issue_leaf(
        dns_names=(),
        common_name="foreign responder",
        extended_key_usage=(ExtendedKeyUsageOID.OCSP_SIGNING,),
    )
    responder = OcspResponder(issuer=pki.intermediate.issued, signer=delegate, clock=utc_now)
    with RevocationServer(responder=responder) as server:
        leaf = issue(pki, server)
        verdict = _leaf_verdict(check(pki.served_chain_der(leaf)))
    assert verdict.status is RevocationStatus.INVALID_RESPONSE
    assert "not issued by" in verdict.methods[0].detail


def test_answer_for_another_certificate_is_invalid(pki: ThrowawayPki) -> None:
    """An answer signed by the issuer but about another CA's certificate does not match."""
    other = ThrowawayPki.create(now_utc=utc_now(), intermediate_name="Other Intermediate")
    # The responder believes it speaks for the other intermediate: the CertID differs.
    responder = OcspResponder(issuer=other.intermediate.issued, clock=utc_now)
    with RevocationServer(responder=responder) as server:
        leaf = issue(pki, server)
        verdict = _leaf_verdict(check(pki.served_chain_der(leaf)))
    assert verdict.status is RevocationStatus.INVALID_RESPONSE


def test_unreachable_responder_is_its_own_state(pki: ThrowawayPki) -> None:
    """A responder that refuses connections is unreachable (a warning), never good."""
    with closed_port() as address:
        leaf = pki.issue_leaf(ocsp_urls=[address.url("/ocsp")])
        report = check(pki.served_chain_der(leaf))
        failure = observe(pki.served_chain_der(leaf)).certificates[0].fetches[0].failure
    assert failure is not None
    assert failure.kind is FetchFailureKind.UNREACHABLE
    verdict = _leaf_verdict(report)
    assert verdict.status is RevocationStatus.UNREACHABLE
    assert verdict.decided_by is RevocationMethod.OCSP
    codes = {f.code: f.severity.value for f in revocation_findings(report)}
    assert codes["ocsp_responder_unreachable"] == "warning"


def test_http_error_status_is_recorded(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A responder answering 503 is recorded with its HTTP status and read unreachable."""
    leaf = issue(pki, server)
    server.statuses["/ocsp"] = 503
    obs = observe(pki.served_chain_der(leaf))
    failure = obs.certificates[0].fetches[0].failure
    assert failure is not None
    assert failure.kind is FetchFailureKind.HTTP_STATUS
    assert failure.http_status == 503


def test_short_request_goes_by_get_and_post_works_too(
    pki: ThrowawayPki, server: RevocationServer
) -> None:
    """A short request goes by GET (RFC 5019 §5); POST, when asked for, gets the same answer."""
    leaf = issue(pki, server)
    by_get = observe(pki.served_chain_der(leaf))
    by_post = observe(
        pki.served_chain_der(leaf),
        options=RevocationOptions(ocsp_prefer_post=True, timeout_s=2.0),
    )
    assert by_get.certificates[0].fetches[0].http_method == "GET"
    assert by_post.certificates[0].fetches[0].http_method == "POST"
    assert [m for m, _ in server.requests_seen] == ["GET", "POST"]
    assert server.requests_seen[1][1] == "/ocsp"
    report = judge_revocation(by_post, now=utc_now())
    assert report.leaf_status is RevocationStatus.GOOD


def test_long_request_would_not_fit_a_get(pki: ThrowawayPki) -> None:
    """The GET form grows with the request: 200 bytes of DER exceed the 255-byte limit."""
    encoded = ocsp_get_url("http://127.0.0.1:1", b"\x00" * 200)
    assert len(encoded.rsplit("/", 1)[1]) >= GET_MAX_ENCODED_BYTES
    short = ocsp_get_url("http://127.0.0.1:1", b"\x00" * 80)
    assert len(short.rsplit("/", 1)[1]) < GET_MAX_ENCODED_BYTES


def test_intermediate_ocsp_is_asked_only_on_request(pki: ThrowawayPki) -> None:
    """OCSP for intermediates is skipped by default and asked when the options say so."""
    root = pki.root
    with RevocationServer() as server:
        responder = OcspResponder(issuer=root.issued, clock=utc_now)
        server.responder = responder
        intermediate = root.intermediate(
            common_name="Intermediate with OCSP", ocsp_urls=[server.url("/ocsp")]
        )
        responder.statuses[intermediate.certificate.serial_number] = "good"
        leaf = intermediate.issue_leaf()
        chain = leaf.chain_der(intermediate)
        skipped = check(chain, extra_issuers_der=(root.der,))
        asked = check(
            chain,
            extra_issuers_der=(root.der,),
            options=RevocationOptions(ocsp_for_intermediates=True, timeout_s=2.0),
        )
    assert skipped.certificates[1].status is RevocationStatus.NOT_CHECKED
    assert asked.certificates[1].status is RevocationStatus.GOOD


def test_slow_responder_times_out(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A responder slower than the time-out is recorded as a time-out, read unreachable."""
    leaf = issue(pki, server)
    server.delay_s = 1.0
    options = RevocationOptions(timeout_s=0.2, total_timeout_s=0.4)
    obs = observe(pki.served_chain_der(leaf), options=options)
    failure = obs.certificates[0].fetches[0].failure
    assert failure is not None
    assert failure.kind is FetchFailureKind.TIMEOUT
    verdict = judge_revocation(obs, now=utc_now()).certificates[0]
    assert verdict.status is RevocationStatus.UNREACHABLE
