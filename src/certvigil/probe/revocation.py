"""Fetch what revocation checking needs for a served chain: CRLs and OCSP answers.

``check_revocation`` is the network half of the revocation check; its pure half is
``certvigil.analysis.revocation.judge_revocation``. Typical use::

    async with httpx.AsyncClient() as http:
        cache = CrlCache(clock=clock)                 # one per scan or daemon
        obs = await check_revocation(
            observation.chain_der, http=http, crl_cache=cache, clock=clock,
            options=RevocationOptions(), target=observation.target,
            staple_der=observation.ocsp_staple_der, staple_requested=True,
        )
        report = judge_revocation(obs, now=clock())
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID

from certvigil.observed.revocation import (
    CertificateRevocationObservation,
    RevocationFetch,
    RevocationObservation,
)
from certvigil.probe.capped_http import HttpLimits
from certvigil.probe.crl_fetch import CrlCache
from certvigil.probe.ocsp_fetch import build_ocsp_request, fetch_ocsp
from certvigil.probe.revocation_options import RevocationOptions
from certvigil.target import Target

__all__ = ["CrlCache", "RevocationOptions", "check_revocation"]


async def check_revocation(
    chain_der: Sequence[bytes],
    *,
    http: httpx.AsyncClient,
    crl_cache: CrlCache,
    clock: Callable[[], datetime],
    options: RevocationOptions,
    target: Target | None = None,
    extra_issuers_der: Sequence[bytes] = (),
    staple_der: bytes | None = None,
    staple_requested: bool = False,
) -> RevocationObservation:
    """Fetch the CRLs and OCSP answers for every certificate of a served chain.

    Every certificate that is not self-signed is checked: its CRL distribution points
    (each one in turn until one answers) and, for the leaf (and intermediates when
    ``options.ocsp_for_intermediates``), its OCSP responders in turn until one answers.
    Certificates are fetched for concurrently. An OCSP request needs the issuer, which
    is looked up in the served chain, then in ``extra_issuers_der`` (trust anchors, AIA
    fetches), by name and key identifier, whether or not the chain verifies.

    Never raises for network problems: they are recorded per fetch.

    Args:
        chain_der: The certificates as served, leaf first.
        http: The HTTP client to use (the one seam: tests pass a client for loopback
            servers; the caller owns and closes it).
        crl_cache: The CRL cache shared by every endpoint of the scan.
        clock: Current time (aware UTC).
        options: What to fetch and the limits.
        target: The endpoint, recorded in the observation.
        extra_issuers_der: More candidate issuers (roots, fetched intermediates).
        staple_der: The OCSP response the server stapled, if any.
        staple_requested: The handshake asked for a staple.

    Returns:
        The raw observation for ``judge_revocation``.

    Raises:
        ValueError: When a certificate in ``chain_der`` does not parse.
    """
    observed_at = clock()
    certificates = [x509.load_der_x509_certificate(der) for der in chain_der]
    candidates = certificates + [x509.load_der_x509_certificate(d) for d in extra_issuers_der]
    jobs = [
        _check_one(
            index,
            cert,
            _find_issuer(cert, candidates),
            http=http,
            crl_cache=crl_cache,
            clock=clock,
            options=options,
        )
        for index, cert in enumerate(certificates)
        if not _is_self_signed(cert)
    ]
    return RevocationObservation(
        target=target,
        observed_at_utc=observed_at,
        certificates=tuple(await asyncio.gather(*jobs)),
        staple_requested=staple_requested or staple_der is not None,
        staple_der=staple_der,
    )


async def _check_one(
    index: int,
    cert: x509.Certificate,
    issuer: x509.Certificate | None,
    *,
    http: httpx.AsyncClient,
    crl_cache: CrlCache,
    clock: Callable[[], datetime],
    options: RevocationOptions,
) -> CertificateRevocationObservation:
    fetches: list[RevocationFetch] = []
    ocsp_urls = ocsp_urls_of(cert)
    wants_ocsp = options.use_ocsp and (index == 0 or options.ocsp_for_intermediates)
    crl_job = _first_crl(cert, http=http, crl_cache=crl_cache, options=options)
    ocsp_job = (
        _first_ocsp(cert, issuer, ocsp_urls, http=http, clock=clock, options=options)
        if wants_ocsp and issuer is not None
        else _nothing()
    )
    crl_fetches, ocsp_fetches = await asyncio.gather(crl_job, ocsp_job)
    fetches.extend(crl_fetches)
    fetches.extend(ocsp_fetches)
    return CertificateRevocationObservation(
        cert_index=index,
        certificate_der=cert.public_bytes(Encoding.DER),
        issuer_der=issuer.public_bytes(Encoding.DER) if issuer is not None else None,
        fetches=tuple(fetches),
        ocsp_skipped=bool(ocsp_urls) and not wants_ocsp and options.use_ocsp,
    )


async def _nothing() -> list[RevocationFetch]:
    return []


async def _first_crl(
    cert: x509.Certificate,
    *,
    http: httpx.AsyncClient,
    crl_cache: CrlCache,
    options: RevocationOptions,
) -> list[RevocationFetch]:
    if not options.use_crl:
        return []
    limits = HttpLimits(
        timeout_s=options.timeout_s,
        total_timeout_s=options.total_timeout_s,
        max_bytes=options.crl_max_bytes,
    )
    fetches: list[RevocationFetch] = []
    for url in _preferring_http(crl_urls_of(cert)):
        fetch = await crl_cache.fetch(url, http=http, limits=limits)
        fetches.append(fetch)
        if fetch.failure is None:
            break
    return fetches


async def _first_ocsp(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    urls: tuple[str, ...],
    *,
    http: httpx.AsyncClient,
    clock: Callable[[], datetime],
    options: RevocationOptions,
) -> list[RevocationFetch]:
    if not urls:
        return []
    limits = HttpLimits(
        timeout_s=options.timeout_s,
        total_timeout_s=options.total_timeout_s,
        max_bytes=options.ocsp_max_bytes,
    )
    request_der = build_ocsp_request(cert, issuer)
    fetches: list[RevocationFetch] = []
    for url in _preferring_http(urls):
        fetch = await fetch_ocsp(
            url,
            request_der,
            http=http,
            limits=limits,
            clock=clock,
            prefer_post=options.ocsp_prefer_post,
        )
        fetches.append(fetch)
        if fetch.failure is None:
            break
    return fetches


def _preferring_http(urls: tuple[str, ...]) -> tuple[str, ...]:
    """HTTP(S) URLs first; others (``ldap://``) only when there is nothing else."""
    web = tuple(u for u in urls if u.lower().startswith(("http://", "https://")))
    return web or urls


def crl_urls_of(cert: x509.Certificate) -> tuple[str, ...]:
    """The URIs of the certificate's CRL distribution points, in order, deduplicated."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return ()
    urls: list[str] = []
    for point in points:
        for name in point.full_name or ():
            if isinstance(name, x509.UniformResourceIdentifier) and name.value not in urls:
                urls.append(name.value)
    return tuple(urls)


def ocsp_urls_of(cert: x509.Certificate) -> tuple[str, ...]:
    """The certificate's AIA OCSP responder URLs, in order."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    )


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    return _issued_by(cert, cert) is True


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool | None:
    """Whether ``issuer``'s key signed ``cert``; ``None`` when that cannot be checked here.

    ``None`` is a signature algorithm this library refuses to verify (SHA-1 and MD5
    signatures, which the revocation check must still handle); ``False`` is a signature
    that does not match, or a key of another type.
    """
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, TypeError):
        return False
    except (ValueError, UnsupportedAlgorithm):
        return None
    return True


def _find_issuer(
    cert: x509.Certificate, candidates: Sequence[x509.Certificate]
) -> x509.Certificate | None:
    """The issuer of ``cert`` among ``candidates``, found by name and key identifier.

    Path validation plays no part: the issuer of a leaf whose chain does not verify
    (a SHA-1 signature, an expired intermediate, an unknown root) is still the
    certificate whose subject is the leaf's issuer name and whose key identifier is the
    leaf's authority key identifier. A candidate whose signature over ``cert`` verifies
    is taken first; one whose signature check fails is never taken; one whose signature
    cannot be checked here (a SHA-1 or MD5 signature) is taken when its name matches
    and its key identifier matches the authority key identifier (when ``cert`` has one).
    A wrong pick cannot make a certificate look good: the answers it helps to fetch are
    verified against its key afterwards.
    """
    named = [c for c in candidates if c is not cert and c.subject == cert.issuer]
    wanted = _authority_key_id(cert)
    unchecked: x509.Certificate | None = None
    for candidate in named:
        signed = _issued_by(cert, candidate)
        if signed is True:
            return candidate
        if (
            signed is None
            and unchecked is None
            and (wanted is None or wanted in _key_ids(candidate))
        ):
            unchecked = candidate
    return unchecked


_EXTENSION_ERRORS = (ValueError, x509.DuplicateExtension, x509.UnsupportedGeneralNameType)


def _authority_key_id(cert: x509.Certificate) -> bytes | None:
    """The keyIdentifier of the authority key identifier, ``None`` when absent or unreadable."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except (x509.ExtensionNotFound, *_EXTENSION_ERRORS):
        return None
    return aki.key_identifier


def _key_ids(cert: x509.Certificate) -> set[bytes]:
    """The subject key identifier a CA states and the one its key gives (RFC 5280 method 1)."""
    ids: set[bytes] = set()
    try:
        ids.add(cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest)
    except (x509.ExtensionNotFound, *_EXTENSION_ERRORS):
        pass
    try:
        ids.add(x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        pass
    return ids
