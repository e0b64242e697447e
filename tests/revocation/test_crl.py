"""CRL checking against CRLs served over HTTP on loopback, and the shared CRL cache."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from certvigil.analysis.revocation import judge_revocation, revocation_findings
from certvigil.analysis.revocation_model import RevocationStatus
from certvigil.demo.pki import CertificateAuthority, ThrowawayPki
from certvigil.observed.revocation import FetchFailureKind, RevocationMethod
from certvigil.probe.capped_http import HttpLimits
from certvigil.probe.crl_fetch import CrlCache
from certvigil.probe.revocation import RevocationOptions
from tests.revocation.helpers import MovableClock, check, fresh_crl, issue, observe, utc_now
from tests.support.ocsp_responder import RevocationServer, Revoked, build_crl

LIMITS = HttpLimits(timeout_s=2.0, total_timeout_s=5.0, max_bytes=1024 * 1024)


def test_listed_serial_is_revoked_by_crl(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A leaf listed on its issuer's CRL is revoked, with the entry's time and reason."""
    leaf = issue(pki, server, ocsp=False, crl=True)
    revoked_at = (utc_now() - timedelta(days=2)).replace(microsecond=0)
    entry = Revoked(revoked_at_utc=revoked_at, reason=x509.ReasonFlags.superseded)
    server.files["/int.crl"] = fresh_crl(pki, [(leaf.certificate.serial_number, entry)])
    report = check(pki.served_chain_der(leaf))
    verdict = report.certificates[0]
    assert verdict.status is RevocationStatus.REVOKED
    assert verdict.decided_by is RevocationMethod.CRL
    assert verdict.revoked_at_utc == revoked_at
    assert verdict.revocation_reason == "superseded"


def test_unlisted_serial_is_good_by_crl(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A leaf absent from a fresh, issuer-signed CRL is good by CRL."""
    leaf = issue(pki, server, ocsp=False, crl=True)
    other = Revoked(revoked_at_utc=utc_now() - timedelta(days=1))
    server.files["/int.crl"] = fresh_crl(pki, [(leaf.certificate.serial_number + 1, other)])
    verdict = check(pki.served_chain_der(leaf)).certificates[0]
    assert verdict.status is RevocationStatus.GOOD
    assert verdict.decided_by is RevocationMethod.CRL
    assert verdict.methods[0].signed_by == "issuer"


def test_pem_crl_is_accepted(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A distribution point serving PEM instead of DER still works."""
    leaf = issue(pki, server, ocsp=False, crl=True)
    der = fresh_crl(pki)
    server.files["/int.crl"] = x509.load_der_x509_crl(der).public_bytes(Encoding.PEM)
    assert check(pki.served_chain_der(leaf)).certificates[0].status is RevocationStatus.GOOD


def test_crl_with_bad_signature_is_invalid(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A CRL naming the issuer but signed by another key is invalid, never good."""
    leaf = issue(pki, server, ocsp=False, crl=True)
    forger = CertificateAuthority.root(common_name="Forger", now_utc=utc_now())
    now = utc_now()
    server.files["/int.crl"] = build_crl(
        issuer=pki.intermediate.issued,
        signing_key=forger.issued,
        this_update_utc=now - timedelta(hours=1),
        next_update_utc=now + timedelta(days=1),
    )
    report = check(pki.served_chain_der(leaf))
    assert report.certificates[0].status is RevocationStatus.INVALID_RESPONSE
    assert "crl_invalid" in {f.code for f in revocation_findings(report)}


def test_stale_crl_is_stale(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A CRL past its nextUpdate is stale, with a warning."""
    leaf = issue(pki, server, ocsp=False, crl=True)
    now = utc_now()
    server.files["/int.crl"] = build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=now - timedelta(days=9),
        next_update_utc=now - timedelta(days=2),
    )
    report = check(pki.served_chain_der(leaf))
    assert report.certificates[0].status is RevocationStatus.STALE_RESPONSE
    assert "crl_stale" in {f.code for f in revocation_findings(report)}


def test_stale_crl_still_proves_revocation(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A verified but stale CRL that lists the leaf still reads revoked: revocation is final."""
    leaf = issue(pki, server, ocsp=False, crl=True)
    now = utc_now()
    entry = Revoked(revoked_at_utc=now - timedelta(days=5), reason=x509.ReasonFlags.key_compromise)
    server.files["/int.crl"] = build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=now - timedelta(days=4),
        next_update_utc=now - timedelta(days=1),
        revoked=[(leaf.certificate.serial_number, entry)],
    )
    assert check(pki.served_chain_der(leaf)).certificates[0].status is RevocationStatus.REVOKED


def test_delta_crl_is_reported_out_of_scope(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A delta CRL at the distribution point is refused with a reason, not misread as good."""
    leaf = issue(pki, server, ocsp=False, crl=True)
    now = utc_now()
    server.files["/int.crl"] = build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=now - timedelta(hours=1),
        next_update_utc=now + timedelta(days=1),
        extensions=[x509.DeltaCRLIndicator(1)],
    )
    verdict = check(pki.served_chain_der(leaf)).certificates[0]
    assert verdict.status is RevocationStatus.INVALID_RESPONSE
    assert "delta CRL" in verdict.methods[0].detail


def test_crl_over_the_size_cap_is_refused(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A CRL larger than the cap is not read: the fetch fails as too large."""
    leaf = issue(pki, server, ocsp=False, crl=True)
    now = utc_now()
    many = [(serial, Revoked(revoked_at_utc=now - timedelta(days=1))) for serial in range(1, 400)]
    server.files["/int.crl"] = build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=now - timedelta(hours=1),
        next_update_utc=now + timedelta(days=1),
        revoked=many,
    )
    assert len(server.files["/int.crl"]) > 4096
    options = RevocationOptions(crl_max_bytes=4096, timeout_s=2.0)
    obs = observe(pki.served_chain_der(leaf), options=options)
    failure = obs.certificates[0].fetches[0].failure
    assert failure is not None
    assert failure.kind is FetchFailureKind.TOO_LARGE
    report = judge_revocation(obs, now=utc_now())
    assert report.certificates[0].status is RevocationStatus.UNREACHABLE
    assert "crl_unreachable" in {f.code for f in revocation_findings(report)}
    # The same CRL under a larger cap is read and judged.
    roomy = RevocationOptions(crl_max_bytes=1024 * 1024, timeout_s=2.0)
    assert check(pki.served_chain_der(leaf), options=roomy).certificates[0].status is (
        RevocationStatus.GOOD
    )


def test_crl_and_ocsp_both_asked_revoked_wins(pki: ThrowawayPki, server: RevocationServer) -> None:
    """When OCSP says good but the CRL lists the leaf, revoked wins and CRL decides."""
    leaf = issue(pki, server, ocsp=True, crl=True)
    entry = Revoked(revoked_at_utc=utc_now() - timedelta(hours=5))
    server.files["/int.crl"] = fresh_crl(pki, [(leaf.certificate.serial_number, entry)])
    verdict = check(pki.served_chain_der(leaf)).certificates[0]
    assert {m.method: m.status for m in verdict.methods} == {
        RevocationMethod.CRL: RevocationStatus.REVOKED,
        RevocationMethod.OCSP: RevocationStatus.GOOD,
    }
    assert verdict.status is RevocationStatus.REVOKED
    assert verdict.decided_by is RevocationMethod.CRL


def test_good_crl_outweighs_unreachable_ocsp(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A good CRL decides when OCSP is down; the OCSP trouble drops to information."""
    leaf = issue(pki, server, ocsp=True, crl=True)
    server.files["/int.crl"] = fresh_crl(pki)
    server.statuses["/ocsp"] = 500
    report = check(pki.served_chain_der(leaf))
    assert report.certificates[0].status is RevocationStatus.GOOD
    leaf_findings = {
        f.code: f.severity.value for f in revocation_findings(report) if f.cert_index == 0
    }
    assert leaf_findings == {"ocsp_responder_unreachable": "info"}


def test_every_certificate_with_a_distribution_point_is_checked(pki: ThrowawayPki) -> None:
    """The intermediate's CRL (from the root) is checked beside the leaf's."""
    root = pki.root
    with RevocationServer() as server:
        intermediate = root.intermediate(
            common_name="Intermediate with CRL", crl_urls=[server.url("/root.crl")]
        )
        leaf = intermediate.issue_leaf(crl_urls=[server.url("/int.crl")])
        now = utc_now()
        server.files["/root.crl"] = build_crl(
            issuer=root.issued,
            this_update_utc=now - timedelta(hours=1),
            next_update_utc=now + timedelta(days=30),
            revoked=[(intermediate.certificate.serial_number, Revoked(revoked_at_utc=now))],
        )
        server.files["/int.crl"] = build_crl(
            issuer=intermediate.issued,
            this_update_utc=now - timedelta(hours=1),
            next_update_utc=now + timedelta(days=1),
        )
        report = check(leaf.chain_der(intermediate), extra_issuers_der=(root.der,))
    statuses = [(c.cert_index, c.status) for c in report.certificates]
    assert statuses == [(0, RevocationStatus.GOOD), (1, RevocationStatus.REVOKED)]
    assert report.is_revoked


def test_missing_issuer_is_unverifiable(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A leaf served without its issuer cannot have its CRL verified: unverifiable."""
    leaf = issue(pki, server, ocsp=True, crl=True)
    server.files["/int.crl"] = fresh_crl(pki)
    report = check((leaf.der,))
    assert report.certificates[0].status is RevocationStatus.UNVERIFIABLE
    assert "revocation_issuer_missing" in {f.code for f in revocation_findings(report)}


def test_certificate_without_revocation_info(pki: ThrowawayPki) -> None:
    """A leaf with no responder, no distribution point and no staple has no information."""
    leaf = pki.issue_leaf()
    report = check(pki.served_chain_der(leaf))
    verdict = report.certificates[0]
    assert verdict.status is RevocationStatus.NO_INFO
    assert verdict.decided_by is None
    findings = revocation_findings(report)
    assert [(f.code, f.severity.value, f.cert_index) for f in findings] == [
        ("no_revocation_info", "warning", 0),
        ("no_revocation_info", "info", 1),
    ]


# --- the shared cache ------------------------------------------------------------------


def test_concurrent_requests_share_one_download(pki: ThrowawayPki) -> None:
    """Fifty concurrent asks for one CRL make one download; all get the same bytes."""
    crl = fresh_crl(pki)
    with RevocationServer(files={"/int.crl": crl}, delay_s=0.2) as server:
        url = server.url("/int.crl")
        cache = CrlCache(clock=utc_now)

        async def run() -> list[bytes | None]:
            async with httpx.AsyncClient() as http:
                fetches = await asyncio.gather(
                    *(cache.fetch(url, http=http, limits=LIMITS) for _ in range(50))
                )
            return [f.response_der for f in fetches]

        bodies = asyncio.run(run())
        seen = list(server.requests_seen)
    assert bodies == [crl] * 50
    assert seen == [("GET", "/int.crl")]
    assert cache.downloads == 1


def test_cache_keeps_crl_until_next_update(pki: ThrowawayPki) -> None:
    """A cached CRL is reused until its nextUpdate, then downloaded again."""
    clock = MovableClock()
    now = clock()
    crl = build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=now - timedelta(hours=1),
        next_update_utc=now + timedelta(hours=6),
    )
    with RevocationServer(files={"/int.crl": crl}) as server:
        url = server.url("/int.crl")
        cache = CrlCache(clock=clock)

        async def fetch_once() -> bool:
            async with httpx.AsyncClient() as http:
                return (await cache.fetch(url, http=http, limits=LIMITS)).from_cache

        first = asyncio.run(fetch_once())
        clock.advance(timedelta(hours=5, minutes=59))
        before_next_update = asyncio.run(fetch_once())
        clock.advance(timedelta(minutes=2))
        after_next_update = asyncio.run(fetch_once())
        requests = len(server.requests_seen)
    assert (first, before_next_update, after_next_update) == (False, True, False)
    assert requests == 2


def test_cache_is_shared_by_endpoints_of_one_issuer(
    pki: ThrowawayPki, server: RevocationServer
) -> None:
    """Two endpoints whose leaves share a distribution point cost one download."""
    server.files["/int.crl"] = fresh_crl(pki)
    cache = CrlCache(clock=utc_now)
    first = issue(pki, server, ocsp=False, crl=True)
    second = issue(pki, server, ocsp=False, crl=True, dns_names=("other.localhost",))
    a = observe(pki.served_chain_der(first), cache=cache)
    b = observe(pki.served_chain_der(second), cache=cache)
    assert a.certificates[0].fetches[0].from_cache is False
    assert b.certificates[0].fetches[0].from_cache is True
    assert server.requests_seen == [("GET", "/int.crl")]
    report = judge_revocation(b, now=utc_now())
    assert report.certificates[0].status is RevocationStatus.GOOD


def test_failed_download_is_not_cached(pki: ThrowawayPki, server: RevocationServer) -> None:
    """A failed CRL download is retried next time rather than remembered."""
    cache = CrlCache(clock=utc_now)
    url = server.url("/int.crl")

    async def fetch_once() -> FetchFailureKind | None:
        async with httpx.AsyncClient() as http:
            failure = (await cache.fetch(url, http=http, limits=LIMITS)).failure
        return failure.kind if failure is not None else None

    assert asyncio.run(fetch_once()) is FetchFailureKind.HTTP_STATUS
    server.files["/int.crl"] = fresh_crl(pki)
    assert asyncio.run(fetch_once()) is None
    assert len(cache) == 1
