"""AIA CA-issuer fetching from a real HTTP server on loopback: formats, limits, cache."""

from __future__ import annotations

import asyncio

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import HttpFileServer, closed_port
from certvigil.probe.aia import IssuerFetch, IssuerFetcher, parse_issuer_body


def fetch(*urls: str, max_bytes: int = 256 * 1024) -> tuple[IssuerFetch, ...]:
    """Fetch ``urls`` with one fetcher on a fresh event loop."""

    async def run() -> tuple[IssuerFetch, ...]:
        async with IssuerFetcher(timeout_s=2.0, max_bytes=max_bytes) as fetcher:
            return await fetcher.fetch_all(urls)

    return asyncio.run(run())


@pytest.mark.parametrize("form", ["der", "pem", "pkcs7-der", "pkcs7-pem"])
def test_issuer_is_read_in_each_format(pki: ThrowawayPki, form: str) -> None:
    """DER, PEM and PKCS #7 bodies all yield the issuer certificate as DER."""
    certificate = pki.intermediate.certificate
    bodies = {
        "der": pki.intermediate.der,
        "pem": pki.intermediate.pem,
        "pkcs7-der": pkcs7.serialize_certificates([certificate], Encoding.DER),
        "pkcs7-pem": pkcs7.serialize_certificates([certificate], Encoding.PEM),
    }
    with HttpFileServer({"/issuer": bodies[form]}) as at:
        (result,) = fetch(at.url("/issuer"))
    assert result.error is None
    assert result.certificates_der == (pki.intermediate.der,)


def test_each_url_is_fetched_once_per_fetcher(pki: ThrowawayPki) -> None:
    """Concurrent and repeated requests for one URL share one download."""
    server = HttpFileServer({"/ca.der": pki.intermediate.der})
    with server as at:
        results = fetch(*[at.url("/ca.der")] * 5)
    assert {r.certificates_der for r in results} == {(pki.intermediate.der,)}
    assert server.requests_seen == ["/ca.der"]


def test_failures_come_back_as_errors(pki: ThrowawayPki) -> None:
    """A 404, garbage, an oversized body, a refused port and an ldap URL each give an error."""
    files = {"/garbage": b"not a certificate", "/big": pki.intermediate.der * 10}
    with HttpFileServer(files) as at, closed_port() as nowhere:
        missing, garbage, big, refused, ldap = fetch(
            at.url("/missing"),
            at.url("/garbage"),
            at.url("/big"),
            nowhere.url("/ca.der"),
            "ldap://127.0.0.1/cn=ca",
            max_bytes=len(pki.intermediate.der) * 2,
        )
    assert missing.error == "HTTP status 404"
    assert garbage.error is not None and "neither" in garbage.error
    assert big.error is not None and "larger than" in big.error
    assert refused.error is not None and refused.error.startswith("HTTP request failed")
    assert ldap.error is not None and "http" in ldap.error
    assert all(not r.certificates_der for r in (missing, garbage, big, refused, ldap))


def test_parse_rejects_empty_body() -> None:
    """An empty body is refused with a message that says so."""
    with pytest.raises(ValueError, match="empty"):
        parse_issuer_body(b"")
