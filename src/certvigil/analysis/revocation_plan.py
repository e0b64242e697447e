"""What a scan fetches next for an observed chain, decided from the bytes alone; pure.

Three plans, so that ``probe/`` fetches without parsing a certificate to decide what:

* :func:`plan_issuer_fetches`: which AIA CA-issuers URLs to fetch to complete a chain
  the server sent incomplete (asked again after each round, with what was fetched).
* :func:`candidate_issuers_der`: the issuers a revocation check may need beyond the
  served chain (AIA-fetched ones, then anchors named as issuers).
* :func:`plan_revocation`: which served certificates to check, under which issuer, at
  which OCSP and CRL URLs.


The plan reads certificates only through ``certificate.parse_certificate``, so a served
certificate with a defect the basic analysis reports (a duplicated extension, a
malformed SAN or basicConstraints, a NUL in a name) is planned like any other, from
what could be read, and a certificate that does not load at all is left out: the basic
analysis already reports it as ``malformed_certificate``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.serialization import Encoding

from certvigil.analysis.certificate import (
    ParsedCertificate,
    parse_certificate,
    signature_verifies,
)
from certvigil.analysis.chain import judge_chain
from certvigil.analysis.der import tbs_names
from certvigil.analysis.trust import TrustStore
from certvigil.errors import CertificateLoadError

__all__ = [
    "PlannedCheck",
    "candidate_issuers_der",
    "plan_issuer_fetches",
    "plan_revocation",
    "readable",
]


def plan_issuer_fetches(
    chain_der: Sequence[bytes],
    *,
    now: datetime,
    trust: TrustStore,
    fetched_der: Sequence[bytes] = (),
    tried_urls: Collection[str] = (),
) -> tuple[str, ...]:
    """The AIA CA-issuers URLs to fetch next to complete a served chain.

    Verifies the chain as the judgement will (``chain.judge_chain``, cached by chain,
    fetched issuers, ``now`` and trust store: pass the ``now`` the observation will be
    judged at and the judgement costs no second verification).

    Args:
        chain_der: The certificates as served, leaf first.
        now: The validation time (aware).
        trust: The anchors.
        fetched_der: Issuers fetched so far.
        tried_urls: URLs already fetched (successfully or not) for this chain.

    Returns:
        The ``http``/``https`` URLs, usually one, of the certificate whose issuer is
        missing; empty when the chain verifies (with what was fetched), nothing is
        missing, the leaf does not parse, or every URL was tried. A fetched issuer may
        itself lack its issuer: ask again after each round (three rounds suffice for
        any real chain).
    """
    served = [p.der for p in map(readable, chain_der) if p is not None]
    if not chain_der or not served or served[0] != chain_der[0]:
        return ()
    fetched = [p.der for p in map(readable, fetched_der) if p is not None]
    report = judge_chain(served, now=now, trust=trust, fetched_der=fetched).report
    if report.is_trusted or report.would_verify_with_fetched:
        return ()
    return tuple(
        url
        for url in report.missing_issuer_urls
        if url.lower().startswith(("http://", "https://")) and url not in tried_urls
    )


def candidate_issuers_der(
    chain_der: Sequence[bytes], *, trust: TrustStore, fetched_der: Sequence[bytes] = ()
) -> tuple[bytes, ...]:
    """Issuers to look in beyond the served chain: AIA-fetched ones, then anchors.

    A revocation check finds each certificate's issuer by name and signature among the
    served chain and these; an OCSP request for a certificate issued directly by a root
    needs the root, which servers rarely send.

    Args:
        chain_der: The served certificates, leaf first.
        trust: The anchors.
        fetched_der: Intermediates fetched from AIA CA-issuers URLs.

    Returns:
        ``fetched_der`` followed by every anchor named as issuer by a served or fetched
        certificate, without duplicates.
    """
    found: list[bytes] = list(dict.fromkeys(fetched_der))
    for der in (*chain_der, *fetched_der):
        try:
            issuer_name, _ = tbs_names(der)
        except ValueError:
            continue
        for anchor in trust.anchors_named(issuer_name):
            anchor_der = anchor.public_bytes(Encoding.DER)
            if anchor_der not in found:
                found.append(anchor_der)
    return tuple(found)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedCheck:
    """One certificate to check for revocation.

    Attributes:
        cert_index: Its position in the served chain (0 = leaf).
        certificate: The certificate, parsed.
        issuer: Its issuer (served, fetched or an anchor) found by name and signature,
            ``None`` when none was found.
        ocsp_urls: Its AIA OCSP responder URLs, in order.
        crl_urls: Its CRL distribution point URLs, in order, without repeats.
    """

    cert_index: int
    certificate: ParsedCertificate
    issuer: ParsedCertificate | None
    ocsp_urls: tuple[str, ...]
    crl_urls: tuple[str, ...]


def readable(der: bytes) -> ParsedCertificate | None:
    """The parsed certificate, ``None`` when the bytes are not a certificate."""
    try:
        return parse_certificate(der)
    except CertificateLoadError:
        return None


def plan_revocation(
    chain_der: Sequence[bytes], *, extra_issuers_der: Sequence[bytes] = ()
) -> tuple[PlannedCheck, ...]:
    """The checks for a served chain: every readable certificate that is not self-signed.

    Never raises: unreadable certificates are left out (served ones) or ignored
    (candidate issuers).

    Args:
        chain_der: The certificates as served, leaf first.
        extra_issuers_der: More candidate issuers (roots, fetched intermediates).

    Returns:
        One planned check per certificate, in served order.
    """
    served = [(i, p) for i, p in enumerate(map(readable, chain_der)) if p is not None]
    extra = [p for p in map(readable, extra_issuers_der) if p is not None]
    candidates = [p for _, p in served] + extra
    return tuple(
        PlannedCheck(
            cert_index=index,
            certificate=parsed,
            issuer=_find_issuer(parsed, candidates),
            ocsp_urls=parsed.facts.ocsp_urls,
            crl_urls=tuple(dict.fromkeys(parsed.facts.crl_urls)),
        )
        for index, parsed in served
        if not parsed.facts.is_self_signed
    )


def _find_issuer(
    cert: ParsedCertificate, candidates: Sequence[ParsedCertificate]
) -> ParsedCertificate | None:
    """The first candidate whose subject is ``cert``'s issuer and whose key signed it."""
    for candidate in candidates:
        if candidate is cert or candidate.der == cert.der:
            continue
        same_name = (
            candidate.subject_der == cert.issuer_der
            if candidate.subject_der and cert.issuer_der
            else candidate.facts.subject == cert.facts.issuer
        )
        if same_name and signature_verifies(cert, candidate):
            return candidate
    return None
