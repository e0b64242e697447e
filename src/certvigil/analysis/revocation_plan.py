"""Which served certificates a revocation check asks about, and under which issuer; pure.

The plan reads certificates only through ``certificate.parse_certificate``, so a served
certificate with a defect the basic analysis reports (a duplicated extension, a
malformed SAN or basicConstraints, a NUL in a name) is planned like any other, from
what could be read, and a certificate that does not load at all is left out: the basic
analysis already reports it as ``malformed_certificate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from certvigil.analysis.certificate import (
    ParsedCertificate,
    parse_certificate,
    signature_verifies,
)
from certvigil.errors import CertificateLoadError

__all__ = ["PlannedCheck", "plan_revocation", "readable"]


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
