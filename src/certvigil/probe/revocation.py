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

from certvigil.analysis.certificate import PARSE_ERRORS, ParsedCertificate
from certvigil.analysis.revocation_plan import PlannedCheck, plan_revocation
from certvigil.observed.revocation import (
    CertificateRevocationObservation,
    FetchFailure,
    FetchFailureKind,
    RevocationFetch,
    RevocationMethod,
    RevocationObservation,
)
from certvigil.probe.capped_http import HttpLimits
from certvigil.probe.crl_fetch import CrlCache
from certvigil.probe.ocsp_fetch import build_ocsp_request, fetch_ocsp
from certvigil.probe.revocation_options import RevocationOptions
from certvigil.targets.target import Target

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
    fetches), by name and signature, whether or not the chain verifies.

    Never raises for network problems: they are recorded per fetch. Nor for defective
    certificates: each is checked from what could be read of it (the plan,
    ``analysis.revocation_plan``), and one that does not load at all is left out.

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
    """
    observed_at = clock()
    plan = plan_revocation(chain_der, extra_issuers_der=extra_issuers_der)
    jobs = [
        _check_one(check, http=http, crl_cache=crl_cache, clock=clock, options=options)
        for check in plan
    ]
    return RevocationObservation(
        target=target,
        observed_at_utc=observed_at,
        certificates=tuple(await asyncio.gather(*jobs)),
        staple_requested=staple_requested or staple_der is not None,
        staple_der=staple_der,
    )


async def _check_one(
    check: PlannedCheck,
    *,
    http: httpx.AsyncClient,
    crl_cache: CrlCache,
    clock: Callable[[], datetime],
    options: RevocationOptions,
) -> CertificateRevocationObservation:
    fetches: list[RevocationFetch] = []
    issuer = check.issuer
    ocsp_urls = check.ocsp_urls
    wants_ocsp = options.use_ocsp and (check.cert_index == 0 or options.ocsp_for_intermediates)
    crl_job = _first_crl(check.crl_urls, http=http, crl_cache=crl_cache, options=options)
    ocsp_job = (
        _first_ocsp(
            check.certificate,
            issuer,
            ocsp_urls,
            http=http,
            clock=clock,
            options=options,
            cache=crl_cache,
        )
        if wants_ocsp and issuer is not None
        else _nothing()
    )
    crl_fetches, ocsp_fetches = await asyncio.gather(crl_job, ocsp_job)
    fetches.extend(crl_fetches)
    fetches.extend(ocsp_fetches)
    return CertificateRevocationObservation(
        cert_index=check.cert_index,
        certificate_der=check.certificate.der,
        issuer_der=issuer.der if issuer is not None else None,
        fetches=tuple(fetches),
        ocsp_skipped=bool(ocsp_urls) and not wants_ocsp and options.use_ocsp,
    )


async def _nothing() -> list[RevocationFetch]:
    return []


async def _first_crl(
    urls: tuple[str, ...],
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
    for url in _preferring_http(urls):
        fetch = await crl_cache.fetch(url, http=http, limits=limits)
        fetches.append(fetch)
        if fetch.failure is None:
            break
    return fetches


async def _first_ocsp(
    cert: ParsedCertificate,
    issuer: ParsedCertificate,
    urls: tuple[str, ...],
    *,
    http: httpx.AsyncClient,
    clock: Callable[[], datetime],
    options: RevocationOptions,
    cache: CrlCache | None = None,
) -> list[RevocationFetch]:
    if not urls:
        return []
    limits = HttpLimits(
        timeout_s=options.timeout_s,
        total_timeout_s=options.total_timeout_s,
        max_bytes=options.ocsp_max_bytes,
    )
    try:
        request_der = build_ocsp_request(cert.certificate, issuer.certificate)
    except PARSE_ERRORS as exc:  # the issuer's key verified a signature, so unlikely
        failure = FetchFailure(
            kind=FetchFailureKind.MALFORMED, detail=f"no OCSP request can be built: {exc}"
        )
        return [
            RevocationFetch(
                method=RevocationMethod.OCSP, url=u, fetched_at_utc=clock(), failure=failure
            )
            for u in urls[:1]
        ]
    fetches: list[RevocationFetch] = []
    for url in _preferring_http(urls):
        kept = cache.cached_ocsp(url, request_der) if cache is not None else None
        if kept is not None:
            fetches.append(kept)
            break
        fetch = await fetch_ocsp(
            url,
            request_der,
            http=http,
            limits=limits,
            clock=clock,
            prefer_post=options.ocsp_prefer_post,
        )
        if cache is not None:
            cache.keep_ocsp(url, request_der, fetch)
        fetches.append(fetch)
        if fetch.failure is None:
            break
    return fetches


def _preferring_http(urls: tuple[str, ...]) -> tuple[str, ...]:
    """HTTP(S) URLs first; others (``ldap://``) only when there is nothing else."""
    web = tuple(u for u in urls if u.lower().startswith(("http://", "https://")))
    return web or urls
